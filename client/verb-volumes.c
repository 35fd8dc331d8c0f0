/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl volumes: ListVolumes, as a table. */

#include "connection.h"
#include "log.h"
#include "output.h"
#include "snapsetctl.h"

/* The provider that would take the volume, or why none would: "lvm (thin LV vg/data in pool
 * vg/pool)", "dm-thin (pool tpool)", "none: not a dm device". */
static char *volume_provider_text(json_object *v) {
        const char *provider = reply_get_string(v, "provider");
        const char *reason = reply_get_string(v, "reason");
        const char *lvm = reply_get_string(v, "lvmName"), *kind = reply_get_string(v, "lvmKind");
        const char *pool = reply_get_string(v, "thinPool");
        char *s;
        int r;

        if (provider && lvm)
                r = asprintf(&s, "%s (%s%sLV %s%s%s)", provider, strempty(kind), kind ? " " : "", lvm,
                             pool ? " in pool " : "", strempty(pool));
        else if (provider && pool)
                r = asprintf(&s, "%s (pool %s)", provider, pool);
        else if (provider)
                r = asprintf(&s, "%s", provider);
        else
                r = -1;
        if (provider)
                return r < 0 ? NULL : s;
        if (asprintf(&s, "none%s%s", reason ? ": " : "", strempty(reason)) < 0)
                return NULL;
        return s;
}

static int volumes_add_row(Table *t, json_object *v) {
        _cleanup_free_ char *mountpoints = NULL, *provider = NULL;
        char size[FORMAT_BYTES_MAX] = "";
        int64_t bytes;

        mountpoints = reply_join_strings(reply_get_array(v, "mountpoints"), ",");
        provider = volume_provider_text(v);
        if (!mountpoints || !provider)
                return -ENOMEM;
        if (reply_get_int(v, "sizeBytes", &bytes) && bytes >= 0)
                format_bytes(size, sizeof size, (uint64_t) bytes);

        return table_add_row(t,
                             reply_get_string(v, "path"),
                             reply_get_string(v, "type"),
                             size,
                             reply_get_string(v, "filesystem"),
                             mountpoints,
                             provider);
}

static int volumes_print(json_object *volumes) {
        _cleanup_(table_freep) Table *t = NULL;
        size_t n = json_object_array_length(volumes);
        int r;

        t = table_new(6, "PATH", "TYPE", "SIZE", "FSTYPE", "MOUNTPOINTS", "PROVIDER");
        if (!t)
                return -ENOMEM;
        table_align_right(t, 2);

        for (size_t i = 0; i < n; i++) {
                r = volumes_add_row(t, json_object_array_get_idx(volumes, i));
                if (r < 0)
                        return r;
        }
        return table_print(t, stdout);
}

static int volumes_run(int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        json_object *volumes;
        int status;

        status = connection_call_once(SNAPSET_METHOD("ListVolumes"), NULL, &reply);
        if (status != 0)
                return status;

        if (arg_json != JSON_OFF)
                return output_json(stdout, reply, arg_json) < 0 ? SNAPSET_EXIT_FAILURE : 0;

        volumes = reply_get_array(reply, "volumes");
        if (!volumes) {
                log_error("snapsetd's reply to ListVolumes has no list of volumes.");
                return SNAPSET_EXIT_PROTOCOL;
        }
        if (volumes_print(volumes) < 0) {
                log_oom();
                return SNAPSET_EXIT_FAILURE;
        }
        return 0;
}

const Verb verb_volumes = {
        .name = "volumes",
        .summary = "List block devices and the provider of each",
        .help = "PROVIDER names the provider that would take the volume (for LVM: whether the LV\n"
                "is classic or thin, and its pool), or says 'none' and why.\n"
                "SIZE is in powers of 1024 (K, M, G, T); --json gives the exact sizeBytes.\n",
        .run = volumes_run,
};
