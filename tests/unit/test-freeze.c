/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The freeze module: which filesystems it picks from a mount table and in which order (with a
 * fake mountinfo), and, as root, real FIFREEZE/FITHAW on a loop-mounted ext4 and xfs: a writer
 * blocks while frozen and finishes after the thaw, a failure leaves nothing frozen, filesystems
 * side by side are frozen at once and a parent only after what is mounted inside it. */

#include <check.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>

#include "freeze.h"
#include "loopfs.h"
#include "ratelimit.h"

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

static bool loopfs_in_tmp(LoopFs *l, const char *fstype) {
        char mnt[300];

        snprintf(mnt, sizeof mnt, "%s/mnt-%s", tmp, fstype);
        return loopfs_make(l, tmp, mnt, fstype, "320M");
}

__attribute__((format(printf, 1, 2)))
static void run(const char *format, ...) {
        char cmd[800];
        va_list ap;

        va_start(ap, format);
        vsnprintf(cmd, sizeof cmd, format, ap);
        va_end(ap);
        ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

/* Real mounts: A at a, B at a/b (inside A), A's subdirectory bind-mounted at c. */
START_TEST(test_children_are_frozen_before_parents_and_each_superblock_once) {
        _cleanup_(freeze_set_freep) FreezeSet *s = NULL;
        char a[300], ab[300], c[300];
        LoopFs A = {}, B = {};

        if (!loopfs_available()) {
                printf("skipped: needs root and loop devices\n");
                return;
        }
        snprintf(a, sizeof a, "%s/a", tmp);
        snprintf(ab, sizeof ab, "%s/a/b", tmp);
        snprintf(c, sizeof c, "%s/c", tmp);
        ck_assert(loopfs_make(&A, tmp, a, "ext4", "64M"));
        make_dir("a/sub");
        make_dir("c");
        make_dir("image-b");   /* loopfs names images by type and pid */
        snprintf(c, sizeof c, "%s/image-b", tmp);
        ck_assert(loopfs_make(&B, c, ab, "ext4", "64M"));
        snprintf(c, sizeof c, "%s/c", tmp);
        run("mount --bind '%s/sub' '%s'", a, c);

        dev_t devs[] = { A.dev, B.dev };
        ck_assert_int_eq(freeze_set_prepare(devs, 2, NULL, &s), 0);
        ck_assert_uint_eq(s->n_targets, 2);
        ck_assert_str_eq(s->targets[0].mountpoint, ab);
        ck_assert_str_eq(s->targets[1].mountpoint, a);
        ck_assert(s->targets[0].device == B.dev);
        ck_assert_int_ge(s->targets[0].fd, 0);

        s = freeze_set_free(s);
        run("umount '%s'", c);
        loopfs_remove(&B);
        loopfs_remove(&A);
}
END_TEST

/* A filesystem of the set with something mounted over its mountpoint: FIFREEZE through the path
 * would hit the one on top. Refused, unless another mount of the same filesystem is reachable. */
START_TEST(test_an_overmounted_mountpoint_is_never_frozen_through) {
        _cleanup_(freeze_set_freep) FreezeSet *s = NULL;
        char m[300], c[300];
        LoopFs A = {};

        if (!loopfs_available()) {
                printf("skipped: needs root and loop devices\n");
                return;
        }
        snprintf(m, sizeof m, "%s/m", tmp);
        snprintf(c, sizeof c, "%s/c", tmp);
        ck_assert(loopfs_make(&A, tmp, m, "ext4", "64M"));
        run("mount -t tmpfs snapset-test-cover '%s'", m);

        dev_t devs[] = { A.dev };
        ck_assert_int_eq(freeze_set_prepare(devs, 1, NULL, &s), -EXDEV);
        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s->covered_mountpoint, m);
        ck_assert(s->covered_device == A.dev);
        ck_assert_uint_eq(s->n_targets, 0);
        s = freeze_set_free(s);

        /* The same filesystem also mounted where nothing covers it: that mount is used. */
        run("umount '%s'", m);
        make_dir("c");
        run("mount --bind '%s' '%s'", m, c);
        run("mount -t tmpfs snapset-test-cover '%s'", m);
        ck_assert_int_eq(freeze_set_prepare(devs, 1, NULL, &s), 0);
        ck_assert_uint_eq(s->n_targets, 1);
        ck_assert_str_eq(s->targets[0].mountpoint, c);

        s = freeze_set_free(s);
        run("umount '%s' && umount '%s'", m, c);
        loopfs_remove(&A);
}
END_TEST

static void freeze_blocks_writers_until_thaw(const char *fstype) {
        LoopFs l = {};
        _cleanup_(freeze_set_freep) FreezeSet *s = NULL;
        int status;
        pid_t writer;

        if (!loopfs_available()) {
                printf("skipped: needs root and loop devices\n");
                return;
        }
        ck_assert_msg(loopfs_in_tmp(&l, fstype), "cannot set up a loop-mounted %s", fstype);

        ck_assert_int_eq(freeze_set_prepare(&l.dev, 1, NULL, &s), 0);
        ck_assert_uint_eq(s->n_targets, 1);
        ck_assert_int_eq(freeze_set_sync(s, 5 * USEC_PER_SEC), 0);
        ck_assert_int_eq(freeze_set_freeze(s, 5 * USEC_PER_SEC), 0);
        ck_assert_uint_eq(s->n_frozen, 1);

        writer = loopfs_start_writer(l.mnt);
        ck_assert_msg(!loopfs_child_finished_within(writer, 500, &status), "a write went through a frozen %s", fstype);

        ck_assert_int_eq(freeze_set_thaw(s), 0);
        ck_assert_uint_eq(s->n_frozen, 0);
        ck_assert_msg(loopfs_child_finished_within(writer, 10000, &status), "the writer stayed blocked after thaw");
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

        if (!loopfs_available()) {
                printf("skipped: needs root and loop devices\n");
                return;
        }
        ck_assert(loopfs_in_tmp(&a, "ext4"));
        ck_assert(loopfs_in_tmp(&b, "xfs"));
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
                pid_t w = loopfs_start_writer(s->targets[0].mountpoint);
                ck_assert(loopfs_child_finished_within(w, 10000, &status));
        }

        ck_assert_int_eq(ioctl(fd, FITHAW, 0), 0);
        close(fd);
        s = freeze_set_free(s);
        loopfs_remove(&a);
        loopfs_remove(&b);
}
END_TEST


static void set_flag(void *userdata) {
        *(volatile bool *) userdata = true;
}

/* A filesystem that cannot flush: it sits on a loop device whose image is on another filesystem
 * (lower), which is frozen, with dirty data on it, so that a syncfs or FIFREEZE of it waits until
 * lower is thawed. Returns lower's mountpoint fd (FITHAW it to release). */
static int stuck_make(LoopFs *lower, LoopFs *stuck) {
        char mnt[300], junk[400];
        int fd;

        snprintf(mnt, sizeof mnt, "%s/lower", tmp);
        ck_assert(loopfs_make(lower, tmp, mnt, "ext4", "200M"));
        snprintf(mnt, sizeof mnt, "%s/stuck", tmp);
        ck_assert(loopfs_make(stuck, lower->mnt, mnt, "ext4", "64M"));
        snprintf(junk, sizeof junk, "dd if=/dev/urandom of='%s/junk' bs=1M count=8 status=none", stuck->mnt);
        ck_assert_int_eq(system(junk), 0);
        fd = open(lower->mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ioctl(fd, FIFREEZE, 0), 0);
        return fd;
}

/* Thaws lower, and waits until the lingering worker has ended. */
static void stuck_release(int lower_fd, volatile bool *ended) {
        ck_assert_int_eq(ioctl(lower_fd, FITHAW, 0), 0);
        close(lower_fd);
        for (int i = 0; i < 1000 && (ended ? !*ended : freeze_lingering() != NULL); i++)
                usleep(10000);
        ck_assert_msg(!ended || *ended, "the worker did not end after its call could return");
        ck_assert_ptr_null(freeze_lingering());
}

/* At the deadline the other filesystem of the set, frozen first, is thawed at once; the stuck
 * one is thawed by the worker as soon as its FIFREEZE returns. */
START_TEST(test_a_stuck_freeze_times_out_with_the_others_thawed_at_the_deadline) {
        LoopFs lower = {}, stuck = {}, other = {};
        _cleanup_(freeze_set_freep) FreezeSet *s = NULL;
        volatile bool ended = false;
        char mnt[300];
        uint64_t start, took;
        int lower_fd, fd, status;
        dev_t devs[2];
        pid_t w;

        if (!loopfs_available()) {
                printf("skipped: needs root and loop devices\n");
                return;
        }
        make_dir("other");
        snprintf(mnt, sizeof mnt, "%s/other/deeper", tmp);   /* deeper: frozen first */
        ck_assert(loopfs_make(&other, tmp, mnt, "ext4", "64M"));
        lower_fd = stuck_make(&lower, &stuck);

        devs[0] = stuck.dev;
        devs[1] = other.dev;
        ck_assert_int_eq(freeze_set_prepare(devs, 2, NULL, &s), 0);
        ck_assert_uint_eq(s->n_targets, 2);
        ck_assert_str_eq(s->targets[0].mountpoint, other.mnt);

        start = now_monotonic_usec();
        ck_assert_int_eq(freeze_set_freeze(s, 500 * USEC_PER_MSEC), -ETIMEDOUT);
        took = now_monotonic_usec() - start;
        ck_assert_msg(took < 3 * USEC_PER_SEC, "the deadline of 0.5 s returned after %llu us", (unsigned long long) took);
        ck_assert_str_eq(s->targets[s->failed_index].mountpoint, stuck.mnt);
        ck_assert_int_eq(s->failed_error, -ETIMEDOUT);
        fd = open(other.mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_msg(!loopfs_is_frozen(fd), "the filesystem frozen before the stuck one is still frozen");
        close(fd);
        ck_assert_ptr_nonnull(freeze_lingering());
        ck_assert_str_eq(freeze_lingering(), stuck.mnt);
        ck_assert(freeze_set_linger(s, set_flag, (void *) &ended));

        stuck_release(lower_fd, &ended);
        w = loopfs_start_writer(stuck.mnt);
        ck_assert_msg(loopfs_child_finished_within(w, 10000, &status), "the stuck filesystem stayed frozen");

        s = freeze_set_free(s);
        loopfs_remove(&other);
        loopfs_remove(&stuck);
        loopfs_remove(&lower);
}
END_TEST

/* freeze_set_freeze() in a thread of its own, so that the test can look at the filesystems while
 * a call is stuck. */
typedef struct FreezeCall {
        FreezeSet *set;
        uint64_t timeout_usec;
        int result;
        pthread_t thread;
} FreezeCall;

static void *freeze_call_main(void *userdata) {
        FreezeCall *call = userdata;

        call->result = freeze_set_freeze(call->set, call->timeout_usec);
        return NULL;
}

static void freeze_call_start(FreezeCall *call, FreezeSet *s, uint64_t timeout_usec) {
        *call = (FreezeCall) { .set = s, .timeout_usec = timeout_usec };
        ck_assert_int_eq(pthread_create(&call->thread, NULL, freeze_call_main, call), 0);
}

static int freeze_call_join(FreezeCall *call) {
        ck_assert_int_eq(pthread_join(call->thread, NULL), 0);
        return call->result;
}

/* Filesystems that do not contain each other are frozen at once: while one FIFREEZE is stuck,
 * the others of its wave (their mountpoints sort after it) are frozen all the same, and a writer
 * on them waits; the deadline thaws them, and the writer finishes. One after another, they would
 * never have been reached. */
START_TEST(test_filesystems_side_by_side_are_frozen_while_one_is_stuck) {
        LoopFs lower = {}, stuck = {}, side[3] = {};
        _cleanup_(freeze_set_freep) FreezeSet *s = NULL;
        volatile bool ended = false;
        dev_t devs[4];
        bool went_through[3], thawed[3], lingered;
        size_t stuck_index;
        FreezeCall call;
        pid_t writers[3];
        int lower_fd, status, r;

        if (!loopfs_available()) {
                printf("skipped: needs root and loop devices\n");
                return;
        }
        lower_fd = stuck_make(&lower, &stuck);
        devs[0] = stuck.dev;
        for (size_t i = 0; i < 3; i++) {
                char mnt[300];

                snprintf(mnt, sizeof mnt, "%s/w%zu", tmp, i);   /* after "stuck", at its depth */
                ck_assert(loopfs_make(&side[i], tmp, mnt, i % 2 ? "xfs" : "ext4", "300M"));
                devs[i + 1] = side[i].dev;
        }
        ck_assert_int_eq(freeze_set_prepare(devs, 4, NULL, &s), 0);
        ck_assert_uint_eq(s->n_targets, 4);
        ck_assert_str_eq(s->targets[0].mountpoint, stuck.mnt);

        /* Every check is recorded and asserted only once lower is thawed again: a failed
         * assertion with a call still stuck would leave the test process unkillable. */
        freeze_call_start(&call, s, 4 * USEC_PER_SEC);
        usleep(1500 * 1000);
        for (size_t i = 0; i < 3; i++)
                writers[i] = loopfs_start_writer(side[i].mnt);
        for (size_t i = 0; i < 3; i++)
                went_through[i] = loopfs_child_finished_within(writers[i], i == 0 ? 500 : 10, &status);
        r = freeze_call_join(&call);
        stuck_index = s->failed_index;
        for (size_t i = 0; i < 3; i++)
                thawed[i] = went_through[i] || (loopfs_child_finished_within(writers[i], 10000, &status) && status == 0);
        lingered = freeze_set_linger(s, set_flag, (void *) &ended);
        stuck_release(lower_fd, &ended);

        ck_assert_int_eq(r, -ETIMEDOUT);
        ck_assert_uint_eq(stuck_index, 0);
        ck_assert(lingered);
        for (size_t i = 0; i < 3; i++) {
                ck_assert_msg(!went_through[i], "a write to %s went through while the set was freezing: it was "
                              "not frozen beside the stuck one", side[i].mnt);
                ck_assert_msg(thawed[i], "%s stayed frozen after the deadline", side[i].mnt);
        }
        s = freeze_set_free(s);
        for (size_t i = 0; i < 3; i++)
                loopfs_remove(&side[i]);
        loopfs_remove(&stuck);
        loopfs_remove(&lower);
}
END_TEST

/* Children before parents, in parallel too: while the FIFREEZE of a filesystem mounted inside
 * another is stuck, the parent is not frozen (a write to it goes through). */
START_TEST(test_a_parent_is_not_frozen_before_the_filesystem_inside_it) {
        LoopFs lower = {}, parent = {}, child = {};
        _cleanup_(freeze_set_freep) FreezeSet *s = NULL;
        volatile bool ended = false;
        char mnt[300], junk[400];
        bool parent_writable, lingered;
        size_t stuck_index;
        FreezeCall call;
        dev_t devs[2];
        int lower_fd, status, r;
        pid_t writer;

        if (!loopfs_available()) {
                printf("skipped: needs root and loop devices\n");
                return;
        }
        snprintf(mnt, sizeof mnt, "%s/lower", tmp);
        ck_assert(loopfs_make(&lower, tmp, mnt, "ext4", "200M"));
        snprintf(mnt, sizeof mnt, "%s/parent", tmp);
        ck_assert(loopfs_make(&parent, tmp, mnt, "ext4", "64M"));
        /* The child's image is on lower, which is frozen with the child's data dirty: the child's
         * FIFREEZE waits for lower. */
        snprintf(mnt, sizeof mnt, "%s/parent/child", tmp);
        ck_assert(loopfs_make(&child, lower.mnt, mnt, "ext4", "64M"));
        snprintf(junk, sizeof junk, "dd if=/dev/urandom of='%s/junk' bs=1M count=8 status=none", child.mnt);
        ck_assert_int_eq(system(junk), 0);
        lower_fd = open(lower.mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(lower_fd, 0);
        ck_assert_int_eq(ioctl(lower_fd, FIFREEZE, 0), 0);

        devs[0] = parent.dev;
        devs[1] = child.dev;
        ck_assert_int_eq(freeze_set_prepare(devs, 2, NULL, &s), 0);
        ck_assert_uint_eq(s->n_targets, 2);

        /* Asserted once lower is thawed (as above). */
        freeze_call_start(&call, s, 3 * USEC_PER_SEC);
        usleep(500 * 1000);
        writer = loopfs_start_writer(parent.mnt);
        parent_writable = loopfs_child_finished_within(writer, 2000, &status) && status == 0;
        r = freeze_call_join(&call);
        stuck_index = s->failed_index;
        lingered = freeze_set_linger(s, set_flag, (void *) &ended);
        stuck_release(lower_fd, &ended);
        if (!parent_writable)
                (void) loopfs_child_finished_within(writer, 10000, &status);

        ck_assert_msg(parent_writable, "the parent was frozen while the filesystem mounted inside it was still freezing");
        ck_assert_int_eq(r, -ETIMEDOUT);
        ck_assert_str_eq(s->targets[stuck_index].mountpoint, child.mnt);
        ck_assert(lingered);
        s = freeze_set_free(s);
        loopfs_remove(&child);
        loopfs_remove(&parent);
        loopfs_remove(&lower);
}
END_TEST

/* The syncfs before the window is bounded too, and leaves nothing frozen. */
START_TEST(test_a_stuck_syncfs_times_out) {
        LoopFs lower = {}, stuck = {};
        _cleanup_(freeze_set_freep) FreezeSet *s = NULL;
        uint64_t start, took;
        int lower_fd;

        if (!loopfs_available()) {
                printf("skipped: needs root and loop devices\n");
                return;
        }
        lower_fd = stuck_make(&lower, &stuck);
        ck_assert_int_eq(freeze_set_prepare(&stuck.dev, 1, NULL, &s), 0);

        start = now_monotonic_usec();
        ck_assert_int_eq(freeze_set_sync(s, 500 * USEC_PER_MSEC), -ETIMEDOUT);
        took = now_monotonic_usec() - start;
        ck_assert_msg(took < 3 * USEC_PER_SEC, "the deadline of 0.5 s returned after %llu us", (unsigned long long) took);
        ck_assert_uint_eq(s->n_frozen, 0);
        ck_assert_str_eq(freeze_lingering(), stuck.mnt);
        /* The set is done for: no freeze after a syncfs that never returned. */
        ck_assert_int_eq(freeze_set_freeze(s, 500 * USEC_PER_MSEC), -EBUSY);
        s = freeze_set_free(s);   /* the worker frees it when its syncfs returns */

        stuck_release(lower_fd, NULL);
        loopfs_remove(&stuck);
        loopfs_remove(&lower);
}
END_TEST

Suite *suite_freeze(void) {
        Suite *s = suite_create("freeze");
        TCase *tc = tcase_create("mount-table");
        TCase *real = tcase_create("real-filesystems");

        tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
        tcase_add_test(tc, test_children_are_frozen_before_parents_and_each_superblock_once);
        tcase_add_test(tc, test_an_overmounted_mountpoint_is_never_frozen_through);
        tcase_add_test(tc, test_a_device_with_nothing_mounted_gives_an_empty_set);
        tcase_add_test(tc, test_a_vanished_mountpoint_is_an_error_before_the_window);
        suite_add_tcase(s, tc);

        tcase_add_checked_fixture(real, setup_tmp, teardown_tmp);
        tcase_set_timeout(real, 60);
        tcase_add_test(real, test_real_ext4_freeze_blocks_writers_until_thaw);
        tcase_add_test(real, test_real_xfs_freeze_blocks_writers_until_thaw);
        tcase_add_test(real, test_a_filesystem_frozen_by_someone_else_fails_and_leaves_ours_thawed);
        tcase_add_test(real, test_a_stuck_freeze_times_out_with_the_others_thawed_at_the_deadline);
        tcase_add_test(real, test_a_stuck_syncfs_times_out);
        tcase_add_test(real, test_filesystems_side_by_side_are_frozen_while_one_is_stuck);
        tcase_add_test(real, test_a_parent_is_not_frozen_before_the_filesystem_inside_it);
        suite_add_tcase(s, real);
        return s;
}
