/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl expose / unexpose: ExposeSnapshot and UnexposeSnapshot. */

#include "connection.h"
#include "json-util.h"
#include "log.h"
#include "output.h"
#include "snapsetctl.h"

enum {
        ARG_PATH = ARG_VERB_FIRST,
        ARG_DEVICE_ONLY,
};

static const char *arg_path = NULL;
static bool arg_device_only = false;

static const struct option expose_options[] = {
        { "path",        required_argument, NULL, ARG_PATH },
        { "device-only", no_argument,       NULL, ARG_DEVICE_ONLY },
        {}
};

static int expose_parse_option(const Verb *verb, int option, const char *arg) {
        switch (option) {
        case ARG_PATH:
                if (arg[0] != '/')
                        return usage_error(verb, "The path '%s' is not absolute.", arg), -EINVAL;
                arg_path = arg;
                return 0;
        case ARG_DEVICE_ONLY:
                arg_device_only = true;
                return 0;
        default:
                return -EINVAL;
        }
}

static int expose_run(int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *parameters = NULL, *reply = NULL;
        const char *path, *device;
        int status;

        if (!*argv[0])
                return usage_error(&verb_expose, "The snapshot id must not be empty."), SNAPSET_EXIT_USAGE;
        if (arg_path && arg_device_only)
                return usage_error(&verb_expose, "--path and --device-only exclude each other."), SNAPSET_EXIT_USAGE;
        parameters = parameters_new_string("snapshotId", argv[0]);
        if (!parameters || (arg_path && json_add_string(parameters, "path", arg_path) < 0) ||
            (arg_device_only && json_object_object_add(parameters, "mount", json_object_new_boolean(false)) < 0))
                return log_oom(), SNAPSET_EXIT_FAILURE;

        status = connection_call_once(SNAPSET_METHOD("ExposeSnapshot"), parameters, &reply);
        if (status != 0)
                return status;
        if (arg_json != JSON_OFF)
                return output_json(stdout, reply, arg_json) < 0 ? SNAPSET_EXIT_FAILURE : 0;
        path = reply_get_string(reply, "path");
        device = reply_get_string(reply, "device");
        /* One line, the thing asked for: scripts use $(snapsetctl expose ID). */
        if (arg_device_only || !path) {
                if (!device) {
                        log_error("snapsetd's reply to ExposeSnapshot has no device.");
                        return SNAPSET_EXIT_PROTOCOL;
                }
                output_line("%s", device);
        } else
                output_line("%s", path);
        return 0;
}

const Verb verb_expose = {
        .name = "expose",
        .args = "SNAPSHOT-ID",
        .summary = "Mount a snapshot read-only (or give its device)",
        .help = "Mounts the snapshot's filesystem read-only, with nosuid,nodev,noexec and what the\n"
                "filesystem needs to mount a crash-consistent copy beside its origin without\n"
                "writing to it (xfs: nouuid,norecovery; ext3/ext4: noload), at\n"
                "/run/snapset/mnt/SET-ID/VOLUME, and prints the mount point. The mount is kept\n"
                "over restarts of snapsetd and reboots until 'snapsetctl unexpose' or the\n"
                "snapshot's deletion. With --json, prints {\"path\": ..., \"device\": ...}.\n"
                "\n"
                "Options of expose:\n"
                "     --path=DIR             Mount at DIR, an existing empty directory outside\n"
                "                            /run/snapset\n"
                "     --device-only          Mount nothing; print the snapshot's device\n",
        .min_args = 1,
        .max_args = 1,
        .options = expose_options,
        .parse_option = expose_parse_option,
        .run = expose_run,
};

static int unexpose_run(int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *parameters = NULL, *reply = NULL;
        int status;

        if (!*argv[0])
                return usage_error(&verb_unexpose, "The snapshot id must not be empty."), SNAPSET_EXIT_USAGE;
        parameters = parameters_new_string("snapshotId", argv[0]);
        if (!parameters)
                return log_oom(), SNAPSET_EXIT_FAILURE;
        status = connection_call_once(SNAPSET_METHOD("UnexposeSnapshot"), parameters, &reply);
        if (status != 0)
                return status;
        if (arg_json != JSON_OFF)
                return output_json(stdout, reply, arg_json) < 0 ? SNAPSET_EXIT_FAILURE : 0;
        output_line("Snapshot %s is not exposed any more", argv[0]);
        return 0;
}

const Verb verb_unexpose = {
        .name = "unexpose",
        .args = "SNAPSHOT-ID",
        .summary = "Unmount an exposed snapshot",
        .help = "Detaches the snapshot's mount (processes still reading it finish first; the\n"
                "filesystem goes with the last of them) and removes its directory under\n"
                "/run/snapset/mnt. A snapshot that is not exposed is left as it is.\n",
        .min_args = 1,
        .max_args = 1,
        .run = unexpose_run,
};
