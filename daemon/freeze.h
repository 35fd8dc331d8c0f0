/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Freezing and thawing the filesystems that live on a set of block devices (FIFREEZE/FITHAW).
 *
 * Everything slow happens in freeze_set_prepare() and freeze_set_sync(), before the window:
 * reading the mount table, opening every mountpoint (so that no path is looked up while
 * filesystems are frozen), and syncfs(), so that the freeze itself has little left to write.
 * Inside the window this module neither allocates nor logs nor touches a path.
 *
 * Order: children before parents (deepest mountpoint first), each superblock once, however many
 * times it is mounted (bind mounts). Thaw runs in exactly the reverse order, and always tries
 * every filesystem. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

typedef struct FreezeTarget {
        char *mountpoint;
        dev_t device;    /* the block device the filesystem is mounted from */
        int fd;          /* the mountpoint, opened O_RDONLY|O_DIRECTORY before the window */
        bool frozen;
} FreezeTarget;

typedef struct FreezeSet {
        FreezeTarget *targets;
        size_t n_targets;
        size_t n_frozen;
        /* For the journal, after the window: which target failed and how. */
        size_t failed_index;
        int failed_error;
} FreezeSet;

/* Finds the filesystems mounted from any of the n block devices in devices (using the mount
 * table at mountinfo_path, or the process's own if NULL), and opens each. A device with no
 * mounted filesystem contributes nothing (a raw volume has nothing to freeze). Returns 0 and a
 * new set, or negative errno (-ENOENT if a mountpoint vanished, -ENOMEM). */
int freeze_set_prepare(const dev_t *devices, size_t n, const char *mountinfo_path, FreezeSet **ret);

/* syncfs() on every filesystem of the set, before the window. */
int freeze_set_sync(FreezeSet *s);

/* FIFREEZE on every filesystem, in order. Bounded by timeout_usec (0 = no bound): past it the
 * freeze is abandoned with -ETIMEDOUT. On any failure, whatever was frozen is thawed again before
 * this returns, so the caller never sees a half-frozen set; failed_index and failed_error say
 * which filesystem failed and why. A filesystem already frozen by someone else fails with -EBUSY
 * (we would not know when to thaw it). */
int freeze_set_freeze(FreezeSet *s, uint64_t timeout_usec);

/* FITHAW on every frozen filesystem, in reverse order; tries all of them. Returns 0 or the first
 * error (the others are in failed_index/failed_error). */
int freeze_set_thaw(FreezeSet *s);

/* Closes and frees; does not thaw: thawing is always an explicit, visible step. */
FreezeSet *freeze_set_free(FreezeSet *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(FreezeSet *, freeze_set_free);
