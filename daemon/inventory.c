/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <libmount.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "json-util.h"
#include "blockdev.h"
#include "inventory.h"
#include "log.h"
#include "macro.h"
#include "providers/dm.h"
#include "providers/external.h"
#include "varlink.h"

static const InventoryRoots real_roots = {
        .sysfs = "/sys",
        .dev = "/dev",
        .mountinfo = "/proc/self/mountinfo",
        .query_dm = true,
};

DEFINE_TRIVIAL_CLEANUP_FUNC(struct libmnt_table *, mnt_unref_table);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct libmnt_iter *, mnt_free_iter);

/* ---------------------------------------------------------------- json */

static json_object *json_string_array(char *const *l) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();

        if (!a)
                return NULL;
        for (char *const *i = l; i && *i; i++)
                if (json_append(a, json_object_new_string(*i)) < 0)
                        return NULL;
        return TAKE_PTR(a);
}

/* ---------------------------------------------------------------- providers */

static int provider_to_json(const ProviderStatus *s, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        const char *executable, *state;
        int r;

        if (!o)
                return -ENOMEM;
        r = json_add(o, "name", json_object_new_string(s->provider->name));
        if (r >= 0)
                r = json_add(o, "kind", json_object_new_string(s->provider->kind));
        if (r >= 0)
                r = json_add(o, "priority", json_object_new_int(s->provider->priority));
        if (r >= 0)
                r = json_add(o, "usable", json_object_new_boolean(s->usable));
        if (r >= 0 && !s->usable)
                r = json_add_string(o, "reason", s->reason);
        if (r >= 0 && s->usable && s->provider->ops->notes) {
                char **notes = NULL;

                /* Notes are extras: a provider that cannot give them is listed without. */
                if (s->provider->ops->notes(&notes) >= 0 && notes[0])
                        r = json_add(o, "notes", json_string_array(notes));
                blockdev_strv_free(notes);
        }
        if (r >= 0 && external_provider_info(s->provider, &executable, &state)) {
                r = json_add_string(o, "executable", executable);
                if (r >= 0)
                        r = json_add_string(o, "state", state);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

int inventory_providers_build(const ProviderStatus *status, size_t n_status, json_object **ret_array) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        int r;

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n_status; i++) {
                json_object *o;

                r = provider_to_json(status + i, &o);
                if (r < 0)
                        return r;
                r = json_append(a, o);
                if (r < 0)
                        return r;
        }
        *ret_array = TAKE_PTR(a);
        return 0;
}

int inventory_list_providers(json_object **ret_array) {
        ProviderStatus *status = NULL;
        size_t n = 0;
        int r;

        r = provider_probe_all(&status, &n);
        if (r < 0)
                return log_debug_errno(r, "Failed to probe providers: %m");
        r = inventory_providers_build(status, n, ret_array);
        provider_status_free(status, n);
        return r;
}

/* ---------------------------------------------------------------- mountpoints */

static BlockDevice *find_by_devnum(BlockDevice *devices, size_t n, dev_t devnum) {
        for (size_t i = 0; i < n; i++)
                if (devices[i].major == major(devnum) && devices[i].minor == minor(devnum))
                        return devices + i;
        return NULL;
}

/* mountinfo gives each mount's device number, which is the block device's for filesystems on
 * one block device. Btrfs shows an anonymous device (major 0) instead; then the source path
 * names the device. */
static BlockDevice *find_mount_device(const InventoryRoots *roots, struct libmnt_fs *fs,
                                      BlockDevice *devices, size_t n) {
        _cleanup_free_ char *path = NULL;
        const char *source, *rest;
        dev_t devnum = mnt_fs_get_devno(fs);
        struct stat st;

        if (major(devnum) != 0)
                return find_by_devnum(devices, n, devnum);
        source = mnt_fs_get_srcpath(fs);
        if (!roots->dev || !source || !(rest = startswith(source, "/dev/")))
                return NULL;
        if (asprintf(&path, "%s/%s", roots->dev, rest) < 0)
                return NULL;
        if (stat(path, &st) < 0 || !S_ISBLK(st.st_mode))
                return NULL;
        return find_by_devnum(devices, n, st.st_rdev);
}

static int add_mountpoints(const InventoryRoots *roots, BlockDevice *devices, size_t n) {
        _cleanup_(mnt_unref_tablep) struct libmnt_table *table = NULL;
        _cleanup_(mnt_free_iterp) struct libmnt_iter *iter = NULL;
        struct libmnt_fs *fs;
        int r;

        table = mnt_new_table();
        iter = mnt_new_iter(MNT_ITER_FORWARD);
        if (!table || !iter)
                return -ENOMEM;
        r = mnt_table_parse_file(table, roots->mountinfo);
        if (r < 0)
                return log_debug_errno(r, "Failed to parse %s: %m", roots->mountinfo);

        while (mnt_table_next_fs(table, iter, &fs) == 0) {
                BlockDevice *d = find_mount_device(roots, fs, devices, n);
                const char *target = mnt_fs_get_target(fs);

                if (!d || !target || blockdev_strv_contains(d->mountpoints, target))
                        continue;
                r = blockdev_strv_push(&d->mountpoints, target);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---------------------------------------------------------------- per-device facts */

/* Reads the filesystem type and UUID from the superblock. Needs read access to the device (root,
 * or the disk group), and only reads: the device is opened read-only and non-blocking. A device
 * without a recognised filesystem, or that cannot be opened, leaves both NULL. */
static int probe_filesystem(const InventoryRoots *roots, BlockDevice *d) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/%s", roots->dev, d->name) < 0)
                return -ENOMEM;
        /* Kernel names carry '!' for '/' (cciss!c0d0); the node is /dev/cciss/c0d0. */
        for (char *c = path + strlen(roots->dev); *c; c++)
                if (*c == '!')
                        *c = '/';
        return blockdev_probe_filesystem(path, &d->fs_type, &d->fs_uuid);
}

static int fill_lvm_name(BlockDevice *d) {
        int r;

        r = dm_lvm_name_split(d->dm_name, &d->lvm_vg, &d->lvm_lv, &d->lvm_layer);
        if (r == -EINVAL) {
                log_debug("LVM device %s has a dm name not of the form VG-LV: %s", d->name, d->dm_name);
                return 0;
        }
        return r;
}

static int fill_dm_targets(BlockDevice *d) {
        int r;

        r = dm_device_get_targets(d->major, d->minor, &d->dm_targets);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                log_debug_errno(r, "Cannot read the table of %s (%s), leaving its targets unknown: %m",
                                d->name, d->dm_name);
        return 0;
}

static int fill_device(const InventoryRoots *roots, BlockDevice *d) {
        int r;

        if (d->type == BLOCK_DEVICE_DM) {
                if (blockdev_is_lvm(d)) {
                        r = fill_lvm_name(d);
                        if (r < 0)
                                return r;
                }
                if (roots->query_dm) {
                        r = fill_dm_targets(d);
                        if (r < 0)
                                return r;
                }
        }
        /* Reading a suspended dm device blocks until it is resumed: leave its filesystem unknown
         * rather than hang the listing (and the daemon) behind someone else's suspend. */
        if (!roots->dev || d->dm_suspended)
                return 0;
        return probe_filesystem(roots, d);
}

/* Devices with nothing on them are left out: unbound loop devices, empty drives, unconfigured
 * zram/nbd (all size 0), hidden multipath paths, and ram disks nobody uses. */
static bool volume_is_listed(const BlockDevice *d) {
        if (d->size_bytes == 0 || d->hidden)
                return false;
        if (d->type == BLOCK_DEVICE_RAM)
                return d->mountpoints[0] || d->n_holders > 0;
        return true;
}

/* ---------------------------------------------------------------- volumes */

static bool is_thin_volume(const BlockDevice *d) {
        return blockdev_strv_length(d->dm_targets) == 1 && streq(d->dm_targets[0], "thin");
}

static int volume_add_lvm_name(json_object *o, const BlockDevice *d) {
        _cleanup_free_ char *s = NULL;
        int r;

        /* Only real logical volumes: a layer device ("-real", "-tpool") is not "VG/LV". */
        if (!d->lvm_vg || !d->lvm_lv || d->lvm_layer)
                return 0;
        if (asprintf(&s, "%s/%s", d->lvm_vg, d->lvm_lv) < 0)
                return -ENOMEM;
        r = json_add_string(o, "lvmName", s);
        /* Thin or not decides how LVM snapshots it; unknown without the table. */
        if (r >= 0 && d->dm_targets && !blockdev_strv_contains(d->dm_targets, "thin-pool"))
                r = json_add_string(o, "lvmKind", is_thin_volume(d) ? "thin" : "classic");
        return r;
}

/* The pool of a thin volume: "VG/POOL" for LVM (its "-tpool" device), else the pool's dm name. */
static int volume_add_thin_pool(json_object *o, const BlockDevice *d) {
        _cleanup_free_ char *vg = NULL, *lv = NULL, *layer = NULL, *s = NULL;
        char pool[DM_NAME_MAX + 1];
        int r;

        if (!is_thin_volume(d) || dm_device_thin_pool_name(d->major, d->minor, pool, sizeof pool) < 0)
                return 0;
        if (blockdev_is_lvm(d) && dm_lvm_name_split(pool, &vg, &lv, &layer) >= 0) {
                if (asprintf(&s, "%s/%s", vg, lv) < 0)
                        return -ENOMEM;
                r = json_add_string(o, "thinPool", s);
        } else
                r = json_add_string(o, "thinPool", pool);
        return r;
}

static int volume_add_provider(json_object *o, const ProviderStatus *status, size_t n_status,
                               const BlockDevice *d) {
        _cleanup_free_ char *reason = NULL;
        const Provider *p = NULL;
        int r;

        r = provider_select(status, n_status, d, &p, &reason);
        if (r < 0)
                return r;
        if (r > 0)
                return json_add_string(o, "provider", p->name);
        return json_add_string(o, "reason", reason);
}

static int volume_add_basics(json_object *o, const BlockDevice *d) {
        _cleanup_free_ char *devnum = NULL;
        int r;

        r = blockdev_devnum_string(d, &devnum);
        if (r < 0)
                return r;
        r = json_add(o, "path", json_object_new_string(d->path));
        if (r >= 0)
                r = json_add(o, "device", json_object_new_string(devnum));
        if (r >= 0)
                r = json_add(o, "type", json_object_new_string(block_device_type_to_string(d->type)));
        if (r >= 0)
                r = json_add(o, "sizeBytes", json_object_new_int64((int64_t) d->size_bytes));
        if (r >= 0)
                r = json_add(o, "readOnly", json_object_new_boolean(d->read_only));
        return r;
}

static int volume_to_json(const ProviderStatus *status, size_t n_status, const BlockDevice *d,
                          json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        int r;

        if (!o)
                return -ENOMEM;
        r = volume_add_basics(o, d);
        if (r >= 0)
                r = json_add_string(o, "dmName", d->dm_name);
        if (r >= 0 && d->dm_targets)
                r = json_add(o, "dmTargets", json_string_array(d->dm_targets));
        if (r >= 0)
                r = volume_add_lvm_name(o, d);
        if (r >= 0)
                r = volume_add_thin_pool(o, d);
        if (r >= 0)
                r = json_add_string(o, "filesystem", d->fs_type);
        if (r >= 0)
                r = json_add_string(o, "uuid", d->fs_uuid);
        if (r >= 0)
                r = json_add(o, "mountpoints", json_string_array(d->mountpoints));
        if (r >= 0)
                r = volume_add_provider(o, status, n_status, d);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

static int volumes_to_json(const InventoryRoots *roots, const ProviderStatus *status, size_t n_status,
                           BlockDevice *devices, size_t n, json_object **ret_array) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        int r;

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *o;

                if (!volume_is_listed(devices + i))
                        continue;
                r = fill_device(roots, devices + i);
                if (r < 0)
                        return r;
                r = volume_to_json(status, n_status, devices + i, &o);
                if (r < 0)
                        return r;
                r = json_append(a, o);
                if (r < 0)
                        return r;
        }
        *ret_array = TAKE_PTR(a);
        return 0;
}

int inventory_volumes_build(const InventoryRoots *roots, const ProviderStatus *status, size_t n_status,
                            json_object **ret_array) {
        BlockDevice *devices = NULL;
        size_t n = 0;
        int r;

        r = blockdev_enumerate(roots->sysfs, &devices, &n);
        if (r < 0)
                return r;
        r = add_mountpoints(roots, devices, n);
        if (r >= 0)
                r = volumes_to_json(roots, status, n_status, devices, n, ret_array);
        blockdev_array_free(devices, n);
        return r;
}

int inventory_list_volumes(json_object **ret_array) {
        ProviderStatus *status = NULL;
        size_t n = 0;
        int r;

        r = provider_probe_all(&status, &n);
        if (r < 0)
                return log_debug_errno(r, "Failed to probe providers: %m");
        r = inventory_volumes_build(&real_roots, status, n, ret_array);
        if (r < 0)
                log_debug_errno(r, "Failed to list volumes: %m");
        provider_status_free(status, n);
        return r;
}

int inventory_find_device(dev_t devnum, BlockDevice *ret) {
        BlockDevice *devices = NULL, *d;
        size_t n = 0;
        int r;

        r = blockdev_enumerate(real_roots.sysfs, &devices, &n);
        if (r < 0)
                return r;
        d = find_by_devnum(devices, n, devnum);
        if (!d)
                r = -ENODEV;
        if (r >= 0)
                r = add_mountpoints(&real_roots, devices, n);
        if (r >= 0)
                r = fill_device(&real_roots, d);
        if (r >= 0)
                r = blockdev_copy(d, ret);
        blockdev_array_free(devices, n);
        return r;
}
