/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The thaw guardian: its decision for every event, and the real process: it acts when the
 * daemon's end closes (the daemon died) and at its deadline, and not when disarmed; as root, on
 * a loop-mounted ext4 frozen by a FreezeSet, it really thaws, and a blocked writer finishes. */

#include <check.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "freeze.h"
#include "guardian.h"
#include "loopfs.h"
#include "ratelimit.h"

/* ---- the decision */

START_TEST(test_the_daemon_gone_or_a_signal_fires_and_exits_even_after_firing) {
        uint64_t t;

        for (int fired = 0; fired <= 1; fired++) {
                ck_assert_int_eq(guardian_decide(GUARDIAN_EVENT_HANGUP, 10, UINT64_MAX, fired, &t), GUARDIAN_FIRE_AND_EXIT);
                ck_assert_int_eq(guardian_decide(GUARDIAN_EVENT_SIGNAL, 10, 1000, fired, &t), GUARDIAN_FIRE_AND_EXIT);
        }
}
END_TEST

START_TEST(test_disarm_exits_without_firing_even_past_the_deadline) {
        uint64_t t;

        ck_assert_int_eq(guardian_decide(GUARDIAN_EVENT_DISARM, 10, 1000, false, &t), GUARDIAN_EXIT);
        ck_assert_int_eq(guardian_decide(GUARDIAN_EVENT_DISARM, 5000, 1000, false, &t), GUARDIAN_EXIT);
        ck_assert_int_eq(guardian_decide(GUARDIAN_EVENT_DISARM, 5000, 1000, true, &t), GUARDIAN_EXIT);
}
END_TEST

START_TEST(test_before_the_deadline_it_waits_exactly_until_it) {
        uint64_t t;

        ck_assert_int_eq(guardian_decide(GUARDIAN_EVENT_NONE, 400, 1000, false, &t), GUARDIAN_WAIT);
        ck_assert_uint_eq(t, 600);
        ck_assert_int_eq(guardian_decide(GUARDIAN_EVENT_WAKE, 400, UINT64_MAX, false, &t), GUARDIAN_WAIT);
        ck_assert_uint_eq(t, UINT64_MAX);
}
END_TEST

START_TEST(test_at_the_deadline_it_fires_once_then_waits_for_the_daemon) {
        uint64_t t;

        ck_assert_int_eq(guardian_decide(GUARDIAN_EVENT_NONE, 1000, 1000, false, &t), GUARDIAN_FIRE);
        ck_assert_int_eq(guardian_decide(GUARDIAN_EVENT_WAKE, 2000, 1000, false, &t), GUARDIAN_FIRE);
        ck_assert_int_eq(guardian_decide(GUARDIAN_EVENT_NONE, 2000, 1000, true, &t), GUARDIAN_WAIT);
        ck_assert_uint_eq(t, UINT64_MAX);
}
END_TEST

/* ---- the process */

static bool fired_within(WindowUndo *u, int msec) {
        for (int i = 0; i < msec / 10; i++) {
                if (atomic_load(&u->fired))
                        return true;
                usleep(10000);
        }
        return atomic_load(&u->fired);
}

START_TEST(test_the_guardian_fires_when_the_daemon_end_closes) {
        _cleanup_(window_undo_freep) WindowUndo *u = NULL;
        Guardian *g = NULL;

        ck_assert_int_eq(window_undo_new(0, &u), 0);
        ck_assert_int_eq(guardian_start(u, &g), 0);
        ck_assert(!atomic_load(&u->fired));
        g = guardian_free(g);   /* as the kernel does when the daemon dies */
        ck_assert_msg(fired_within(u, 5000), "the guardian did not act when the daemon's end closed");
}
END_TEST

START_TEST(test_the_guardian_fires_at_its_deadline_and_a_disarmed_one_never) {
        _cleanup_(window_undo_freep) WindowUndo *u = NULL, *v = NULL;
        Guardian *g = NULL;
        uint64_t start;

        ck_assert_int_eq(window_undo_new(0, &u), 0);
        ck_assert_int_eq(guardian_start(u, &g), 0);
        start = now_monotonic_usec();
        atomic_store(&u->deadline_usec, start + 200 * USEC_PER_MSEC);
        guardian_wake(g);
        ck_assert(fired_within(u, 5000));
        ck_assert_uint_ge(now_monotonic_usec() - start, 200 * USEC_PER_MSEC);
        guardian_disarm(g);

        ck_assert_int_eq(window_undo_new(0, &v), 0);
        ck_assert_int_eq(guardian_start(v, &g), 0);
        atomic_store(&v->deadline_usec, now_monotonic_usec() + 300 * USEC_PER_MSEC);
        guardian_wake(g);
        guardian_disarm(g);
        usleep(600 * 1000);
        ck_assert_msg(!atomic_load(&v->fired), "a disarmed guardian acted");
}
END_TEST

/* ---- really thawing, as root */

static char tmp[] = "/tmp/snapset-guardian-XXXXXX";

static void setup_tmp(void) {
        ck_assert_ptr_nonnull(mkdtemp(strcpy(tmp, "/tmp/snapset-guardian-XXXXXX")));
}

static void teardown_tmp(void) {
        char cmd[300];

        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        ck_assert_int_eq(system(cmd), 0);
}

/* Frozen by a FreezeSet with the undo marks, as the coordinator does; then the guardian is left
 * to act (how: the daemon's end closed, or its deadline). */
static void guardian_thaws(bool by_deadline) {
        LoopFs l = {};
        _cleanup_(freeze_set_freep) FreezeSet *s = NULL;
        _cleanup_(window_undo_freep) WindowUndo *u = NULL;
        Guardian *g = NULL;
        char mnt[300];
        uint64_t start, took;
        int status;
        pid_t w;

        if (!loopfs_available()) {
                printf("skipped: needs root and loop devices\n");
                return;
        }
        snprintf(mnt, sizeof mnt, "%s/mnt", tmp);
        ck_assert(loopfs_make(&l, tmp, mnt, "ext4", "64M"));
        ck_assert_int_eq(freeze_set_prepare(&l.dev, 1, NULL, &s), 0);
        ck_assert_int_eq(window_undo_new(1, &u), 0);
        u->volumes[0].device = l.dev;      /* a loop device: nothing to resume, only to thaw */
        u->volumes[0].fs_fd = s->targets[0].fd;
        s->targets[0].undo = &u->volumes[0];

        ck_assert_int_eq(freeze_set_freeze(s, 5 * USEC_PER_SEC), 0);
        ck_assert(atomic_load(&u->volumes[0].frozen));
        w = loopfs_start_writer(l.mnt);
        ck_assert_msg(!loopfs_child_finished_within(w, 300, &status), "a write went through the frozen filesystem");
        /* After the writer's fork (the daemon's never fork without exec): a child holding the
         * daemon's end of the channel would keep the guardian from seeing it close. */
        ck_assert_int_eq(guardian_start(u, &g), 0);

        start = now_monotonic_usec();
        if (by_deadline) {
                atomic_store(&u->deadline_usec, start + 100 * USEC_PER_MSEC);
                guardian_wake(g);
        } else
                g = guardian_free(g);
        ck_assert_msg(loopfs_child_finished_within(w, 10000, &status), "the guardian did not thaw the filesystem");
        took = now_monotonic_usec() - start;
        printf("guardian (%s): the writer finished %llu us after it was due to act\n",
               by_deadline ? "deadline" : "daemon gone", (unsigned long long) took);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert(atomic_load(&u->fired));
        ck_assert(!atomic_load(&u->volumes[0].frozen));
        guardian_disarm(g);

        /* What the daemon would do after: its own thaw finds nothing frozen. */
        ck_assert_int_eq(freeze_set_thaw(s), 0);
        s = freeze_set_free(s);
        loopfs_remove(&l);
}

START_TEST(test_real_ext4_thawed_by_the_guardian_when_the_daemon_dies) {
        guardian_thaws(false);
}
END_TEST

START_TEST(test_real_ext4_thawed_by_the_guardian_at_its_deadline) {
        guardian_thaws(true);
}
END_TEST

Suite *suite_guardian(void) {
        Suite *s = suite_create("guardian");
        TCase *tc = tcase_create("decide"), *proc = tcase_create("process"), *real = tcase_create("real");

        tcase_add_test(tc, test_the_daemon_gone_or_a_signal_fires_and_exits_even_after_firing);
        tcase_add_test(tc, test_disarm_exits_without_firing_even_past_the_deadline);
        tcase_add_test(tc, test_before_the_deadline_it_waits_exactly_until_it);
        tcase_add_test(tc, test_at_the_deadline_it_fires_once_then_waits_for_the_daemon);
        suite_add_tcase(s, tc);

        tcase_add_test(proc, test_the_guardian_fires_when_the_daemon_end_closes);
        tcase_add_test(proc, test_the_guardian_fires_at_its_deadline_and_a_disarmed_one_never);
        suite_add_tcase(s, proc);

        tcase_add_checked_fixture(real, setup_tmp, teardown_tmp);
        tcase_set_timeout(real, 60);
        tcase_add_test(real, test_real_ext4_thawed_by_the_guardian_when_the_daemon_dies);
        tcase_add_test(real, test_real_ext4_thawed_by_the_guardian_at_its_deadline);
        suite_add_tcase(s, real);
        return s;
}
