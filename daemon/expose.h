/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Exposing a snapshot: mounting its filesystem read-only where people and backup tools can read
 * it, and taking it away again. The mechanism only (paths, mount options, mount, unmount, who
 * holds a mount); which snapshot and its record are the caller's (methods-expose.c, sets.c).
 *
 * A snapshot is a crash-consistent image of a filesystem that is still mounted, under the same
 * UUID, from its origin. Mounting it must write nothing and must not collide with the origin:
 * always ro,nosuid,nodev,noexec, and per filesystem what that takes (expose_mount_options()). */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* "<runtime_dir>/mnt", where snapshots are exposed by default. */
#define EXPOSE_DIR "mnt"

/* The default mount point of a snapshot: <runtime_dir>/mnt/<set_id>/<name>, name made from the
 * volume as the caller gave it ("/dev/vg0/home" -> "vg0-home", "/srv/db" -> "srv-db"). Only the
 * path; nothing is created. */
int expose_default_path(const char *runtime_dir, const char *set_id, const char *volume, char **ret);

/* Whether path may be a mount point that the caller named: absolute, an existing empty directory,
 * not a mount point already, and outside runtime_dir (whose mount points snapsetd manages).
 * Returns 0, or -errno with what is wrong in reason. */
int expose_check_path(const char *path, const char *runtime_dir, char *reason, size_t size);

/* The filesystem on device (libblkid) and the options to mount it read-only without writing to
 * it: xfs nouuid,norecovery (beside its origin, no log replay), ext3/ext4 noload (no journal
 * replay), f2fs norecovery, reiserfs nolog; others only ro. Returns 0, or -EMEDIUMTYPE with the
 * reason (no filesystem, or one that cannot be mounted beside its origin: btrfs). */
int expose_mount_options(const char *device, char **ret_fstype, char **ret_options, char *reason, size_t size);

/* Mounts device at path (libmount), read-only, with fstype and options. mkdir_parents: create
 * path and its parents first (the default place). Returns 0, or -errno with libmount's or the
 * kernel's reason. */
int expose_mount(const char *device, const char *path, const char *fstype, const char *options, bool mkdir_parents,
                 char *reason, size_t size);

/* Whether path is a mount point of the filesystem on block device dev (mountinfo, libmount). */
bool expose_is_mounted(const char *path, dev_t dev);

/* Unmounts path: lazily (MNT_DETACH, the mount goes once the last user lets go) or, if not lazy,
 * only if nothing uses it (-EBUSY otherwise, with who does in holders: "pid 4242 (rsync)"). Not
 * mounted is fine. Then, if the path is under runtime_dir's mount directory, removes it and its
 * set's directory when empty. */
int expose_unmount(const char *path, const char *runtime_dir, bool lazy, char *holders, size_t size);
