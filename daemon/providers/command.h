/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Running a helper program (lvm, mkfs): always an argument vector handed to posix_spawn(),
 * never a shell, so that nothing a caller names is ever parsed by one.
 *
 * Every command runs with a deadline. Several can run at once (lvm commands on different volume
 * groups do not wait for each other's lock), and commands_wait() reads their output and reaps
 * them in one poll() loop. A command still running at its deadline is killed; one that does not
 * even die then (a process in uninterruptible sleep on a device) is not waited for but reaped
 * later, so that the caller can go on: resume, thaw, undo.
 *
 * The environment is fixed, not inherited: LC_ALL=C (messages are matched), LVM_SUPPRESS_SYSLOG=1
 * and HOME in /run (nothing a command does may write to a filesystem that a set may have
 * frozen), LVM_SUPPRESS_FD_WARNINGS=1; LVM_SYSTEM_DIR and DM_DISABLE_UDEV pass through from the
 * daemon's own environment when set.
 *
 * Inside the freeze window a command is started from a fully built Command (argument vector,
 * environment and output buffers all made before): starting and waiting then allocate nothing
 * of ours, look up no path but the executable's, and log nothing. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"
#include "time-util.h"

typedef struct Command {
        char **argv;                 /* NULL-terminated; argv[0] is the executable's path */
        size_t n_argv;
        pid_t pid;                   /* > 0 while running */
        int out_fd, err_fd;          /* our ends of its stdout and stderr */
        /* Captured output. With fixed_buffers (commands for the window) they never grow: what
         * does not fit is dropped, and *_truncated says so. */
        char *out, *err;
        size_t out_len, err_len, out_size, err_size;
        bool fixed_buffers, out_truncated, err_truncated;
        int exit_status;             /* 0-255, or 128+signal; -1 while unknown */
        bool timed_out;              /* killed at its deadline */
        bool abandoned;              /* killed, but did not die in time: reaped later */
        /* Options for programs that are not ours to know (application hooks), set before
         * command_start(): */
        char **envp;                 /* owned; NULL: the fixed environment above */
        bool process_group;          /* in a process group of its own, killed as a whole */
        /* Once the process has exited, wait at most this long for its pipes to close (a child it
         * left running may hold them); 0: until they close or the deadline. */
        uint64_t output_grace_usec;
        uint64_t exited_usec;        /* CLOCK_MONOTONIC when it was reaped, 0 before */
} Command;

/* Where the program called name is: /usr/sbin, /sbin, /usr/bin, /bin (a fixed list first: the
 * daemon runs it as root), then PATH. Allocated; NULL if there is none. */
char *command_find_executable(const char *name);

/* A new command running executable (an absolute path); add arguments with command_add(). With
 * fixed_buffers, output buffers of buffer_size bytes each are allocated now. */
int command_new(const char *executable, bool fixed_buffers, size_t buffer_size, Command **ret);
Command *command_free(Command *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Command *, command_free);

/* Appends one argument, or a formatted one. */
int command_add(Command *c, const char *arg);
int command_addf(Command *c, const char *format, ...) _printf_(2, 3);

/* The command line as one string, for messages ("lvm lvcreate -s ..."; the executable by its
 * base name). */
int command_line(const Command *c, char **ret);

/* Starts the command (posix_spawn). -errno if it could not be started. */
int command_start(Command *c);

/* Waits for every started command in cmds until all have exited or deadline_usec
 * (CLOCK_MONOTONIC) has passed; then kills the rest (timed_out) and gives each a moment to die.
 * Returns 0 when all finished in time, -ETIMEDOUT otherwise. */
int commands_wait(Command *const *cmds, size_t n, uint64_t deadline_usec);

/* The same, but returns as soon as one command that was running has finished (or at the
 * deadline, after killing every command still running: -ETIMEDOUT). At most 64 commands. */
int commands_wait_any(Command *const *cmds, size_t n, uint64_t deadline_usec);

/* The parts of the two above, for a caller with its own loop (one that also watches something
 * else while commands run): one round of reading output and reaping, waiting at most timeout_ms
 * for output; and killing every command still running, as at a deadline (timed_out, abandoned). */
void commands_poll(Command *const *cmds, size_t n, int timeout_ms);
void commands_kill(Command *const *cmds, size_t n);

/* Whether the command has exited (or was abandoned) and its output is read. */
bool command_finished(const Command *c);

/* start + wait for one command. Returns 0 if it ran (look at exit_status), -ETIMEDOUT, or the
 * error from starting it. */
int command_run(Command *c, uint64_t timeout_usec);

/* Reaps commands abandoned earlier (they never outlive the daemon as zombies for long). */
void command_reap_abandoned(void);
