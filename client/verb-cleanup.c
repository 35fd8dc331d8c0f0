/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl cleanup: Cleanup, which tries again to undo the snapshot sets that an interrupted
 * run or a failed abort left (snapsetctl status lists them under "Needs attention"). */

#include "connection.h"
#include "log.h"
#include "output.h"
#include "snapsetctl.h"

static int cleanup_run(int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        json_object *remaining;
        int64_t undone = 0;
        size_t n;
        int status;

        status = connection_call_once(SNAPSET_METHOD("Cleanup"), NULL, &reply);
        if (status != 0)
                return status;
        if (arg_json != JSON_OFF)
                return output_json(stdout, reply, arg_json) < 0 ? SNAPSET_EXIT_FAILURE : 0;

        (void) reply_get_int(reply, "undone", &undone);
        remaining = reply_get_array(reply, "remaining");
        n = remaining ? json_object_array_length(remaining) : 0;
        printf("Undid %" PRIi64 " snapshot set(s).\n", undone);
        if (n > 0)
                print_attention(remaining);
        /* Something is still left: a script must notice. */
        return n > 0 ? SNAPSET_EXIT_FAILURE : 0;
}

const Verb verb_cleanup = {
        .name = "cleanup",
        .summary = "Undo what an interrupted run or a failed abort left",
        .run = cleanup_run,
};
