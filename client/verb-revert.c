/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl revert: RevertToSnapshot, and with --wait the merge followed to its end (GetSnapshot
 * once a second: a progress bar on a terminal, a line per change otherwise). */

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "connection.h"
#include "json-util.h"
#include "log.h"
#include "output.h"
#include "snapsetctl.h"

enum {
        ARG_WAIT = ARG_VERB_FIRST,
        ARG_FORCE_DISMOUNT,
};

static bool arg_wait = false, arg_force_dismount = false;

static const struct option revert_options[] = {
        { "wait",           no_argument, NULL, ARG_WAIT },
        { "force-dismount", no_argument, NULL, ARG_FORCE_DISMOUNT },
        {}
};

static int revert_parse_option(const Verb *verb, int option, const char *arg) {
        switch (option) {
        case ARG_WAIT:
                arg_wait = true;
                return 0;
        case ARG_FORCE_DISMOUNT:
                arg_force_dismount = true;
                return 0;
        default:
                return -EINVAL;
        }
}

static void show_progress(bool tty, const char *state, double percent, char *last, size_t size) {
        char line[96];
        int filled = percent < 0 ? 0 : (int) (percent * 30 / 100);

        if (streq(state, "pending"))
                snprintf(line, sizeof line, "pending: the merge starts at the volume's next activation");
        else if (tty)
                snprintf(line, sizeof line, "merging [%-30.*s] %3.0f%%", filled, "##############################",
                         percent < 0 ? 0 : percent);
        else
                snprintf(line, sizeof line, "merging %.0f%%", percent < 0 ? 0 : percent);
        if (streq(line, last))
                return;
        snprintf(last, size, "%s", line);
        if (tty) {
                fprintf(stdout, "\r%s", line);
                fflush(stdout);
        } else
                output_line("%s", line);
}

/* Until the snapshot is gone (merged): 0, or an exit status. */
static int wait_for_merge(VarlinkStream *s, const char *id) {
        bool tty = isatty(STDOUT_FILENO) && arg_json == JSON_OFF;
        char last[96] = "";

        for (;;) {
                _cleanup_(json_object_putp) json_object *p = parameters_new_string("snapshotId", id);
                _cleanup_reply_ VarlinkReply reply = {};
                json_object *snap;
                const char *state;
                json_object *j;
                double v = -1;
                int status;

                if (!p)
                        return log_oom(), SNAPSET_EXIT_FAILURE;
                status = connection_call_reply(s, SNAPSET_METHOD("GetSnapshot"), p, &reply);
                if (status != 0)
                        return status;
                if (connection_reply_is(&reply, VSS_E_OBJECT_NOT_FOUND)) {
                        if (tty && last[0])
                                fputc('\n', stdout);
                        if (arg_json == JSON_OFF)
                                output_line("Reverted: the volume holds the snapshot's data, and snapshot %s is gone", id);
                        return 0;
                }
                if (reply.error)
                        return connection_report_error(SNAPSET_METHOD("GetSnapshot"), &reply);
                snap = reply_get_object(reply.parameters, "snapshot");
                state = snap ? reply_get_string(snap, "revert") : NULL;
                if (!state) {
                        log_error("Snapshot %s is no longer being reverted, and it still exists: see "
                                  "'journalctl -u snapsetd' for what happened.", id);
                        return SNAPSET_EXIT_FAILURE;
                }
                if (json_object_object_get_ex(snap, "mergePercent", &j))
                        v = json_object_get_double(j);   /* a JSON integer too */
                if (arg_json == JSON_OFF)
                        show_progress(tty, state, v, last, sizeof last);
                (void) nanosleep(&(struct timespec) { .tv_sec = 1 }, NULL);
        }
}

static int revert_run(int argc, char *argv[]) {
        _cleanup_(varlink_stream_freep) VarlinkStream *s = NULL;
        _cleanup_(json_object_putp) json_object *parameters = NULL, *reply = NULL;
        const char *id = argv[0], *state;
        int status;

        if (!*id)
                return usage_error(&verb_revert, "The snapshot id must not be empty."), SNAPSET_EXIT_USAGE;
        parameters = parameters_new_string("snapshotId", id);
        if (!parameters || (arg_force_dismount &&
                            json_object_object_add(parameters, "forceDismount", json_object_new_boolean(true)) < 0))
                return log_oom(), SNAPSET_EXIT_FAILURE;

        status = connection_open(&s);
        if (status != 0)
                return status;
        status = connection_call(s, SNAPSET_METHOD("RevertToSnapshot"), parameters, &reply);
        if (status != 0)
                return status;
        state = reply_get_string(reply, "revert");
        if (!state) {
                log_error("snapsetd's reply to RevertToSnapshot does not say how the revert goes.");
                return SNAPSET_EXIT_PROTOCOL;
        }
        if (arg_json != JSON_OFF)
                status = output_json(stdout, reply, arg_json) < 0 ? SNAPSET_EXIT_FAILURE : 0;
        else if (streq(state, "done"))
                output_line("Reverted: the volume holds the snapshot's data, and snapshot %s is gone", id);
        else if (streq(state, "pending"))
                output_line("Revert pending: the volume is in use, and the merge starts at its next activation "
                            "(unmount, deactivate and activate it, or reboot; or revert with --force-dismount)");
        else
                output_line("Reverting: the snapshot is being merged into the volume");
        if (status != 0 || !arg_wait || streq(state, "done"))
                return status;
        return wait_for_merge(s, id);
}

const Verb verb_revert = {
        .name = "revert",
        .args = "SNAPSHOT-ID",
        .summary = "Roll a volume back to a snapshot, merging it into the volume",
        .help = "Merges the snapshot into its origin volume: afterwards the volume holds exactly the\n"
                "snapshot's data, and the snapshot is gone. Everything written to the volume since\n"
                "the snapshot is lost. A volume in use (mounted) is merged at its next activation\n"
                "(the revert is pending until then), as LVM does; --force-dismount unmounts it\n"
                "first. Only LVM volumes can be reverted by now. 'snapsetctl show ID' follows a\n"
                "merge; with --wait, snapsetctl follows it itself until it is done.\n"
                "\n"
                "Options of revert:\n"
                "     --wait                 Wait until the merge is done, showing its progress\n"
                "     --force-dismount       Unmount the volume's filesystems first (refused if\n"
                "                            they are busy, naming who uses them)\n",
        .min_args = 1,
        .max_args = 1,
        .options = revert_options,
        .parse_option = revert_parse_option,
        .run = revert_run,
};
