/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Copy-on-write stores for the dm-snapshot provider: how big, where (never on a filesystem of the
 * set being snapshotted), and the preallocated file itself. Everything here happens before the
 * freeze window. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The chunk size of every snapset snapshot: 8 sectors = 4 KiB, the page size and LVM's default.
 * Small chunks copy less per first write to an origin block; the price is more metadata (16
 * bytes per chunk, one 4 KiB metadata chunk per 256 data chunks). */
#define COW_CHUNK_SECTORS 8U
#define COW_CHUNK_BYTES (COW_CHUNK_SECTORS * 512U)
/* Below this a store is full after the first burst of writes: refuse to make it smaller. */
#define COW_SIZE_MIN (8U * 1024U * 1024U)

/* The size of a COW store for an origin of origin_bytes: requested if non-zero (the call's
 * cow_size), else percent of the origin if non-zero, else default_bytes. Rounded up to whole
 * chunks, at least COW_SIZE_MIN, and at most what a copy of every chunk of the origin needs
 * (data, metadata, header), since more could never be used. */
uint64_t cow_size_compute(uint64_t requested, unsigned percent, uint64_t default_bytes, uint64_t origin_bytes);

/* Whether the filesystem holding dir lives on one of the n devices in set_devices, directly or
 * through a stack (the device under dir's filesystem, or any device below it in
 * <sysfs_root>/dev/block/M:m/slaves/, recursively, is in the set). fs_device is the filesystem's
 * block device (0 if it has none, e.g. tmpfs: then it is never in the set). Returns 1 and the
 * offending set device in *ret_conflict, or 0. */
int cow_device_conflicts(const char *sysfs_root, dev_t fs_device, const dev_t *set_devices, size_t n,
                         dev_t *ret_conflict);

/* The block device a directory's filesystem is on: st_dev of the directory, or, for filesystems
 * that report an anonymous device (btrfs, overlay, tmpfs: major 0), the source of its mount if
 * that is a block device; 0 if there is none. */
int cow_directory_fs_device(const char *dir, dev_t *ret);

/* The space available to the daemon in dir (statvfs f_bavail). */
int cow_directory_free(const char *dir, uint64_t *ret_bytes);

/* The COW file of a snapshot: "<dir>/<snapshot_id>.cow". */
int cow_file_path(const char *dir, const char *snapshot_id, char **ret);

/* Creates the file at path (it must not exist), preallocated to size bytes with fallocate(), so
 * that running out of space shows here (-ENOSPC, -EDQUOT) and never later as an invalid
 * snapshot; on btrfs with copy-on-write disabled (chattr +C), which would otherwise fragment it
 * and could still run out of space on overwrite. Synced, and its directory too, so that a
 * persistent snapshot finds it after a crash. On failure nothing is left behind. */
int cow_file_create(const char *path, uint64_t size);
