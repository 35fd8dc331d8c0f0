/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "device-graph.h"
#include "macro.h"

/* A stack deeper or wider than this is not a stack of volumes any more. */
#define GRAPH_MAX 1024

static int devnum_of(int dirfd, const char *name, dev_t *ret) {
        char path[PATH_MAX], buf[32];
        unsigned ma, mi;
        ssize_t l;
        int fd;

        snprintf(path, sizeof path, "%s/dev", name);
        fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        l = read(fd, buf, sizeof buf - 1);
        safe_close(fd);
        if (l <= 0)
                return -EIO;
        buf[l] = 0;
        if (sscanf(buf, "%u:%u", &ma, &mi) != 2)
                return -EBADMSG;
        *ret = makedev(ma, mi);
        return 0;
}

static bool listed(const dev_t *a, size_t n, dev_t d) {
        for (size_t i = 0; i < n; i++)
                if (a[i] == d)
                        return true;
        return false;
}

static int push(dev_t **a, size_t *n, dev_t d) {
        dev_t *p;

        if (listed(*a, *n, d))
                return 0;
        if (*n >= GRAPH_MAX)
                return -E2BIG;
        p = reallocarray(*a, *n + 1, sizeof(dev_t));
        if (!p)
                return -ENOMEM;
        p[(*n)++] = d;
        *a = p;
        return 1;
}

/* The devices directly on d: its holders, and (with_partitions) its partitions
 * (subdirectories with a "partition" file). */
static int direct(const char *sysfs_root, dev_t d, bool with_partitions, dev_t **a, size_t *n) {
        char path[PATH_MAX];
        struct dirent *de;
        DIR *dir;
        int r = 0;

        for (int kind = 0; kind < (with_partitions ? 2 : 1) && r >= 0; kind++) {
                snprintf(path, sizeof path, "%s/dev/block/%u:%u%s", sysfs_root, major(d), minor(d),
                         kind == 0 ? "/holders" : "");
                dir = opendir(path);
                if (!dir)
                        continue;   /* gone, or no holders/ (not every device has one) */
                while (r >= 0 && (de = readdir(dir))) {
                        char sub[NAME_MAX + 16];
                        dev_t x = 0;

                        if (de->d_name[0] == '.')
                                continue;
                        if (kind == 1) {
                                snprintf(sub, sizeof sub, "%s/partition", de->d_name);
                                if (faccessat(dirfd(dir), sub, F_OK, 0) < 0)
                                        continue;
                        }
                        if (devnum_of(dirfd(dir), de->d_name, &x) >= 0)
                                r = push(a, n, x);
                }
                closedir(dir);
        }
        return r < 0 ? r : 0;
}

int device_graph_above(const char *sysfs_root, dev_t d, dev_t **ret, size_t *ret_n) {
        dev_t *a = NULL;
        size_t n = 0;
        int r;

        r = direct(sysfs_root, d, true, &a, &n);
        /* Breadth first: a grows while it is walked. */
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = direct(sysfs_root, a[i], true, &a, &n);
        if (r < 0) {
                free(a);
                return r;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

int device_graph_is_above(const char *sysfs_root, dev_t upper, dev_t lower) {
        _cleanup_free_ dev_t *a = NULL;
        size_t n = 0;
        int r;

        r = device_graph_above(sysfs_root, lower, &a, &n);
        if (r < 0)
                return r;
        return listed(a, n, upper);
}

int device_graph_holders(const char *sysfs_root, dev_t d, dev_t **ret, size_t *ret_n) {
        dev_t *a = NULL;
        size_t n = 0;
        int r;

        r = direct(sysfs_root, d, false, &a, &n);
        if (r < 0) {
                free(a);
                return r;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}
