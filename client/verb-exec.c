/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl exec: a backup-context set of the volumes, every snapshot exposed read-only, COMMAND
 * run on them, and the set released however COMMAND ends.
 *
 * The release does not rest on this process: the set is a backup set, which snapsetd deletes
 * when the connection that created it closes, and the connection closes when snapsetctl ends,
 * SIGKILL included. On a normal end snapsetctl deletes the set itself first, so that a failure to
 * delete (a process of COMMAND still using a snapshot) is reported to the caller. --keep makes a
 * persistent set instead, left exposed, whose id is printed.
 *
 * The working directory is the caller's by default, so that relative paths in COMMAND's
 * arguments mean what they meant at the prompt (an output file, a password file); --cd starts
 * COMMAND in the first snapshot's mount point instead. */

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "connection.h"
#include "json-util.h"
#include "log.h"
#include "output.h"
#include "snapsetctl.h"

enum {
        ARG_KEEP = ARG_VERB_FIRST,
        ARG_CD,
};

static bool arg_keep = false, arg_cd = false;

static const struct option exec_options[] = {
        { "keep", no_argument, NULL, ARG_KEEP },
        { "cd",   no_argument, NULL, ARG_CD },
        {}
};

static int exec_parse_option(const Verb *verb, int option, const char *arg) {
        switch (option) {
        case ARG_KEEP:
                arg_keep = true;
                return 0;
        case ARG_CD:
                arg_cd = true;
                return 0;
        default:
                return -EINVAL;
        }
}

/* What COMMAND gets: per volume, in the order given. */
typedef struct Exposed {
        char **volumes, **mounts, **devices;
        size_t n;
} Exposed;

static void exposed_done(Exposed *e) {
        for (size_t i = 0; i < e->n; i++) {
                free(e->volumes[i]);
                free(e->mounts[i]);
                free(e->devices[i]);
        }
        free(e->volumes);
        free(e->mounts);
        free(e->devices);
        *e = (Exposed) {};
}

/* Exposes every snapshot of set, in order. Returns 0 or an exit status. */
static int expose_all(VarlinkStream *s, json_object *set, Exposed *ret) {
        json_object *snaps = reply_get_array(set, "snapshots");
        size_t n = snaps ? json_object_array_length(snaps) : 0;

        ret->volumes = calloc(n ?: 1, sizeof(char *));
        ret->mounts = calloc(n ?: 1, sizeof(char *));
        ret->devices = calloc(n ?: 1, sizeof(char *));
        if (!ret->volumes || !ret->mounts || !ret->devices)
                return log_oom(), SNAPSET_EXIT_FAILURE;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(json_object_putp) json_object *p = NULL, *reply = NULL;
                json_object *snap = json_object_array_get_idx(snaps, i);
                const char *id = reply_get_string(snap, "id"), *volume = reply_get_string(snap, "volume");
                const char *path, *device;
                int status;

                if (!id || !volume) {
                        log_error("snapsetd's reply to CreateSnapshotSet has a snapshot without id or volume.");
                        return SNAPSET_EXIT_PROTOCOL;
                }
                p = parameters_new_string("snapshotId", id);
                if (!p)
                        return log_oom(), SNAPSET_EXIT_FAILURE;
                status = connection_call(s, SNAPSET_METHOD("ExposeSnapshot"), p, &reply);
                if (status != 0)
                        return status;
                path = reply_get_string(reply, "path");
                device = reply_get_string(reply, "device");
                if (!path || !device) {
                        log_error("snapsetd's reply to ExposeSnapshot has no path or device.");
                        return SNAPSET_EXIT_PROTOCOL;
                }
                ret->volumes[i] = strdup(volume);
                ret->mounts[i] = strdup(path);
                ret->devices[i] = strdup(device);
                ret->n = i + 1;
                if (!ret->volumes[i] || !ret->mounts[i] || !ret->devices[i])
                        return log_oom(), SNAPSET_EXIT_FAILURE;
        }
        return 0;
}

/* SNAPSET_<what>_<i + 1> */
static int setenv_nth(const char *what, size_t i, const char *value) {
        char name[64];

        snprintf(name, sizeof name, "SNAPSET_%s_%zu", what, i + 1);
        return setenv(name, value, 1);
}

/* SNAPSET_SET_ID, SNAPSET_COUNT, SNAPSET_MOUNTS (space-separated), and per volume N (from 1):
 * SNAPSET_VOLUME_N, SNAPSET_MOUNT_N, SNAPSET_DEVICE_N. */
static int set_environment(const char *set_id, const Exposed *e) {
        _cleanup_free_ char *mounts = NULL;
        size_t len = 1;
        char count[32];

        for (size_t i = 0; i < e->n; i++)
                len += strlen(e->mounts[i]) + 1;
        mounts = calloc(1, len);
        if (!mounts)
                return -ENOMEM;
        for (size_t i = 0; i < e->n; i++) {
                if (i > 0)
                        strcat(mounts, " ");
                strcat(mounts, e->mounts[i]);
                if (setenv_nth("VOLUME", i, e->volumes[i]) < 0 || setenv_nth("MOUNT", i, e->mounts[i]) < 0 ||
                    setenv_nth("DEVICE", i, e->devices[i]) < 0)
                        return -errno;
        }
        snprintf(count, sizeof count, "%zu", e->n);
        if (setenv("SNAPSET_SET_ID", set_id, 1) < 0 || setenv("SNAPSET_COUNT", count, 1) < 0 ||
            setenv("SNAPSET_MOUNTS", mounts, 1) < 0)
                return -errno;
        return 0;
}

static void strv_free_all(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
}

static void strv_free_allp(char ***l) {
        strv_free_all(*l);
}

/* {} as a whole argument: every mount point, each an argument of its own (as find -exec ... {} +);
 * {N} anywhere in an argument: the mount point of volume N. Returns 0, -EINVAL (a {N} out of
 * range, named in *ret_bad), or -ENOMEM. */
static int substitute(char **args, size_t n_args, const Exposed *e, char ***ret, const char **ret_bad) {
        char **out = calloc(n_args * (e->n + 1) + 1, sizeof(char *));
        size_t k = 0;

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n_args; i++) {
                const char *a = args[i], *open;
                char *s;

                if (streq(a, "{}")) {
                        for (size_t m = 0; m < e->n; m++)
                                if (!(out[k++] = strdup(e->mounts[m])))
                                        return strv_free_all(out), -ENOMEM;
                        continue;
                }
                s = strdup(a);
                /* From a cursor past each replacement: a mount point is never substituted again,
                 * and a brace that is no {N} is left as it is. */
                for (size_t at = 0; s && (open = strchr(s + at, '{'));) {
                        char *end, *joined;
                        unsigned long v;

                        at = (size_t) (open - s) + 1;
                        if (open[1] < '1' || open[1] > '9')
                                continue;
                        v = strtoul(open + 1, &end, 10);
                        if (*end != '}')
                                continue;
                        if (v < 1 || v > e->n) {
                                *ret_bad = a;
                                free(s);
                                strv_free_all(out);
                                return -EINVAL;
                        }
                        if (asprintf(&joined, "%.*s%s%s", (int) (open - s), s, e->mounts[v - 1], end + 1) < 0)
                                joined = NULL;
                        at = (size_t) (open - s) + strlen(e->mounts[v - 1]);
                        free(s);
                        s = joined;
                }
                if (!s)
                        return strv_free_all(out), -ENOMEM;
                out[k++] = s;
        }
        out[k] = NULL;
        *ret = out;
        return 0;
}

/* Runs COMMAND and waits for it; Ctrl-C and the like reach it as part of the terminal's process
 * group, and snapsetctl itself waits them out. Returns COMMAND's exit status, 128+N for a signal
 * N, or 127/126 when it could not be started. */
static int run_command(char **argv, const char *cwd) {
        struct sigaction ignore = { .sa_handler = SIG_IGN }, old_int, old_quit, old_term, old_hup;
        int status = 0;
        pid_t pid;

        (void) fflush(stdout);
        /* Whatever our caller did with SIGCHLD, we wait for our child. */
        (void) sigaction(SIGCHLD, &(struct sigaction) { .sa_handler = SIG_DFL }, NULL);
        (void) sigaction(SIGINT, &ignore, &old_int);
        (void) sigaction(SIGQUIT, &ignore, &old_quit);
        (void) sigaction(SIGTERM, &ignore, &old_term);
        (void) sigaction(SIGHUP, &ignore, &old_hup);
        pid = fork();
        if (pid < 0) {
                log_error_errno(errno, "Cannot start %s: %m", argv[0]);
                (void) sigaction(SIGINT, &old_int, NULL);
                (void) sigaction(SIGQUIT, &old_quit, NULL);
                (void) sigaction(SIGTERM, &old_term, NULL);
                (void) sigaction(SIGHUP, &old_hup, NULL);
                return 126;
        }
        if (pid == 0) {
                (void) sigaction(SIGINT, &old_int, NULL);
                (void) sigaction(SIGQUIT, &old_quit, NULL);
                (void) sigaction(SIGTERM, &old_term, NULL);
                (void) sigaction(SIGHUP, &old_hup, NULL);
                if (cwd && chdir(cwd) < 0) {
                        log_error_errno(errno, "Cannot change into %s: %m", cwd);
                        _exit(126);
                }
                execvp(argv[0], argv);
                log_error_errno(errno, "Cannot run %s: %m", argv[0]);
                _exit(errno == ENOENT ? 127 : 126);
        }
        for (;;) {
                if (waitpid(pid, &status, 0) >= 0)
                        break;
                if (errno != EINTR) {
                        /* Never a success we did not see (SIGCHLD ignored by our caller: ECHILD). */
                        log_error_errno(errno, "Cannot wait for %s: %m", argv[0]);
                        status = W_EXITCODE(SNAPSET_EXIT_FAILURE, 0);
                        break;
                }
        }
        (void) sigaction(SIGINT, &old_int, NULL);
        (void) sigaction(SIGQUIT, &old_quit, NULL);
        (void) sigaction(SIGTERM, &old_term, NULL);
        (void) sigaction(SIGHUP, &old_hup, NULL);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return WEXITSTATUS(status);
}

/* Deletes the set now, to say so if it cannot be; the connection's end would do it anyway. */
static int release(VarlinkStream *s, const char *set_id, size_t n) {
        _cleanup_(json_object_putp) json_object *p = parameters_new_string("setId", set_id), *reply = NULL;
        int status;

        if (!p)
                return log_oom(), SNAPSET_EXIT_FAILURE;
        connection_expect_volumes(n);
        status = connection_call(s, SNAPSET_METHOD("DeleteSnapshots"), p, &reply);
        if (status != 0)
                log_error("Snapshot set %s could not be deleted after the command; 'snapsetctl list' shows it, "
                          "'snapsetctl delete %s' retries.", set_id, set_id);
        return status;
}

static int exec_run(int argc, char *argv[]) {
        _cleanup_(varlink_stream_freep) VarlinkStream *s = NULL;
        _cleanup_(json_object_putp) json_object *parameters = NULL, *reply = NULL;
        _cleanup_(exposed_done) Exposed exposed = {};
        _cleanup_(strv_free_allp) char **command = NULL;
        const char *set_id, *bad = NULL;
        json_object *set;
        int n_volumes = -1, r, status, released;

        for (int i = 0; i < argc && n_volumes < 0; i++)
                if (streq(argv[i], "--"))
                        n_volumes = i;
        if (n_volumes <= 0 || n_volumes + 1 >= argc)
                return usage_error(&verb_exec, "Usage: snapsetctl exec [--keep] [--cd] VOLUME... -- COMMAND [ARG...]"),
                       SNAPSET_EXIT_USAGE;
        for (int i = 0; i < n_volumes; i++)
                if (argv[i][0] == '-')
                        return usage_error(&verb_exec, "'%s' is not a volume: the options of exec come before "
                                           "the volumes.", argv[i]), SNAPSET_EXIT_USAGE;

        r = create_parameters(&verb_exec, n_volumes, argv, arg_keep ? "persistent" : "backup", &parameters);
        if (r == -EINVAL)
                return SNAPSET_EXIT_USAGE;
        if (r < 0)
                return log_oom(), SNAPSET_EXIT_FAILURE;

        status = connection_open(&s);
        if (status != 0)
                return status;
        connection_expect_volumes((size_t) n_volumes);
        status = connection_call(s, SNAPSET_METHOD("CreateSnapshotSet"), parameters, &reply);
        connection_expect_volumes(1);
        if (status != 0)
                return status;
        set = reply_get_object(reply, "set");
        set_id = set ? reply_get_string(set, "id") : NULL;
        if (!set_id) {
                log_error("snapsetd's reply to CreateSnapshotSet has no set.");
                return SNAPSET_EXIT_PROTOCOL;
        }
        if (arg_keep)
                log_info("Snapshot set %s is kept ('snapsetctl delete %s' when done).", set_id, set_id);

        status = expose_all(s, set, &exposed);
        if (status == 0) {
                r = substitute(argv + n_volumes + 1, (size_t) (argc - n_volumes - 1), &exposed, &command, &bad);
                if (r == -EINVAL) {
                        usage_error(&verb_exec, "'%s' names a volume that is not there: {1} to {%zu}.", bad, exposed.n);
                        status = SNAPSET_EXIT_USAGE;
                } else if (r < 0 || set_environment(set_id, &exposed) < 0) {
                        log_oom();
                        status = SNAPSET_EXIT_FAILURE;
                }
        }
        if (status == 0)
                status = run_command(command, arg_cd && exposed.n > 0 ? exposed.mounts[0] : NULL);
        if (arg_keep)
                return status;
        released = release(s, set_id, exposed.n);
        return status != 0 ? status : released;
}

const Verb verb_exec = {
        .name = "exec",
        .args = "VOLUME... -- COMMAND [ARG...]",
        .summary = "Run a command on read-only snapshots of volumes, then release them",
        .help = "Takes one snapshot set of the VOLUMEs (block devices or mounted filesystems, with\n"
                ":OPTIONS as for create), mounts every snapshot read-only, runs COMMAND, and deletes\n"
                "the set, whatever COMMAND's end: its exit status, a signal, Ctrl-C, or snapsetctl\n"
                "itself killed (the set is a backup set, which snapsetd deletes when snapsetctl's\n"
                "connection closes). Exits with COMMAND's status (128+N for signal N).\n"
                "\n"
                "In COMMAND's arguments, {} alone stands for every mount point (one argument each),\n"
                "{1}, {2}... for the mount point of the first, second... volume. COMMAND's\n"
                "environment has SNAPSET_SET_ID, SNAPSET_COUNT, SNAPSET_MOUNTS (space-separated), and\n"
                "for each volume N: SNAPSET_VOLUME_N, SNAPSET_MOUNT_N, SNAPSET_DEVICE_N.\n"
                "Example: snapsetctl exec /srv/db /srv/log -- restic backup {}\n"
                "\n"
                "Options of exec (before the volumes):\n"
                "     --keep                 Keep the set (persistent, still exposed) and print\n"
                "                            its id\n"
                "     --cd                   Start COMMAND in the first mount point (default: the\n"
                "                            current directory)\n",
        .min_args = 3,
        .max_args = UINT32_MAX,
        .options = exec_options,
        .parse_option = exec_parse_option,
        .options_first = true,
        .run = exec_run,
};
