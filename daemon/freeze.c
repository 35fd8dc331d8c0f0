/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <libmount.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdatomic.h>
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
        struct stat st;
        int r;

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
        /* What the path leads to now must be that filesystem: another one mounted over it
         * (a container, an automount) or an unmount since the mount table was read would make
         * FIFREEZE freeze the wrong one, possibly "/". */
        r = fstat(t->fd, &st) < 0 ? -errno : st.st_dev != device ? -EXDEV : 0;
        if (r < 0) {
                safe_close(t->fd);
                free(t->mountpoint);
                s->n_targets--;
        }
        return r;
}

static int worker_new(FreezeSet *s);

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

        r = worker_new(s);
        if (r < 0)
                return r;
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
                /* -EXDEV, covered: another mount of the same superblock may still be reachable. */
                if (r < 0 && r != -EXDEV)
                        return r;
        }
        /* A filesystem of the set that is mounted, but reachable through none of its paths. */
        mnt_reset_iter(it, MNT_ITER_FORWARD);
        while (mnt_table_next_fs(tb, it, &fs) == 0) {
                dev_t d = mnt_fs_get_devno(fs);

                if (!mnt_fs_get_target(fs) || !device_in(d, devices, n) || superblock_listed(s, d))
                        continue;
                s->covered_mountpoint = strdup(mnt_fs_get_target(fs));
                if (!s->covered_mountpoint)
                        return -ENOMEM;
                s->covered_device = d;
                *ret = TAKE_PTR(s);
                return -EXDEV;
        }

        if (s->n_targets > 1)
                qsort(s->targets, s->n_targets, sizeof(FreezeTarget), compare_depth_descending);

        *ret = TAKE_PTR(s);
        return 0;
}

static void mark_undo(FreezeTarget *t, bool maybe_frozen) {
        if (t->undo)
                atomic_store(&t->undo->frozen, maybe_frozen);
}

/* Called with the worker's lock held, or with no worker running. */
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
                mark_undo(t, false);
                if (s->kill_after_first_thaw)
                        raise(SIGKILL);
        }
        return first;
}

/* The thread that does the FIFREEZEs, so that the caller can give up at the deadline: it cannot
 * interrupt an ioctl, but it can thaw what is frozen already and return while the stuck one
 * goes on. The worker then thaws that one the moment it returns, and ends by itself
 * ("lingers"); its set is freed when both it and the owner are done with it. */
struct FreezeWorker {
        FreezeSet *set;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool sync_only;         /* the job: syncfs every target, or FIFREEZE every target */
        size_t current;         /* the target being synced or frozen */
        bool cancelled;         /* the caller gave up (deadline) */
        bool done;
        bool detached;          /* the caller returned without it */
        bool orphaned;          /* freeze_set_free() was called while it lingered */
        int result;
        void (*on_exit)(void *userdata);
        void *userdata;
};

/* Freezes lingering now, and the mountpoint of the last one, for a clear refusal of the next set. */
static atomic_uint lingering = 0;
static char lingering_mountpoint[PATH_MAX];

static void freeze_set_destroy(FreezeSet *s);

/* The freezing job: in order, each target marked for the guardian first; stops at the first
 * failure (and thaws what it froze) or when cancelled (the caller thawed what was frozen; the
 * one this thread was stuck on is thawed here). Returns 0, -ECANCELED or the failing errno. */
static int freeze_job(FreezeWorker *w) {
        FreezeSet *s = w->set;
        bool cancelled = false;
        int r = 0;

        for (size_t i = 0; i < s->n_targets && !cancelled; i++) {
                FreezeTarget *t = &s->targets[i];

                pthread_mutex_lock(&w->lock);
                cancelled = w->cancelled;
                w->current = i;
                /* From here on it may be frozen, for the guardian: a daemon that dies inside the
                 * ioctl leaves it frozen the moment the ioctl returns. */
                if (!cancelled)
                        mark_undo(t, true);
                pthread_mutex_unlock(&w->lock);
                if (cancelled)
                        break;

                r = ioctl(t->fd, FIFREEZE, 0) < 0 ? -errno : 0;

                pthread_mutex_lock(&w->lock);
                cancelled = w->cancelled;
                if (r == 0) {
                        t->frozen = true;
                        s->n_frozen++;
                        if (s->kill_after_first_freeze)
                                raise(SIGKILL);
                        if (cancelled)      /* the caller gave up on us while we were stuck here */
                                (void) freeze_set_thaw(s);
                } else {
                        mark_undo(t, false);
                        if (!cancelled) {
                                s->failed_index = i;
                                s->failed_error = r;
                                (void) freeze_set_thaw(s);
                        }
                }
                pthread_mutex_unlock(&w->lock);
                if (r < 0)
                        break;
        }
        return cancelled ? -ECANCELED : r;
}

/* The syncing job, before the window: nothing to undo, so a cancellation only stops it. */
static int sync_job(FreezeWorker *w) {
        FreezeSet *s = w->set;

        for (size_t i = 0; i < s->n_targets; i++) {
                bool cancelled;
                int r;

                pthread_mutex_lock(&w->lock);
                cancelled = w->cancelled;
                w->current = i;
                pthread_mutex_unlock(&w->lock);
                if (cancelled)
                        return -ECANCELED;

                r = syncfs(s->targets[i].fd) < 0 ? -errno : 0;
                if (r < 0) {
                        pthread_mutex_lock(&w->lock);
                        if (!w->cancelled) {
                                s->failed_index = i;
                                s->failed_error = r;
                        }
                        pthread_mutex_unlock(&w->lock);
                        return r;
                }
        }
        return 0;
}

static void *worker_main(void *userdata) {
        FreezeWorker *w = userdata;
        FreezeSet *s = w->set;
        void (*on_exit)(void *);
        void *on_exit_userdata;
        bool detached, orphaned;
        int r;

        r = w->sync_only ? sync_job(w) : freeze_job(w);

        pthread_mutex_lock(&w->lock);
        w->result = r;
        w->done = true;
        detached = w->detached;
        orphaned = w->orphaned;
        on_exit = w->on_exit;
        on_exit_userdata = w->userdata;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);

        if (detached) {
                atomic_fetch_sub(&lingering, 1);
                if (on_exit)
                        on_exit(on_exit_userdata);
                if (orphaned)
                        freeze_set_destroy(s);
        }
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

static int worker_new(FreezeSet *s) {
        FreezeWorker *w = calloc(1, sizeof(FreezeWorker));
        pthread_condattr_t attr;

        if (!w)
                return -ENOMEM;
        w->set = s;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&w->cond, &attr);
        pthread_condattr_destroy(&attr);
        pthread_mutex_init(&w->lock, NULL);
        s->worker = w;
        return 0;
}

/* Runs the job on the worker, and waits for it until the deadline (timeout_usec 0: none). At the
 * deadline, what is frozen is thawed now, from this thread, and the worker is left to finish the
 * call it is stuck in by itself. */
static int run_job(FreezeSet *s, bool sync_only, uint64_t timeout_usec) {
        FreezeWorker *w;
        struct timespec deadline;
        pthread_attr_t attr;
        int r;

        assert(s);

        if (s->n_targets == 0)
                return 0;
        w = s->worker;
        if (!w || w->detached)
                return -EBUSY;   /* a job that never returned holds the set */
        w->sync_only = sync_only;
        w->cancelled = w->done = false;

        /* A small stack: the daemon's memory is locked, all of it would be made resident. */
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        r = -pthread_create(&w->thread, &attr, worker_main, w);
        pthread_attr_destroy(&attr);
        if (r < 0)
                return r;

        deadline = deadline_after(timeout_usec);
        pthread_mutex_lock(&w->lock);
        while (!w->done) {
                if (timeout_usec == 0)
                        pthread_cond_wait(&w->cond, &w->lock);
                else if (pthread_cond_timedwait(&w->cond, &w->lock, &deadline) == ETIMEDOUT && !w->done)
                        break;
        }
        if (w->done) {
                r = w->result;
                pthread_mutex_unlock(&w->lock);
                pthread_join(w->thread, NULL);
                return r;
        }

        w->cancelled = true;
        (void) freeze_set_thaw(s);
        s->failed_index = w->current;
        s->failed_error = -ETIMEDOUT;
        w->detached = true;
        snprintf(lingering_mountpoint, sizeof lingering_mountpoint, "%s", s->targets[w->current].mountpoint);
        atomic_fetch_add(&lingering, 1);
        pthread_mutex_unlock(&w->lock);
        pthread_detach(w->thread);
        return -ETIMEDOUT;
}

int freeze_set_sync(FreezeSet *s, uint64_t timeout_usec) {
        return run_job(s, true, timeout_usec);
}

int freeze_set_freeze(FreezeSet *s, uint64_t timeout_usec) {
        return run_job(s, false, timeout_usec);
}

bool freeze_set_linger(FreezeSet *s, void (*on_exit)(void *userdata), void *userdata) {
        FreezeWorker *w = s ? s->worker : NULL;
        bool lingers;

        if (!w || !w->detached)
                return false;
        pthread_mutex_lock(&w->lock);
        lingers = !w->done;
        if (lingers) {
                w->on_exit = on_exit;
                w->userdata = userdata;
                /* The owner's undo list goes when it returns; the stuck target stays marked there
                 * as maybe frozen, which is what the guardian must know. */
                for (size_t i = 0; i < s->n_targets; i++)
                        s->targets[i].undo = NULL;
        }
        pthread_mutex_unlock(&w->lock);
        return lingers;
}

const char *freeze_lingering(void) {
        return atomic_load(&lingering) > 0 ? lingering_mountpoint : NULL;
}

static void freeze_set_destroy(FreezeSet *s) {
        for (size_t i = 0; i < s->n_targets; i++) {
                free(s->targets[i].mountpoint);
                safe_close(s->targets[i].fd);
        }
        if (s->worker) {
                pthread_cond_destroy(&s->worker->cond);
                pthread_mutex_destroy(&s->worker->lock);
                free(s->worker);
        }
        free(s->targets);
        free(s->covered_mountpoint);
        free(s);
}

FreezeSet *freeze_set_free(FreezeSet *s) {
        FreezeWorker *w;

        if (!s)
                return NULL;
        w = s->worker;
        if (w && w->detached) {
                bool done;

                pthread_mutex_lock(&w->lock);
                done = w->done;
                if (!done)
                        w->orphaned = true;   /* the worker frees it when its ioctl returns */
                pthread_mutex_unlock(&w->lock);
                if (!done)
                        return NULL;
        }
        freeze_set_destroy(s);
        return NULL;
}
