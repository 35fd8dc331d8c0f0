/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The floor of a freeze window, for the benchmark (bench/README.md): what any tool that takes one
 * instant across these device-mapper devices must do at least, and nothing more. Before the
 * clock: the filesystems on the devices found and opened, and synced, as snapsetd does before its
 * window. Timed: FIFREEZE every filesystem (deepest mountpoint first), suspend every device with
 * skip-lockfs, resume every device, FITHAW every filesystem. No table is loaded or swapped. After
 * the clock: the wait for udev to see the resumes.
 *
 *   bench-floor [--parallel] DEVICE...
 *
 * --parallel: each step on every device at once, from threads started before the clock (one per
 * device, at most THREADS_MAX); the freezes in waves of equal mountpoint depth, deepest first, so
 * that a filesystem is never frozen before one mounted inside it. This is what the kernel allows
 * at best; the serial floor is what one thread doing one call after another gets.
 *
 * Prints one JSON object: n (devices), filesystems, parallel, windowUsec (first FIFREEZE to last
 * FITHAW) and the four steps' durations. Exit status 0, or 1 with the reason on stderr (whatever
 * was frozen or suspended is undone first). */

#include <errno.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "dm.h"
#include "freeze.h"
#include "ratelimit.h"

#define DEVICES_MAX 256
#define THREADS_MAX 64

typedef enum Step { STEP_FREEZE, STEP_SUSPEND, STEP_RESUME, STEP_THAW, STEP_EXIT } Step;

typedef struct Floor {
        FreezeSet *fs;
        dev_t devs[DEVICES_MAX];
        size_t n;
        bool frozen[DEVICES_MAX], suspended[DEVICES_MAX];
        /* The resumes join one udev cookie, waited on after the thaw, as snapsetd does: without
         * one, udev drops the devices' /dev/mapper nodes. */
        uint32_t cookie;
        /* The parallel crew: the step and the range of items it covers now. */
        pthread_barrier_t start, end;
        size_t n_threads;
        Step step;
        size_t first, last;
        int error;      /* the first failure of a step, for the message */
        size_t failed;
} Floor;

static DmRef device_ref(const Floor *f, size_t i) {
        return DM_REF_DEVNUM(major(f->devs[i]), minor(f->devs[i]));
}

/* One step on one item (a filesystem for freeze and thaw, a device otherwise). */
static int step_one(Floor *f, Step step, size_t i) {
        int r = 0;

        switch (step) {
        case STEP_FREEZE:
                r = ioctl(f->fs->targets[i].fd, FIFREEZE, 0) < 0 ? -errno : 0;
                f->frozen[i] = r == 0;
                break;
        case STEP_SUSPEND:
                r = dm_device_suspend(device_ref(f, i), true);
                f->suspended[i] = r == 0;
                break;
        case STEP_RESUME:
                (void) dm_device_resume(device_ref(f, i), DM_RULES_ALL, &f->cookie);
                f->suspended[i] = false;
                break;
        case STEP_THAW:
                (void) ioctl(f->fs->targets[i].fd, FITHAW, 0);
                f->frozen[i] = false;
                break;
        case STEP_EXIT:
                break;
        }
        return r;
}

static void *crew_main(void *userdata) {
        Floor *f = ((void **) userdata)[0];
        size_t id = (size_t) ((void **) userdata)[1];

        for (;;) {
                pthread_barrier_wait(&f->start);
                if (f->step == STEP_EXIT)
                        return NULL;
                for (size_t i = f->first + id; i < f->last; i += f->n_threads) {
                        int r = step_one(f, f->step, i);

                        if (r < 0 && __atomic_exchange_n(&f->error, r, __ATOMIC_SEQ_CST) == 0)
                                f->failed = i;
                }
                pthread_barrier_wait(&f->end);
        }
}

/* Runs step over items [first, last): in this thread, or on the crew. Returns 0 or the first
 * failure (f->failed says which item). */
static int run_step(Floor *f, Step step, size_t first, size_t last) {
        f->error = 0;
        if (f->n_threads == 0) {
                for (size_t i = first; i < last; i++) {
                        int r = step_one(f, step, i);

                        if (r < 0) {
                                f->failed = i;
                                return r;
                        }
                }
                return 0;
        }
        f->step = step;
        f->first = first;
        f->last = last;
        pthread_barrier_wait(&f->start);
        pthread_barrier_wait(&f->end);
        return f->error;
}

/* Freezes in waves of equal mountpoint depth (the targets are sorted deepest first). */
static size_t depth_of(const char *p) {
        size_t d = 0;

        for (; *p; p++)
                d += *p == '/';
        return d;
}

static int freeze_all(Floor *f) {
        for (size_t first = 0, last; first < f->fs->n_targets; first = last) {
                size_t depth = depth_of(f->fs->targets[first].mountpoint);
                int r;

                for (last = first + 1; last < f->fs->n_targets && depth_of(f->fs->targets[last].mountpoint) == depth; last++)
                        ;
                r = run_step(f, STEP_FREEZE, first, f->n_threads ? last : f->fs->n_targets);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void undo(Floor *f) {
        for (size_t i = 0; i < f->n; i++)
                if (f->suspended[i])
                        (void) dm_device_resume(device_ref(f, i), DM_RULES_ALL, &f->cookie);
        for (size_t i = f->fs->n_targets; i-- > 0;)
                if (f->frozen[i])
                        (void) ioctl(f->fs->targets[i].fd, FITHAW, 0);
        (void) dm_udev_cookie_wait(&f->cookie);
}

static int crew_start(Floor *f, pthread_t *threads, void *(*args)[2]) {
        size_t n = f->n > f->fs->n_targets ? f->n : f->fs->n_targets;

        f->n_threads = n < THREADS_MAX ? n : THREADS_MAX;
        pthread_barrier_init(&f->start, NULL, (unsigned) f->n_threads + 1);
        pthread_barrier_init(&f->end, NULL, (unsigned) f->n_threads + 1);
        for (size_t i = 0; i < f->n_threads; i++) {
                args[i][0] = f;
                args[i][1] = (void *) i;
                if (pthread_create(&threads[i], NULL, crew_main, args[i]) != 0)
                        return -errno;
        }
        return 0;
}

static void crew_stop(Floor *f, pthread_t *threads) {
        size_t n = f->n_threads;

        if (n == 0)
                return;
        f->step = STEP_EXIT;
        pthread_barrier_wait(&f->start);
        for (size_t i = 0; i < n; i++)
                pthread_join(threads[i], NULL);
        f->n_threads = 0;
}

static const char *item_name(const Floor *f, Step step, size_t i, char *const *argv) {
        return step == STEP_FREEZE ? f->fs->targets[i].mountpoint : argv[i];
}

int main(int argc, char *argv[]) {
        static Floor f;
        static pthread_t threads[THREADS_MAX];
        static void *args[THREADS_MAX][2];
        bool parallel = argc > 1 && streq(argv[1], "--parallel");
        char **devices = argv + 1 + parallel;
        uint64_t t[5];
        int r;

        f.n = (size_t) (argc - 1 - parallel);
        if (f.n == 0 || f.n > DEVICES_MAX) {
                fprintf(stderr, "Usage: bench-floor [--parallel] DEVICE... (1 to %d device-mapper devices)\n", DEVICES_MAX);
                return 2;
        }
        for (size_t i = 0; i < f.n; i++) {
                struct stat st;

                if (stat(devices[i], &st) < 0 || !S_ISBLK(st.st_mode)) {
                        fprintf(stderr, "bench-floor: %s: not a block device\n", devices[i]);
                        return 2;
                }
                f.devs[i] = st.st_rdev;
        }
        r = freeze_set_prepare(f.devs, f.n, NULL, &f.fs);
        if (r >= 0)
                r = freeze_set_sync(f.fs, 0);
        if (r >= 0)
                r = dm_udev_cookie_new(&f.cookie);
        if (r >= 0 && parallel)
                r = crew_start(&f, threads, args);
        if (r < 0) {
                fprintf(stderr, "bench-floor: preparing (the filesystems, udev, threads) failed: %s\n", strerror(-r));
                return 1;
        }

        t[0] = now_monotonic_usec();
        r = freeze_all(&f);
        t[1] = now_monotonic_usec();
        if (r >= 0)
                r = run_step(&f, STEP_SUSPEND, 0, f.n);
        t[2] = now_monotonic_usec();
        if (r < 0) {
                fprintf(stderr, "bench-floor: %s %s: %s\n", t[1] == t[2] ? "FIFREEZE" : "suspending",
                        item_name(&f, t[1] == t[2] ? STEP_FREEZE : STEP_SUSPEND, f.failed, devices), strerror(-r));
                crew_stop(&f, threads);
                undo(&f);
                return 1;
        }
        (void) run_step(&f, STEP_RESUME, 0, f.n);
        t[3] = now_monotonic_usec();
        (void) run_step(&f, STEP_THAW, 0, f.fs->n_targets);
        t[4] = now_monotonic_usec();
        crew_stop(&f, threads);
        (void) dm_udev_cookie_wait(&f.cookie);

        printf("{\"n\":%zu,\"filesystems\":%zu,\"parallel\":%s,\"windowUsec\":%llu,\"freezeUsec\":%llu,"
               "\"suspendUsec\":%llu,\"resumeUsec\":%llu,\"thawUsec\":%llu}\n", f.n, f.fs->n_targets,
               parallel ? "true" : "false", (unsigned long long) (t[4] - t[0]), (unsigned long long) (t[1] - t[0]),
               (unsigned long long) (t[2] - t[1]), (unsigned long long) (t[3] - t[2]),
               (unsigned long long) (t[4] - t[3]));
        freeze_set_free(f.fs);
        return 0;
}
