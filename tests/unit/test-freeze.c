/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The freeze module: which filesystems it picks from a mount table and in which order (with a
 * fake mountinfo), and, as root, real FIFREEZE/FITHAW on a loop-mounted ext4 and xfs: a writer
 * blocks while frozen and finishes after the thaw, and a failure leaves nothing frozen. */

#include <check.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "freeze.h"

static char tmp[] = "/tmp/snapset-freeze-XXXXXX";

static void make_dir(const char *sub) {
        char p[256];
        snprintf(p, sizeof p, "%s/%s", tmp, sub);
        ck_assert_int_eq(mkdir(p, 0755), 0);
}

static void setup_tmp(void) {
        ck_assert_ptr_nonnull(mkdtemp(strcpy(tmp, "/tmp/snapset-freeze-XXXXXX")));
}

static void teardown_tmp(void) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        ck_assert_int_eq(system(cmd), 0);
}

/* One mountinfo line: "ID PARENT MAJ:MIN ROOT TARGET OPTS - FSTYPE SOURCE SUPEROPTS". */
static void write_mountinfo(const char *path, const char *lines[], size_t n) {
        FILE *f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%zu 1 %s\n", 100 + i, lines[i]);
        fclose(f);
}

START_TEST(test_children_are_frozen_before_parents_and_each_superblock_once) {
        char mi[300], a[300], ab[300], c[300], l[4][600];
        const char *lines[4];
        _cleanup_(freeze_set_freep) FreezeSet *s = NULL;
        dev_t devs[] = { makedev(7, 1), makedev(7, 2) };

        make_dir("a");
        make_dir("a/b");
        make_dir("c");
        snprintf(a, sizeof a, "%s/a", tmp);
        snprintf(ab, sizeof ab, "%s/a/b", tmp);
        snprintf(c, sizeof c, "%s/c", tmp);
        snprintf(l[0], sizeof l[0], "7:1 / %s rw - ext4 /dev/loop1 rw", a);
        snprintf(l[1], sizeof l[1], "7:2 / %s rw - xfs /dev/loop2 rw", ab);
        snprintf(l[2], sizeof l[2], "7:1 /sub %s rw - ext4 /dev/loop1 rw", c);   /* bind mount */
        snprintf(l[3], sizeof l[3], "7:3 / %s rw - ext4 /dev/loop3 rw", c);      /* not in the set */
        for (int i = 0; i < 4; i++)
                lines[i] = l[i];
        snprintf(mi, sizeof mi, "%s/mountinfo", tmp);
        write_mountinfo(mi, lines, 4);

        ck_assert_int_eq(freeze_set_prepare(devs, 2, mi, &s), 0);
        ck_assert_uint_eq(s->n_targets, 2);
        ck_assert_str_eq(s->targets[0].mountpoint, ab);
        ck_assert_str_eq(s->targets[1].mountpoint, a);
        ck_assert(s->targets[0].device == makedev(7, 2));
        ck_assert_int_ge(s->targets[0].fd, 0);
}
END_TEST

START_TEST(test_a_device_with_nothing_mounted_gives_an_empty_set) {
        char mi[300];
        const char *lines[] = { "8:1 / / rw - ext4 /dev/sda1 rw" };
        _cleanup_(freeze_set_freep) FreezeSet *s = NULL;
        dev_t devs[] = { makedev(7, 9) };

        snprintf(mi, sizeof mi, "%s/mountinfo", tmp);
        write_mountinfo(mi, lines, 1);
        ck_assert_int_eq(freeze_set_prepare(devs, 1, mi, &s), 0);
        ck_assert_uint_eq(s->n_targets, 0);
        ck_assert_int_eq(freeze_set_freeze(s, 1000000), 0);
        ck_assert_int_eq(freeze_set_thaw(s), 0);
}
END_TEST

START_TEST(test_a_vanished_mountpoint_is_an_error_before_the_window) {
        char mi[300], l[600];
        const char *lines[] = { l };
        _cleanup_(freeze_set_freep) FreezeSet *s = NULL;
        dev_t devs[] = { makedev(7, 1) };

        snprintf(l, sizeof l, "7:1 / %s/gone rw - ext4 /dev/loop1 rw", tmp);
        snprintf(mi, sizeof mi, "%s/mountinfo", tmp);
        write_mountinfo(mi, lines, 1);
        ck_assert_int_eq(freeze_set_prepare(devs, 1, mi, &s), -ENOENT);
        ck_assert_ptr_null(s);
}
END_TEST

/* ---- real filesystems, as root */

typedef struct LoopFs {
        char image[300], mnt[300], loop[64];
        dev_t dev;
} LoopFs;

static bool run(const char *cmd) {
        return system(cmd) == 0;
}

static bool loopfs_make(LoopFs *l, const char *fstype) {
        char cmd[1024];
        FILE *p;
        struct stat st;

        snprintf(l->image, sizeof l->image, "%s/%s.img", tmp, fstype);
        snprintf(l->mnt, sizeof l->mnt, "%s/mnt-%s", tmp, fstype);
        mkdir(l->mnt, 0755);
        snprintf(cmd, sizeof cmd, "truncate -s 320M '%s' && losetup -f --show '%s'", l->image, l->image);
        p = popen(cmd, "r");
        if (!p || !fgets(l->loop, sizeof l->loop, p)) {
                if (p)
                        pclose(p);
                return false;
        }
        pclose(p);
        l->loop[strcspn(l->loop, "\n")] = 0;
        snprintf(cmd, sizeof cmd, "mkfs.%s -q %s '%s' >/dev/null 2>&1 && mount '%s' '%s'", fstype,
                 streq(fstype, "xfs") ? "-f" : "-F", l->loop, l->loop, l->mnt);
        if (!run(cmd) || stat(l->loop, &st) < 0)
                return false;
        l->dev = st.st_rdev;
        return true;
}

static void loopfs_remove(LoopFs *l) {
        char cmd[1024];

        snprintf(cmd, sizeof cmd, "umount '%s' 2>/dev/null; losetup -d '%s' 2>/dev/null", l->mnt, l->loop);
        (void) run(cmd);
}

/* Starts a child that writes and fsyncs a file on the filesystem; returns its pid. */
static pid_t start_writer(const char *dir) {
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

static bool child_finished_within(pid_t pid, int msec, int *status) {
        for (int i = 0; i < msec / 10; i++) {
                if (waitpid(pid, status, WNOHANG) == pid)
                        return true;
                usleep(10000);
        }
        return false;
}

static bool have_loop_and_root(void) {
        return geteuid() == 0 && access("/dev/loop-control", F_OK) == 0;
}

static void freeze_blocks_writers_until_thaw(const char *fstype) {
        LoopFs l = {};
        _cleanup_(freeze_set_freep) FreezeSet *s = NULL;
        int status;
        pid_t writer;

        if (!have_loop_and_root()) {
                printf("skipped: needs root and loop devices\n");
                return;
        }
        ck_assert_msg(loopfs_make(&l, fstype), "cannot set up a loop-mounted %s", fstype);

        ck_assert_int_eq(freeze_set_prepare(&l.dev, 1, NULL, &s), 0);
        ck_assert_uint_eq(s->n_targets, 1);
        ck_assert_int_eq(freeze_set_sync(s), 0);
        ck_assert_int_eq(freeze_set_freeze(s, 5 * USEC_PER_SEC), 0);
        ck_assert_uint_eq(s->n_frozen, 1);

        writer = start_writer(l.mnt);
        ck_assert_msg(!child_finished_within(writer, 500, &status), "a write went through a frozen %s", fstype);

        ck_assert_int_eq(freeze_set_thaw(s), 0);
        ck_assert_uint_eq(s->n_frozen, 0);
        ck_assert_msg(child_finished_within(writer, 10000, &status), "the writer stayed blocked after thaw");
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        s = freeze_set_free(s);   /* closes the mountpoint, or umount would be busy */
        loopfs_remove(&l);
}

START_TEST(test_real_ext4_freeze_blocks_writers_until_thaw) {
        freeze_blocks_writers_until_thaw("ext4");
}
END_TEST

START_TEST(test_real_xfs_freeze_blocks_writers_until_thaw) {
        freeze_blocks_writers_until_thaw("xfs");
}
END_TEST

START_TEST(test_a_filesystem_frozen_by_someone_else_fails_and_leaves_ours_thawed) {
        LoopFs a = {}, b = {};
        _cleanup_(freeze_set_freep) FreezeSet *s = NULL;
        dev_t devs[2];
        int fd, r;

        if (!have_loop_and_root()) {
                printf("skipped: needs root and loop devices\n");
                return;
        }
        ck_assert(loopfs_make(&a, "ext4"));
        ck_assert(loopfs_make(&b, "xfs"));
        devs[0] = a.dev;
        devs[1] = b.dev;
        ck_assert_int_eq(freeze_set_prepare(devs, 2, NULL, &s), 0);
        ck_assert_uint_eq(s->n_targets, 2);

        /* Someone else freezes the second filesystem of our order. */
        fd = open(s->targets[1].mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ioctl(fd, FIFREEZE, 0), 0);

        r = freeze_set_freeze(s, 5 * USEC_PER_SEC);
        ck_assert_int_eq(r, -EBUSY);
        ck_assert_uint_eq(s->failed_index, 1);
        ck_assert_uint_eq(s->n_frozen, 0);
        ck_assert(!s->targets[0].frozen);

        /* The first one really is thawed: a write goes through. */
        {
                int status;
                pid_t w = start_writer(s->targets[0].mountpoint);
                ck_assert(child_finished_within(w, 10000, &status));
        }

        ck_assert_int_eq(ioctl(fd, FITHAW, 0), 0);
        close(fd);
        s = freeze_set_free(s);
        loopfs_remove(&a);
        loopfs_remove(&b);
}
END_TEST

Suite *suite_freeze(void) {
        Suite *s = suite_create("freeze");
        TCase *tc = tcase_create("mount-table");
        TCase *real = tcase_create("real-filesystems");

        tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
        tcase_add_test(tc, test_children_are_frozen_before_parents_and_each_superblock_once);
        tcase_add_test(tc, test_a_device_with_nothing_mounted_gives_an_empty_set);
        tcase_add_test(tc, test_a_vanished_mountpoint_is_an_error_before_the_window);
        suite_add_tcase(s, tc);

        tcase_add_checked_fixture(real, setup_tmp, teardown_tmp);
        tcase_set_timeout(real, 60);
        tcase_add_test(real, test_real_ext4_freeze_blocks_writers_until_thaw);
        tcase_add_test(real, test_real_xfs_freeze_blocks_writers_until_thaw);
        tcase_add_test(real, test_a_filesystem_frozen_by_someone_else_fails_and_leaves_ours_thawed);
        suite_add_tcase(s, real);
        return s;
}
