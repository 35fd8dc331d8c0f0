/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Freezing and thawing the filesystems that live on a set of block devices (FIFREEZE/FITHAW).
 *
 * Everything slow happens in freeze_set_prepare() and freeze_set_sync(), before the window:
 * reading the mount table, opening every mountpoint (so that no path is looked up while
 * filesystems are frozen), and syncfs(), so that the freeze itself has little left to write.
 * Inside the window this module neither allocates nor logs nor touches a path.
 *
 * Order: children before parents, each superblock once, however many times it is mounted (bind
 * mounts). The freezes run in parallel, from a crew of threads started before the window, in
 * waves of equal mountpoint depth, deepest first: a parent's mountpoint is always shallower than
 * its children's, so no filesystem is frozen before one mounted inside it, and filesystems that
 * do not contain each other are frozen at once. One after another, each FIFREEZE waits for its
 * own journal commit and RCU grace periods, and the window grew by about 70 ms per filesystem
 * under TCG; in parallel those waits overlap (bench/README.md has the figures). Thaw runs in the
 * reverse order, one filesystem after another (it waits for nothing), and always tries every
 * filesystem. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"
#include "window-undo.h"

/* Threads in a crew: the freezes of a wave larger than this take turns. Each has a small stack
 * (the daemon's memory is locked: all of it is resident). */
#define FREEZE_CREW_MAX 32

typedef struct FreezeTarget {
        char *mountpoint;
        dev_t device;    /* the block device the filesystem is mounted from */
        int fd;          /* the mountpoint, opened O_RDONLY|O_DIRECTORY before the window */
        bool frozen;
        bool in_call;    /* a crew thread is in its syncfs or FIFREEZE now */
        size_t depth;    /* of the mountpoint: the targets of one wave have the same */
        UndoVolume *undo; /* optional: marked "maybe frozen" from just before FIFREEZE until
                             FITHAW, for the thaw guardian */
} FreezeTarget;

typedef struct FreezeCrew FreezeCrew;

typedef struct FreezeSet {
        FreezeTarget *targets;
        size_t n_targets;
        size_t n_frozen;
        /* For the journal, after the window: which target failed and how. */
        size_t failed_index;
        int failed_error;
        FreezeCrew *crew;         /* made at freeze_set_prepare(), its threads started by
                                     freeze_set_sync(), before the window */
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

/* syncfs() on every filesystem of the set, in parallel, before the window, from the crew (which
 * it starts: one thread per filesystem, at most FREEZE_CREW_MAX). Bounded by timeout_usec (0 =
 * no bound): past it -ETIMEDOUT, with the syncfs calls still in progress left to their threads,
 * which then end by themselves ("linger", as for freeze_set_freeze()); nothing is frozen either
 * way. */
int freeze_set_sync(FreezeSet *s, uint64_t timeout_usec);

/* FIFREEZE on every filesystem, from the crew, in waves (above); after freeze_set_sync(). Nothing
 * in it allocates: the threads wait for the job, started. Bounded by timeout_usec (0 = no
 * bound): at the deadline every filesystem already frozen is thawed at once, from this thread,
 * and -ETIMEDOUT returned; a FIFREEZE still in progress (a device that does not complete writes)
 * cannot be interrupted, so its thread thaws that filesystem the moment its ioctl returns, and
 * then ends by itself: the crew "lingers" (freeze_set_linger(), freeze_lingering()). On any
 * failure the wave's other calls are waited for, and whatever was frozen is thawed again before
 * this returns, so the caller never sees a half-frozen set; failed_index and failed_error say
 * which filesystem failed (the first to) and why. A filesystem already frozen by someone else
 * fails with -EBUSY (we would not know when to thaw it). Once per set. */
int freeze_set_freeze(FreezeSet *s, uint64_t timeout_usec);

/* After -ETIMEDOUT: if a thread of the crew is still stuck, the last one calls on_exit(userdata)
 * once it has thawed and ended (from its thread), the targets' undo marks are forgotten (their
 * list may go), and true is returned; false if the crew is already gone (then on_exit is not
 * called). */
bool freeze_set_linger(FreezeSet *s, void (*on_exit)(void *userdata), void *userdata);

/* The mountpoint of a syncfs or FIFREEZE still stuck from an earlier set, or NULL: a new set
 * would get stuck behind it (syncfs and FIFREEZE wait for the same superblock). */
const char *freeze_lingering(void);

/* FITHAW on every frozen filesystem, in reverse order; tries all of them. Returns 0 or the first
 * error (the others are in failed_index/failed_error). */
int freeze_set_thaw(FreezeSet *s);

/* Ends the crew, closes and frees; does not thaw: thawing is always an explicit, visible step.
 * While the crew lingers, its last thread frees the set when it ends. */
FreezeSet *freeze_set_free(FreezeSet *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(FreezeSet *, freeze_set_free);
