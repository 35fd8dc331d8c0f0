/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loopfs.h"

static bool run(const char *cmd) {
        return system(cmd) == 0;
}

bool loopfs_available(void) {
        return geteuid() == 0 && access("/dev/loop-control", F_OK) == 0;
}

bool loopfs_make(LoopFs *l, const char *image_dir, const char *mnt, const char *fstype, const char *size) {
        static unsigned counter;
        char cmd[1024];
        FILE *p;
        struct stat st;

        /* A name of its own: several images of one type may share a directory. */
        snprintf(l->image, sizeof l->image, "%s/%s-%d-%u.img", image_dir, fstype, (int) getpid(), counter++);
        snprintf(l->mnt, sizeof l->mnt, "%s", mnt);
        (void) mkdir(l->mnt, 0755);
        snprintf(cmd, sizeof cmd, "truncate -s %s '%s' && losetup -f --show '%s'", size, l->image, l->image);
        p = popen(cmd, "r");
        if (!p || !fgets(l->loop, sizeof l->loop, p)) {
                if (p)
                        pclose(p);
                return false;
        }
        pclose(p);
        l->loop[strcspn(l->loop, "\n")] = 0;
        snprintf(cmd, sizeof cmd, "mkfs.%s -q %s '%s' >/dev/null 2>&1 && mount '%s' '%s'", fstype,
                 strcmp(fstype, "xfs") == 0 ? "-f" : "-F", l->loop, l->loop, l->mnt);
        if (!run(cmd) || stat(l->loop, &st) < 0)
                return false;
        l->dev = st.st_rdev;
        return true;
}

void loopfs_remove(LoopFs *l) {
        char cmd[1024];

        if (!l->loop[0])
                return;
        snprintf(cmd, sizeof cmd, "umount '%s' 2>/dev/null; losetup -d '%s' 2>/dev/null; rm -f '%s'",
                 l->mnt, l->loop, l->image);
        (void) run(cmd);
}

pid_t loopfs_start_writer(const char *dir) {
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char p[400];
                int fd;

                snprintf(p, sizeof p, "%s/written-while-frozen", dir);
                fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || write(fd, "x", 1) != 1 || fsync(fd) < 0)
                        _exit(1);
                _exit(0);
        }
        return pid;
}

bool loopfs_child_finished_within(pid_t pid, int msec, int *status) {
        for (int i = 0; i < msec / 10; i++) {
                if (waitpid(pid, status, WNOHANG) == pid)
                        return true;
                usleep(10000);
        }
        return false;
}

bool loopfs_is_frozen(int fd) {
        if (ioctl(fd, FITHAW, 0) < 0)
                return false;   /* EINVAL: it was not */
        ck_assert_int_eq(ioctl(fd, FIFREEZE, 0), 0);
        return true;
}
