/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guardian.h"
#include "ratelimit.h"

/* One byte each way on a SOCK_SEQPACKET pair. */
enum {
        MSG_READY = 'R',    /* guardian → daemon: set up, waiting */
        MSG_FIRED = 'F',    /* guardian → daemon: it acted (informational: WindowUndo.fired says it) */
        MSG_WAKE = 'W',     /* daemon → guardian: reread the deadline */
        MSG_DISARM = 'D',   /* daemon → guardian: the window is over, exit */
};

/* How long guardian_start() waits for the guardian to be ready (mlockall of a large daemon may
 * take a moment), and guardian_disarm() for it to be gone. */
#define GUARDIAN_READY_TIMEOUT_MSEC (30 * 1000)
#define GUARDIAN_EXIT_TIMEOUT_MSEC (2 * 1000)
/* The stack of each undo thread: a few ioctls deep. Small, since all of it is locked. */
#define GUARDIAN_THREAD_STACK (64 * 1024)

struct Guardian {
        int fd;             /* the daemon's end of the channel */
};

GuardianAction guardian_decide(GuardianEvent ev, uint64_t now, uint64_t deadline, bool fired,
                               uint64_t *ret_timeout_usec) {
        *ret_timeout_usec = UINT64_MAX;
        switch (ev) {
        case GUARDIAN_EVENT_DISARM:
                return GUARDIAN_EXIT;
        case GUARDIAN_EVENT_HANGUP:
        case GUARDIAN_EVENT_SIGNAL:
                /* Even after firing once: what was frozen or suspended since is undone too. */
                return GUARDIAN_FIRE_AND_EXIT;
        case GUARDIAN_EVENT_NONE:
        case GUARDIAN_EVENT_WAKE:
                break;
        }
        if (fired)
                return GUARDIAN_WAIT;   /* for the daemon to disarm us or die */
        if (now >= deadline)
                return GUARDIAN_FIRE;
        if (deadline != UINT64_MAX)
                *ret_timeout_usec = deadline - now;
        return GUARDIAN_WAIT;
}

/* ---------------------------------------------------------------- the guardian process */

typedef struct UndoJob {
        const WindowUndo *undo;
        UndoVolume *volume;
} UndoJob;

static void *undo_thread(void *userdata) {
        UndoJob *j = userdata;

        window_undo_volume_run(j->undo, j->volume, NULL);
        return NULL;
}

/* Every volume at once. A thread that cannot be made (no memory) leaves its volume to this
 * thread, after the others have started. */
static void fire(WindowUndo *u, UndoJob *jobs, pthread_t *threads, bool *started, const pthread_attr_t *attr) {
        atomic_store(&u->fired, true);
        for (size_t i = 0; i < u->n_volumes; i++) {
                jobs[i] = (UndoJob) { .undo = u, .volume = &u->volumes[i] };
                started[i] = pthread_create(&threads[i], attr, undo_thread, &jobs[i]) == 0;
        }
        for (size_t i = 0; i < u->n_volumes; i++)
                if (!started[i])
                        window_undo_volume_run(u, &u->volumes[i], NULL);
        for (size_t i = 0; i < u->n_volumes; i++)
                if (started[i])
                        (void) pthread_join(threads[i], NULL);
}

static int compare_int(const void *a, const void *b) {
        int x = *(const int *) a, y = *(const int *) b;

        return x < y ? -1 : x > y;
}

/* Closes every descriptor but the ones in keep (n of them, sorted here). */
static void close_all_but(int *keep, size_t n) {
        int from = 3;

        qsort(keep, n, sizeof(int), compare_int);
        for (size_t i = 0; i < n; i++) {
                if (keep[i] < from)
                        continue;
                if (keep[i] > from)
                        (void) close_range((unsigned) from, (unsigned) keep[i] - 1, 0);
                from = keep[i] + 1;
        }
        (void) close_range((unsigned) from, ~0U, 0);
}

static GuardianEvent read_event(int fd, int sigfd, const struct pollfd *p) {
        if (p[1].revents & POLLIN) {
                struct signalfd_siginfo si;
                ssize_t k = read(sigfd, &si, sizeof si);   /* which one does not matter */

                (void) k;
                return GUARDIAN_EVENT_SIGNAL;
        }
        if (p[0].revents & POLLIN) {
                char c;
                ssize_t k = recv(fd, &c, 1, MSG_DONTWAIT);

                if (k == 1)
                        return c == MSG_DISARM ? GUARDIAN_EVENT_DISARM : GUARDIAN_EVENT_WAKE;
                if (k == 0 || (errno != EAGAIN && errno != EINTR))
                        return GUARDIAN_EVENT_HANGUP;
                return GUARDIAN_EVENT_NONE;
        }
        if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))
                return GUARDIAN_EVENT_HANGUP;
        return GUARDIAN_EVENT_NONE;
}

/* Everything before the guardian waits: signals read rather than obeyed (the window is undone
 * first), only the descriptors undoing needs (the rest, clients' connections and the listening
 * socket, must close with the daemon; the journal stream too: nothing is logged), and all of its
 * memory resident, now and later (thread stacks): a page fault inside the window could need a
 * page from a frozen filesystem, and inherited locks do not survive fork(). Returns the
 * signalfd. */
static int guardian_setup(WindowUndo *u, int fd, int *keep) {
        static const int signals[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT };
        size_t n_keep = 0;
        sigset_t mask;
        int sigfd, null;

        (void) prctl(PR_SET_NAME, "snapset-guard");
        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(signals); i++)
                sigaddset(&mask, signals[i]);
        (void) sigprocmask(SIG_SETMASK, &mask, NULL);
        (void) signal(SIGPIPE, SIG_IGN);
        sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

        null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
                (void) dup2(null, STDIN_FILENO);
                (void) dup2(null, STDOUT_FILENO);
                (void) dup2(null, STDERR_FILENO);
        }
        keep[n_keep++] = fd;
        keep[n_keep++] = sigfd;
        keep[n_keep++] = u->control_fd;
        for (size_t i = 0; i < u->n_volumes; i++)
                keep[n_keep++] = u->volumes[i].fs_fd;
        close_all_but(keep, n_keep);

        (void) mlockall(MCL_CURRENT | MCL_FUTURE);
        return sigfd;
}

static int poll_timeout_msec(uint64_t timeout_usec) {
        if (timeout_usec == UINT64_MAX)
                return -1;
        /* Rounded up, so that the deadline has passed when poll() returns. */
        return timeout_usec / USEC_PER_MSEC >= INT_MAX ? INT_MAX : (int) (timeout_usec / USEC_PER_MSEC) + 1;
}

_noreturn_ static void guardian_main(WindowUndo *u, int fd) {
        UndoJob *jobs = calloc(u->n_volumes ?: 1, sizeof(UndoJob));
        pthread_t *threads = calloc(u->n_volumes ?: 1, sizeof(pthread_t));
        bool *started = calloc(u->n_volumes ?: 1, sizeof(bool));
        int *keep = calloc(u->n_volumes + 3, sizeof(int));
        pthread_attr_t attr;
        int sigfd;
        char c;

        if (!jobs || !threads || !started || !keep)
                _exit(EXIT_FAILURE);
        sigfd = guardian_setup(u, fd, keep);
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, GUARDIAN_THREAD_STACK);

        c = MSG_READY;
        if (send(fd, &c, 1, MSG_NOSIGNAL) != 1)
                _exit(EXIT_FAILURE);

        for (GuardianEvent ev = GUARDIAN_EVENT_NONE;;) {
                struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = sigfd, .events = POLLIN } };
                uint64_t timeout;

                switch (guardian_decide(ev, now_monotonic_usec(), atomic_load(&u->deadline_usec),
                                        atomic_load(&u->fired), &timeout)) {
                case GUARDIAN_EXIT:
                        _exit(EXIT_SUCCESS);
                case GUARDIAN_FIRE_AND_EXIT:
                        fire(u, jobs, threads, started, &attr);
                        _exit(EXIT_SUCCESS);
                case GUARDIAN_FIRE:
                        fire(u, jobs, threads, started, &attr);
                        c = MSG_FIRED;
                        (void) send(fd, &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                        ev = GUARDIAN_EVENT_NONE;
                        continue;
                case GUARDIAN_WAIT:
                        break;
                }
                ev = poll(p, 2, poll_timeout_msec(timeout)) < 0 ? GUARDIAN_EVENT_NONE : read_event(fd, sigfd, p);
        }
}

/* ---------------------------------------------------------------- the daemon's side */

static int wait_for_byte(int fd, int timeout_msec, char *ret) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r;

        do
                r = poll(&p, 1, timeout_msec);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (r == 0)
                return -ETIMEDOUT;
        r = (int) recv(fd, ret, 1, MSG_DONTWAIT);
        if (r < 0)
                return -errno;
        return r == 0 ? -EPIPE : 0;
}

int guardian_start(WindowUndo *u, Guardian **ret) {
        _cleanup_free_ Guardian *g = NULL;
        int pair[2], status;
        pid_t pid;
        char c;
        int r;

        assert(u);
        assert(ret);

        g = malloc(sizeof(Guardian));
        if (!g)
                return -ENOMEM;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;

        pid = fork();
        if (pid < 0) {
                r = -errno;
                safe_close(pair[0]);
                safe_close(pair[1]);
                return r;
        }
        if (pid == 0) {
                /* Forked once more, so that the guardian is nobody's child to reap: PID 1 adopts
                 * it when this one exits. */
                safe_close(pair[0]);
                pid = fork();
                if (pid != 0)
                        _exit(pid < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
                guardian_main(u, pair[1]);
        }

        safe_close(pair[1]);
        g->fd = pair[0];
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;

        r = wait_for_byte(g->fd, GUARDIAN_READY_TIMEOUT_MSEC, &c);
        if (r >= 0 && c != MSG_READY)
                r = -EPROTO;
        if (r < 0) {
                safe_close(g->fd);
                return r;
        }
        *ret = TAKE_PTR(g);
        return 0;
}

void guardian_wake(Guardian *g) {
        char c = MSG_WAKE;

        if (g)
                (void) send(g->fd, &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void guardian_disarm(Guardian *g) {
        uint64_t give_up = now_monotonic_usec() + GUARDIAN_EXIT_TIMEOUT_MSEC * USEC_PER_MSEC;
        char c = MSG_DISARM;

        if (!g)
                return;
        if (send(g->fd, &c, 1, MSG_NOSIGNAL) == 1)
                /* Until it is gone (end of file): a MSG_FIRED on the way is passed over. */
                for (uint64_t now; (now = now_monotonic_usec()) < give_up;)
                        if (wait_for_byte(g->fd, (int) ((give_up - now) / USEC_PER_MSEC) + 1, &c) < 0)
                                break;
        safe_close(g->fd);
        free(g);
}

Guardian *guardian_free(Guardian *g) {
        if (!g)
                return NULL;
        safe_close(g->fd);
        free(g);
        return NULL;
}
