/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The lvm provider: LVM logical volumes (classic and thin), through the lvm2 command line, the
 * maintained interface now that liblvm2app is gone. LVM keeps its own metadata, so snapset never
 * touches an LVM device behind LVM's back: every dm device with an "LVM-" UUID belongs here, and
 * the dm-only providers leave them alone. */

#include <stdio.h>

#include "dm.h"
#include "provider.h"

/* Where distributions install lvm; PATH is searched after these. A fixed list first, because
 * the daemon will run this binary as root. */
static const char *const lvm_paths[] = { "/usr/sbin/lvm", "/sbin/lvm" };

static bool is_executable(const char *path) {
        return access(path, X_OK) >= 0;
}

static bool lvm_in_path(void) {
        _cleanup_free_ char *copy = NULL;
        const char *path = getenv("PATH");
        char *save = NULL;

        if (!path)
                return false;
        copy = strdup(path);
        if (!copy)
                return false;
        for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
                _cleanup_free_ char *p = NULL;

                if (dir[0] != '/' || asprintf(&p, "%s/lvm", dir) < 0)
                        continue;
                if (is_executable(p))
                        return true;
        }
        return false;
}

static bool lvm_installed(void) {
        for (size_t i = 0; i < ELEMENTSOF(lvm_paths); i++)
                if (is_executable(lvm_paths[i]))
                        return true;
        return lvm_in_path();
}

static int lvm_probe(char **ret_reason) {
        int r;

        r = dm_probe(ret_reason);
        if (r <= 0)
                return r;
        if (!lvm_installed()) {
                *ret_reason = strdup("the lvm command is not installed (install lvm2)");
                return *ret_reason ? 0 : -ENOMEM;
        }
        return 1;
}

/* LVM's hidden sub-volumes: lvm refuses these strings in the names of ordinary LVs
 * (lib/metadata/lv_manip.c, apply_lvname_restrictions()), so finding one means the LV is an
 * internal part of another LV (a thin pool's data, a RAID image, a cache's metadata, ...). */
static bool lvm_lv_is_internal(const char *lv) {
        static const char *const reserved[] = {
                "_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_iorig", "_imeta", "_mimage",
                "_mlog", "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_vorigin",
                "_wcorig",
        };

        if (startswith(lv, "pvmove") || startswith(lv, "snapshot"))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                if (strstr(lv, reserved[i]))
                        return true;
        return false;
}

static int lvm_is_volume_supported(const BlockDevice *d, char **ret_reason) {
        if (!blockdev_is_lvm(d))
                return VOLUME_NOT_HANDLED;
        if (!d->lvm_vg || !d->lvm_lv)
                return provider_not_supported(ret_reason, "an LVM device whose device-mapper name "
                                              "\"%s\" is not of the form VG-LV", strna(d->dm_name));
        if (d->lvm_layer)
                return provider_not_supported(ret_reason, "an internal device of LVM logical volume "
                                              "%s/%s (layer \"%s\"): snapshot the logical volume itself",
                                              d->lvm_vg, d->lvm_lv, d->lvm_layer);
        if (lvm_lv_is_internal(d->lvm_lv))
                return provider_not_supported(ret_reason, "a hidden LVM sub-volume (%s/%s): snapshot "
                                              "the logical volume it belongs to", d->lvm_vg, d->lvm_lv);
        if (blockdev_strv_contains(d->dm_targets, "snapshot"))
                return provider_not_supported(ret_reason, "a classic LVM snapshot, and LVM cannot "
                                              "snapshot a snapshot: snapshot its origin");
        if (blockdev_strv_contains(d->dm_targets, "snapshot-merge"))
                return provider_not_supported(ret_reason, "a snapshot is being merged into it: "
                                              "wait until the merge has finished");
        if (blockdev_strv_contains(d->dm_targets, "thin-pool"))
                return provider_not_supported(ret_reason, "an LVM thin pool, not a volume: snapshot "
                                              "the thin volumes in it");
        return VOLUME_SUPPORTED;
}

static const ProviderOps lvm_ops = {
        .probe = lvm_probe,
        .is_volume_supported = lvm_is_volume_supported,
};

const Provider provider_lvm = {
        .name = "lvm",
        .kind = "builtin",
        .priority = 10,
        .ops = &lvm_ops,
};
