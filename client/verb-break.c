/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl break: BreakSnapshotSet, the snapshots of a set made ordinary volumes. */

#include "connection.h"
#include "log.h"
#include "output.h"
#include "snapsetctl.h"

enum {
        ARG_KEEP_IDENTITY = ARG_VERB_FIRST,
};

static bool arg_keep_identity = false;

static const struct option break_options[] = {
        { "keep-identity", no_argument, NULL, ARG_KEEP_IDENTITY },
        {}
};

static int break_parse_option(const Verb *verb, int option, const char *arg) {
        if (option != ARG_KEEP_IDENTITY)
                return -EINVAL;
        arg_keep_identity = true;
        return 0;
}

static int break_run(int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *parameters = NULL, *reply = NULL;
        json_object *volumes;
        int status;

        if (!*argv[0])
                return usage_error(&verb_break, "The set id must not be empty."), SNAPSET_EXIT_USAGE;
        parameters = parameters_new_string("setId", argv[0]);
        if (!parameters || (arg_keep_identity &&
                            json_object_object_add(parameters, "revertIdentity", json_object_new_boolean(true)) < 0))
                return log_oom(), SNAPSET_EXIT_FAILURE;
        status = connection_call_once(SNAPSET_METHOD("BreakSnapshotSet"), parameters, &reply);
        if (status != 0)
                return status;
        if (arg_json != JSON_OFF)
                return output_json(stdout, reply, arg_json) < 0 ? SNAPSET_EXIT_FAILURE : 0;
        volumes = reply_get_array(reply, "volumes");
        for (size_t i = 0; volumes && i < json_object_array_length(volumes); i++)
                output_line("%s", json_object_get_string(json_object_array_get_idx(volumes, i)));
        return 0;
}

const Verb verb_break = {
        .name = "break",
        .args = "SET-ID",
        .summary = "Turn a set's snapshots into ordinary volumes that snapset forgets",
        .help = "Every snapshot of the set becomes a volume of its own, writable, that snapset no\n"
                "longer lists, exposes or deletes; prints their devices, one per line. Each\n"
                "filesystem gets a new UUID first (e2fsck and tune2fs -U for ext2/3/4, xfs_admin -U\n"
                "for xfs), so that it mounts beside its origin; if one cannot, nothing is changed\n"
                "(VSS_E_CANNOT_REVERT_DISKID, naming the device and the tool's message). LVM\n"
                "snapshots only, by now: an LV named ORIGIN_snap_XXXXXXXX without snapset's tags.\n"
                "\n"
                "Options of break:\n"
                "     --keep-identity        Keep the filesystems' UUIDs (the copies then cannot be\n"
                "                            mounted beside their origins)\n",
        .min_args = 1,
        .max_args = 1,
        .options = break_options,
        .parse_option = break_parse_option,
        .run = break_run,
};
