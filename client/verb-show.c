/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl show: one snapshot (GetSnapshot) or one snapshot set, by its id. The ids of both are
 * UUIDs and cannot be told apart, so a snapshot is asked for first; when there is none, the set is
 * looked up among the sets of ListSnapshotSets, which carry what a set is (context, freeze
 * window) besides its snapshots. */

#include "connection.h"
#include "log.h"
#include "output.h"
#include "set-print.h"
#include "snapsetctl.h"

typedef struct FindSet {
        const char *id;
        json_object *set;   /* a reference of ours once found */
} FindSet;

static int find_set_on_reply(json_object *parameters, bool continues, void *userdata) {
        FindSet *f = userdata;
        json_object *set = reply_get_object(parameters, "set");

        if (!f->set && set && streq_ptr(reply_get_string(set, "id"), f->id))
                f->set = json_object_get(set);
        /* Read the stream to its end: the connection is unusable in the middle of one. */
        return 0;
}

static int show_print(json_object *o, int (*print)(json_object *)) {
        if (arg_json != JSON_OFF)
                return output_json(stdout, o, arg_json) < 0 ? SNAPSET_EXIT_FAILURE : 0;
        if (print(o) < 0) {
                log_oom();
                return SNAPSET_EXIT_FAILURE;
        }
        return 0;
}

static int show_set(VarlinkStream *s, const char *id, const VarlinkReply *not_found) {
        FindSet f = { .id = id };
        int status;

        status = connection_call_more(s, SNAPSET_METHOD("ListSnapshotSets"), NULL, find_set_on_reply, &f);
        if (status != 0) {
                json_object_put(f.set);
                return status;
        }
        if (f.set) {
                status = show_print(f.set, print_set);
                json_object_put(f.set);
                return status;
        }

        /* Neither: the daemon's answer to GetSnapshot, and that no set has the id either. */
        status = connection_report_error(SNAPSET_METHOD("GetSnapshot"), not_found);
        log_error("No snapshot and no snapshot set has the id '%s'; 'snapsetctl list' shows them.", id);
        return status;
}

static int show_run(int argc, char *argv[]) {
        _cleanup_(varlink_stream_freep) VarlinkStream *s = NULL;
        _cleanup_(json_object_putp) json_object *parameters = NULL;
        _cleanup_reply_ VarlinkReply reply = {};
        const char *id = argv[0];
        json_object *snapshot;
        int status;

        if (!*id)
                return usage_error(&verb_show, "The id must not be empty."), SNAPSET_EXIT_USAGE;
        parameters = parameters_new_string("snapshotId", id);
        if (!parameters)
                return log_oom(), SNAPSET_EXIT_FAILURE;

        status = connection_open(&s);
        if (status != 0)
                return status;
        status = connection_call_reply(s, SNAPSET_METHOD("GetSnapshot"), parameters, &reply);
        if (status != 0)
                return status;
        if (connection_reply_is(&reply, VSS_E_OBJECT_NOT_FOUND))
                return show_set(s, id, &reply);
        if (reply.error)
                return connection_report_error(SNAPSET_METHOD("GetSnapshot"), &reply);

        snapshot = reply_get_object(reply.parameters, "snapshot");
        if (!snapshot) {
                log_error("snapsetd's reply to GetSnapshot has no snapshot.");
                return SNAPSET_EXIT_PROTOCOL;
        }
        return show_print(snapshot, print_snapshot);
}

const Verb verb_show = {
        .name = "show",
        .args = "ID",
        .summary = "Show a snapshot or a snapshot set",
        .help = "ID is the id of a snapshot or of a snapshot set. A snapshot prints as\n"
                "'Label: value' lines (set, volume, provider, device, mount point, creation time,\n"
                "COW size and use, status); a set as its context, state, creation time and freeze\n"
                "window, and a table of its snapshots. With --json, prints the Snapshot or the\n"
                "SnapshotSet object (a set has \"snapshots\", a snapshot has \"setId\").\n",
        .min_args = 1,
        .max_args = 1,
        .run = show_run,
};
