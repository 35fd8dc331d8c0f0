/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl delete: DeleteSnapshots, of snapshots or whole sets by id, or of the oldest snapshot
 * of volumes. An id is looked up before it is deleted (id-lookup.h). */

#include "connection.h"
#include "id-lookup.h"
#include "log.h"
#include "output.h"
#include "snapsetctl.h"

enum {
        ARG_OLDEST = ARG_VERB_FIRST,
};

static bool arg_oldest = false;

static const struct option delete_options[] = {
        { "oldest", no_argument, NULL, ARG_OLDEST },
        {}
};

static int delete_parse_option(const Verb *verb, int option, const char *arg) {
        switch (option) {
        case ARG_OLDEST:
                arg_oldest = true;
                return 0;
        default:
                return -EINVAL;
        }
}

/* "Deleted snapshot set S" and its snapshots, or "Deleted snapshot X" for each. */
static int delete_print(json_object *reply, const char *selector, const char *arg) {
        json_object *deleted = reply_get_array(reply, "deleted");
        size_t n = deleted ? json_object_array_length(deleted) : 0;
        bool set = streq(selector, "setId");

        if (arg_json != JSON_OFF)
                return output_json(stdout, reply, arg_json) < 0 ? SNAPSET_EXIT_FAILURE : 0;
        if (!deleted) {
                log_error("snapsetd's reply to DeleteSnapshots has no list of what it deleted.");
                return SNAPSET_EXIT_PROTOCOL;
        }

        if (set)
                output_line("Deleted snapshot set %s", arg);
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(deleted, i);

                if (!json_object_is_type(e, json_type_string))
                        continue;
                if (set)
                        output_line("  snapshot %s", json_object_get_string(e));
                else if (streq(selector, "oldestOfVolume"))
                        output_line("Deleted snapshot %s (the oldest of %s)", json_object_get_string(e), arg);
                else
                        output_line("Deleted snapshot %s", json_object_get_string(e));
        }
        return 0;
}

/* Deletes by one selector. Returns 0 with the reply in *ret_reply, error or not, or an exit
 * status after a failed exchange. */
static int delete_call(VarlinkStream *s, const char *selector, const char *arg, VarlinkReply *ret_reply) {
        _cleanup_(json_object_putp) json_object *parameters = parameters_new_string(selector, arg);

        if (!parameters) {
                log_oom();
                return SNAPSET_EXIT_FAILURE;
        }
        return connection_call_reply(s, SNAPSET_METHOD("DeleteSnapshots"), parameters, ret_reply);
}

/* The selector for arg, and how many snapshots the delete concerns: an id is looked up first
 * (id-lookup.h), so that the delete names what it deletes and is never refused on a guess. */
static int delete_target(VarlinkStream *s, const char *arg, const char **ret_selector, size_t *ret_n) {
        IdLookup found;
        json_object *snapshots;
        int status;

        if (arg_oldest) {
                *ret_selector = "oldestOfVolume";
                *ret_n = 1;
                return 0;
        }
        status = id_lookup(s, arg, &found);
        if (status != 0)
                return status;
        snapshots = found.set ? reply_get_array(found.set, "snapshots") : NULL;
        *ret_selector = found.set ? "setId" : "snapshotId";
        *ret_n = snapshots ? json_object_array_length(snapshots) : 1;
        id_lookup_done(&found);
        return 0;
}

static int delete_one(VarlinkStream *s, const char *arg) {
        _cleanup_reply_ VarlinkReply reply = {};
        const char *selector;
        size_t n;
        int status;

        status = delete_target(s, arg, &selector, &n);
        if (status != 0)
                return status;
        /* A large set takes long to delete (lvremove each): the default limit grows with it. */
        connection_expect_volumes(n);
        status = delete_call(s, selector, arg, &reply);
        connection_expect_volumes(1);
        if (status != 0)
                return status;

        if (!reply.error)
                return delete_print(reply.parameters, selector, arg);

        status = connection_report_error(SNAPSET_METHOD("DeleteSnapshots"), &reply);
        /* Several arguments on one command line: say which one failed. */
        if (connection_reply_is(&reply, VSS_E_OBJECT_NOT_FOUND)) {
                if (!arg_oldest)
                        log_error("No snapshot and no snapshot set has the id '%s' (any longer).", arg);
                else if (!connection_error_names(&reply, arg))
                        log_error("No snapshot of the volume '%s' was found.", arg);
        }
        return status;
}

static int delete_run(int argc, char *argv[]) {
        _cleanup_(varlink_stream_freep) VarlinkStream *s = NULL;
        int status, first_failure = 0;

        for (int i = 0; i < argc; i++)
                if (!*argv[i])
                        return usage_error(&verb_delete, arg_oldest ? "A volume must not be empty." :
                                           "An id must not be empty."), SNAPSET_EXIT_USAGE;

        status = connection_open(&s);
        if (status != 0)
                return status;

        /* Like rm(1): a failure does not stop the others; the first one sets the exit status. */
        for (int i = 0; i < argc; i++) {
                status = delete_one(s, argv[i]);
                if (status != 0 && first_failure == 0)
                        first_failure = status;
                /* The connection is gone or out of step: the rest cannot be tried on it. */
                if (status == SNAPSET_EXIT_PROTOCOL || status == SNAPSETCTL_EXIT_TIMEOUT)
                        break;
        }
        return first_failure;
}

const Verb verb_delete = {
        .name = "delete",
        .args = "ID...",
        .summary = "Delete snapshots or sets, or the oldest of volumes",
        .help = "Each ID is a snapshot id (the snapshot is deleted) or a snapshot set id (every\n"
                "snapshot of the set is); with --oldest, each argument is a volume, whose oldest\n"
                "snapshot is deleted. Prints what was deleted; with --json, the reply of each\n"
                "deletion, {\"deleted\": [SNAPSHOT-ID...]}, one per line. A failure does not stop\n"
                "the other deletions; the first failure sets the exit status.\n"
                "\n"
                "Options of delete:\n"
                "     --oldest               The arguments are volumes: delete the oldest\n"
                "                            snapshot of each\n",
        .min_args = 1,
        .max_args = UINT32_MAX,
        .options = delete_options,
        .parse_option = delete_parse_option,
        .run = delete_run,
};
