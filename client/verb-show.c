/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl show: one snapshot or one snapshot set, by its id (id-lookup.h: a set comes from
 * ListSnapshotSets, which carries what a set is, context and freeze window, besides its
 * snapshots). */

#include "connection.h"
#include "id-lookup.h"
#include "log.h"
#include "output.h"
#include "set-print.h"
#include "snapsetctl.h"

static int show_print(json_object *o, int (*print)(json_object *)) {
        if (arg_json != JSON_OFF)
                return output_json(stdout, o, arg_json) < 0 ? SNAPSET_EXIT_FAILURE : 0;
        if (print(o) < 0) {
                log_oom();
                return SNAPSET_EXIT_FAILURE;
        }
        return 0;
}

static int show_run(int argc, char *argv[]) {
        _cleanup_(varlink_stream_freep) VarlinkStream *s = NULL;
        IdLookup found;
        int status;

        if (!*argv[0])
                return usage_error(&verb_show, "The id must not be empty."), SNAPSET_EXIT_USAGE;

        status = connection_open(&s);
        if (status != 0)
                return status;
        status = id_lookup(s, argv[0], &found);
        if (status != 0)
                return status;
        status = found.snapshot ? show_print(found.snapshot, print_snapshot) : show_print(found.set, print_set);
        id_lookup_done(&found);
        return status;
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
