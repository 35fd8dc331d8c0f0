/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The dm-thin provider: thin volumes of a thin pool that LVM does not manage. A snapshot is a
 * "create_snap" message to the pool while the origin is suspended: O(1), and no write penalty
 * on the origin afterwards. */

#include "dm.h"
#include "provider.h"

static int dm_thin_probe(char **ret_reason) {
        static const char *const targets[] = { "thin-pool", "thin", NULL };
        int r;

        r = dm_probe(ret_reason);
        if (r <= 0)
                return r;
        /* Both targets live in one module, dm-thin-pool. */
        return dm_targets_available(targets, "dm-thin-pool", ret_reason);
}

static int dm_thin_is_volume_supported(const BlockDevice *d, char **ret_reason) {
        if (d->type != BLOCK_DEVICE_DM || blockdev_is_lvm(d) || provider_device_is_snapset_own(d))
                return VOLUME_NOT_HANDLED;
        /* Without the table there is no telling a thin volume from any other dm device. */
        if (!d->dm_targets)
                return VOLUME_NOT_HANDLED;
        if (blockdev_strv_contains(d->dm_targets, "thin-pool"))
                return provider_not_supported(ret_reason, "a thin pool, not a thin volume: snapshot "
                                              "the thin volumes in it");
        if (!blockdev_strv_contains(d->dm_targets, "thin"))
                return VOLUME_NOT_HANDLED;
        /* create_snap snapshots one thin device; a table that maps only part of the volume to
         * it would give a snapshot of that part. */
        if (blockdev_strv_length(d->dm_targets) != 1)
                return provider_not_supported(ret_reason, "its table mixes thin with other targets");
        return VOLUME_SUPPORTED;
}

static const ProviderOps dm_thin_ops = {
        .probe = dm_thin_probe,
        .is_volume_supported = dm_thin_is_volume_supported,
};

const Provider provider_dm_thin = {
        .name = "dm-thin",
        .kind = "builtin",
        .priority = 20,
        .ops = &dm_thin_ops,
};
