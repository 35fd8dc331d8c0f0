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

#define CREW_STACK_SIZE (64 * 1024)

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

        if (x->depth != y->depth)
                return x->depth > y->depth ? -1 : 1;
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
        *t = (FreezeTarget) { .device = device, .fd = -EBADF, .depth = path_depth(mountpoint) };
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

static int crew_new(FreezeSet *s);

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

        r = crew_new(s);
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

/* Called with the crew's lock held, or with the crew idle. */
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

/* The threads that do the syncfs and FIFREEZE calls, so that the caller can give up at the
 * deadline: it cannot interrupt an ioctl, but it can thaw what is frozen already and return while
 * the stuck calls go on. Each stuck thread then thaws its filesystem the moment its call returns,
 * and ends by itself ("lingers"); the set is freed when the last of them and the owner are done
 * with it.
 *
 * A job is a range of targets (a wave); each thread takes the next target not taken yet, until
 * none is left or a call failed. The owner waits until the calls taken have returned. */
typedef enum CrewJob {
        CREW_IDLE,
        CREW_SYNC,
        CREW_FREEZE,
} CrewJob;

struct FreezeCrew {
        FreezeSet *set;
        pthread_mutex_t lock;
        pthread_cond_t work;    /* to the threads: a job, or the end */
        pthread_cond_t done;    /* to the owner: the job's last call returned */
        pthread_t threads[FREEZE_CREW_MAX];
        size_t n_threads;       /* started */
        size_t n_alive;         /* started and not ended */
        CrewJob job;
        size_t next, end;       /* the job's targets not taken yet: [next, end) */
        size_t in_calls;        /* taken, their call not returned */
        bool failed;            /* a call of the job failed: take no more */
        bool quit;              /* the threads end (when idle, or when their call returns) */
        bool cancelled;         /* the owner gave up at the deadline, and thawed what was frozen */
        bool detached;          /* the owner returned without the stuck threads */
        bool orphaned;          /* freeze_set_free() was called while they lingered */
        void (*on_exit)(void *userdata);
        void *userdata;
};

/* Crews lingering now, and the mountpoint of the last stuck call, for a clear refusal of the
 * next set. */
static atomic_uint lingering = 0;
static char lingering_mountpoint[PATH_MAX];

static void freeze_set_destroy(FreezeSet *s);

static bool job_finished(const FreezeCrew *c) {
        return c->in_calls == 0 && (c->next >= c->end || c->failed);
}

/* One call, with the lock held on entry and on return (dropped around the call). */
static void crew_call(FreezeCrew *c, size_t i) {
        FreezeSet *s = c->set;
        FreezeTarget *t = &s->targets[i];
        bool freeze = c->job == CREW_FREEZE;
        int r;

        t->in_call = true;
        c->in_calls++;
        /* From here on it may be frozen, for the guardian: a daemon that dies inside the ioctl
         * leaves it frozen the moment the ioctl returns. */
        if (freeze)
                mark_undo(t, true);
        pthread_mutex_unlock(&c->lock);

        if (freeze)
                r = ioctl(t->fd, FIFREEZE, 0) < 0 ? -errno : 0;
        else
                r = syncfs(t->fd) < 0 ? -errno : 0;

        pthread_mutex_lock(&c->lock);
        t->in_call = false;
        c->in_calls--;
        if (freeze && r == 0) {
                t->frozen = true;
                s->n_frozen++;
                if (s->kill_after_first_freeze)
                        raise(SIGKILL);
                if (c->cancelled)       /* the owner gave up on us while we were stuck here */
                        (void) freeze_set_thaw(s);
        } else if (freeze)
                mark_undo(t, false);
        if (r < 0 && !c->failed && !c->cancelled) {
                c->failed = true;
                s->failed_index = i;
                s->failed_error = r;
        }
        if (job_finished(c))
                pthread_cond_signal(&c->done);
}

/* The last thread of a crew the owner left behind tells it, and frees the set if it is gone. */
static void crew_thread_end(FreezeCrew *c) {
        FreezeSet *s = c->set;
        void (*on_exit)(void *) = NULL;
        void *userdata = NULL;
        bool last, orphaned;

        pthread_mutex_lock(&c->lock);
        last = --c->n_alive == 0 && c->detached;
        orphaned = c->orphaned;
        if (last) {
                on_exit = c->on_exit;
                userdata = c->userdata;
        }
        pthread_mutex_unlock(&c->lock);

        if (!last)
                return;
        atomic_fetch_sub(&lingering, 1);
        if (on_exit)
                on_exit(userdata);
        if (orphaned)
                freeze_set_destroy(s);
}

static void *crew_main(void *userdata) {
        FreezeCrew *c = userdata;

        pthread_mutex_lock(&c->lock);
        for (;;) {
                while (!c->quit && (c->job == CREW_IDLE || c->failed || c->next >= c->end))
                        pthread_cond_wait(&c->work, &c->lock);
                if (c->quit)
                        break;
                crew_call(c, c->next++);
                if (c->cancelled)       /* stuck past the deadline: the owner has left */
                        break;
        }
        pthread_mutex_unlock(&c->lock);
        crew_thread_end(c);
        return NULL;
}

static int crew_new(FreezeSet *s) {
        FreezeCrew *c = calloc(1, sizeof(FreezeCrew));
        pthread_condattr_t attr;

        if (!c)
                return -ENOMEM;
        c->set = s;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&c->done, &attr);
        pthread_condattr_destroy(&attr);
        pthread_cond_init(&c->work, NULL);
        pthread_mutex_init(&c->lock, NULL);
        s->crew = c;
        return 0;
}

/* One thread per target, at most FREEZE_CREW_MAX; before the window (pthread_create allocates). */
static int crew_start(FreezeCrew *c) {
        size_t want = c->set->n_targets < FREEZE_CREW_MAX ? c->set->n_targets : FREEZE_CREW_MAX;
        pthread_attr_t attr;
        int r = 0;

        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, CREW_STACK_SIZE);
        pthread_mutex_lock(&c->lock);
        while (c->n_threads < want) {
                r = -pthread_create(&c->threads[c->n_threads], &attr, crew_main, c);
                if (r < 0)
                        break;
                c->n_threads++;
                c->n_alive++;
        }
        pthread_mutex_unlock(&c->lock);
        pthread_attr_destroy(&attr);
        return r;
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

/* At the deadline, with the lock held: what is frozen is thawed now, from this thread; the stuck
 * threads are left to finish their calls, and the idle ones to end. */
static int crew_give_up(FreezeCrew *c) {
        FreezeSet *s = c->set;

        c->cancelled = c->quit = true;
        pthread_cond_broadcast(&c->work);
        (void) freeze_set_thaw(s);
        s->failed_index = 0;
        for (size_t i = 0; i < s->n_targets; i++)
                if (s->targets[i].in_call) {
                        s->failed_index = i;
                        break;
                }
        s->failed_error = -ETIMEDOUT;
        c->detached = true;
        snprintf(lingering_mountpoint, sizeof lingering_mountpoint, "%s", s->targets[s->failed_index].mountpoint);
        atomic_fetch_add(&lingering, 1);
        for (size_t i = 0; i < c->n_threads; i++)
                pthread_detach(c->threads[i]);
        return -ETIMEDOUT;
}

/* Runs job on targets [first, end) and waits for it until deadline (NULL: none). Returns 0, the
 * first failure, or -ETIMEDOUT (the crew then lingers). */
static int crew_run(FreezeCrew *c, CrewJob job, size_t first, size_t end, const struct timespec *deadline) {
        int r = 0;

        pthread_mutex_lock(&c->lock);
        c->job = job;
        c->next = first;
        c->end = end;
        c->failed = false;
        pthread_cond_broadcast(&c->work);
        while (!job_finished(c)) {
                if (!deadline)
                        pthread_cond_wait(&c->done, &c->lock);
                else if (pthread_cond_timedwait(&c->done, &c->lock, deadline) == ETIMEDOUT && !job_finished(c)) {
                        r = crew_give_up(c);
                        break;
                }
        }
        if (r == 0) {
                r = c->failed ? c->set->failed_error : 0;
                c->job = CREW_IDLE;
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

/* A crew that gave up once is done for: its stuck calls hold the set. */
static bool crew_usable(const FreezeCrew *c) {
        return c && !c->detached;
}

int freeze_set_sync(FreezeSet *s, uint64_t timeout_usec) {
        struct timespec deadline = deadline_after(timeout_usec);
        int r;

        assert(s);

        if (s->n_targets == 0)
                return 0;
        if (!crew_usable(s->crew))
                return -EBUSY;
        r = crew_start(s->crew);
        if (r < 0)
                return r;
        return crew_run(s->crew, CREW_SYNC, 0, s->n_targets, timeout_usec > 0 ? &deadline : NULL);
}

int freeze_set_freeze(FreezeSet *s, uint64_t timeout_usec) {
        struct timespec deadline = deadline_after(timeout_usec);
        int r = 0;

        assert(s);

        if (s->n_targets == 0)
                return 0;
        if (!crew_usable(s->crew))
                return -EBUSY;    /* a call that never returned holds the set */
        /* Started by freeze_set_sync() already, as the coordinator always syncs first: then
         * nothing is created here, inside the window. */
        r = crew_start(s->crew);
        if (r < 0)
                return r;

        for (size_t first = 0, end; first < s->n_targets && r == 0; first = end) {
                for (end = first + 1; end < s->n_targets && s->targets[end].depth == s->targets[first].depth; end++)
                        ;
                r = crew_run(s->crew, CREW_FREEZE, first, end, timeout_usec > 0 ? &deadline : NULL);
        }
        /* A failure (not a deadline, which thawed already): the crew is idle, thaw what it froze. */
        if (r < 0 && r != -ETIMEDOUT)
                (void) freeze_set_thaw(s);
        return r;
}

bool freeze_set_linger(FreezeSet *s, void (*on_exit)(void *userdata), void *userdata) {
        FreezeCrew *c = s ? s->crew : NULL;
        bool lingers;

        if (!c || !c->detached)
                return false;
        pthread_mutex_lock(&c->lock);
        lingers = c->n_alive > 0;
        if (lingers) {
                c->on_exit = on_exit;
                c->userdata = userdata;
                /* The owner's undo list goes when it returns; the stuck target stays marked there
                 * as maybe frozen, which is what the guardian must know. */
                for (size_t i = 0; i < s->n_targets; i++)
                        s->targets[i].undo = NULL;
        }
        pthread_mutex_unlock(&c->lock);
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
        if (s->crew) {
                pthread_cond_destroy(&s->crew->work);
                pthread_cond_destroy(&s->crew->done);
                pthread_mutex_destroy(&s->crew->lock);
                free(s->crew);
        }
        free(s->targets);
        free(s->covered_mountpoint);
        free(s);
}

FreezeSet *freeze_set_free(FreezeSet *s) {
        FreezeCrew *c;

        if (!s)
                return NULL;
        c = s->crew;
        if (c && c->detached) {
                bool alive;

                pthread_mutex_lock(&c->lock);
                alive = c->n_alive > 0;
                if (alive)
                        c->orphaned = true;   /* the last thread frees it when its call returns */
                pthread_mutex_unlock(&c->lock);
                if (alive)
                        return NULL;
        } else if (c) {
                /* Idle threads: they end at once. */
                pthread_mutex_lock(&c->lock);
                c->quit = true;
                pthread_cond_broadcast(&c->work);
                pthread_mutex_unlock(&c->lock);
                for (size_t i = 0; i < c->n_threads; i++)
                        pthread_join(c->threads[i], NULL);
        }
        freeze_set_destroy(s);
        return NULL;
}
