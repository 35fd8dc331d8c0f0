/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The window's crew (daemon/window-crew.c): every item runs once, the items of a run are in
 * their calls at the same time (which is the point: their kernel waits overlap), a failure is
 * the one of the lowest index while every item is still tried, and a crew that could not be made
 * (NULL) runs the items on the caller's thread. */

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "window-crew.h"

#define ITEMS 48

typedef struct Probe {
        atomic_uint calls[ITEMS];
        atomic_uint in_calls, most_in_calls;
        unsigned wait_for;        /* each call waits (bounded) until this many are in their calls */
        pthread_t threads[ITEMS];
        int fail_from;            /* items from this index on fail with -EIO (-1: none) */
        struct timespec start;    /* of the run: the waits end 2 s after it */
} Probe;

static void probe_start(Probe *p) {
        clock_gettime(CLOCK_MONOTONIC, &p->start);
}

static int probe_call(size_t i, void *userdata) {
        Probe *p = userdata;
        unsigned now = atomic_fetch_add(&p->in_calls, 1) + 1, most = atomic_load(&p->most_in_calls);
        struct timespec t;

        while (now > most && !atomic_compare_exchange_weak(&p->most_in_calls, &most, now))
                ;
        /* Bounded: without the crew's threads the others never come, and the test must say so
         * instead of hanging. */
        do {
                sched_yield();
                clock_gettime(CLOCK_MONOTONIC, &t);
        } while (atomic_load(&p->most_in_calls) < p->wait_for && t.tv_sec - p->start.tv_sec < 2);
        atomic_fetch_add(&p->calls[i], 1);
        p->threads[i] = pthread_self();
        atomic_fetch_sub(&p->in_calls, 1);
        return p->fail_from >= 0 && (int) i >= p->fail_from ? -EIO - (int) i : 0;
}

START_TEST(test_items_run_once_and_at_the_same_time) {
        static Probe p = { .wait_for = WINDOW_CREW_MAX, .fail_from = -1 };
        WindowCrew *c = NULL;
        size_t failed = 1234;

        ck_assert_int_eq(window_crew_new(ITEMS, &c), 0);
        probe_start(&p);
        ck_assert_int_eq(window_crew_run(c, ITEMS, probe_call, &p, &failed), 0);
        ck_assert_uint_eq(failed, 1234);
        for (size_t i = 0; i < ITEMS; i++)
                ck_assert_uint_eq(atomic_load(&p.calls[i]), 1);
        /* The crew's whole width was in its calls at once: 48 items take two turns of 32. */
        ck_assert_uint_eq(atomic_load(&p.most_in_calls), WINDOW_CREW_MAX);
        ck_assert(!pthread_equal(p.threads[0], pthread_self()));

        /* A crew runs again, with fewer items. */
        p = (Probe) { .wait_for = 3, .fail_from = -1 };
        probe_start(&p);
        ck_assert_int_eq(window_crew_run(c, 3, probe_call, &p, NULL), 0);
        ck_assert_uint_eq(atomic_load(&p.most_in_calls), 3);
        window_crew_free(c);
}
END_TEST

START_TEST(test_the_lowest_failure_is_reported_and_every_item_tried) {
        static Probe p = { .wait_for = 1, .fail_from = 5 };
        WindowCrew *c = NULL;
        size_t failed = 0;

        ck_assert_int_eq(window_crew_new(ITEMS, &c), 0);
        probe_start(&p);
        ck_assert_int_eq(window_crew_run(c, ITEMS, probe_call, &p, &failed), -EIO - 5);
        ck_assert_uint_eq(failed, 5);
        for (size_t i = 0; i < ITEMS; i++)
                ck_assert_uint_eq(atomic_load(&p.calls[i]), 1);
        window_crew_free(c);
}
END_TEST

START_TEST(test_without_a_crew_the_items_run_here_one_after_another) {
        static Probe p = { .wait_for = 1, .fail_from = 2 };
        size_t failed = 0;

        probe_start(&p);
        ck_assert_int_eq(window_crew_run(NULL, 4, probe_call, &p, &failed), -EIO - 2);
        ck_assert_uint_eq(failed, 2);
        ck_assert_uint_eq(atomic_load(&p.most_in_calls), 1);
        for (size_t i = 0; i < 4; i++) {
                ck_assert_uint_eq(atomic_load(&p.calls[i]), 1);
                ck_assert(pthread_equal(p.threads[i], pthread_self()));
        }
        window_crew_free(NULL);
}
END_TEST

Suite *suite_window_crew(void);
Suite *suite_window_crew(void) {
        Suite *s = suite_create("window-crew");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_items_run_once_and_at_the_same_time);
        tcase_add_test(tc, test_the_lowest_failure_is_reported_and_every_item_tried);
        tcase_add_test(tc, test_without_a_crew_the_items_run_here_one_after_another);
        suite_add_tcase(s, tc);
        return s;
}
