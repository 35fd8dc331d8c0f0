/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Real filesystems for the unit tests that need FIFREEZE (root and loop devices): an image file,
 * a loop device over it, a filesystem on it, mounted. */

#include <stdbool.h>
#include <sys/types.h>

typedef struct LoopFs {
        char image[300], mnt[300], loop[64];
        dev_t dev;
} LoopFs;

bool loopfs_available(void);
/* The image in image_dir (which may be on another LoopFs), the mountpoint mnt (created). */
bool loopfs_make(LoopFs *l, const char *image_dir, const char *mnt, const char *fstype, const char *size);
void loopfs_remove(LoopFs *l);

/* A child that writes and fsyncs a file in dir; its pid. */
pid_t loopfs_start_writer(const char *dir);
/* Whether child pid ended within msec (its status in *status). */
bool loopfs_child_finished_within(pid_t pid, int msec, int *status);
/* Whether the filesystem whose mountpoint fd is open is frozen (FITHAW would thaw it: so this
 * thaws it, and freezes it again). */
bool loopfs_is_frozen(int fd);
