/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>

#include "log.h"
#include "command.h"
#include "time-util.h"

/* Grown as needed outside the window. */
#define DYNAMIC_BUFFER_INITIAL 4096
/* A killed command gets this long to die before it is abandoned (reaped later). */
#define KILL_GRACE_USEC (500 * USEC_PER_MSEC)

/* ---------------------------------------------------------------- the executable */

static char *executable_in(const char *dir, const char *name) {
        char *p;

        if (dir[0] != '/' || asprintf(&p, "%s/%s", dir, name) < 0)
                return NULL;
        if (access(p, X_OK) >= 0)
                return p;
        free(p);
        return NULL;
}

char *command_find_executable(const char *name) {
        static const char *const fixed[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };
        _cleanup_free_ char *copy = NULL;
        const char *path = getenv("PATH");
        char *save = NULL, *p;

        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                if ((p = executable_in(fixed[i], name)))
                        return p;
        if (!path || !(copy = strdup(path)))
                return NULL;
        for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save))
                if ((p = executable_in(dir, name)))
                        return p;
        return NULL;
}

static void abandon(Command *c);
static void kill_command(const Command *c);

/* ---------------------------------------------------------------- building */

static int argv_push(Command *c, char *arg) {
        char **grown = reallocarray(c->argv, c->n_argv + 2, sizeof(char *));

        if (!grown) {
                free(arg);
                return -ENOMEM;
        }
        c->argv = grown;
        c->argv[c->n_argv++] = arg;
        c->argv[c->n_argv] = NULL;
        return 0;
}

int command_add(Command *c, const char *arg) {
        char *copy = strdup(arg);

        return copy ? argv_push(c, copy) : -ENOMEM;
}

int command_addf(Command *c, const char *format, ...) {
        va_list ap;
        char *s;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        return r < 0 ? -ENOMEM : argv_push(c, s);
}

int command_new(const char *executable, bool fixed_buffers, size_t buffer_size, Command **ret) {
        _cleanup_(command_freep) Command *c = NULL;
        int r;

        c = calloc(1, sizeof(Command));
        if (!c)
                return -ENOMEM;
        *c = (Command) { .out_fd = -EBADF, .err_fd = -EBADF, .exit_status = -1, .fixed_buffers = fixed_buffers };
        c->out_size = c->err_size = fixed_buffers ? buffer_size : DYNAMIC_BUFFER_INITIAL;
        c->out = malloc(c->out_size + 1);
        c->err = malloc(c->err_size + 1);
        if (!c->out || !c->err)
                return -ENOMEM;
        c->out[0] = c->err[0] = 0;
        r = command_add(c, executable);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

Command *command_free(Command *c) {
        if (!c)
                return NULL;
        /* A command still running is not waited for here: it is killed and reaped later. */
        if (c->pid > 0) {
                kill_command(c);
                abandon(c);
        }
        safe_close(c->out_fd);
        safe_close(c->err_fd);
        for (size_t i = 0; i < c->n_argv; i++)
                free(c->argv[i]);
        free(c->argv);
        strv_free(c->envp);
        free(c->out);
        free(c->err);
        free(c);
        return NULL;
}

int command_line(const Command *c, char **ret) {
        size_t len = 0;
        char *s, *p;

        for (size_t i = 0; i < c->n_argv; i++)
                len += strlen(c->argv[i]) + 1;
        s = malloc(len + 1);
        if (!s)
                return -ENOMEM;
        p = s;
        for (size_t i = 0; i < c->n_argv; i++)
                p += sprintf(p, "%s%s", i ? " " : "",
                             i == 0 && strrchr(c->argv[0], '/') ? strrchr(c->argv[0], '/') + 1 : c->argv[i]);
        *ret = s;
        return 0;
}

/* ---------------------------------------------------------------- the environment */

static char **command_environment(void) {
        static char *env[16];
        static bool made = false;
        static char lvm_system_dir[4096 + 32], dm_disable_udev[64];
        size_t n = 0;
        const char *v;

        if (made)
                return env;
        env[n++] = (char *) "LC_ALL=C";
        env[n++] = (char *) "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
        /* lvm's shell keeps a history in $HOME; nothing a command does may write to a
         * filesystem that may be frozen: /run is tmpfs, never part of a set. */
        env[n++] = (char *) "HOME=/run";
        env[n++] = (char *) "LVM_SUPPRESS_SYSLOG=1";
        env[n++] = (char *) "LVM_SUPPRESS_FD_WARNINGS=1";
        if ((v = getenv("LVM_SYSTEM_DIR")) && strlen(v) < 4096) {
                snprintf(lvm_system_dir, sizeof lvm_system_dir, "LVM_SYSTEM_DIR=%s", v);
                env[n++] = lvm_system_dir;
        }
        if ((v = getenv("DM_DISABLE_UDEV")) && strlen(v) < 32) {
                snprintf(dm_disable_udev, sizeof dm_disable_udev, "DM_DISABLE_UDEV=%s", v);
                env[n++] = dm_disable_udev;
        }
        env[n] = NULL;
        made = true;
        return env;
}

/* ---------------------------------------------------------------- running */

/* Commands killed that did not die in time; reaped by command_reap_abandoned(). Commands run on
 * the job thread and on the loop at once (lvm or a hook's, and systemd-analyze for GetStatus): the
 * list is shared, under its lock. It is held only to scan or append to the list (no allocation, no
 * system call but waitpid(WNOHANG)), so taking it inside the window never waits long. */
static pid_t abandoned[64];
static size_t n_abandoned;
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;

void command_reap_abandoned(void) {
        pthread_mutex_lock(&abandoned_lock);
        for (size_t i = 0; i < n_abandoned;) {
                if (waitpid(abandoned[i], NULL, WNOHANG) != 0) {
                        abandoned[i] = abandoned[--n_abandoned];
                        continue;
                }
                i++;
        }
        pthread_mutex_unlock(&abandoned_lock);
}

/* SIGKILL to the command, or to its whole process group when it has one. */
static void kill_command(const Command *c) {
        if (c->process_group)
                (void) kill(-c->pid, SIGKILL);
        (void) kill(c->pid, SIGKILL);
}

static void abandon(Command *c) {
        pthread_mutex_lock(&abandoned_lock);
        if (n_abandoned < ELEMENTSOF(abandoned))
                abandoned[n_abandoned++] = c->pid;
        pthread_mutex_unlock(&abandoned_lock);
        c->abandoned = true;
        c->pid = 0;
}

int command_start(Command *c) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        int out[2] = { -EBADF, -EBADF }, err[2] = { -EBADF, -EBADF };
        pid_t pid;
        int r;

        if (c->pid > 0)
                return -EBUSY;
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
                r = -errno;
                goto fail;
        }
        r = -posix_spawn_file_actions_init(&fa);
        if (r < 0)
                goto fail;
        r = -posix_spawnattr_init(&attr);
        if (r < 0) {
                posix_spawn_file_actions_destroy(&fa);
                goto fail;
        }
        /* The caller's thread blocks signals (the daemon reads its own through a signalfd, and
         * the job thread blocks all) and ignores SIGPIPE: the command starts with none of that. */
        sigemptyset(&none);
        sigfillset(&all);
        r = -posix_spawnattr_setsigmask(&attr, &none);
        if (r >= 0)
                r = -posix_spawnattr_setsigdefault(&attr, &all);
        if (r >= 0)
                r = -posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                     (c->process_group ? POSIX_SPAWN_SETPGROUP : 0));
        if (r >= 0 && c->process_group)
                r = -posix_spawnattr_setpgroup(&attr, 0);
        /* stdin: nothing (lvm would otherwise ask questions; every lvm command says -y or -f
         * where it could), stdout and stderr: ours. */
        if (r >= 0)
                r = -posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        if (r >= 0)
                r = -posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        if (r >= 0)
                r = -posix_spawn_file_actions_adddup2(&fa, err[1], 2);
        if (r >= 0)
                r = -posix_spawn(&pid, c->argv[0], &fa, &attr, c->argv, c->envp ?: command_environment());
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r < 0)
                goto fail;
        safe_close(out[1]);
        safe_close(err[1]);
        (void) fcntl(out[0], F_SETFL, O_NONBLOCK);
        (void) fcntl(err[0], F_SETFL, O_NONBLOCK);
        c->out_fd = out[0];
        c->err_fd = err[0];
        c->out_len = c->err_len = 0;
        c->out[0] = c->err[0] = 0;
        c->out_truncated = c->err_truncated = c->timed_out = c->abandoned = false;
        c->exit_status = -1;
        c->exited_usec = 0;
        c->pid = pid;
        return 0;

fail:
        safe_close(out[0]);
        safe_close(out[1]);
        safe_close(err[0]);
        safe_close(err[1]);
        return r;
}

/* Reads what is there into the buffer; closes fd at EOF. */
static void drain(int *fd, char **buf, size_t *len, size_t *size, bool fixed, bool *truncated) {
        for (;;) {
                char scratch[4096];
                ssize_t n;

                if (!fixed && *size - *len < 1024) {
                        char *grown = realloc(*buf, *size * 2 + 1);

                        if (grown) {
                                *buf = grown;
                                *size *= 2;
                        }
                }
                if (*len < *size)
                        n = read(*fd, *buf + *len, *size - *len);
                else
                        n = read(*fd, scratch, sizeof scratch);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        *fd = safe_close(*fd);
                        return;
                }
                if (*len < *size)
                        *len += (size_t) n;
                else
                        *truncated = true;
                (*buf)[*len] = 0;
        }
}

static void reap(Command *c) {
        int status;

        if (c->pid <= 0 || waitpid(c->pid, &status, WNOHANG) != c->pid)
                return;
        c->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        c->pid = 0;
        c->exited_usec = now_monotonic_usec();
}

/* Past its output grace, a command that has exited is done with: its pipes are closed. */
static void end_output_grace(Command *c) {
        if (c->output_grace_usec == 0 || c->pid > 0 || c->exited_usec == 0 ||
            now_monotonic_usec() < c->exited_usec + c->output_grace_usec)
                return;
        c->out_fd = safe_close(c->out_fd);
        c->err_fd = safe_close(c->err_fd);
}

static bool finished(const Command *c) {
        return c->pid <= 0 && c->out_fd < 0 && c->err_fd < 0;
}

/* One round: poll the pipes of every unfinished command until timeout_ms, read, reap. NULL
 * entries in cmds (here and below) stand for no command: a caller's slots. */
static void poll_round(Command *const *cmds, size_t n, int timeout_ms) {
        struct pollfd pfd[2 * 32];
        size_t k = 0;

        for (size_t i = 0; i < n && k + 2 <= ELEMENTSOF(pfd); i++) {
                if (!cmds[i])
                        continue;
                if (cmds[i]->out_fd >= 0)
                        pfd[k++] = (struct pollfd) { .fd = cmds[i]->out_fd, .events = POLLIN };
                if (cmds[i]->err_fd >= 0)
                        pfd[k++] = (struct pollfd) { .fd = cmds[i]->err_fd, .events = POLLIN };
        }
        /* A command whose pipes are closed may still be exiting: poll() with nothing, a short
         * sleep, then reap. */
        (void) poll(pfd, k, timeout_ms);
        for (size_t i = 0; i < n; i++) {
                Command *c = cmds[i];

                if (!c)
                        continue;
                if (c->out_fd >= 0)
                        drain(&c->out_fd, &c->out, &c->out_len, &c->out_size, c->fixed_buffers, &c->out_truncated);
                if (c->err_fd >= 0)
                        drain(&c->err_fd, &c->err, &c->err_len, &c->err_size, c->fixed_buffers, &c->err_truncated);
                reap(c);
                end_output_grace(c);
        }
}

static int remaining_ms(uint64_t deadline_usec, int cap_ms) {
        uint64_t now = now_monotonic_usec();
        uint64_t ms;

        if (now >= deadline_usec)
                return 0;
        ms = (deadline_usec - now + 999) / 1000;
        return ms > (uint64_t) cap_ms ? cap_ms : (int) ms;
}

/* Kills what still runs at a deadline, gives it a moment to die, abandons what will not. */
static void kill_running(Command *const *cmds, size_t n) {
        uint64_t grace_end;
        bool all_dead;

        for (size_t i = 0; i < n; i++)
                if (cmds[i] && cmds[i]->pid > 0) {
                        kill_command(cmds[i]);
                        cmds[i]->timed_out = true;
                }
        grace_end = now_monotonic_usec() + KILL_GRACE_USEC;
        while (now_monotonic_usec() < grace_end) {
                all_dead = true;
                poll_round(cmds, n, remaining_ms(grace_end, 20));
                for (size_t i = 0; i < n; i++)
                        all_dead = all_dead && (!cmds[i] || cmds[i]->pid <= 0);
                if (all_dead)
                        break;
        }
        for (size_t i = 0; i < n; i++) {
                Command *c = cmds[i];

                if (!c)
                        continue;
                if (c->pid > 0)
                        abandon(c);
                c->out_fd = safe_close(c->out_fd);
                c->err_fd = safe_close(c->err_fd);
        }
}

static bool settled(const Command *c) {
        return !c || finished(c) || c->abandoned;
}

/* Waits until every command (any=false) or at least one that was running on entry (any=true)
 * has finished, or the deadline passes: then everything still running is killed. */
static int wait_commands(Command *const *cmds, size_t n, uint64_t deadline_usec, bool any) {
        bool was_running[64] = {};

        for (size_t i = 0; i < n && i < ELEMENTSOF(was_running); i++)
                was_running[i] = !settled(cmds[i]);
        for (;;) {
                bool all = true, one = false;

                for (size_t i = 0; i < n; i++) {
                        all = all && settled(cmds[i]);
                        one = one || (i < ELEMENTSOF(was_running) && was_running[i] && settled(cmds[i]));
                }
                if (all || (any && one))
                        return 0;
                if (now_monotonic_usec() >= deadline_usec)
                        break;
                /* With the pipes closed, poll() returns at once: a short cap, so that the exit
                 * is noticed soon after. */
                poll_round(cmds, n, remaining_ms(deadline_usec, 20));
        }
        kill_running(cmds, n);
        return -ETIMEDOUT;
}

int commands_wait(Command *const *cmds, size_t n, uint64_t deadline_usec) {
        return wait_commands(cmds, n, deadline_usec, false);
}

int commands_wait_any(Command *const *cmds, size_t n, uint64_t deadline_usec) {
        return wait_commands(cmds, n, deadline_usec, true);
}

void commands_poll(Command *const *cmds, size_t n, int timeout_ms) {
        poll_round(cmds, n, timeout_ms);
}

void commands_kill(Command *const *cmds, size_t n) {
        kill_running(cmds, n);
}

bool command_finished(const Command *c) {
        return c && settled(c);
}

int command_run(Command *c, uint64_t timeout_usec) {
        int r;

        command_reap_abandoned();
        r = command_start(c);
        if (r < 0)
                return r;
        return commands_wait(&c, 1, now_monotonic_usec() + timeout_usec);
}
