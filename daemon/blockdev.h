/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The block devices of this machine as sysfs shows them (/sys/class/block): kernel name, device
 * number, type, size, read-only flag, and for device-mapper devices the dm name, dm UUID and
 * suspended state. Nothing here opens a device or talks to device-mapper, so enumerating is
 * cheap, needs no privileges and never blocks on a suspended device; the inventory adds the
 * slower facts (filesystem, mountpoints, dm table) on top. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum BlockDeviceType {
        BLOCK_DEVICE_DISK,
        BLOCK_DEVICE_PART,
        BLOCK_DEVICE_DM,
        BLOCK_DEVICE_LOOP,
        BLOCK_DEVICE_MD,
        BLOCK_DEVICE_ROM,
        BLOCK_DEVICE_RAM,
        _BLOCK_DEVICE_TYPE_MAX,
        _BLOCK_DEVICE_TYPE_INVALID = -EINVAL,
} BlockDeviceType;

/* "disk", "part", "dm", "loop", "md", "rom", "ram" (the Volume.type strings of the API). */
const char *block_device_type_to_string(BlockDeviceType t);

typedef struct BlockDevice {
        char *name;               /* kernel name: "sda1", "dm-3", "loop0" */
        unsigned major, minor;
        BlockDeviceType type;
        uint64_t size_bytes;
        bool read_only;
        bool hidden;              /* sysfs "hidden": e.g. an NVMe multipath path device */
        size_t n_holders;         /* devices stacked on this one (dm, md, ...) */
        char *path;               /* /dev/sda1, or /dev/mapper/NAME for device-mapper devices */

        /* Device-mapper devices only (from sysfs dm/). dm_uuid is NULL when the device has none. */
        char *dm_name;
        char *dm_uuid;
        bool dm_suspended;
        /* Target types of the live table, each once, in table order; NULL when unknown (the table
         * could not be read), empty when the device has no live table. Filled by the inventory. */
        char **dm_targets;

        /* LVM logical volumes only (dm UUID "LVM-..."), split from the dm name. lvm_layer is set
         * for LVM's internal layer devices ("real", "cow", "tpool", ...). */
        char *lvm_vg;
        char *lvm_lv;
        char *lvm_layer;

        /* Filled by the inventory: filesystem (as blkid names it) and its UUID, NULL if unknown. */
        char *fs_type;
        char *fs_uuid;
        char **mountpoints;       /* NULL-terminated, never NULL after blockdev_enumerate() */
} BlockDevice;

/* Reads every block device under <sysfs_root>/class/block ("/sys" on a real system; tests pass
 * a fake tree), sorted by kernel name in version order (loop2 before loop10). Devices that vanish
 * while being read are left out. Returns 0 and the array, or negative errno. */
int blockdev_enumerate(const char *sysfs_root, BlockDevice **ret_devices, size_t *ret_n);

void blockdev_done(BlockDevice *d);
/* A deep copy of d into *ret (which is overwritten). */
int blockdev_copy(const BlockDevice *d, BlockDevice *ret);
/* Frees an array from blockdev_enumerate(); accepts NULL; returns NULL. */
BlockDevice *blockdev_array_free(BlockDevice *devices, size_t n);

/* "MAJOR:MINOR", the form the API uses. */
int blockdev_devnum_string(const BlockDevice *d, char **ret);

/* Whether a device-mapper device is managed by LVM: its dm UUID starts with "LVM-". */
bool blockdev_is_lvm(const BlockDevice *d);

/* The filesystem type and UUID in the superblock of the device at path (libblkid), each NULL
 * when there is none or it cannot be read. Opens the device read-only; needs read access to it.
 * Returns 0 (nothing found included) or -ENOMEM. */
int blockdev_probe_filesystem(const char *path, char **ret_type, char **ret_uuid);

/* Small helpers for the NULL-terminated string arrays BlockDevice keeps. */
char **blockdev_strv_free(char **l);
int blockdev_strv_push(char ***l, const char *s);
bool blockdev_strv_contains(char *const *l, const char *s);
size_t blockdev_strv_length(char *const *l);
