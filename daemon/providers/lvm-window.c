/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The lvm provider inside the freeze window (lvm.c describes the methods): hold_writes suspends
 * the origins of the classic methods, commit runs the prepared lvm commands (volume groups at
 * once, the LVs of a group one after another) and thaws each origin's filesystem as soon as its
 * own snapshot exists, release_writes resumes whatever is still suspended. From hold_writes to
 * release_writes: no malloc of ours, no logging, no path lookup but lvm's own. */

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "dm-hold.h"
#include "dm.h"
#include "lvm-run.h"
#include "lvm-state.h"
#include "result.h"
#include "thin-pool.h"

/* Opens what the early thaw of an origin needs: its filesystem, to thaw it as soon as its own
 * snapshot exists (lvm_commit()), and for THIN_NESTED the origin's suspend state and its pool,
 * to thaw it while lvm still holds it suspended (watch_early_thaw()). Nothing is lost when
 * something is missing: the filesystem is then thawed with the others, at the end. */
void lvm_prepare_early_thaw(LvmSnapState *st, const BlockDevice *v) {
        _cleanup_free_ char *tpool = NULL;
        char path[128];
        struct stat sb;
        DmInfo info;

        /* The filesystem is thawed through this fd: only if it is the origin's own, not
         * something mounted over its mountpoint since. THIN_LOCKFS is not frozen by us. */
        if (lvm_method_needs_fifreeze(st->rec.method) && v && v->mountpoints && v->mountpoints[0]) {
                st->fs_fd = open(v->mountpoints[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (st->fs_fd >= 0 && (fstat(st->fs_fd, &sb) < 0 ||
                                       sb.st_dev != makedev(st->origin_major, st->origin_minor)))
                        st->fs_fd = safe_close(st->fs_fd);
        }
        if (st->rec.method != LVM_METHOD_THIN_NESTED || st->fs_fd < 0)
                return;
        snprintf(path, sizeof path, "/sys/dev/block/%u:%u/dm/suspended", st->origin_major, st->origin_minor);
        st->suspended_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (dm_lvm_name_join(st->rec.vg, st->rec.pool, "tpool", &tpool) >= 0 &&
            dm_device_info(DM_REF_NAME(tpool), &info) >= 0) {
                st->tpool_major = info.major;
                st->tpool_minor = info.minor;
        }
        st->watch = st->suspended_fd >= 0 && st->tpool_major > 0;
}

/* The origins of the classic methods, suspended all at once (dm-hold.h). skip-lockfs: the
 * filesystem is frozen already, and lvm, finding the origin suspended, skips its own lockfs
 * suspend, which would fail with EBUSY on a FIFREEZE before Linux 6.8. With a flush: every
 * acknowledged write is in. The other methods leave the suspend to lvm. */
static DmHeld held_of(ProviderSet *ps, size_t i) {
        LvmSnapState *st = ps->snapshots[i]->state;

        if (!st || !lvm_method_presuspends(st->rec.method))
                return (DmHeld) {};
        return (DmHeld) { st->origin_major, st->origin_minor, &st->suspended };
}

VssCode lvm_hold_writes(ProviderSet *ps, ProviderResult *res) {
        LvmShareState *s = ps->state;
        uint64_t hold = ps->settings && ps->settings->hold_timeout_usec ? ps->settings->hold_timeout_usec :
                        120 * USEC_PER_SEC;
        size_t n = provider_test_fail_at(ps, "HoldWrites"), failed = 0;
        VssCode code;
        int r;

        if (!s)
                return provider_fail(res, SIZE_MAX, EINVAL, VSS_E_BAD_STATE, "end_prepare_snapshots was not called");
        /* A little before the coordinator's own timeout, so that a command killed at its end
         * still leaves time to resume and thaw within it. */
        s->deadline_usec = now_monotonic_usec() + hold - hold / 10;
        r = dm_held_suspend(s->crew, ps, n, held_of, &failed);
        if (r < 0) {
                LvmSnapState *st = ps->snapshots[failed]->state;

                return provider_fail(res, failed, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                     "Suspending %s/%s failed", st->rec.vg, st->rec.origin);
        }
        if (provider_test_fails(ps, "HoldWrites", n, res, &code))
                return code;
        return S_OK;
}

/* The pool's transaction id, which lvm sets with a message right after create_snap, in the
 * same suspend of the origin. */
static int pool_transaction_id(unsigned major, unsigned minor, uint64_t *ret) {
        _cleanup_free_ char *type = NULL, *params = NULL;
        ThinPoolStatus s;
        int r;

        r = dm_device_status(DM_REF_DEVNUM(major, minor), &type, &params);
        if (r >= 0)
                r = thin_pool_status_parse(params, &s);
        if (r < 0)
                return r;
        *ret = s.transaction_id;
        return 0;
}

/* The early thaw of a THIN_NESTED origin. lvm's native thin lvcreate suspends the origin with
 * lockfs, which on Linux 6.8+ nests inside our FIFREEZE; if our FITHAW comes after lvm's resume,
 * the kernel's thaw for dm fails (another holder remains) and leaves the device's freeze count
 * at 1, so that every later lockfs suspend of that LV silently stops freezing its filesystem
 * (measured on 6.12; lvm-thin-facts.md). So the FITHAW is issued while lvm holds the origin
 * suspended and after its create_snap (the pool's transaction id has moved on): dm is then the
 * last holder, and its resume thaws cleanly. It cannot harm the snapshot: the origin stays
 * suspended (and its filesystem frozen by dm's lockfs) until the snapshot exists. If lvm is
 * faster than this watch, the filesystem is thawed with the others, as without it. */
static void watch_early_thaw(ProviderSet *ps) {
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                LvmSnapState *st = ps->snapshots[i]->state;
                uint64_t tid;
                char c = '0';

                if (!st->watch || !st->started || st->early_thawed || command_finished(st->create))
                        continue;
                if (pread(st->suspended_fd, &c, 1, 0) != 1 || c != '1')
                        continue;
                if (pool_transaction_id(st->tpool_major, st->tpool_minor, &tid) < 0 || tid <= st->tid_start)
                        continue;
                /* EINVAL is the expected answer: dm still holds the filesystem frozen. */
                (void) ioctl(st->fs_fd, FITHAW, 0);
                st->early_thawed = true;
        }
}

static bool watching(const ProviderSet *ps) {
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                const LvmSnapState *st = ps->snapshots[i]->state;

                if (st->watch && st->started && !st->early_thawed && !command_finished(st->create))
                        return true;
        }
        return false;
}

/* Starts the next snapshot of group g, if any. */
static int start_next(ProviderSet *ps, LvmShareState *s, size_t g) {
        for (size_t i = s->next[g]; i < ps->n_snapshots; i++) {
                LvmSnapState *st = ps->snapshots[i]->state;
                int r;

                if (st->group != g || st->started)
                        continue;
                s->next[g] = i + 1;
                st->started = true;
                if (st->watch && pool_transaction_id(st->tpool_major, st->tpool_minor, &st->tid_start) < 0)
                        st->watch = false;
                r = command_start(st->create);
                if (r < 0) {
                        st->failed = true;
                        return r;
                }
                s->running[g] = st->create;
                return 1;
        }
        s->next[g] = ps->n_snapshots;
        s->running[g] = NULL;
        return 0;
}

static LvmSnapState *state_of_command(ProviderSet *ps, const Command *c, size_t *ret_index) {
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                LvmSnapState *st = ps->snapshots[i]->state;

                if (st->create == c) {
                        *ret_index = i;
                        return st;
                }
        }
        return NULL;
}

static bool any_running(const LvmShareState *s) {
        for (size_t g = 0; g < s->n_vgs; g++)
                if (s->running[g])
                        return true;
        return false;
}

VssCode lvm_commit(ProviderSet *ps, ProviderResult *res) {
        LvmShareState *s = ps->state;
        VssCode code = S_OK;
        bool stop = false;
        int r;

        for (size_t g = 0; g < s->n_vgs; g++) {
                r = start_next(ps, s, g);
                if (r < 0)
                        return provider_fail(res, SIZE_MAX, r, VSS_E_PROVIDER_VETO, "Cannot start lvm");
        }
        while (any_running(s)) {
                uint64_t now = now_monotonic_usec();

                if (now >= s->deadline_usec) {
                        /* Past the hold: kill, and report each as timed out below. */
                        commands_kill(s->running, s->n_vgs);
                        stop = true;
                } else
                        /* 1 ms while an early thaw is due, so as not to miss lvm's suspend. */
                        commands_poll(s->running, s->n_vgs, watching(ps) ? 1 :
                                      (int) ((s->deadline_usec - now) / 1000 < 20 ? (s->deadline_usec - now) / 1000 + 1 : 20));
                watch_early_thaw(ps);
                for (size_t g = 0; g < s->n_vgs; g++) {
                        Command *c = s->running[g];
                        LvmSnapState *st;
                        size_t i;

                        if (!c || !command_finished(c) || !(st = state_of_command(ps, c, &i)))
                                continue;
                        if (c->exit_status == 0 && !c->timed_out) {
                                st->created = true;
                                /* Its own snapshot exists: its filesystem may take writes again
                                 * (any later write to a volume not snapshotted yet still blocks,
                                 * so the set stays one instant; lvm-thin-facts.md). */
                                if (st->fs_fd >= 0 && !st->early_thawed) {
                                        (void) ioctl(st->fs_fd, FITHAW, 0);
                                        st->early_thawed = true;
                                }
                        } else {
                                st->failed = true;
                                if (code == S_OK) {
                                        char what[300];

                                        snprintf(what, sizeof what, "Snapshot of %s/%s", st->rec.vg, st->rec.origin);
                                        code = lvm_fail(c, what, i, res);
                                }
                                stop = true;
                        }
                        s->running[g] = NULL;
                        /* After a failure nothing new starts; what runs is waited for. */
                        if (!stop && start_next(ps, s, g) < 0 && code == S_OK) {
                                code = provider_fail(res, SIZE_MAX, errno, VSS_E_PROVIDER_VETO, "Cannot start lvm");
                                stop = true;
                        }
                }
        }
        return code;
}

uint32_t *lvm_share_cookie(ProviderSet *ps) {
        LvmShareState *s = ps->state;

        return s && s->have_cookie ? &s->cookie : NULL;
}

VssCode lvm_release_writes(ProviderSet *ps, bool committed, ProviderResult *res) {
        VssCode code = S_OK;

        /* Every origin that is still suspended is resumed: ours that lvm did not resume (its
         * command failed before), and any lvm left suspended when it was killed (that resume
         * also thaws a filesystem lvm's lockfs froze). */
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                LvmSnapState *st = ps->snapshots[i]->state;
                DmRef o;
                DmInfo info;
                int r;

                if (!st)
                        continue;
                o = DM_REF_DEVNUM(st->origin_major, st->origin_minor);
                if (dm_device_info(o, &info) < 0 || !info.suspended) {
                        st->suspended = false;
                        continue;
                }
                r = dm_device_resume(o, DM_RULES_ALL, lvm_share_cookie(ps));
                if (r < 0)   /* once more, without udev: writers hang until it is resumed */
                        r = dm_device_resume(o, DM_RULES_ALL, NULL);
                if (r >= 0)
                        st->suspended = false;
                else if (code == S_OK)
                        code = provider_fail(res, i, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                             "Resuming %s/%s failed", st->rec.vg, st->rec.origin);
        }
        return code;
}
