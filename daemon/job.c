/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "job.h"
#include "macro.h"

/* One thread for the daemon's whole life, not one per job: external providers are started with
 * PR_SET_PDEATHSIG, which fires when the *thread* that started them ends, so a provider first
 * used by a job must not see its thread go when the job does. */
struct JobRunner {
        int event_fd;
        pthread_t thread;
        bool thread_started;
        bool busy;                    /* started, done not run yet (loop thread only) */
        atomic_bool finished;         /* the work returned (set by the job thread) */
        JobFunc work, done;
        void *userdata;

        pthread_mutex_t lock;         /* guards pending and quit, with wake_up */
        pthread_cond_t wake_up;
        bool pending;                 /* work to start */
        bool quit;
};

static void *job_thread(void *userdata) {
        JobRunner *r = userdata;

        for (;;) {
                pthread_mutex_lock(&r->lock);
                while (!r->pending && !r->quit)
                        pthread_cond_wait(&r->wake_up, &r->lock);
                if (!r->pending) {
                        pthread_mutex_unlock(&r->lock);
                        return NULL;
                }
                r->pending = false;
                pthread_mutex_unlock(&r->lock);

                r->work(r->userdata);
                atomic_store(&r->finished, true);
                job_runner_wake(r);
        }
}

int job_runner_new(JobRunner **ret) {
        JobRunner *r = calloc(1, sizeof *r);
        sigset_t all, saved;
        int k;

        if (!r)
                return -ENOMEM;
        pthread_mutex_init(&r->lock, NULL);
        pthread_cond_init(&r->wake_up, NULL);
        r->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (r->event_fd < 0) {
                k = -errno;
                job_runner_free(r);
                return k;
        }

        /* The job thread takes no signals: SIGTERM, SIGHUP and the rest are the loop's
         * (signalfd), whatever the mask of the moment. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &saved);
        k = pthread_create(&r->thread, NULL, job_thread, r);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (k != 0) {
                job_runner_free(r);
                return -k;
        }
        r->thread_started = true;
        *ret = r;
        return 0;
}

JobRunner *job_runner_free(JobRunner *r) {
        if (!r)
                return NULL;
        if (r->thread_started) {
                /* A job still running is waited for: its pending work is started first. */
                pthread_mutex_lock(&r->lock);
                r->quit = true;
                pthread_cond_signal(&r->wake_up);
                pthread_mutex_unlock(&r->lock);
                (void) pthread_join(r->thread, NULL);
        }
        safe_close(r->event_fd);
        pthread_cond_destroy(&r->wake_up);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
}

int job_runner_fd(const JobRunner *r) {
        return r->event_fd;
}

bool job_runner_busy(const JobRunner *r) {
        return r && r->busy;
}

void job_runner_wake(JobRunner *r) {
        uint64_t one = 1;

        /* EAGAIN only when the counter is about to overflow: it is readable then anyway. */
        ssize_t l = write(r->event_fd, &one, sizeof one);
        (void) l;
}

int job_runner_start(JobRunner *r, JobFunc work, JobFunc done, void *userdata) {
        if (r->busy)
                return -EBUSY;
        r->work = work;
        r->done = done;
        r->userdata = userdata;
        atomic_store(&r->finished, false);
        r->busy = true;

        pthread_mutex_lock(&r->lock);
        r->pending = true;
        pthread_cond_signal(&r->wake_up);
        pthread_mutex_unlock(&r->lock);
        return 0;
}

bool job_runner_dispatch(JobRunner *r) {
        uint64_t count;

        ssize_t l = read(r->event_fd, &count, sizeof count);
        (void) l;
        if (!r->busy || !atomic_load(&r->finished))
                return false;
        r->busy = false;
        if (r->done)
                r->done(r->userdata);
        return true;
}
