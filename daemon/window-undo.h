/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What must be undone if a freeze window ends in any way: the one list that everything acting
 * on a window's leftovers works from.
 *
 *   the daemon     marks what it froze while it freezes, and runs the list once more after its
 *                  own release and thaw (a last resort, normally a no-op);
 *   the guardian   (guardian.h) runs it when the daemon dies or overstays its deadline;
 *   a restart      finds it in the in-flight record and runs it before anything else
 *                  (window_undo_from_json()).
 *
 * Per volume of the set: resume its device-mapper device if it is suspended (dropping an inactive
 * table first when it is the set's own), then FITHAW its filesystem if the set froze it. Resume
 * before thaw: the thaw writes the superblock, which a suspended device would hold forever.
 *
 * The list lives in one shared anonymous mapping, made before the window, so that the daemon's
 * marks are seen by the guardian (a forked process) without any message. Running it allocates
 * nothing, logs nothing and looks up no path: it uses file descriptors opened beforehand (the
 * mountpoints, /dev/mapper/control) and device numbers, with device-mapper's ioctl interface
 * directly (libdevmapper allocates for every task). */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

typedef struct json_object json_object;

typedef struct UndoVolume {
        dev_t device;            /* the volume's block device */
        int fs_fd;               /* its filesystem's mountpoint, opened before the window; -EBADF:
                                    no filesystem the set freezes */
        bool drop_inactive;      /* an inactive table on it is the set's own (dm-snapshot's
                                    snapshot-origin): cleared before an emergency resume, so that
                                    the volume comes back exactly as it was */
        atomic_bool frozen;      /* the set may have frozen its filesystem: set just before
                                    FIFREEZE, cleared after FITHAW or when the freeze failed */
} UndoVolume;

typedef struct WindowUndo {
        /* CLOCK_MONOTONIC, µs: the guardian acts by itself once this has passed. */
        _Atomic uint64_t deadline_usec;
        /* The guardian acted (then the set cannot be trusted and fails). */
        atomic_bool fired;
        int control_fd;          /* /dev/mapper/control, or -EBADF without device-mapper */
        bool owns_fds;           /* the fs_fds are ours to close (read from a record), not a
                                    FreezeSet's */
        size_t n_volumes;
        size_t mapped_size;
        UndoVolume volumes[];
} WindowUndo;

/* What running the list did, for the journal after the thaw. */
typedef struct UndoReport {
        unsigned resumed, thawed, failed;
        dev_t failed_device;     /* the first volume that could not be resumed or thawed */
        int failed_error;
} UndoReport;

/* A new list of n volumes (each fs_fd -EBADF, frozen false), in a shared anonymous mapping, with
 * /dev/mapper/control opened if it exists. */
int window_undo_new(size_t n, WindowUndo **ret);
WindowUndo *window_undo_free(WindowUndo *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(WindowUndo *, window_undo_free);

/* The volume of device d, or NULL. */
UndoVolume *window_undo_volume(WindowUndo *u, dev_t d);

/* Undoes one volume: resume (if it is a suspended dm device), then thaw (if marked frozen).
 * Safe to run from several processes or threads at once: each step is idempotent. */
void window_undo_volume_run(const WindowUndo *u, UndoVolume *v, UndoReport *report);
/* Every volume, in order. */
void window_undo_run(WindowUndo *u, UndoReport *report);
/* Only the resumes: every volume still suspended is resumed (an inactive table of the set's own
 * dropped first). Returns how many were suspended, and the first one in *ret_first. Run between
 * the providers' release and the thaw: a filesystem is never thawed over a suspended device
 * (the thaw would write its superblock into it and wait for ever). */
size_t window_undo_resume(WindowUndo *u, UndoReport *report, dev_t *ret_first);

/* For the in-flight record: the volumes (device, drop_inactive) and each one's mountpoint, so
 * that a restarted daemon can do the same from /run alone. */
int window_undo_to_json(const WindowUndo *u, char *const *mountpoints, json_object **ret);
/* The reverse, reopening each mountpoint (a lookup only reads, which a frozen filesystem
 * allows) and marking every filesystem as maybe frozen. */
int window_undo_from_json(json_object *j, WindowUndo **ret);

/* The raw device-mapper operations, exposed for the unit tests: 1 if suspended, 0 if active,
 * -ENXIO if no such dm device. */
int dm_raw_suspended(int control_fd, dev_t d, bool *ret_inactive_table);
int dm_raw_resume(int control_fd, dev_t d);
int dm_raw_clear(int control_fd, dev_t d);
