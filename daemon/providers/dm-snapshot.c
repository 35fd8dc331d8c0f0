/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The dm-snapshot provider: classic snapshot-origin/snapshot targets, for any device-mapper
 * device that LVM does not manage and that is not a thin volume (linear, striped, crypt,
 * multipath, ...). The copy-on-write store is a preallocated file outside the set, attached
 * through a loop device. */

#include "dm.h"
#include "provider.h"

static int dm_snapshot_probe(char **ret_reason) {
        static const char *const targets[] = { "snapshot", "snapshot-origin", NULL };
        int r;

        r = dm_probe(ret_reason);
        if (r <= 0)
                return r;
        return dm_targets_available(targets, "dm-snapshot", ret_reason);
}

static bool only_thin(char *const *targets) {
        return blockdev_strv_length(targets) == 1 && streq(targets[0], "thin");
}

static int dm_snapshot_is_volume_supported(const BlockDevice *d, char **ret_reason) {
        if (d->type != BLOCK_DEVICE_DM || blockdev_is_lvm(d))
                return VOLUME_NOT_HANDLED;
        if (provider_device_is_snapset_own(d))
                return provider_not_supported(ret_reason, "one of snapset's own devices (a snapshot "
                                              "or a copy-on-write store)");
        /* Table unknown (it could not be read): taken here, and checked again when preparing. */
        if (!d->dm_targets)
                return VOLUME_SUPPORTED;
        if (!d->dm_targets[0])
                return provider_not_supported(ret_reason, "it has no active table");
        if (only_thin(d->dm_targets))
                return VOLUME_NOT_HANDLED;
        if (blockdev_strv_contains(d->dm_targets, "snapshot"))
                return provider_not_supported(ret_reason, "a classic snapshot itself: snapshot its "
                                              "origin instead");
        if (blockdev_strv_contains(d->dm_targets, "snapshot-merge"))
                return provider_not_supported(ret_reason, "a snapshot is being merged into it: wait "
                                              "until the merge has finished");
        if (blockdev_strv_contains(d->dm_targets, "thin-pool"))
                return provider_not_supported(ret_reason, "a thin pool, not a volume: snapshot the "
                                              "thin volumes in it");
        return VOLUME_SUPPORTED;
}

static const ProviderOps dm_snapshot_ops = {
        .probe = dm_snapshot_probe,
        .is_volume_supported = dm_snapshot_is_volume_supported,
};

const Provider provider_dm_snapshot = {
        .name = "dm-snapshot",
        .kind = "builtin",
        .priority = 30,
        .ops = &dm_snapshot_ops,
};
