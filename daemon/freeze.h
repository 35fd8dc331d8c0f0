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
#include "window-undo.h"

typedef struct FreezeTarget {
        char *mountpoint;
        dev_t device;    /* the block device the filesystem is mounted from */
        int fd;          /* the mountpoint, opened O_RDONLY|O_DIRECTORY before the window */
        bool frozen;
        UndoVolume *undo; /* optional: marked "maybe frozen" from just before FIFREEZE until
                             FITHAW, for the thaw guardian */
} FreezeTarget;

typedef struct FreezeWorker FreezeWorker;

typedef struct FreezeSet {
        FreezeTarget *targets;
        size_t n_targets;
        size_t n_frozen;
        /* For the journal, after the window: which target failed and how. */
        size_t failed_index;
        int failed_error;
        FreezeWorker *worker;     /* made before the window */
        /* Test hooks (SNAPSETD_TEST_HOOKS): raise(SIGKILL) right after the first FIFREEZE, or the
         * first FITHAW, to show that the guardian ends a window whatever point it dies at. */
        bool kill_after_first_freeze, kill_after_first_thaw;
        /* freeze_set_prepare() returned -EXDEV: a filesystem of the set whose every mountpoint
         * leads to another filesystem now (mounted over, or unmounted since). */
        char *covered_mountpoint;
        dev_t covered_device;
} FreezeSet;

/* Finds the filesystems mounted from any of the n block devices in devices (using the mount
 * table at mountinfo_path, or the process's own if NULL), and opens each, checking with fstat()
 * that the open directory is on that filesystem. A device with no mounted filesystem contributes
 * nothing (a raw volume has nothing to freeze). Returns 0 and a new set, or negative errno
 * (-ENOENT if a mountpoint vanished, -ENOMEM); -EXDEV, with the set in *ret naming it
 * (covered_mountpoint), when a filesystem of the set is reachable through none of its
 * mountpoints. */
int freeze_set_prepare(const dev_t *devices, size_t n, const char *mountinfo_path, FreezeSet **ret);

/* syncfs() on every filesystem of the set, before the window, from the worker thread. Bounded
 * by timeout_usec (0 = no bound): past it -ETIMEDOUT, with the syncfs still in progress left to
 * the worker, which then ends by itself ("lingers", as for freeze_set_freeze()); nothing is
 * frozen either way. */
int freeze_set_sync(FreezeSet *s, uint64_t timeout_usec);

/* FIFREEZE on every filesystem, in order, from a worker thread. Bounded by timeout_usec (0 = no
 * bound): at the deadline every filesystem already frozen is thawed at once, from this thread,
 * and -ETIMEDOUT returned; the one FIFREEZE still in progress (a device that does not complete
 * writes) cannot be interrupted, so the worker thaws that filesystem the moment its ioctl
 * returns, and then ends by itself: it "lingers" (freeze_set_linger(), freeze_lingering()). On
 * any failure, whatever was frozen is thawed again before this returns, so the caller never sees
 * a half-frozen set; failed_index and failed_error say which filesystem failed and why. A
 * filesystem already frozen by someone else fails with -EBUSY (we would not know when to thaw
 * it). Once per set. */
int freeze_set_freeze(FreezeSet *s, uint64_t timeout_usec);

/* After -ETIMEDOUT: if the worker is still stuck, it calls on_exit(userdata) once it has thawed
 * and ended (from its thread), forgets the targets' undo marks (their list may go), and true is
 * returned; false if it is already gone (then on_exit is not called). */
bool freeze_set_linger(FreezeSet *s, void (*on_exit)(void *userdata), void *userdata);

/* The mountpoint of a syncfs or FIFREEZE still stuck from an earlier set, or NULL: a new set
 * would get stuck behind it (syncfs and FIFREEZE wait for the same superblock). */
const char *freeze_lingering(void);

/* FITHAW on every frozen filesystem, in reverse order; tries all of them. Returns 0 or the first
 * error (the others are in failed_index/failed_error). */
int freeze_set_thaw(FreezeSet *s);

/* Closes and frees; does not thaw: thawing is always an explicit, visible step. While a worker
 * lingers, it frees the set when it ends. */
FreezeSet *freeze_set_free(FreezeSet *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(FreezeSet *, freeze_set_free);
