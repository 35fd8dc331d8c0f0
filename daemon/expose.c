/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <errno.h>
#include <libmount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockdev.h"
#include "expose.h"
#include "log.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct libmnt_context *, mnt_free_context);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct libmnt_table *, mnt_unref_table);

/* ---------------------------------------------------------------- where */

int expose_default_path(const char *runtime_dir, const char *set_id, const char *volume, char **ret) {
        _cleanup_free_ char *name = NULL;
        const char *v = volume;

        if (startswith(v, "/dev/"))
                v += strlen("/dev/");
        if (startswith(v, "mapper/"))
                v += strlen("mapper/");
        while (*v == '/')
                v++;
        name = strdup(*v ? v : "root");
        if (!name)
                return -ENOMEM;
        /* One directory level: '/' becomes '-', and nothing that could climb out ("..") or hide. */
        for (char *c = name; *c; c++)
                if (*c == '/')
                        *c = '-';
        if (name[0] == '.')
                name[0] = '_';
        if (asprintf(ret, "%s/" EXPOSE_DIR "/%s/%s", runtime_dir, set_id, name) < 0)
                return -ENOMEM;
        return 0;
}

static bool path_is_under(const char *path, const char *dir) {
        size_t n = strlen(dir);

        return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == 0);
}

static bool dir_is_empty(DIR *d) {
        struct dirent *e;

        while ((e = readdir(d)))
                if (!streq(e->d_name, ".") && !streq(e->d_name, ".."))
                        return false;
        return true;
}

int expose_check_path(const char *path, const char *runtime_dir, char *reason, size_t size) {
        _cleanup_free_ char *resolved = NULL, *resolved_run = NULL;
        struct stat st, parent;
        DIR *d;
        bool empty;

        if (path[0] != '/') {
                snprintf(reason, size, "'%s' is not an absolute path", path);
                return -EINVAL;
        }
        resolved = realpath(path, NULL);
        if (!resolved || stat(resolved, &st) < 0) {
                snprintf(reason, size, "'%s' does not exist: create an empty directory first", path);
                return -ENOENT;
        }
        if (!S_ISDIR(st.st_mode)) {
                snprintf(reason, size, "'%s' is not a directory", path);
                return -ENOTDIR;
        }
        resolved_run = realpath(runtime_dir, NULL);
        if (path_is_under(resolved, resolved_run ?: runtime_dir)) {
                snprintf(reason, size, "'%s' is inside %s, whose mount points snapsetd manages: leave out the path "
                         "for the default place", path, runtime_dir);
                return -EPERM;
        }
        /* A mount point already (of something else, or of an earlier expose). */
        if (!streq(resolved, "/")) {
                _cleanup_free_ char *up = NULL;

                if (asprintf(&up, "%s/..", resolved) < 0)
                        return -ENOMEM;
                if (stat(up, &parent) >= 0 && parent.st_dev != st.st_dev) {
                        snprintf(reason, size, "'%s' is a mount point already", path);
                        return -EBUSY;
                }
        } else {
                snprintf(reason, size, "'/' cannot be a snapshot's mount point");
                return -EBUSY;
        }
        d = opendir(resolved);
        if (!d) {
                snprintf(reason, size, "'%s' cannot be read: %s", path, strerror(errno));
                return -errno;
        }
        empty = dir_is_empty(d);
        closedir(d);
        if (!empty) {
                snprintf(reason, size, "'%s' is not empty: what is in it would be hidden by the snapshot", path);
                return -ENOTEMPTY;
        }
        return 0;
}

/* ---------------------------------------------------------------- how */

/* What each filesystem needs to mount a crash-consistent copy read-only, beside its origin,
 * without writing to the device. */
static const struct {
        const char *type, *options;
} fs_options[] = {
        { "xfs",      "nouuid,norecovery" },   /* the origin has the same UUID; no log replay */
        { "ext4",     "noload" },              /* no journal replay */
        { "ext3",     "noload" },
        { "f2fs",     "norecovery" },
        { "reiserfs", "nolog" },
};

int expose_mount_options(const char *device, char **ret_fstype, char **ret_options, char *reason, size_t size) {
        _cleanup_free_ char *type = NULL;
        const char *extra = NULL;
        int r;

        r = blockdev_probe_filesystem(device, &type, NULL);
        if (r < 0)
                return r;
        if (!type) {
                snprintf(reason, size, "%s holds no filesystem that can be recognised; use its device path instead",
                         device);
                return -EMEDIUMTYPE;
        }
        if (streq(type, "btrfs")) {
                /* A second device with the same fsid confuses btrfs' device registry: the kernel
                 * may take the copy for a member of the mounted origin. */
                snprintf(reason, size, "%s holds btrfs, which cannot mount a block-level copy beside its origin "
                         "(same filesystem id); use btrfs' own snapshots", device);
                return -EMEDIUMTYPE;
        }
        if (streq(type, "swap") || streq(type, "LVM2_member") || streq(type, "crypto_LUKS")) {
                snprintf(reason, size, "%s holds %s, not a filesystem to mount; use its device path instead",
                         device, type);
                return -EMEDIUMTYPE;
        }
        for (size_t i = 0; i < ELEMENTSOF(fs_options); i++)
                if (streq(type, fs_options[i].type))
                        extra = fs_options[i].options;
        if (asprintf(ret_options, "ro,nosuid,nodev,noexec%s%s", extra ? "," : "", strempty(extra)) < 0)
                return -ENOMEM;
        *ret_fstype = TAKE_PTR(type);
        return 0;
}

/* One directory: made with mode exactly (the service's UMask=0077 would leave it to root alone). */
static int mkdir_mode(const char *p, mode_t mode) {
        if (mkdir(p, mode) >= 0)
                return chmod(p, mode) < 0 ? -errno : 0;
        return errno == EEXIST ? 0 : -errno;
}

static int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        int r;

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++)
                if (*s == '/') {
                        *s = 0;
                        r = mkdir_mode(p, mode);
                        if (r < 0)
                                return r;
                        *s = '/';
                }
        return mkdir_mode(p, mode);
}

int expose_mount(const char *device, const char *path, const char *fstype, const char *options, bool mkdir_parents,
                 char *reason, size_t size) {
        _cleanup_(mnt_free_contextp) struct libmnt_context *cxt = NULL;
        char buf[256] = "";
        int r;

        if (mkdir_parents) {
                /* 0755: everyone may read an exposed snapshot as its files' own modes allow. */
                r = mkdir_p(path, 0755);
                if (r < 0) {
                        snprintf(reason, size, "Cannot create %s: %s", path, strerror(-r));
                        return r;
                }
        }
        cxt = mnt_new_context();
        if (!cxt)
                return -ENOMEM;
        /* No /sbin/mount.TYPE helpers: the kernel's own filesystems only, with exactly our options. */
        if (mnt_context_disable_helpers(cxt, 1) < 0 || mnt_context_set_source(cxt, device) < 0 ||
            mnt_context_set_target(cxt, path) < 0 || mnt_context_set_fstype(cxt, fstype) < 0 ||
            mnt_context_set_options(cxt, options) < 0)
                return -ENOMEM;
        r = mnt_context_mount(cxt);
        if (r == 0 && mnt_context_get_status(cxt) == 1)
                return 0;
        r = mnt_context_syscall_called(cxt) ? -mnt_context_get_syscall_errno(cxt) : (r < 0 ? r : -EIO);
        if (r == 0)
                r = -EIO;
        (void) mnt_context_get_excode(cxt, r, buf, sizeof buf);
        snprintf(reason, size, "Mounting %s (%s) at %s with %s failed: %s", device, fstype, path, options,
                 buf[0] ? buf : strerror(-r));
        return r;
}

bool expose_is_mounted(const char *path, dev_t dev) {
        _cleanup_(mnt_unref_tablep) struct libmnt_table *tb = mnt_new_table();
        struct libmnt_fs *fs;

        if (!tb || mnt_table_parse_mtab(tb, NULL) < 0)
                return false;
        fs = mnt_table_find_target(tb, path, MNT_ITER_BACKWARD);
        return fs && (dev == 0 || mnt_fs_get_devno(fs) == dev);
}

/* ---------------------------------------------------------------- away */

/* Whether the link /proc/PID/NAME leads into the filesystem dev. */
static bool link_on(const char *pid, const char *name, dev_t dev) {
        char p[64];
        struct stat st;

        snprintf(p, sizeof p, "/proc/%s/%s", pid, name);
        return stat(p, &st) >= 0 && st.st_dev == dev;
}

static bool process_uses(const char *pid, dev_t dev) {
        char p[64];
        struct dirent *e;
        bool uses = false;
        DIR *d;

        if (link_on(pid, "cwd", dev) || link_on(pid, "root", dev) || link_on(pid, "exe", dev))
                return true;
        snprintf(p, sizeof p, "/proc/%s/fd", pid);
        d = opendir(p);
        if (!d)
                return false;
        while (!uses && (e = readdir(d))) {
                char name[300];

                if (e->d_name[0] == '.')
                        continue;
                snprintf(name, sizeof name, "fd/%s", e->d_name);
                uses = link_on(pid, name, dev);
        }
        closedir(d);
        return uses;
}

/* "pid 4242 (rsync), pid 4243 (bash)": the processes with a file, a working directory or a root
 * in the filesystem dev, at most a few. */
static void find_holders(dev_t dev, char *buf, size_t size) {
        struct dirent *e;
        size_t used = 0;
        unsigned n = 0;
        DIR *d = opendir("/proc");

        buf[0] = 0;
        if (!d)
                return;
        while ((e = readdir(d)) && n < 5) {
                char comm[64] = "?", p[64];
                FILE *f;

                if (e->d_name[0] < '1' || e->d_name[0] > '9' || !process_uses(e->d_name, dev))
                        continue;
                snprintf(p, sizeof p, "/proc/%s/comm", e->d_name);
                if ((f = fopen(p, "re"))) {
                        if (fgets(comm, sizeof comm, f))
                                comm[strcspn(comm, "\n")] = 0;
                        fclose(f);
                }
                used += (size_t) snprintf(buf + used, used < size ? size - used : 0, "%spid %s (%s)",
                                          n > 0 ? ", " : "", e->d_name, comm);
                n++;
        }
        closedir(d);
}

int expose_unmount(const char *path, const char *runtime_dir, bool lazy, char *holders, size_t size) {
        _cleanup_free_ char *mine = NULL;
        struct stat st;

        if (holders && size > 0)
                holders[0] = 0;
        if (stat(path, &st) < 0)
                st.st_dev = 0;
        if (umount2(path, (lazy ? MNT_DETACH : 0) | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT) {
                int r = -errno;

                if (r == -EBUSY && holders && st.st_dev != 0)
                        find_holders(st.st_dev, holders, size);
                return r;
        }
        /* Our own directories go with the mount: <run>/mnt/<set>/<volume>, then <set> if empty. */
        if (asprintf(&mine, "%s/" EXPOSE_DIR, runtime_dir) < 0)
                return -ENOMEM;
        if (path_is_under(path, mine) && !streq(path, mine)) {
                _cleanup_free_ char *set_dir = strdup(path);
                char *slash;

                (void) rmdir(path);
                if (set_dir && (slash = strrchr(set_dir, '/')) && slash > set_dir + strlen(mine)) {
                        *slash = 0;
                        (void) rmdir(set_dir);
                }
        }
        return 0;
}
