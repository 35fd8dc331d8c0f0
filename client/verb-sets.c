/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl sets and check: the set definitions (ListDefinitions), with their last and next
 * run, kept sets and health; check says the health as a Nagios plugin does. */

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>

#include "connection.h"
#include "log.h"
#include "output.h"
#include "snapsetctl.h"

extern char **environ;

/* When snapset-create@NAME.timer fires next, as systemctl says it, or NULL (no systemd, the timer
 * not enabled). Read with "systemctl show": the timer is systemd's, and so is its next run. */
static char *next_run(const char *name) {
        _cleanup_free_ char *unit = NULL;
        char buf[128] = "";
        int fds[2];
        pid_t pid;
        ssize_t n;
        posix_spawn_file_actions_t fa;

        if (asprintf(&unit, "snapset-create@%s.timer", name) < 0 || pipe2(fds, O_CLOEXEC) < 0)
                return NULL;
        char *argv[] = { (char *) "systemctl", (char *) "show", (char *) "--property=NextElapseUSecRealtime",
                         (char *) "--value", unit, NULL };
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        if (posix_spawnp(&pid, "systemctl", &fa, NULL, argv, environ) != 0)
                pid = -1;
        posix_spawn_file_actions_destroy(&fa);
        close(fds[1]);
        n = pid > 0 ? read(fds[0], buf, sizeof buf - 1) : -1;
        close(fds[0]);
        if (pid > 0)
                (void) waitpid(pid, NULL, 0);
        if (n <= 0)
                return NULL;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        return buf[0] && !streq(buf, "n/a") ? strdup(buf) : NULL;
}

static int list_definitions(json_object **ret_reply, json_object **ret_definitions) {
        int status = connection_call_once(SNAPSET_METHOD("ListDefinitions"), NULL, ret_reply);

        if (status != 0)
                return status;
        *ret_definitions = reply_get_array(*ret_reply, "definitions");
        if (!*ret_definitions) {
                log_error("snapsetd's reply to ListDefinitions has no definitions.");
                return SNAPSET_EXIT_PROTOCOL;
        }
        return 0;
}

static const char *health_status(json_object *def) {
        return reply_get_string(reply_get_object(def, "health"), "status") ?: "unknown";
}

static int sets_run(int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        json_object *defs;
        uint64_t now = now_realtime_usec();
        int status;

        status = list_definitions(&reply, &defs);
        if (status != 0)
                return status;
        if (arg_json != JSON_OFF)
                return output_json(stdout, reply, arg_json) < 0 ? SNAPSET_EXIT_FAILURE : 0;
        if (json_object_array_length(defs) == 0) {
                output_line("No set definitions (add one as /etc/snapset/sets.d/NAME.conf, see snapset-sets(5)).");
                return 0;
        }
        t = table_new(6, "NAME", "VOLUMES", "SETS", "LAST RUN", "NEXT RUN", "HEALTH");
        if (!t)
                return log_oom(), SNAPSET_EXIT_FAILURE;
        table_align_right(t, 2);
        for (size_t i = 0; i < json_object_array_length(defs); i++) {
                json_object *d = json_object_array_get_idx(defs, i);
                const char *name = reply_get_string(d, "name") ?: "?";
                _cleanup_free_ char *next = reply_get_string(d, "error") ? NULL : next_run(name);
                char sets[32], last[64] = "", volumes[32] = "";
                int64_t n = 0, newest = 0;

                (void) reply_get_int(d, "sets", &n);
                snprintf(sets, sizeof sets, "%lld", (long long) n);
                if (reply_get_int(d, "newestSetUsec", &newest))
                        format_timestamp_ago(last, sizeof last, (uint64_t) newest, now);
                if (reply_get_array(d, "volumes"))
                        snprintf(volumes, sizeof volumes, "%zu", json_object_array_length(reply_get_array(d, "volumes")));
                if (table_add_row(t, name, volumes, sets, last, next, health_status(d)) < 0)
                        return log_oom(), SNAPSET_EXIT_FAILURE;
        }
        table_print(t, stdout);
        /* The reasons below the table: what an administrator must read first. */
        for (size_t i = 0; i < json_object_array_length(defs); i++) {
                json_object *d = json_object_array_get_idx(defs, i);
                json_object *msgs = reply_get_array(reply_get_object(d, "health"), "messages");

                for (size_t k = 0; msgs && k < json_object_array_length(msgs); k++)
                        output_line("%s: %s", reply_get_string(d, "name") ?: "?",
                                    json_object_get_string(json_object_array_get_idx(msgs, k)));
        }
        return 0;
}

const Verb verb_sets = {
        .name = "sets",
        .summary = "List the set definitions, their last and next run, kept sets and health",
        .help = "Set definitions are /etc/snapset/sets.d/NAME.conf (snapset-sets(5)): volumes taken\n"
                "together on a schedule by snapset-create@NAME.timer, pruned by their retention\n"
                "policy. LAST RUN is the newest set's age; NEXT RUN is when the timer fires next\n"
                "(\"-\": the timer is not enabled: systemctl enable --now snapset-create@NAME.timer).\n"
                "HEALTH is what 'snapsetctl check' says; its findings are printed below the table.\n",
        .run = sets_run,
};

/* ---------------------------------------------------------------- check */

static const char *const nagios_names[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };

static int nagios_code(const char *status) {
        static const char *const api[] = { "ok", "warning", "critical", "unknown" };

        for (int i = 0; i < 4; i++)
                if (streq(status, api[i]))
                        return i;
        return 3;
}

/* Worse wins; UNKNOWN ranks below WARNING (a check that cannot tell hides no known failure). */
static int worse(int a, int b) {
        static const int rank[] = { 0, 2, 3, 1 };
        return rank[b] > rank[a] ? b : a;
}

static bool wanted(json_object *d, int argc, char *argv[]) {
        const char *name = reply_get_string(d, "name");

        if (argc == 0)
                return true;
        for (int i = 0; i < argc; i++)
                if (streq_ptr(name, argv[i]))
                        return true;
        return false;
}

static void check_line(const char *name, int code, json_object *def) {
        json_object *msgs = reply_get_array(reply_get_object(def, "health"), "messages");
        _cleanup_free_ char *joined = msgs && json_object_array_length(msgs) ? reply_join_strings(msgs, "; ") : NULL;
        int64_t n = 0, newest = 0;
        char age[64] = "";

        (void) reply_get_int(def, "sets", &n);
        if (reply_get_int(def, "newestSetUsec", &newest))
                format_timestamp_ago(age, sizeof age, (uint64_t) newest, now_realtime_usec());
        if (joined)
                printf("SNAPSET %s - %s: %s\n", nagios_names[code], name, joined);
        else
                printf("SNAPSET %s - %s: %lld set(s)%s%s\n", nagios_names[code], name, (long long) n,
                       age[0] ? ", newest " : "", age);
}

static int check_run(int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *reply = NULL, *status_reply = NULL, *out = NULL;
        json_object *defs, *attention;
        int worst = 0, status;

        /* A monitoring system reads "could not ask" as UNKNOWN, never as the daemon's exit codes. */
        status = list_definitions(&reply, &defs);
        if (status != 0) {
                printf("SNAPSET UNKNOWN - cannot ask snapsetd (exit status %d; see the message above)\n", status);
                return 3;
        }
        if (connection_call_once(SNAPSET_METHOD("GetStatus"), NULL, &status_reply) != 0) {
                printf("SNAPSET UNKNOWN - cannot ask snapsetd for its status\n");
                return 3;
        }
        for (int i = 0; i < argc; i++) {
                bool found = false;
                for (size_t k = 0; k < json_object_array_length(defs); k++)
                        found = found || streq_ptr(reply_get_string(json_object_array_get_idx(defs, k), "name"), argv[i]);
                if (!found) {
                        printf("SNAPSET UNKNOWN - %s: no such set definition ('snapsetctl sets' lists them)\n", argv[i]);
                        worst = worse(worst, 3);
                }
        }
        out = json_object_new_array();
        if (!out)
                return log_oom(), 3;
        for (size_t k = 0; k < json_object_array_length(defs); k++) {
                json_object *d = json_object_array_get_idx(defs, k);
                int code = nagios_code(health_status(d));

                if (!wanted(d, argc, argv))
                        continue;
                worst = worse(worst, code);
                if (arg_json != JSON_OFF)
                        json_object_array_add(out, json_object_get(d));
                else
                        check_line(reply_get_string(d, "name") ?: "?", code, d);
        }
        /* Interrupted sets that could not be undone concern every definition. */
        attention = reply_get_array(status_reply, "needsAttention");
        if (attention && json_object_array_length(attention) > 0) {
                worst = worse(worst, 2);
                if (arg_json == JSON_OFF)
                        printf("SNAPSET CRITICAL - snapsetd: %zu interrupted set(s) could not be undone; see "
                               "'snapsetctl status', then 'snapsetctl cleanup'\n", json_object_array_length(attention));
        }
        if (arg_json == JSON_OFF && json_object_array_length(defs) == 0 && argc == 0)
                printf("SNAPSET OK - no set definitions\n");
        if (arg_json != JSON_OFF) {
                _cleanup_(json_object_putp) json_object *doc = json_object_new_object();

                if (!doc || json_object_object_add(doc, "status", json_object_new_string(worst == 0 ? "ok" : worst == 1 ? "warning" : worst == 2 ? "critical" : "unknown")) < 0 ||
                    json_object_object_add(doc, "definitions", TAKE_PTR(out)) < 0 ||
                    json_object_object_add(doc, "needsAttention", json_object_get(attention)) < 0)
                        return log_oom(), 3;
                if (output_json(stdout, doc, arg_json) < 0)
                        return 3;
        }
        return worst;
}

const Verb verb_check = {
        .name = "check",
        .args = "[NAME...]",
        .summary = "Check the health of set definitions, as a Nagios plugin (exit 0/1/2/3)",
        .help = "Prints one line per definition, \"SNAPSET STATUS - NAME: findings\", and exits with\n"
                "the worst status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (snapsetd unreachable, a\n"
                "name that is not defined, a schedule whose period cannot be computed).\n"
                "CRITICAL: an unusable definition file, a newest set older than\n"
                "CriticalAfterPeriods= (3) periods of the schedule, an invalid snapshot, an\n"
                "interrupted set that could not be undone. WARNING: older than WarnAfterPeriods=\n"
                "(1.5) periods, pruning overdue, a thin pool or COW store at WarnUsedPercent= (80).\n"
                "With --json, the definitions with their health and the overall status.\n",
        .max_args = UINT32_MAX,
        .run = check_run,
};
