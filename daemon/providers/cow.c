/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libmount.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include "cow.h"
#include "log.h"
#include "macro.h"

uint64_t cow_size_compute(uint64_t requested, unsigned percent, uint64_t default_bytes, uint64_t origin_bytes) {
        uint64_t size, chunks, max;

        if (requested > 0)
                size = requested;
        else if (percent > 0)
                /* Divide first: origin sizes near UINT64_MAX must not overflow. */
                size = origin_bytes / 100 * percent + origin_bytes % 100 * percent / 100;
        else
                size = default_bytes;

        /* Every chunk of the origin copied, one metadata chunk per 256 data chunks (16 bytes
         * per exception), the header chunk, and one metadata chunk started. */
        chunks = origin_bytes / COW_CHUNK_BYTES + (origin_bytes % COW_CHUNK_BYTES ? 1 : 0);
        max = (chunks + chunks / 256 + 2) * COW_CHUNK_BYTES;
        if (size > max)
                size = max;
        if (size < COW_SIZE_MIN)
                size = COW_SIZE_MIN;
        if (size % COW_CHUNK_BYTES)
                size += COW_CHUNK_BYTES - size % COW_CHUNK_BYTES;
        return size;
}

static bool devnum_in(dev_t d, const dev_t *set, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (set[i] == d)
                        return true;
        return false;
}

/* Depth bound for the walk down the slaves: real stacks are a handful deep; this stops a loop in
 * a broken (or fake) sysfs tree. */
#define COW_STACK_DEPTH_MAX 16

static int conflicts_below(const char *sysfs_root, dev_t d, const dev_t *set, size_t n, unsigned depth,
                           dev_t *ret_conflict) {
        char path[512];
        DIR *dir;
        struct dirent *de;
        int r = 0;

        if (devnum_in(d, set, n)) {
                *ret_conflict = d;
                return 1;
        }
        if (depth >= COW_STACK_DEPTH_MAX)
                return 0;
        snprintf(path, sizeof(path), "%s/dev/block/%u:%u/slaves", sysfs_root, major(d), minor(d));
        dir = opendir(path);
        if (!dir)
                return 0;   /* no slaves (or not a stacked device) */
        while (r == 0 && (de = readdir(dir))) {
                char devfile[800], buf[32];
                unsigned ma, mi;
                FILE *f;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(devfile, sizeof(devfile), "%s/%s/dev", path, de->d_name);
                f = fopen(devfile, "re");
                if (!f)
                        continue;
                if (fgets(buf, sizeof(buf), f) && sscanf(buf, "%u:%u", &ma, &mi) == 2)
                        r = conflicts_below(sysfs_root, makedev(ma, mi), set, n, depth + 1, ret_conflict);
                fclose(f);
        }
        closedir(dir);
        return r;
}

int cow_device_conflicts(const char *sysfs_root, dev_t fs_device, const dev_t *set_devices, size_t n,
                         dev_t *ret_conflict) {
        if (fs_device == 0)
                return 0;
        return conflicts_below(sysfs_root, fs_device, set_devices, n, 0, ret_conflict);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct libmnt_table *, mnt_unref_table);

int cow_directory_fs_device(const char *dir, dev_t *ret) {
        _cleanup_(mnt_unref_tablep) struct libmnt_table *t = NULL;
        struct libmnt_fs *fs;
        const char *source;
        struct stat st, sst;

        if (stat(dir, &st) < 0)
                return -errno;
        if (major(st.st_dev) != 0) {
                *ret = st.st_dev;
                return 0;
        }
        /* An anonymous device: ask the mount table where the filesystem comes from. */
        t = mnt_new_table_from_file("/proc/self/mountinfo");
        if (!t)
                return -errno ?: -ENOMEM;
        fs = mnt_table_find_devno(t, st.st_dev, MNT_ITER_BACKWARD);
        source = fs ? mnt_fs_get_srcpath(fs) : NULL;
        if (source && stat(source, &sst) >= 0 && S_ISBLK(sst.st_mode))
                *ret = sst.st_rdev;
        else
                *ret = 0;
        return 0;
}

int cow_directory_free(const char *dir, uint64_t *ret_bytes) {
        struct statvfs sv;

        if (statvfs(dir, &sv) < 0)
                return -errno;
        *ret_bytes = (uint64_t) sv.f_bavail * sv.f_frsize;
        return 0;
}

int cow_file_path(const char *dir, const char *snapshot_id, char **ret) {
        return asprintf(ret, "%s/%s.cow", dir, snapshot_id) < 0 ? -ENOMEM : 0;
}

static int fsync_directory_of(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        _cleanup_close_ int fd = -EBADF;
        char *slash;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (!slash)
                return -EINVAL;
        if (slash == dir)
                slash[1] = 0;
        else
                *slash = 0;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return fsync(fd) < 0 ? -errno : 0;
}

int cow_file_create(const char *path, uint64_t size) {
        _cleanup_close_ int fd = -EBADF;
        int flags, r;

        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
        if (fd < 0)
                return log_debug_errno(errno, "Failed to create %s: %m", path);

        /* btrfs: no copy-on-write for the store. Only possible while the file is empty; other
         * filesystems do not know the flag, which is fine. */
        if (ioctl(fd, FS_IOC_GETFLAGS, &flags) >= 0) {
                flags |= FS_NOCOW_FL;
                (void) ioctl(fd, FS_IOC_SETFLAGS, &flags);
        }

        /* Real blocks, not a sparse file: an unwritten extent reads as zeros, which is also what
         * the kernel's snapshot target needs to see in the header to start a new store. */
        if (fallocate(fd, 0, 0, (off_t) size) < 0) {
                r = -errno;
                goto fail;
        }
        if (fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        r = fsync_directory_of(path);
        if (r < 0)
                goto fail;
        return 0;

fail:
        (void) unlink(path);
        return log_debug_errno(r, "Failed to allocate %" PRIu64 " bytes for %s: %m", size, path);
}
