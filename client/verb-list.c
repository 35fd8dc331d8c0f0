/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl list: the snapshot sets and their snapshots (ListSnapshotSets), or the snapshots of
 * one set or one volume (ListSnapshots). Both methods stream one item per reply; when there is no
 * item at all, the daemon sends a single reply without one. */

#include "connection.h"
#include "log.h"
#include "output.h"
#include "set-print.h"
#include "snapsetctl.h"

enum {
        ARG_SET = ARG_VERB_FIRST,
        ARG_VOLUME,
        ARG_SETS,
};

static const char *arg_set = NULL;
static const char *arg_volume = NULL;
static bool arg_sets = false;

static const struct option list_options[] = {
        { "set",    required_argument, NULL, ARG_SET },
        { "volume", required_argument, NULL, ARG_VOLUME },
        { "sets",   no_argument,       NULL, ARG_SETS },
        {}
};

static int list_parse_option(const Verb *verb, int option, const char *arg) {
        switch (option) {
        case ARG_SET:
                if (!*arg)
                        return usage_error(verb, "The set id must not be empty.");
                arg_set = arg;
                break;
        case ARG_VOLUME:
                if (!*arg)
                        return usage_error(verb, "The volume must not be empty.");
                arg_volume = arg;
                break;
        case ARG_SETS:
                arg_sets = true;
                break;
        default:
                return -EINVAL;
        }
        if (arg_sets && (arg_set || arg_volume))
                return usage_error(verb, "--sets lists every set; it does not go with --set or --volume.");
        return 0;
}

typedef struct ListContext {
        const char *method;     /* "ListSnapshotSets" */
        const char *key;        /* "set": the field of each reply that holds the item */
        size_t n_items;
        bool empty_reply;       /* the one reply that says "nothing" has come */
        json_object *items;     /* with human output: every item, to be grouped at the end */
        Table *sets_table;      /* list --sets */
} ListContext;

static int write_failed(void) {
        log_error_errno(errno ?: EIO, "Cannot write to standard output: %m");
        return SNAPSET_EXIT_FAILURE;
}

static int list_on_reply(json_object *parameters, bool continues, void *userdata) {
        ListContext *c = userdata;
        json_object *item = reply_get_object(parameters, c->key);

        if (!item) {
                /* The daemon's way of saying "none": one reply, the last, with no item. Anything
                 * else without an item is not what the interface promises. */
                if (c->n_items == 0 && !continues && json_object_object_length(parameters) == 0) {
                        c->empty_reply = true;
                        return 0;
                }
                log_error("snapsetd's reply to %s has no %s.", c->method, c->key);
                return SNAPSET_EXIT_PROTOCOL;
        }
        c->n_items++;

        /* JSON lines, each written as it comes: a script can start on the first set. */
        if (arg_json != JSON_OFF) {
                if (output_json(stdout, item, arg_json) < 0 || fflush(stdout) != 0)
                        return write_failed();
                return 0;
        }

        if (c->sets_table) {
                if (sets_table_add(c->sets_table, item) < 0) {
                        log_oom();
                        return SNAPSET_EXIT_FAILURE;
                }
                return 0;
        }
        if (json_object_array_add(c->items, json_object_get(item)) < 0) {
                json_object_put(item);
                log_oom();
                return SNAPSET_EXIT_FAILURE;
        }
        return 0;
}

/* The snapshots of ListSnapshots, grouped by set in the order the sets first appear. */
static int print_snapshot_groups(json_object *snapshots) {
        size_t n = json_object_array_length(snapshots);
        _cleanup_free_ bool *done = calloc(n ?: 1, sizeof *done);

        if (!done)
                return -ENOMEM;
        for (size_t i = 0, groups = 0; i < n; i++) {
                _cleanup_(json_object_putp) json_object *group = NULL;
                const char *set_id;
                int r;

                if (done[i])
                        continue;
                set_id = reply_get_string(json_object_array_get_idx(snapshots, i), "setId");
                group = json_object_new_array();
                if (!group)
                        return -ENOMEM;
                for (size_t k = i; k < n; k++) {
                        json_object *s = json_object_array_get_idx(snapshots, k);

                        if (done[k] || !streq_ptr(reply_get_string(s, "setId"), set_id))
                                continue;
                        if (json_object_array_add(group, json_object_get(s)) < 0) {
                                json_object_put(s);
                                return -ENOMEM;
                        }
                        done[k] = true;
                }
                if (groups++ > 0)
                        putchar('\n');
                r = print_set_group(NULL, group);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int print_sets(json_object *sets) {
        size_t n = json_object_array_length(sets);

        for (size_t i = 0; i < n; i++) {
                json_object *set = json_object_array_get_idx(sets, i);
                int r;

                if (i > 0)
                        putchar('\n');
                r = print_set_group(set, reply_get_array(set, "snapshots"));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int list_parameters(json_object **ret) {
        _cleanup_(json_object_putp) json_object *p = json_object_new_object();

        if (!p)
                return -ENOMEM;
        if (arg_set && json_object_object_add(p, "setId", json_object_new_string(arg_set)) < 0)
                return -ENOMEM;
        if (arg_volume && json_object_object_add(p, "volume", json_object_new_string(arg_volume)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(p);
        return 0;
}

static int list_run(int argc, char *argv[]) {
        _cleanup_(varlink_stream_freep) VarlinkStream *s = NULL;
        _cleanup_(json_object_putp) json_object *parameters = NULL, *items = json_object_new_array();
        _cleanup_(table_freep) Table *sets_table = NULL;
        bool snapshots = arg_set || arg_volume;
        ListContext c = {
                .method = snapshots ? "ListSnapshots" : "ListSnapshotSets",
                .key = snapshots ? "snapshot" : "set",
                .items = items,
        };
        int status, r;

        if (!items || list_parameters(&parameters) < 0)
                return log_oom(), SNAPSET_EXIT_FAILURE;
        if (arg_sets && arg_json == JSON_OFF) {
                c.sets_table = sets_table = sets_table_new();
                if (!sets_table)
                        return log_oom(), SNAPSET_EXIT_FAILURE;
        }

        status = connection_open(&s);
        if (status != 0)
                return status;
        status = connection_call_more(s, snapshots ? SNAPSET_METHOD("ListSnapshots") : SNAPSET_METHOD("ListSnapshotSets"),
                                      parameters, list_on_reply, &c);
        if (status != 0)
                return status;

        if (arg_json != JSON_OFF)
                return 0;
        if (c.n_items == 0) {
                /* On standard error, so that the output of a list with nothing in it stays empty. */
                fprintf(stderr, snapshots ? "No snapshots.\n" : "No snapshot sets.\n");
                return 0;
        }

        if (sets_table)
                r = table_print(sets_table, stdout);
        else if (snapshots)
                r = print_snapshot_groups(items);
        else
                r = print_sets(items);
        if (r < 0)
                return log_oom(), SNAPSET_EXIT_FAILURE;
        return 0;
}

const Verb verb_list = {
        .name = "list",
        .summary = "List the snapshot sets and their snapshots",
        .help = "Prints each set on a line (its id, context, creation time and freeze window),\n"
                "followed by a table of its snapshots: volume, snapshot device, snapshot id, COW\n"
                "size and use, status. With --json, prints one JSON object per line: each set\n"
                "(with its snapshots), or with --set or --volume each snapshot.\n"
                "When there is nothing to list, prints nothing (and a note on standard error).\n"
                "\n"
                "Options of list:\n"
                "     --sets                 One line per set, without the snapshots\n"
                "     --set=ID               Only the snapshots of this set\n"
                "     --volume=VOLUME        Only the snapshots of this volume\n",
        .options = list_options,
        .parse_option = list_parse_option,
        .run = list_run,
};
