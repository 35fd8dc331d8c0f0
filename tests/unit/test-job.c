/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The job runner (daemon/job.c): work on its own long-lived thread, done on the caller's loop,
 * one job at a time; and the dispatcher's rule that only METHOD_CONCURRENT calls run beside a
 * job while the others wait for it (METHODS_WAIT), unconsumed. */

#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include "config.h"
#include "job.h"
#include "macro.h"
#include "manager.h"
#include "methods.h"

typedef struct Probe {
        int gate[2];                  /* work waits for a byte on gate[0] */
        pthread_t work_thread, done_thread;
        unsigned works, dones;
} Probe;

static void probe_work(void *userdata) {
        Probe *p = userdata;
        char c;

        p->work_thread = pthread_self();
        ck_assert_int_eq(read(p->gate[0], &c, 1), 1);
        p->works++;
}

static void probe_done(void *userdata) {
        Probe *p = userdata;

        p->done_thread = pthread_self();
        p->dones++;
}

static void probe_init(Probe *p) {
        *p = (Probe) {};
        ck_assert_int_eq(pipe(p->gate), 0);
}

static void probe_release(Probe *p) {
        ck_assert_int_eq(write(p->gate[1], "x", 1), 1);
}

/* Runs the loop's part until the job has ended (or 10 s). */
static bool wait_and_dispatch(JobRunner *r) {
        for (int i = 0; i < 1000; i++) {
                struct pollfd pfd = { .fd = job_runner_fd(r), .events = POLLIN };

                if (poll(&pfd, 1, 10) > 0 && job_runner_dispatch(r))
                        return true;
        }
        return false;
}

START_TEST(test_work_runs_on_another_thread_and_done_on_the_loop) {
        JobRunner *r = NULL;
        pthread_t first;
        Probe p;

        probe_init(&p);
        ck_assert_int_eq(job_runner_new(&r), 0);
        ck_assert(!job_runner_busy(r));
        ck_assert_int_eq(job_runner_start(r, probe_work, probe_done, &p), 0);
        ck_assert(job_runner_busy(r));
        /* One at a time. */
        ck_assert_int_eq(job_runner_start(r, probe_work, probe_done, &p), -EBUSY);
        /* Not finished: a wake-up alone ends nothing. */
        job_runner_wake(r);
        ck_assert(!job_runner_dispatch(r));
        ck_assert(job_runner_busy(r));
        ck_assert_uint_eq(p.dones, 0);

        probe_release(&p);
        ck_assert(wait_and_dispatch(r));
        ck_assert(!job_runner_busy(r));
        ck_assert_uint_eq(p.works, 1);
        ck_assert_uint_eq(p.dones, 1);
        ck_assert(!pthread_equal(p.work_thread, pthread_self()));
        ck_assert(pthread_equal(p.done_thread, pthread_self()));

        /* The same thread for the next job (external providers die with the thread that
         * started them). */
        first = p.work_thread;
        ck_assert_int_eq(job_runner_start(r, probe_work, probe_done, &p), 0);
        probe_release(&p);
        ck_assert(wait_and_dispatch(r));
        ck_assert(pthread_equal(p.work_thread, first));
        ck_assert_uint_eq(p.dones, 2);

        job_runner_free(r);
        safe_close(p.gate[0]);
        safe_close(p.gate[1]);
}
END_TEST

START_TEST(test_free_waits_for_a_running_job) {
        JobRunner *r = NULL;
        Probe p;

        probe_init(&p);
        ck_assert_int_eq(job_runner_new(&r), 0);
        ck_assert_int_eq(job_runner_start(r, probe_work, probe_done, &p), 0);
        probe_release(&p);
        job_runner_free(r);
        ck_assert_uint_eq(p.works, 1);
        ck_assert_uint_eq(p.dones, 0);
        safe_close(p.gate[0]);
        safe_close(p.gate[1]);
}
END_TEST

typedef struct Capture {
        json_object *replies[4];
        unsigned n;
} Capture;

static int capture_send(void *userdata, json_object *msg) {
        Capture *c = userdata;

        ck_assert_uint_lt(c->n, ELEMENTSOF(c->replies));
        c->replies[c->n++] = json_object_get(msg);
        return 0;
}

static int dispatch(Manager *m, const char *method, Capture *cap) {
        static const Peer root = { .pid = 1, .uid = 0, .gid = 0, .connection_id = 1 };
        _cleanup_(json_object_putp) json_object *msg = json_object_new_object();
        char text[128];

        snprintf(text, sizeof text, "io.snapset.Manager.%s", method);
        json_object_object_add(msg, "method", json_object_new_string(text));
        return methods_dispatch(m, &root, msg, capture_send, cap);
}

START_TEST(test_only_concurrent_methods_run_beside_a_job) {
        _cleanup_(manager_freep) Manager *m = NULL;
        Capture cap = {};
        Config c;
        Probe p;

        ck_assert_int_eq(config_init(&c), 0);
        ck_assert_int_eq(manager_new(&c, &m), 0);
        m->state_directory = strdup("/var/lib/snapset-test");
        ck_assert_int_eq(job_runner_new(&m->jobs), 0);
        probe_init(&p);
        ck_assert_int_eq(job_runner_start(m->jobs, probe_work, probe_done, &p), 0);

        /* GetStatus reads the registry only: answered at once. */
        ck_assert_int_eq(dispatch(m, "GetStatus", &cap), 0);
        ck_assert_uint_eq(cap.n, 1);
        /* These need the providers or the state directory: they wait, with nothing sent. */
        ck_assert_int_eq(dispatch(m, "ListProviders", &cap), METHODS_WAIT);
        ck_assert_int_eq(dispatch(m, "Cleanup", &cap), METHODS_WAIT);
        ck_assert_uint_eq(cap.n, 1);

        probe_release(&p);
        ck_assert(wait_and_dispatch(m->jobs));
        ck_assert_int_eq(dispatch(m, "ListProviders", &cap), 0);
        ck_assert_uint_eq(cap.n, 2);

        for (unsigned i = 0; i < cap.n; i++)
                json_object_put(cap.replies[i]);
        safe_close(p.gate[0]);
        safe_close(p.gate[1]);
}
END_TEST

Suite *suite_job(void);
Suite *suite_job(void) {
        Suite *s = suite_create("job");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_work_runs_on_another_thread_and_done_on_the_loop);
        tcase_add_test(tc, test_free_waits_for_a_running_job);
        tcase_add_test(tc, test_only_concurrent_methods_run_beside_a_job);
        suite_add_tcase(s, tc);
        return s;
}
