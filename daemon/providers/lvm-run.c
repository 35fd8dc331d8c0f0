/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "log.h"
#include "lvm-run.h"
#include "result.h"

/* Inside the window: a VG lock held by someone else fails the command at once instead of
 * waiting for it; lvm's device scan skips suspended devices (a suspended non-LVM origin of the
 * same set would otherwise block it until the resume, which comes after it); no archive or
 * backup is written to /etc/lvm (which may be on a frozen filesystem: -An, for the commands
 * that have it), and dmeventd is not asked to monitor anything (--ignoremonitoring). */
#define WINDOW_CONFIG "global{wait_for_locks=0} devices{ignore_suspended_devices=1} " \
                      "backup{archive=0 backup=0} activation{monitoring=0}"
/* Outside it: no waiting for locks either (lvm_run() retries for a while, then names who holds
 * it), and times in reports as seconds since the epoch. One --config each, so that nothing
 * depends on how lvm would merge several. */
#define CONFIG "global{wait_for_locks=0} report{time_format=\"%s\"}"

static const char *lvm_path(void) {
        static char *path = NULL;

        if (!path || access(path, X_OK) < 0) {
                free(path);
                path = command_find_executable("lvm");
        }
        return path;
}

int lvm_new(const char *subcommand, bool window, Command **ret) {
        _cleanup_(command_freep) Command *c = NULL;
        const char *lvm = lvm_path();
        int r;

        if (!lvm)
                return -ENOENT;
        r = command_new(lvm, window, LVM_WINDOW_BUFFER_BYTES, &c);
        if (r >= 0)
                r = command_add(c, subcommand);
        if (r >= 0)
                r = command_add(c, "--config") ?: command_add(c, window ? WINDOW_CONFIG : CONFIG);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

void lvm_lock_holder(const char *vg, char *buf, size_t n) {
        char path[512], line[512];
        struct stat st;
        FILE *f;

        buf[0] = 0;
        snprintf(path, sizeof path, "/run/lock/lvm/V_%s", vg);
        if (stat(path, &st) < 0)
                return;
        f = fopen("/proc/locks", "re");
        if (!f)
                return;
        /* "1: FLOCK  ADVISORY  WRITE 1234 00:19:5678 0 EOF" */
        while (fgets(line, sizeof line, f)) {
                unsigned long long ino;
                unsigned ma, mi;
                int pid;
                char cmdline[256] = "";
                FILE *c;

                if (sscanf(line, "%*s %*s %*s %*s %d %x:%x:%llu", &pid, &ma, &mi, &ino) != 4 ||
                    ino != (unsigned long long) st.st_ino || makedev(ma, mi) != st.st_dev)
                        continue;
                snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
                c = fopen(path, "re");
                if (c) {
                        size_t k = fread(cmdline, 1, sizeof cmdline - 1, c);

                        for (size_t i = 0; i + 1 < k; i++)
                                if (!cmdline[i])
                                        cmdline[i] = ' ';
                        cmdline[k] = 0;
                        fclose(c);
                }
                snprintf(buf, n, "pid %d (%s)", pid, cmdline[0] ? cmdline : "?");
                break;
        }
        fclose(f);
}

/* The VG a command is about: its last "VG/LV" or "VG" argument. */
static void vg_of(const Command *c, char *buf, size_t n) {
        buf[0] = 0;
        for (size_t i = c->n_argv; i-- > 2;) {
                const char *a = c->argv[i];

                if (a[0] == '-' || a[0] == '@' || a[0] == '/')
                        continue;
                snprintf(buf, n, "%.*s", (int) strcspn(a, "/"), a);
                if (lvm_name_is_valid(buf))
                        return;
        }
        buf[0] = 0;
}

VssCode lvm_fail(const Command *c, const char *what, size_t index, ProviderResult *res) {
        char summary[320], vg[128], holder[200] = "";
        VssCode code;

        if (c->timed_out)
                return provider_fail(res, index, ETIMEDOUT, VSS_E_PROVIDER_VETO, "%s: %s %s did not finish in "
                                     "time and was killed; check the health of the volume group's devices",
                                     what, strrchr(c->argv[0], '/') ? strrchr(c->argv[0], '/') + 1 : c->argv[0],
                                     c->argv[1]);
        lvm_error_summary(c->err, summary, sizeof summary);
        code = lvm_error_code(c->exit_status, c->err);
        if (code == VSS_E_BAD_STATE && strstr(c->err, "lock")) {
                vg_of(c, vg, sizeof vg);
                if (vg[0])
                        lvm_lock_holder(vg, holder, sizeof holder);
        }
        return provider_fail(res, index, 0, code, "%s: lvm %s failed (exit status %d): %s%s%s%s", what, c->argv[1],
                             c->exit_status, summary[0] ? summary : "no message",
                             holder[0] ? "; the volume group's lock is held by " : "", holder,
                             code == VSS_E_PROVIDER_VETO ? ". Run the same lvm command by hand to see more "
                             "(add -v), and fix what it reports" : "");
}

/* lvm's words when it could not take a lock at once (global{wait_for_locks=0}). */
static bool lock_busy(const Command *c) {
        return c->exit_status != 0 && !c->timed_out &&
               (strstr(c->err, "Giving up waiting for lock") || strstr(c->err, "Can't get lock") ||
                strstr(c->err, "Failed to lock"));
}

VssCode lvm_run(Command *c, const char *what, size_t index, ProviderResult *res) {
        _cleanup_free_ char *line = NULL;
        uint64_t give_up = now_monotonic_usec() + LVM_LOCK_RETRY_USEC;
        int r;

        if (command_line(c, &line) >= 0)
                log_debug("Running %s", line);
        for (;;) {
                r = command_run(c, LVM_TIMEOUT_USEC);
                if (r < 0 && r != -ETIMEDOUT)
                        return provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                             "%s: cannot run lvm", what);
                if (c->exit_status == 0 && !c->timed_out)
                        return S_OK;
                /* A lock held by another lvm command (an administrator's, lvmdbusd's) is usually
                 * released in a moment: try again, for a while. */
                if (!lock_busy(c) || now_monotonic_usec() >= give_up)
                        return lvm_fail(c, what, index, res);
                (void) usleep(250 * 1000);
        }
}

VssCode lvm_run_all(Command *const *cmds, size_t n, const char *what, ProviderResult *res) {
        VssCode code = S_OK;
        int r;

        command_reap_abandoned();
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *line = NULL;

                if (command_line(cmds[i], &line) >= 0)
                        log_debug("Running %s", line);
                r = command_start(cmds[i]);
                if (r < 0) {
                        commands_kill(cmds, i);   /* reaps or abandons them: nothing left to wait for */
                        return provider_fail(res, SIZE_MAX, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                             "%s: cannot run lvm", what);
                }
        }
        (void) commands_wait(cmds, n, now_monotonic_usec() + LVM_TIMEOUT_USEC);
        /* Those that found their VG locked by someone else: again, one by one, as lvm_run does. */
        for (size_t i = 0; i < n; i++) {
                VssCode c = S_OK;

                if (lock_busy(cmds[i]))
                        c = lvm_run(cmds[i], what, SIZE_MAX, res);
                else if (cmds[i]->exit_status != 0 || cmds[i]->timed_out)
                        c = lvm_fail(cmds[i], what, SIZE_MAX, res);
                if (code == S_OK)
                        code = c;
        }
        return code;
}

static int add_report_options(Command *c, const char *columns) {
        return command_add(c, "--reportformat") ?: command_add(c, "json") ?: command_add(c, "--units") ?:
               command_add(c, "b") ?: command_add(c, "--nosuffix") ?: command_add(c, "-o") ?: command_add(c, columns);
}

static VssCode query_lvs(char *const *names, bool all, LvmLv **ret, size_t *ret_n, size_t index, ProviderResult *res) {
        _cleanup_(command_freep) Command *c = NULL;
        VssCode code;
        int r;

        r = lvm_new("lvs", false, &c);
        if (r >= 0)
                r = add_report_options(c, LVM_LV_COLUMNS);
        if (r >= 0 && all)
                r = command_add(c, "-a");
        for (char *const *n = names; r >= 0 && *n; n++)
                r = command_add(c, *n);
        if (r < 0)
                return provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                     r == -ENOENT ? "The lvm command is not installed (install lvm2)" : "Cannot run lvs");
        code = lvm_run(c, "Looking up the logical volumes", index, res);
        if (code != S_OK)
                return code;
        r = lvm_report_parse_lvs(c->out, ret, ret_n);
        if (r < 0)
                return provider_fail(res, index, r, r == -ENOMEM ? E_OUTOFMEMORY : VSS_E_PROVIDER_VETO,
                                     "lvs gave a report snapset cannot read (is lvm2 older than 2.02.158?)");
        return S_OK;
}

VssCode lvm_query_lvs(char *const *names, LvmLv **ret, size_t *ret_n, size_t index, ProviderResult *res) {
        return query_lvs(names, false, ret, ret_n, index, res);
}

VssCode lvm_query_lvs_all(char *const *names, LvmLv **ret, size_t *ret_n, size_t index, ProviderResult *res) {
        return query_lvs(names, true, ret, ret_n, index, res);
}

VssCode lvm_query_vg(const char *vg, LvmVg *ret, size_t index, ProviderResult *res) {
        _cleanup_(command_freep) Command *c = NULL;
        LvmVg *vgs = NULL;
        size_t n = 0;
        VssCode code;
        int r;

        r = lvm_new("vgs", false, &c);
        if (r >= 0)
                r = add_report_options(c, LVM_VG_COLUMNS) ?: command_add(c, vg);
        if (r < 0)
                return provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "Cannot run vgs");
        code = lvm_run(c, "Looking up the volume group", index, res);
        if (code != S_OK)
                return code;
        r = lvm_report_parse_vgs(c->out, &vgs, &n);
        if (r < 0 || n != 1) {
                lvm_vgs_free(vgs, n);
                return provider_fail(res, index, r < 0 ? r : 0, r == -ENOMEM ? E_OUTOFMEMORY : VSS_E_OBJECT_NOT_FOUND,
                                     "vgs did not report volume group %s", vg);
        }
        *ret = vgs[0];
        free(vgs);
        return S_OK;
}
