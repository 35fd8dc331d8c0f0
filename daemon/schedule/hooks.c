/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <inttypes.h>
#include <libmount.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "blockdev.h"
#include "json-util.h"
#include "providers/command.h"
#include "schedule/hooks.h"
#include "time-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct libmnt_table *, mnt_unref_table);

/* systemd-run gets this much longer than the hook: the unit's RuntimeMaxSec= ends the hook, and
 * systemd-run reports it. */
#define HOOK_SYSTEMD_RUN_GRACE_USEC (10 * USEC_PER_SEC)
/* A hook's unit gets this long from SIGTERM to SIGKILL (TimeoutStopSec=): a hook that ignores
 * SIGTERM must still be gone long before the grace above ends. */
#define HOOK_STOP_TIMEOUT "1s"
/* How long a hook's unit is waited for after snapsetd killed it itself. */
#define HOOK_UNIT_GONE_USEC (5 * USEC_PER_SEC)
/* A hook that left a process running that holds its output is done with this long after it
 * exited (the process is the hook's business, e.g. one holding a database lock until thaw). */
#define HOOK_OUTPUT_GRACE_USEC (1 * USEC_PER_SEC)

static const char *const phase_names[_HOOK_PHASE_MAX] = {
        [HOOK_PHASE_PREPARE] = "prepare",
        [HOOK_PHASE_THAW] = "thaw",
        [HOOK_PHASE_ABORT] = "abort",
};

const char *hook_phase_to_string(HookPhase p) {
        return p >= 0 && p < _HOOK_PHASE_MAX ? phase_names[p] : NULL;
}

static uint64_t realtime_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* ---------------------------------------------------------------- which hooks */

/* What a package manager or an editor leaves beside a hook is not one. */
static int hook_filter(const struct dirent *e) {
        const char *n = e->d_name;
        size_t l = strlen(n);

        return n[0] != '.' && n[l - 1] != '~' && !strstr(n, ".dpkg-") && !strstr(n, ".rpmnew") &&
               !strstr(n, ".rpmsave");
}

static int list_directory(const char *dir, char ***list) {
        struct dirent **entries = NULL;
        int n, r = 0;

        n = scandir(dir, &entries, hook_filter, alphasort);
        if (n < 0)
                return errno == ENOENT ? 0 : -errno;
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                struct stat st;

                if (r == 0 && asprintf(&path, "%s/%s", dir, entries[i]->d_name) < 0)
                        r = -ENOMEM;
                if (r == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0)
                        r = blockdev_strv_push(list, path);
                free(entries[i]);
        }
        free(entries);
        return r;
}

int hooks_list(const SetDefinition *d, const char *hook_directory, char ***ret) {
        _cleanup_(strv_freep) char **l = calloc(1, sizeof(char *));
        int r;

        if (!l)
                return -ENOMEM;
        if (d->global_hooks && hook_directory) {
                r = list_directory(hook_directory, &l);
                if (r < 0)
                        return r;
        }
        for (char **h = d->hooks; h && *h; h++) {
                r = blockdev_strv_push(&l, *h);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* ---------------------------------------------------------------- the environment */

/* The first mountpoint of the filesystem on devnum, or "" (read before the freeze). */
static char *mountpoint_of(struct libmnt_table *tb, dev_t devnum) {
        struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
        struct libmnt_fs *fs;
        char *found = NULL;

        while (it && tb && mnt_table_next_fs(tb, it, &fs) == 0)
                if (mnt_fs_get_devno(fs) == devnum && mnt_fs_get_target(fs)) {
                        found = strdup(mnt_fs_get_target(fs));
                        break;
                }
        mnt_free_iter(it);
        return found ?: strdup("");
}

static int env_add(char ***env, const char *name, const char *value) {
        _cleanup_free_ char *s = NULL;

        if (asprintf(&s, "%s=%s", name, value ?: "") < 0)
                return -ENOMEM;
        return blockdev_strv_push(env, s);
}

static int env_add_indexed(char ***env, const char *what, size_t i, const char *value) {
        char name[64];

        snprintf(name, sizeof name, "SNAPSET_%s_%zu", what, i + 1);
        return env_add(env, name, value);
}

/* A space-separated list grown by one word. */
static int words_add(char **words, const char *w) {
        char *s;

        if (asprintf(&s, "%s%s%s", *words ?: "", *words && **words ? " " : "", w) < 0)
                return -ENOMEM;
        free(*words);
        *words = s;
        return 0;
}

static int hook_environment(HookPhase phase, const HookContext *ctx, char ***ret) {
        _cleanup_(mnt_unref_tablep) struct libmnt_table *tb = mnt_new_table();
        _cleanup_(strv_freep) char **env = calloc(1, sizeof(char *));
        _cleanup_free_ char *volumes = strdup(""), *mounts = strdup("");
        char count[32];
        int r;

        if (!env || !volumes || !mounts || !tb)
                return -ENOMEM;
        if (mnt_table_parse_file(tb, "/proc/self/mountinfo") < 0) {
                mnt_unref_table(tb);   /* no mountpoints then: SNAPSET_MOUNT_N are empty */
                tb = NULL;
        }
        snprintf(count, sizeof count, "%zu", ctx->set->n_snapshots);
        r = env_add(&env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") ?:
            env_add(&env, "HOME", "/root") ?:
            env_add(&env, "SNAPSET_HOOK_PHASE", hook_phase_to_string(phase)) ?:
            env_add(&env, "SNAPSET_DEFINITION", ctx->definition->name) ?:
            env_add(&env, "SNAPSET_SET_ID", ctx->set->id) ?:
            env_add(&env, "SNAPSET_COUNT", count);
        for (size_t i = 0; r == 0 && i < ctx->set->n_snapshots; i++) {
                const Snapshot *s = ctx->set->snapshots[i];
                _cleanup_free_ char *mp = mountpoint_of(tb, s->volume_device);

                if (!mp)
                        return -ENOMEM;
                r = env_add_indexed(&env, "VOLUME", i, s->volume) ?:
                    env_add_indexed(&env, "DEVICE", i, s->volume_path ?: s->volume) ?:
                    env_add_indexed(&env, "MOUNT", i, mp) ?:
                    words_add(&volumes, s->volume) ?:
                    (mp[0] ? words_add(&mounts, mp) : 0);
        }
        if (r == 0)
                r = env_add(&env, "SNAPSET_VOLUMES", volumes) ?: env_add(&env, "SNAPSET_MOUNTS", mounts);
        if (r == 0 && ctx->result)
                r = env_add(&env, "SNAPSET_RESULT", ctx->result);
        if (r == 0 && ctx->error)
                r = env_add(&env, "SNAPSET_ERROR", ctx->error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(env);
        return 0;
}

/* ---------------------------------------------------------------- running one */

/* The command for one hook: systemd-run around it when systemd runs the machine. */
/* The command for one hook: systemd-run around it when systemd runs the machine, as the unit
 * *ret_unit (NULL when the hook runs directly). On the unit's RuntimeMaxSec= systemd stops it:
 * SIGTERM, and SIGKILL for the whole unit 1 s later. */
static int hook_command(const char *hook, HookPhase phase, char **env, const HookContext *ctx, size_t index,
                        Command **ret, uint64_t *ret_timeout, char **ret_unit) {
        _cleanup_free_ char *systemd_run = sd_booted() > 0 ? command_find_executable("systemd-run") : NULL;
        _cleanup_(strv_freep) char **owned_env = env;
        _cleanup_(command_freep) Command *c = NULL;
        _cleanup_free_ char *unit = NULL;
        uint64_t timeout = ctx->definition->hook_timeout_usec;
        int r;

        /* Output is kept up to HOOK_OUTPUT_MAX a stream; the rest is read and dropped. */
        r = command_new(systemd_run ?: hook, true, HOOK_OUTPUT_MAX, &c);
        if (r < 0)
                return r;
        if (systemd_run) {
                if (asprintf(&unit, "snapset-hook-%.8s-%s-%zu.service", ctx->set->id, hook_phase_to_string(phase),
                             index + 1) < 0)
                        return -ENOMEM;
                r = command_addf(c, "--unit=%s", unit) ?:
                    command_add(c, "--wait") ?:
                    command_add(c, "--pipe") ?:
                    command_add(c, "--collect") ?:
                    command_add(c, "--service-type=exec") ?:
                    command_addf(c, "--property=RuntimeMaxSec=%" PRIu64 "ms", timeout / USEC_PER_MSEC) ?:
                    command_add(c, "--property=TimeoutStopSec=" HOOK_STOP_TIMEOUT) ?:
                    command_add(c, "--property=KillMode=control-group") ?:
                    command_add(c, "--property=SendSIGKILL=yes") ?:
                    command_addf(c, "--description=snapset %s hook %s of set %s", hook_phase_to_string(phase), hook,
                                 ctx->set->id);
                for (char **e = env; r == 0 && *e; e++)
                        if (!startswith(*e, "PATH=") && !startswith(*e, "HOME="))
                                r = command_addf(c, "--setenv=%s", *e);
                if (r == 0)
                        r = command_add(c, "--") ?: command_add(c, hook);
                timeout += HOOK_SYSTEMD_RUN_GRACE_USEC;
        }
        if (r == 0)
                r = command_add(c, hook_phase_to_string(phase));
        if (r < 0)
                return r;
        c->envp = TAKE_PTR(owned_env);
        c->process_group = true;
        c->output_grace_usec = HOOK_OUTPUT_GRACE_USEC;
        *ret_timeout = timeout;
        *ret_unit = TAKE_PTR(unit);
        *ret = TAKE_PTR(c);
        return 0;
}

/* systemctl ARGS... UNIT, at most a second; its exit status, or -errno. stdout in *ret_out. */
static int systemctl(const char *verb, const char *option, const char *unit, char **ret_out) {
        _cleanup_(command_freep) Command *c = NULL;
        int r;

        r = command_new("systemctl", true, 256, &c);
        if (r >= 0)
                r = command_add(c, verb) ?: (option ? command_add(c, option) : 0) ?: command_add(c, unit);
        if (r >= 0)
                r = command_run(c, USEC_PER_SEC);
        if (r < 0)
                return r;
        if (ret_out)
                *ret_out = strndup(c->out ?: "", c->out_len);
        return c->exit_status;
}

/* After snapsetd killed systemd-run at its own deadline: the hook's unit may live on. It is
 * killed, and waited for until systemd says it is gone (inactive, failed, or unknown). */
static bool hook_unit_gone(const char *unit) {
        uint64_t end = now_monotonic_usec() + HOOK_UNIT_GONE_USEC;

        (void) systemctl("kill", "--signal=SIGKILL", unit, NULL);
        do {
                _cleanup_free_ char *state = NULL;

                if (systemctl("show", "--property=ActiveState", unit, &state) >= 0 && state &&
                    (strstr(state, "=inactive") || strstr(state, "=failed") || streq(state, "")))
                        return true;
                (void) usleep(100 * 1000);
        } while (now_monotonic_usec() < end);
        return false;
}

static int output_of(const Command *c, char **ret) {
        const char *sep = c->out_len && c->err_len ? "\n" : "";
        size_t out = c->out_len, err = c->err_len;

        if (out > HOOK_OUTPUT_MAX)
                out = HOOK_OUTPUT_MAX;
        if (err > HOOK_OUTPUT_MAX - out)
                err = HOOK_OUTPUT_MAX - out;
        return asprintf(ret, "%.*s%s%.*s", (int) out, c->out, sep, (int) err, c->err) < 0 ? -ENOMEM : 0;
}

static int run_one(const char *hook, HookPhase phase, const HookContext *ctx, size_t index, HookRun *run) {
        _cleanup_(command_freep) Command *c = NULL;
        _cleanup_free_ char *unit = NULL;
        char **env = NULL;
        uint64_t timeout, started;
        int r;

        *run = (HookRun) { .phase = phase, .exit_status = -1, .path = strdup(hook) };
        if (!run->path)
                return -ENOMEM;
        r = hook_environment(phase, ctx, &env);
        if (r >= 0)
                r = hook_command(hook, phase, env, ctx, index, &c, &timeout, &unit);
        if (r < 0)
                return r;
        run->started_usec = realtime_usec();
        started = now_monotonic_usec();
        r = command_run(c, timeout);
        run->finished_usec = realtime_usec();
        if (r < 0 && r != -ETIMEDOUT)
                return asprintf(&run->error, "could not be started: %s", strerror(-r)) < 0 ? -ENOMEM : 0;
        run->exit_status = c->exit_status;
        /* Under systemd-run the unit's RuntimeMaxSec= ends it: a failure that took the whole
         * timeout is the timeout, whatever systemd-run printed (its output may be cut short). */
        run->timed_out = c->timed_out || (c->exit_status != 0 &&
                                          now_monotonic_usec() - started >= ctx->definition->hook_timeout_usec);
        if (c->timed_out && unit && !hook_unit_gone(unit)) {
                run->still_running = true;
                if (asprintf(&run->error, "was killed at its timeout, but its unit %s is still there", unit) < 0)
                        return -ENOMEM;
        }
        return output_of(c, &run->output);
}

int hooks_run(char *const *hooks, HookPhase phase, const HookContext *ctx, HookRun **runs, size_t *n) {
        size_t count = 0;

        while (hooks && hooks[count])
                count++;
        for (size_t k = 0; k < count; k++) {
                /* thaw and abort undo what prepare did: last prepared, first resumed. */
                size_t i = phase == HOOK_PHASE_PREPARE ? k : count - 1 - k;
                HookRun *grown = reallocarray(*runs, *n + 1, sizeof(HookRun));
                int r;

                if (!grown)
                        return -ENOMEM;
                *runs = grown;
                r = run_one(hooks[i], phase, ctx, i, &grown[*n]);
                (*n)++;
                if (r < 0)
                        return r;
        }
        return 0;
}

void hook_runs_free(HookRun *runs, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(runs[i].path);
                free(runs[i].error);
                free(runs[i].output);
        }
        free(runs);
}

static const char *run_result(const HookRun *r) {
        if (r->error)
                return "not-started";
        if (r->timed_out)
                return "timed-out";
        return r->exit_status == 0 ? "succeeded" : "failed";
}

int hook_runs_to_json(const HookRun *runs, size_t n, json_object **ret) {
        json_object *a = json_object_new_array();

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_new_object();
                int r = o ? 0 : -ENOMEM;

                r = r ?: json_add_string(o, "hook", runs[i].path) ?:
                    json_add_string(o, "phase", hook_phase_to_string(runs[i].phase)) ?:
                    json_add_string(o, "result", run_result(&runs[i])) ?:
                    (runs[i].exit_status >= 0 ? json_add_int(o, "exitStatus", runs[i].exit_status) : 0) ?:
                    json_add_int(o, "startedUsec", (int64_t) runs[i].started_usec) ?:
                    json_add_int(o, "finishedUsec", (int64_t) runs[i].finished_usec);
                if (r < 0)
                        json_object_put(o);
                else
                        r = json_append(a, o);
                if (r < 0) {
                        json_object_put(a);
                        return r;
                }
        }
        *ret = a;
        return 0;
}
