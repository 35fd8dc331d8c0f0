/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl abort: AbortSnapshotSet, to release a set that is stuck in creation (a script that
 * hangs between StartSnapshotSet and DoSnapshotSet holds the creation lock until the set idle
 * timeout). */

#include "connection.h"
#include "log.h"
#include "output.h"
#include "snapsetctl.h"

static int abort_run(int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *parameters = NULL, *reply = NULL;
        const char *id = argv[0];
        int status;

        if (!*id)
                return usage_error(&verb_abort, "The set id must not be empty."), SNAPSET_EXIT_USAGE;
        parameters = parameters_new_string("setId", id);
        if (!parameters)
                return log_oom(), SNAPSET_EXIT_FAILURE;

        status = connection_call_once(SNAPSET_METHOD("AbortSnapshotSet"), parameters, &reply);
        if (status != 0)
                return status;

        if (arg_json != JSON_OFF)
                return output_json(stdout, reply, arg_json) < 0 ? SNAPSET_EXIT_FAILURE : 0;
        output_line("Aborted snapshot set %s", id);
        return 0;
}

const Verb verb_abort = {
        .name = "abort",
        .args = "SET-ID",
        .summary = "Abort the set in creation, releasing the lock",
        .help = "For a set that a program started (StartSnapshotSet) and never finished: its\n"
                "prepared snapshots are removed, and other sets can be created again.\n"
                "'snapsetctl status' shows the set in creation and its id. A set that is already\n"
                "created is deleted with 'snapsetctl delete', not aborted.\n",
        .min_args = 1,
        .max_args = 1,
        .run = abort_run,
};
