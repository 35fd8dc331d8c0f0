/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What this machine offers for snapshots: the providers and whether each can work here
 * (ListProviders), and the block devices, with the filesystems mounted on them and the provider
 * that would take each or why none would (ListVolumes). Both are computed afresh on every call
 * (a sysfs walk, a mountinfo parse, one blkid probe and one dm table read per device: a few
 * milliseconds), so that a device or module that appears shows at once. They log at most at
 * debug level: the caller logs. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "providers/provider.h"

/* JSON array of io.snapset.Manager Provider objects, in priority order. */
int inventory_list_providers(json_object **ret_array);
/* JSON array of io.snapset.Manager Volume objects: every block device, with filesystems mounted on it and which provider would take it or why none. */
int inventory_list_volumes(json_object **ret_array);

/* The block device devnum with everything the providers decide on (dm table, LVM name, mountpoints,
 * filesystem), into *ret (release with blockdev_done()). -ENODEV if there is none. */
int inventory_find_device(dev_t devnum, BlockDevice *ret);

/* ---------------------------------------------------------------- the parts, for tests */

/* Where the inventory looks; the real system is { "/sys", "/dev", "/proc/self/mountinfo", true }.
 * Tests point these at a fake tree. */
typedef struct InventoryRoots {
        const char *sysfs;       /* holds class/block/ */
        const char *dev;         /* device nodes, probed for filesystems; NULL: do not probe */
        const char *mountinfo;   /* a mountinfo file */
        bool query_dm;           /* read the dm tables of dm devices (never for a fake tree) */
} InventoryRoots;

/* inventory_list_volumes() with given roots and provider status (so that tests can say which
 * providers are usable). */
int inventory_volumes_build(const InventoryRoots *roots, const ProviderStatus *status, size_t n_status,
                            json_object **ret_array);
/* inventory_list_providers() from given provider status. */
int inventory_providers_build(const ProviderStatus *status, size_t n_status, json_object **ret_array);
