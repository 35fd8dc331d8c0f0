/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <blkid.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include "blockdev.h"
#include "log.h"
#include "macro.h"

static const char *const type_names[_BLOCK_DEVICE_TYPE_MAX] = {
        [BLOCK_DEVICE_DISK] = "disk",
        [BLOCK_DEVICE_PART] = "part",
        [BLOCK_DEVICE_DM] = "dm",
        [BLOCK_DEVICE_LOOP] = "loop",
        [BLOCK_DEVICE_MD] = "md",
        [BLOCK_DEVICE_ROM] = "rom",
        [BLOCK_DEVICE_RAM] = "ram",
};

const char *block_device_type_to_string(BlockDeviceType t) {
        if (t < 0 || t >= _BLOCK_DEVICE_TYPE_MAX)
                return NULL;
        return type_names[t];
}

/* ---------------------------------------------------------------- string arrays */

char **blockdev_strv_free(char **l) {
        if (l)
                for (char **i = l; *i; i++)
                        free(*i);
        free(l);
        return NULL;
}

size_t blockdev_strv_length(char *const *l) {
        size_t n = 0;

        if (l)
                while (l[n])
                        n++;
        return n;
}

int blockdev_strv_push(char ***l, const char *s) {
        size_t n = blockdev_strv_length(*l);
        char *copy, **grown;

        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        grown = realloc(*l, (n + 2) * sizeof(char *));
        if (!grown) {
                free(copy);
                return -ENOMEM;
        }
        grown[n] = copy;
        grown[n + 1] = NULL;
        *l = grown;
        return 0;
}

bool blockdev_strv_contains(char *const *l, const char *s) {
        if (l)
                for (char *const *i = l; *i; i++)
                        if (streq(*i, s))
                                return true;
        return false;
}

/* ---------------------------------------------------------------- sysfs */

static void closedirp(DIR **d) {
        if (*d)
                (void) closedir(*d);
}

/* Reads a sysfs attribute (small, one line) without its trailing newline. */
static int read_attr(int dfd, const char *attr, char **ret) {
        _cleanup_close_ int fd = -EBADF;
        char buf[4096];
        ssize_t n;
        char *s;

        fd = openat(dfd, attr, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                n--;
        buf[n] = 0;
        s = strdup(buf);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int read_attr_u64(int dfd, const char *attr, uint64_t *ret) {
        _cleanup_free_ char *s = NULL;
        char *end;
        uint64_t v;
        int r;

        r = read_attr(dfd, attr, &s);
        if (r < 0)
                return r;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end != 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int read_attr_bool(int dfd, const char *attr, bool *ret) {
        uint64_t v;
        int r;

        r = read_attr_u64(dfd, attr, &v);
        if (r < 0)
                return r;
        *ret = v != 0;
        return 0;
}

static bool has_entry(int dfd, const char *entry) {
        return faccessat(dfd, entry, F_OK, 0) >= 0;
}

static int count_holders(int dfd, size_t *ret) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        size_t n = 0;
        int fd;

        fd = openat(dfd, "holders", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -errno;
        }
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        *ret = n;
        return 0;
}

static BlockDeviceType type_from_sysfs(int dfd, const char *name) {
        if (has_entry(dfd, "partition"))
                return BLOCK_DEVICE_PART;
        if (has_entry(dfd, "dm"))
                return BLOCK_DEVICE_DM;
        if (has_entry(dfd, "md"))
                return BLOCK_DEVICE_MD;
        if (startswith(name, "loop"))
                return BLOCK_DEVICE_LOOP;
        if (startswith(name, "ram"))
                return BLOCK_DEVICE_RAM;
        if (startswith(name, "sr"))
                return BLOCK_DEVICE_ROM;
        return BLOCK_DEVICE_DISK;
}

/* /dev/NAME; the kernel writes '/' in device names as '!' in sysfs (cciss!c0d0 is /dev/cciss/c0d0). */
static int path_from_kernel_name(const char *name, char **ret) {
        char *p;

        if (asprintf(&p, "/dev/%s", name) < 0)
                return -ENOMEM;
        for (char *c = p; *c; c++)
                if (*c == '!')
                        *c = '/';
        *ret = p;
        return 0;
}

static int read_dm(int dfd, BlockDevice *d) {
        _cleanup_free_ char *uuid = NULL;
        int r;

        r = read_attr(dfd, "dm/name", &d->dm_name);
        if (r < 0)
                return r;
        r = read_attr(dfd, "dm/uuid", &uuid);
        if (r < 0 && r != -ENOENT)
                return r;
        if (uuid && uuid[0])
                d->dm_uuid = TAKE_PTR(uuid);
        /* Missing on old kernels; then the device is taken as running. */
        r = read_attr_bool(dfd, "dm/suspended", &d->dm_suspended);
        if (r < 0 && r != -ENOENT)
                return r;
        if (asprintf(&d->path, "/dev/mapper/%s", d->dm_name) < 0)
                return -ENOMEM;
        return 0;
}

static int read_devnum(int dfd, BlockDevice *d) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = read_attr(dfd, "dev", &s);
        if (r < 0)
                return r;
        if (sscanf(s, "%u:%u", &d->major, &d->minor) != 2)
                return -EINVAL;
        return 0;
}

static int read_one(int classfd, const char *name, BlockDevice *d) {
        _cleanup_close_ int dfd = -EBADF;
        uint64_t sectors;
        int r;

        dfd = openat(classfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;

        d->name = strdup(name);
        if (!d->name)
                return -ENOMEM;
        r = read_devnum(dfd, d);
        if (r < 0)
                return r;
        /* "size" counts 512-byte sectors whatever the logical block size (block/genhd.c). */
        r = read_attr_u64(dfd, "size", &sectors);
        if (r < 0)
                return r;
        d->size_bytes = sectors * 512;
        r = read_attr_bool(dfd, "ro", &d->read_only);
        if (r < 0)
                return r;
        r = read_attr_bool(dfd, "hidden", &d->hidden);
        if (r < 0 && r != -ENOENT)
                return r;
        r = count_holders(dfd, &d->n_holders);
        if (r < 0 && r != -ENOENT)
                return r;

        d->type = type_from_sysfs(dfd, name);
        if (d->type == BLOCK_DEVICE_DM)
                r = read_dm(dfd, d);
        else
                r = path_from_kernel_name(name, &d->path);
        if (r < 0)
                return r;

        d->mountpoints = calloc(1, sizeof(char *));
        if (!d->mountpoints)
                return -ENOMEM;
        return 0;
}

void blockdev_done(BlockDevice *d) {
        if (!d)
                return;
        free(d->name);
        free(d->path);
        free(d->dm_name);
        free(d->dm_uuid);
        blockdev_strv_free(d->dm_targets);
        free(d->lvm_vg);
        free(d->lvm_lv);
        free(d->lvm_layer);
        free(d->fs_type);
        free(d->fs_uuid);
        blockdev_strv_free(d->mountpoints);
        *d = (BlockDevice) {};
}

static int strdup_or_null(const char *s, char **ret) {
        *ret = NULL;
        if (s && !(*ret = strdup(s)))
                return -ENOMEM;
        return 0;
}

static int strv_copy(char *const *l, char ***ret) {
        *ret = NULL;
        if (!l)
                return 0;
        /* An empty list stays an empty list, not NULL: NULL means "unknown" for dm_targets. */
        *ret = calloc(1, sizeof(char *));
        if (!*ret)
                return -ENOMEM;
        for (; *l; l++)
                if (blockdev_strv_push(ret, *l) < 0)
                        return -ENOMEM;
        return 0;
}

int blockdev_copy(const BlockDevice *d, BlockDevice *ret) {
        BlockDevice c = {
                .major = d->major,
                .minor = d->minor,
                .type = d->type,
                .size_bytes = d->size_bytes,
                .read_only = d->read_only,
                .hidden = d->hidden,
                .n_holders = d->n_holders,
                .dm_suspended = d->dm_suspended,
        };
        int r;

        r = strdup_or_null(d->name, &c.name) ?:
            strdup_or_null(d->path, &c.path) ?:
            strdup_or_null(d->dm_name, &c.dm_name) ?:
            strdup_or_null(d->dm_uuid, &c.dm_uuid) ?:
            strv_copy(d->dm_targets, &c.dm_targets) ?:
            strdup_or_null(d->lvm_vg, &c.lvm_vg) ?:
            strdup_or_null(d->lvm_lv, &c.lvm_lv) ?:
            strdup_or_null(d->lvm_layer, &c.lvm_layer) ?:
            strdup_or_null(d->fs_type, &c.fs_type) ?:
            strdup_or_null(d->fs_uuid, &c.fs_uuid) ?:
            strv_copy(d->mountpoints, &c.mountpoints);
        if (r < 0) {
                blockdev_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}

BlockDevice *blockdev_array_free(BlockDevice *devices, size_t n) {
        if (!devices)
                return NULL;
        for (size_t i = 0; i < n; i++)
                blockdev_done(devices + i);
        free(devices);
        return NULL;
}

/* A device removed between readdir() and reading its attributes. */
static bool is_vanished_error(int r) {
        return r == -ENOENT || r == -ENODEV || r == -ENXIO;
}

static int compare_by_name(const void *a, const void *b) {
        return strverscmp(((const BlockDevice *) a)->name, ((const BlockDevice *) b)->name);
}

/* Appends the device called name to the array, unless it vanished meanwhile. */
static int add_one(int classfd, const char *name, BlockDevice **devices, size_t *n) {
        BlockDevice d = {}, *grown;
        int r;

        r = read_one(classfd, name, &d);
        if (is_vanished_error(r)) {
                log_debug_errno(r, "Block device %s vanished while being read, skipping: %m", name);
                blockdev_done(&d);
                return 0;
        }
        if (r < 0) {
                blockdev_done(&d);
                return log_debug_errno(r, "Failed to read block device %s from sysfs: %m", name);
        }

        grown = reallocarray(*devices, *n + 1, sizeof(BlockDevice));
        if (!grown) {
                blockdev_done(&d);
                return -ENOMEM;
        }
        grown[(*n)++] = d;
        *devices = grown;
        return 0;
}

int blockdev_enumerate(const char *sysfs_root, BlockDevice **ret_devices, size_t *ret_n) {
        _cleanup_(closedirp) DIR *dir = NULL;
        _cleanup_free_ char *path = NULL;
        BlockDevice *devices = NULL;
        struct dirent *de;
        size_t n = 0;
        int r;

        if (asprintf(&path, "%s/class/block", sysfs_root) < 0)
                return -ENOMEM;
        dir = opendir(path);
        if (!dir)
                return log_debug_errno(errno, "Failed to open %s: %m", path);

        while ((errno = 0, de = readdir(dir))) {
                if (de->d_name[0] == '.')
                        continue;
                r = add_one(dirfd(dir), de->d_name, &devices, &n);
                if (r < 0) {
                        blockdev_array_free(devices, n);
                        return r;
                }
        }
        if (errno != 0) {
                r = -errno;
                blockdev_array_free(devices, n);
                return log_debug_errno(r, "Failed to read %s: %m", path);
        }

        if (n > 0)
                qsort(devices, n, sizeof(BlockDevice), compare_by_name);
        *ret_devices = devices;
        *ret_n = n;
        return 0;
}

int blockdev_devnum_string(const BlockDevice *d, char **ret) {
        char *s;

        if (asprintf(&s, "%u:%u", d->major, d->minor) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

bool blockdev_is_lvm(const BlockDevice *d) {
        return d->type == BLOCK_DEVICE_DM && d->dm_uuid && startswith(d->dm_uuid, "LVM-");
}

DEFINE_TRIVIAL_CLEANUP_FUNC(blkid_probe, blkid_free_probe);

int blockdev_probe_filesystem(const char *path, char **ret_type, char **ret_uuid) {
        _cleanup_(blkid_free_probep) blkid_probe pr = NULL;
        const char *type = NULL, *uuid = NULL;
        int r;

        *ret_type = NULL;
        if (ret_uuid)
                *ret_uuid = NULL;
        errno = 0;
        pr = blkid_new_probe_from_filename(path);
        if (!pr) {
                log_debug_errno(errno ?: EIO, "Cannot probe %s for a filesystem: %m", path);
                return 0;
        }
        (void) blkid_probe_enable_superblocks(pr, 1);
        (void) blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID);
        r = blkid_do_safeprobe(pr);
        if (r != 0) {
                /* 1: nothing found; -2: more than one signature, ambiguous; -1: error. */
                if (r < 0)
                        log_debug("Probing %s for a filesystem gave no answer (%i).", path, r);
                return 0;
        }
        (void) blkid_probe_lookup_value(pr, "TYPE", &type, NULL);
        (void) blkid_probe_lookup_value(pr, "UUID", &uuid, NULL);
        if (type && !(*ret_type = strdup(type)))
                return -ENOMEM;
        if (uuid && ret_uuid && !(*ret_uuid = strdup(uuid))) {
                free(*ret_type);
                *ret_type = NULL;
                return -ENOMEM;
        }
        return 0;
}
