/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl prune: PruneSets, a definition's retention policy applied to its own sets, with
 * the reason for every decision. */

#include <stdio.h>

#include "connection.h"
#include "log.h"
#include "output.h"
#include "snapsetctl.h"

enum {
        ARG_DRY_RUN = ARG_VERB_FIRST,
        ARG_ALL,
};

static bool arg_dry_run = false, arg_all = false;

static const struct option prune_options[] = {
        { "dry-run", no_argument, NULL, ARG_DRY_RUN },
        { "all",     no_argument, NULL, ARG_ALL },
        {}
};

static int prune_parse_option(const Verb *verb, int option, const char *arg) {
        if (option == ARG_DRY_RUN)
                arg_dry_run = true;
        else if (option == ARG_ALL)
                arg_all = true;
        else
                return -EINVAL;
        return 0;
}

static const char *decision_of(json_object *d) {
        bool keep = false, deleted = false;

        (void) reply_get_bool(d, "keep", &keep);
        if (keep)
                return "keep";
        if (!reply_get_bool(d, "deleted", &deleted))
                return "would delete";
        return deleted ? "deleted" : "NOT DELETED";
}

static int print_decisions(const char *name, json_object *decisions) {
        _cleanup_(table_freep) Table *t = table_new(4, "SET", "CREATED", "DECISION", "REASON");

        if (!t)
                return -ENOMEM;
        output_line("%s%s:", name, arg_dry_run ? " (dry run: nothing is deleted)" : "");
        table_set_indent(t, 2);
        for (size_t i = 0; i < json_object_array_length(decisions); i++) {
                json_object *d = json_object_array_get_idx(decisions, i);
                _cleanup_free_ char *reason = NULL;
                const char *error = reply_get_string(d, "error");
                char created[64] = "";
                int64_t usec = 0;

                if (reply_get_int(d, "createdUsec", &usec))
                        format_timestamp(created, sizeof created, (uint64_t) usec);
                if (asprintf(&reason, "%s%s%s", reply_get_string(d, "reason") ?: "", error ? ": " : "", error ?: "") < 0 ||
                    table_add_row(t, reply_get_string(d, "setId"), created, decision_of(d), reason) < 0)
                        return -ENOMEM;
        }
        if (table_rows(t) == 0)
                output_line("  no sets");
        else
                table_print(t, stdout);
        return 0;
}

static int prune_one(const char *name, json_object *all_json, bool *failed) {
        _cleanup_(json_object_putp) json_object *p = parameters_new_string("definition", name), *reply = NULL;
        json_object *decisions;
        int status;

        if (!p || json_object_object_add(p, "dryRun", json_object_new_boolean(arg_dry_run)) < 0)
                return log_oom(), SNAPSET_EXIT_FAILURE;
        status = connection_call_once(SNAPSET_METHOD("PruneSets"), p, &reply);
        if (status != 0)
                return status;
        decisions = reply_get_array(reply, "decisions");
        if (!decisions) {
                log_error("snapsetd's reply to PruneSets has no decisions.");
                return SNAPSET_EXIT_PROTOCOL;
        }
        for (size_t i = 0; i < json_object_array_length(decisions); i++)
                if (reply_get_string(json_object_array_get_idx(decisions, i), "error"))
                        *failed = true;   /* a set that should have gone is still there */
        if (arg_json != JSON_OFF) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();

                if (!o || json_object_object_add(o, "definition", json_object_new_string(name)) < 0 ||
                    json_object_object_add(o, "decisions", json_object_get(decisions)) < 0 ||
                    json_object_array_add(all_json, TAKE_PTR(o)) < 0)
                        return log_oom(), SNAPSET_EXIT_FAILURE;
                return 0;
        }
        return print_decisions(name, decisions) < 0 ? (log_oom(), SNAPSET_EXIT_FAILURE) : 0;
}

/* --all: every definition that can be used (a broken one is reported, and the rest pruned). */
static int all_names(char ***ret, bool *broken) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        json_object *defs;
        char **names;
        size_t n = 0;
        int status;

        status = connection_call_once(SNAPSET_METHOD("ListDefinitions"), NULL, &reply);
        if (status != 0)
                return status;
        defs = reply_get_array(reply, "definitions");
        names = calloc((defs ? json_object_array_length(defs) : 0) + 1, sizeof(char *));
        if (!names)
                return log_oom(), SNAPSET_EXIT_FAILURE;
        for (size_t i = 0; defs && i < json_object_array_length(defs); i++) {
                json_object *d = json_object_array_get_idx(defs, i);

                if (reply_get_string(d, "error")) {
                        log_error("Not pruning set definition '%s': %s", reply_get_string(d, "name") ?: "?",
                                  reply_get_string(d, "error"));
                        *broken = true;
                        continue;
                }
                if (!(names[n++] = strdup(reply_get_string(d, "name") ?: "")))
                        return strv_free(names), log_oom(), SNAPSET_EXIT_FAILURE;
        }
        *ret = names;
        return 0;
}

static int prune_run(int argc, char *argv[]) {
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_(json_object_putp) json_object *all_json = json_object_new_array();
        bool failed = false, broken = false;
        int status = 0;

        if (arg_all == (argc > 0))
                return usage_error(&verb_prune, "Name the set definitions to prune, or give --all."), SNAPSET_EXIT_USAGE;
        if (!all_json)
                return log_oom(), SNAPSET_EXIT_FAILURE;
        if (arg_all) {
                status = all_names(&names, &broken);
                if (status != 0)
                        return status;
        }
        for (size_t i = 0; (names ? names[i] != NULL : i < (size_t) argc); i++) {
                int k = prune_one(names ? names[i] : argv[i], all_json, &failed);

                status = status ?: k;
        }
        if (arg_json != JSON_OFF && output_json(stdout, all_json, arg_json) < 0)
                return SNAPSET_EXIT_FAILURE;
        if (status == 0 && (failed || broken)) {
                if (failed)
                        log_error("Some sets could not be deleted (see above); the next prune tries again.");
                status = SNAPSET_EXIT_FAILURE;
        }
        return status;
}

const Verb verb_prune = {
        .name = "prune",
        .args = "NAME...|--all",
        .summary = "Delete a definition's sets that its retention policy no longer keeps",
        .help = "Applies the Keep*= and MinAge= rules of each set definition to its own sets (never to\n"
                "a set made by 'snapsetctl create', nor one of another definition), and prints every set\n"
                "with why it is kept (\"keep-last (1/3)\", \"daily 2026-12-01 (2/7)\") or that it goes.\n"
                "snapset-prune.timer runs 'snapsetctl prune --all'. Waits for a set being created.\n"
                "\n"
                "Options of prune:\n"
                "     --dry-run              Delete nothing; \"would delete\" what prune would\n"
                "     --all                  Every set definition that can be used\n",
        .max_args = UINT32_MAX,
        .options = prune_options,
        .parse_option = prune_parse_option,
        .run = prune_run,
};
