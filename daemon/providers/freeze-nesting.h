/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Whether the running kernel lets device-mapper's own filesystem freeze (the "lockfs" of a
 * suspend, which LVM always uses for snapshots) nest inside a FIFREEZE.
 *
 * Before Linux 6.8 the two never nest: a lockfs suspend of a device whose filesystem is frozen
 * with FIFREEZE fails with EBUSY. From 6.8 ("fs: handle freezing from multiple devices") it
 * nests in that order. That decides how LVM thin volumes can join a set at one instant: LVM
 * sends a thin pool's create_snap only from its own lockfs suspend, so a native thin snapshot
 * inside the window needs the nesting (lvm-thin-facts.md).
 *
 * A version number would be wrong for vendor kernels with backports, so this asks the kernel:
 * on a scratch ext4 (an image file in /run, a loop device, a dm-linear device over it, mounted
 * under /run), FIFREEZE, then a lockfs suspend: success means it nests, EBUSY that it does not.
 * Then resume, FITHAW, and everything is removed again. The answer is kept in memory and in
 * <run_directory>/kernel-freeze-nesting, keyed by the kernel's release and boot id, so that it
 * is asked once per boot, not once per daemon start. */

#include <stdbool.h>

typedef enum FreezeNesting {
        FREEZE_NESTING_UNKNOWN,   /* could not be probed (no mkfs.ext4, no loop device, ...) */
        FREEZE_NESTING_NO,
        FREEZE_NESTING_YES,
} FreezeNesting;

/* Where the scratch files and the cached answer go when a caller passes NULL: the daemon's
 * runtime directory (set at start), else SNAPSET_RUNSTATEDIR/snapset. */
void freeze_nesting_set_directory(const char *run_directory);

/* The answer, probing if it is not known yet this boot. *ret_reason (optional, allocated) says
 * why when UNKNOWN. Must not run inside a freeze window, nor on a filesystem of a set: it mounts
 * and freezes only its own scratch filesystem. */
FreezeNesting freeze_nesting_probe(const char *run_directory, char **ret_reason);

/* The answer if known this boot (in memory or in the cache file), without probing. */
FreezeNesting freeze_nesting_cached(const char *run_directory);

/* For an administrator: what the answer means. */
const char *freeze_nesting_to_string(FreezeNesting n);
