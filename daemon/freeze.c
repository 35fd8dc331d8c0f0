/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <libmount.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "freeze.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct libmnt_table *, mnt_unref_table);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct libmnt_iter *, mnt_free_iter);

static bool device_in(dev_t d, const dev_t *devices, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (devices[i] == d)
                        return true;
        return false;
}

static size_t path_depth(const char *p) {
        size_t depth = 0;

        for (; *p; p++)
                depth += *p == '/';
        return depth;
}

/* Deepest first, so that a filesystem mounted inside another is frozen before its parent. */
static int compare_depth_descending(const void *a, const void *b) {
        const FreezeTarget *x = a, *y = b;
        size_t dx = path_depth(x->mountpoint), dy = path_depth(y->mountpoint);

        if (dx != dy)
                return dx > dy ? -1 : 1;
        return strcmp(x->mountpoint, y->mountpoint);
}

static bool superblock_listed(const FreezeSet *s, dev_t d) {
        for (size_t i = 0; i < s->n_targets; i++)
                if (s->targets[i].device == d)
                        return true;
        return false;
}

static int freeze_set_add(FreezeSet *s, const char *mountpoint, dev_t device) {
        FreezeTarget *t;

        t = reallocarray(s->targets, s->n_targets + 1, sizeof(FreezeTarget));
        if (!t)
                return -ENOMEM;
        s->targets = t;
        t = &s->targets[s->n_targets];
        *t = (FreezeTarget) { .device = device, .fd = -EBADF };
        t->mountpoint = strdup(mountpoint);
        if (!t->mountpoint)
                return -ENOMEM;
        s->n_targets++;

        /* Opened now: inside the window no path may be resolved (a lookup can need a frozen
         * filesystem's metadata written, e.g. atime). O_RDONLY is all FIFREEZE needs. */
        t->fd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (t->fd < 0)
                return -errno;
        return 0;
}

int freeze_set_prepare(const dev_t *devices, size_t n, const char *mountinfo_path, FreezeSet **ret) {
        _cleanup_(freeze_set_freep) FreezeSet *s = NULL;
        _cleanup_(mnt_unref_tablep) struct libmnt_table *tb = NULL;
        _cleanup_(mnt_free_iterp) struct libmnt_iter *it = NULL;
        struct libmnt_fs *fs;
        int r;

        assert(ret);

        s = calloc(1, sizeof(FreezeSet));
        tb = mnt_new_table();
        it = mnt_new_iter(MNT_ITER_FORWARD);
        if (!s || !tb || !it)
                return -ENOMEM;

        r = mnt_table_parse_file(tb, mountinfo_path ?: "/proc/self/mountinfo");
        if (r < 0)
                return r;

        /* Each superblock once: a bind mount shares the superblock (and its freeze state), so
         * freezing it twice would fail with EBUSY. The first (outermost, by mount order) wins. */
        while (mnt_table_next_fs(tb, it, &fs) == 0) {
                dev_t d = mnt_fs_get_devno(fs);
                const char *target = mnt_fs_get_target(fs);

                if (!target || !device_in(d, devices, n) || superblock_listed(s, d))
                        continue;
                r = freeze_set_add(s, target, d);
                if (r < 0)
                        return r;
        }

        if (s->n_targets > 1)
                qsort(s->targets, s->n_targets, sizeof(FreezeTarget), compare_depth_descending);

        *ret = TAKE_PTR(s);
        return 0;
}

int freeze_set_sync(FreezeSet *s) {
        assert(s);

        for (size_t i = 0; i < s->n_targets; i++)
                if (syncfs(s->targets[i].fd) < 0) {
                        s->failed_index = i;
                        s->failed_error = -errno;
                        return -errno;
                }
        return 0;
}

static int freeze_one(FreezeTarget *t) {
        if (ioctl(t->fd, FIFREEZE, 0) < 0)
                return -errno;
        t->frozen = true;
        return 0;
}

int freeze_set_thaw(FreezeSet *s) {
        int first = 0;

        assert(s);

        for (size_t i = s->n_targets; i-- > 0;) {
                FreezeTarget *t = &s->targets[i];

                if (!t->frozen)
                        continue;
                /* EINVAL means it is not frozen (anymore): someone thawed it; that is the state we
                 * want, so not an error. */
                if (ioctl(t->fd, FITHAW, 0) < 0 && errno != EINVAL) {
                        if (first == 0) {
                                first = -errno;
                                s->failed_index = i;
                                s->failed_error = first;
                        }
                        continue;
                }
                t->frozen = false;
                s->n_frozen--;
        }
        return first;
}

/* Freezes in order until done, cancelled or failed; undoes its own work on failure or
 * cancellation. Returns 0, -ECANCELED, or the failing ioctl's error. */
typedef struct FreezeWorker {
        FreezeSet *set;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool cancelled;
        bool done;
        int result;
} FreezeWorker;

static bool worker_cancelled(FreezeWorker *w) {
        bool c;

        pthread_mutex_lock(&w->lock);
        c = w->cancelled;
        pthread_mutex_unlock(&w->lock);
        return c;
}

static int freeze_all(FreezeSet *s, FreezeWorker *w) {
        for (size_t i = 0; i < s->n_targets; i++) {
                int r;

                if (w && worker_cancelled(w)) {
                        (void) freeze_set_thaw(s);
                        return -ECANCELED;
                }
                r = freeze_one(&s->targets[i]);
                if (r < 0) {
                        s->failed_index = i;
                        s->failed_error = r;
                        (void) freeze_set_thaw(s);
                        return r;
                }
                s->n_frozen++;
        }
        /* Cancelled during the last ioctl: the caller has already given up on us. */
        if (w && worker_cancelled(w)) {
                (void) freeze_set_thaw(s);
                return -ECANCELED;
        }
        return 0;
}

static void *freeze_worker(void *userdata) {
        FreezeWorker *w = userdata;
        int r = freeze_all(w->set, w);

        pthread_mutex_lock(&w->lock);
        w->result = r;
        w->done = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

static struct timespec deadline_after(uint64_t usec) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t) (usec / USEC_PER_SEC);
        ts.tv_nsec += (long) ((usec % USEC_PER_SEC) * NSEC_PER_USEC);
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        return ts;
}

int freeze_set_freeze(FreezeSet *s, uint64_t timeout_usec) {
        FreezeWorker w = { .set = s };
        pthread_condattr_t attr;
        struct timespec deadline;
        pthread_t thread;
        bool timed_out = false;
        int r;

        assert(s);

        if (timeout_usec == 0 || s->n_targets == 0)
                return freeze_all(s, NULL);

        /* FIFREEZE blocks until the filesystem has drained its writers, for as long as that takes.
         * A worker thread does the ioctls so that this thread can give up at the deadline. It
         * cannot interrupt an ioctl, so after the deadline it waits for the worker to finish the
         * one in progress and thaw: when this returns, nothing of the set is frozen. */
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&w.cond, &attr);
        pthread_condattr_destroy(&attr);
        pthread_mutex_init(&w.lock, NULL);

        r = -pthread_create(&thread, NULL, freeze_worker, &w);
        if (r < 0)
                goto finish;

        deadline = deadline_after(timeout_usec);
        pthread_mutex_lock(&w.lock);
        while (!w.done) {
                if (timed_out)
                        pthread_cond_wait(&w.cond, &w.lock);
                else if (pthread_cond_timedwait(&w.cond, &w.lock, &deadline) == ETIMEDOUT && !w.done) {
                        timed_out = true;
                        w.cancelled = true;
                }
        }
        r = w.result;
        pthread_mutex_unlock(&w.lock);
        pthread_join(thread, NULL);

        if (timed_out) {
                r = -ETIMEDOUT;
                if (s->failed_error == 0) {
                        s->failed_index = s->n_frozen;
                        s->failed_error = r;
                }
        }
finish:
        pthread_cond_destroy(&w.cond);
        pthread_mutex_destroy(&w.lock);
        return r;
}

FreezeSet *freeze_set_free(FreezeSet *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_targets; i++) {
                free(s->targets[i].mountpoint);
                safe_close(s->targets[i].fd);
        }
        free(s->targets);
        free(s);
        return NULL;
}
