/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "window-crew.h"

/* A call into libdevmapper and its log callback (a 2 KiB line, formatted): 128 KiB is room to
 * spare. With the daemon's memory locked, a crew of 32 locks 4 MiB while a set is made. */
#define CREW_STACK_SIZE (128 * 1024)

struct WindowCrew {
        pthread_mutex_t lock;
        pthread_cond_t work;     /* to the threads: a run, or the end */
        pthread_cond_t done;     /* to the caller: the run's last call returned */
        pthread_t threads[WINDOW_CREW_MAX];
        size_t n_threads;
        WindowCrewFn fn;
        void *userdata;
        size_t next, end;        /* the run's items not taken yet: [next, end) */
        size_t in_calls;         /* taken, their call not returned */
        size_t failed;           /* the lowest index that failed, SIZE_MAX if none */
        int failed_result;
        bool quit;
};

static void note_result(WindowCrew *c, size_t i, int r) {
        if (r < 0 && (c->failed == SIZE_MAX || i < c->failed)) {
                c->failed = i;
                c->failed_result = r;
        }
}

static void *crew_main(void *userdata) {
        WindowCrew *c = userdata;

        pthread_mutex_lock(&c->lock);
        for (;;) {
                size_t i;
                int r;

                while (!c->quit && c->next >= c->end)
                        pthread_cond_wait(&c->work, &c->lock);
                if (c->quit)
                        break;
                i = c->next++;
                c->in_calls++;
                pthread_mutex_unlock(&c->lock);

                r = c->fn(i, c->userdata);

                pthread_mutex_lock(&c->lock);
                c->in_calls--;
                note_result(c, i, r);
                if (c->next >= c->end && c->in_calls == 0)
                        pthread_cond_signal(&c->done);
        }
        pthread_mutex_unlock(&c->lock);
        return NULL;
}

int window_crew_new(size_t n, WindowCrew **ret) {
        WindowCrew *c = calloc(1, sizeof(WindowCrew));
        size_t want = n < WINDOW_CREW_MAX ? n : WINDOW_CREW_MAX;
        pthread_attr_t attr;

        if (!c)
                return -ENOMEM;
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->work, NULL);
        pthread_cond_init(&c->done, NULL);
        /* One item needs no thread of its own: it runs on the caller's. */
        if (want > 1) {
                pthread_attr_init(&attr);
                pthread_attr_setstacksize(&attr, CREW_STACK_SIZE);
                while (c->n_threads < want &&
                       pthread_create(&c->threads[c->n_threads], &attr, crew_main, c) == 0)
                        c->n_threads++;
                pthread_attr_destroy(&attr);
        }
        *ret = c;
        return 0;
}

static int run_here(size_t n, WindowCrewFn fn, void *userdata, size_t *ret_failed) {
        int first = 0;

        for (size_t i = 0; i < n; i++) {
                int r = fn(i, userdata);

                if (r < 0 && first == 0) {
                        first = r;
                        if (ret_failed)
                                *ret_failed = i;
                }
        }
        return first;
}

int window_crew_run(WindowCrew *c, size_t n, WindowCrewFn fn, void *userdata, size_t *ret_failed) {
        int r;

        if (!c || c->n_threads == 0 || n <= 1)
                return run_here(n, fn, userdata, ret_failed);

        pthread_mutex_lock(&c->lock);
        c->fn = fn;
        c->userdata = userdata;
        c->failed = SIZE_MAX;
        c->failed_result = 0;
        c->next = 0;
        c->end = n;
        pthread_cond_broadcast(&c->work);
        while (c->next < c->end || c->in_calls > 0)
                pthread_cond_wait(&c->done, &c->lock);
        r = c->failed_result;
        if (r < 0 && ret_failed)
                *ret_failed = c->failed;
        c->next = c->end = 0;
        pthread_mutex_unlock(&c->lock);
        return r;
}

void window_crew_free(WindowCrew *c) {
        if (!c)
                return;
        pthread_mutex_lock(&c->lock);
        c->quit = true;
        pthread_cond_broadcast(&c->work);
        pthread_mutex_unlock(&c->lock);
        for (size_t i = 0; i < c->n_threads; i++)
                pthread_join(c->threads[i], NULL);
        pthread_cond_destroy(&c->done);
        pthread_cond_destroy(&c->work);
        pthread_mutex_destroy(&c->lock);
        free(c);
}
