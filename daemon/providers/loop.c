/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "log.h"
#include "loop.h"
#include "macro.h"

#define LOOP_CONTROL_PATH "/dev/loop-control"
/* LOOP_CTL_GET_FREE and LOOP_CONFIGURE race with every other losetup on the machine: another
 * process may configure the free device we were given first (EBUSY). Try again a few times. */
#define LOOP_ATTACH_TRIES 16

static void closedirp(DIR **d) {
        if (*d)
                (void) closedir(*d);
}

/* Direct I/O on the loop device avoids caching every COW chunk twice, but only where the backing
 * filesystem really serves O_DIRECT: on some (overlayfs over tmpfs on 6.1) the loop device accepts
 * the flag and then fails every read with EIO. So try an aligned O_DIRECT read of the file
 * itself first. */
static bool file_supports_direct_io(const char *path) {
        _cleanup_close_ int fd = -EBADF;
        void *buf = NULL;
        bool ok;

        fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || posix_memalign(&buf, 4096, 4096) != 0)
                return false;
        ok = pread(fd, buf, 4096, 0) >= 0;
        free(buf);
        return ok;
}

int loop_attach(const char *path, int *ret_fd, char **ret_devpath, dev_t *ret_devnum) {
        _cleanup_close_ int control = -EBADF, file = -EBADF;
        uint32_t direct = file_supports_direct_io(path) ? LO_FLAGS_DIRECT_IO : 0;
        int r = -EBUSY;

        file = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (file < 0)
                return log_debug_errno(errno, "Failed to open %s: %m", path);
        control = open(LOOP_CONTROL_PATH, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (control < 0)
                return log_debug_errno(errno, "Failed to open " LOOP_CONTROL_PATH ": %m");

        for (unsigned attempt = 0; attempt < LOOP_ATTACH_TRIES; attempt++) {
                _cleanup_close_ int fd = -EBADF;
                struct loop_config config = {
                        .fd = (uint32_t) file,
                        .info.lo_flags = LO_FLAGS_AUTOCLEAR | direct,
                };
                char devpath[64];
                struct stat st;
                int nr;

                nr = ioctl(control, LOOP_CTL_GET_FREE);
                if (nr < 0)
                        return log_debug_errno(errno, "LOOP_CTL_GET_FREE failed: %m");
                snprintf(devpath, sizeof(devpath), "/dev/loop%i", nr);
                fd = open(devpath, O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        /* Removed (LOOP_CTL_REMOVE) by someone else between the two calls. */
                        r = -errno;
                        if (r == -ENOENT || r == -ENXIO)
                                continue;
                        return log_debug_errno(r, "Failed to open %s: %m", devpath);
                }
                /* What losetup shows as the backing file (the kernel keeps 64 bytes of it). */
                snprintf((char *) config.info.lo_file_name, sizeof(config.info.lo_file_name), "%s", path);
                if (ioctl(fd, LOOP_CONFIGURE, &config) < 0) {
                        r = -errno;
                        if (r == -EBUSY)
                                continue;
                        return log_debug_errno(r, "LOOP_CONFIGURE of %s with %s failed: %m", devpath, path);
                }
                if (fstat(fd, &st) < 0)
                        return -errno;

                *ret_devpath = strdup(devpath);
                if (!*ret_devpath) {
                        (void) ioctl(fd, LOOP_CLR_FD);
                        return -ENOMEM;
                }
                *ret_devnum = st.st_rdev;
                *ret_fd = TAKE_FD(fd);
                log_debug("Attached %s to %s.", path, devpath);
                return 0;
        }
        return log_debug_errno(r, "No free loop device for %s after %d attempts: %m", path, LOOP_ATTACH_TRIES);
}

int loop_keep(int fd) {
        struct loop_info64 info;

        if (ioctl(fd, LOOP_GET_STATUS64, &info) < 0)
                return -errno;
        info.lo_flags &= ~(uint32_t) LO_FLAGS_AUTOCLEAR;
        if (ioctl(fd, LOOP_SET_STATUS64, &info) < 0)
                return -errno;
        return 0;
}

/* Whether the loop device at fd is backed by the file st describes. */
static bool loop_fd_backed_by(int fd, const struct stat *st) {
        struct loop_info64 info;

        if (ioctl(fd, LOOP_GET_STATUS64, &info) < 0)
                return false;
        return info.lo_inode == st->st_ino && info.lo_device == st->st_dev;
}

int loop_find_by_backing(const char *path, char **ret_devpath, dev_t *ret_devnum) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        struct stat st;

        if (stat(path, &st) < 0)
                return -errno;
        d = opendir("/sys/block");
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                _cleanup_close_ int fd = -EBADF;
                char sys[300], devpath[300];
                struct stat dst;

                if (!startswith(de->d_name, "loop"))
                        continue;
                /* Only bound devices have the loop/ directory: no need to open the others. */
                snprintf(sys, sizeof(sys), "/sys/block/%s/loop", de->d_name);
                if (access(sys, F_OK) < 0)
                        continue;
                snprintf(devpath, sizeof(devpath), "/dev/%s", de->d_name);
                fd = open(devpath, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0 || fstat(fd, &dst) < 0 || !loop_fd_backed_by(fd, &st))
                        continue;
                *ret_devpath = strdup(devpath);
                if (!*ret_devpath)
                        return -ENOMEM;
                *ret_devnum = dst.st_rdev;
                return 1;
        }
        return 0;
}

int loop_detach_if_backing(const char *devpath, const char *path) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (stat(path, &st) < 0)
                return -errno;
        fd = open(devpath, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? -ENXIO : -errno;
        if (!loop_fd_backed_by(fd, &st))
                return -ENXIO;
        if (ioctl(fd, LOOP_CLR_FD) < 0)
                return log_debug_errno(errno, "Failed to detach %s: %m", devpath);
        log_debug("Detached %s from %s.", devpath, path);
        return 0;
}
