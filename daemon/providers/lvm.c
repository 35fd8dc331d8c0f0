/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The lvm provider: LVM logical volumes, classic and thin, through the lvm2 command line (the
 * maintained interface now that liblvm2app is gone). LVM keeps its own metadata, so snapset never
 * edits an LVM device's tables or sends its pools messages: lvm does. The one thing done outside
 * lvm is suspending and resuming an origin's device, which LVM itself expects of a caller that
 * holds a device suspended (it then skips its own suspend). Records are in lvm.h.
 *
 * One instant for the whole set, on the kernels there are (lvm-thin-facts.md; snapsetd(8)):
 *
 *   classic LVs        the COW LV made before the window (end_prepare); FIFREEZE (the
 *                      coordinator), suspend the origin skip-lockfs (hold_writes), "lvconvert -s
 *                      -Zn ORIGIN COW": lvm finds the origin suspended, skips its own lockfs
 *                      suspend (which would collide with FIFREEZE before 6.8), and resumes it into
 *                      the snapshot's tables. LVM_METHOD_CLASSIC.
 *   thin LVs, 6.8+     FIFREEZE, then a native "lvcreate -s" without any suspend of ours: lvm's
 *                      lockfs suspend nests inside the FIFREEZE, and lvm sends the pool's
 *                      create_snap from it; the filesystem is thawed while lvm still holds it
 *                      (lvm-window.c says why). LVM_METHOD_THIN_NESTED.
 *   thin LVs, < 6.8    alone in their set: "lvcreate -s" with lvm's own freeze, no FIFREEZE
 *                      (LVM_METHOD_THIN_LOCKFS); with other volumes: a classic COW snapshot of the
 *                      thin LV, as for classic LVs (LVM_METHOD_CLASSIC_OF_THIN), said so in the
 *                      snapshot's note. Never a pre-suspended thin origin with a native thin
 *                      lvcreate: lvm then reports success but never sends create_snap, and the
 *                      pool's transaction id no longer matches LVM's.
 *
 * Inside the window the lvm commands are started from command lines built before it, with a
 * --config that writes no archive or backup to /etc/lvm (which may be frozen), asks dmeventd for
 * nothing, fails on a held VG lock instead of waiting and skips suspended devices when scanning
 * (lvm-run.c), LVM_SUPPRESS_SYSLOG and HOME in /run. Volume groups run in parallel (each has its
 * own lock), the LVs of one group one after another, each LV's filesystem thawed as soon as its
 * own snapshot exists; everything is bounded by the hold timeout, past which the commands are
 * killed and the set undone. After the thaw: vgcfgbackup, activation of thin snapshots,
 * monitoring of classic ones.
 *
 * This file: preparation, after the window, undoing, finished snapshots, support. The window
 * itself is lvm-window.c, reconcile at start lvm-orphans.c, the state they share lvm-state.h,
 * running lvm and reading its reports lvm-run.c and lvm-report.c. */

#include <inttypes.h>
#include <stdio.h>
#include <sys/sysmacros.h>

#include "cow.h"
#include "dm.h"
#include "freeze-nesting.h"
#include "log.h"
#include "lvm-run.h"
#include "lvm-state.h"
#include "lvm.h"
#include "provider.h"
#include "result.h"
#include "snapshot-set.h"
#include "thin-pool.h"

/* The most volume groups a set may span (each runs its own lvm at once). */
#define MAX_PARALLEL_VGS 32

/* ---------------------------------------------------------------- space */

/* A thin pool, through the status of its "-tpool" device: healthy, writable, with room. */
static VssCode pool_check(const char *vg, const char *pool, const ProviderSettings *settings, size_t index,
                          ProviderResult *res) {
        _cleanup_free_ char *name = NULL, *type = NULL, *params = NULL, *table = NULL, *ttype = NULL, *tparams = NULL;
        ThinPoolStatus s;
        unsigned a, b, c, d;
        uint64_t start, length, block = 128;
        char msg[400], what[300];
        int r;

        snprintf(what, sizeof what, "%s/%s", vg, pool);
        r = dm_lvm_name_join(vg, pool, "tpool", &name);
        if (r < 0)
                return lvm_oom(res, index);
        r = dm_device_status(DM_REF_NAME(name), &type, &params);
        if (r >= 0 && !streq(type, "thin-pool"))
                r = -EMEDIUMTYPE;
        if (r >= 0)
                r = thin_pool_status_parse(params, &s);
        if (r < 0)
                return provider_fail(res, index, r, VSS_E_BAD_STATE, "Cannot read the status of thin pool %s "
                                     "(device %s; is the pool active?)", what, name);
        if (dm_device_table(DM_REF_NAME(name), false, &table) >= 0 &&
            dm_table_line_parse(table, strcspn(table, "\n"), &start, &length, &ttype, &tparams) >= 0)
                (void) thin_pool_table_parse(tparams, &a, &b, &c, &d, &block);
        r = thin_pool_check_space(&s, what, block * 512, lvm_max_used_percent(settings), msg, sizeof msg);
        if (r == -ENOSPC)
                return provider_fail(res, index, 0, VSS_E_INSUFFICIENT_STORAGE, "%s", msg);
        if (r < 0)
                return provider_fail(res, index, 0, VSS_E_BAD_STATE, "%s", msg);
        return S_OK;
}

static VssCode vg_space_fail(const char *vg, uint64_t free_bytes, uint64_t needed, const char *detail, size_t index,
                             ProviderResult *res) {
        char f[32], n[32];

        provider_format_bytes(f, sizeof f, free_bytes);
        provider_format_bytes(n, sizeof n, needed);
        return provider_fail(res, index, 0, VSS_E_INSUFFICIENT_STORAGE, "Volume group %s has %s free (%" PRIu64
                             " bytes), and the classic snapshots %s need %s (%" PRIu64 " bytes) for their "
                             "copy-on-write stores: add space to the group (vgextend), ask for smaller snapshots "
                             "(--cow-size), or delete old snapshots", vg, f, free_bytes, detail, n, needed);
}

/* ---------------------------------------------------------------- prepare */

/* What lvm says of the origin: an active LV of a kind LVM can snapshot. */
static VssCode origin_check(const LvmLv *lv, size_t index, ProviderResult *res) {
        _cleanup_free_ char *path = NULL;

        if (lvm_lv_path(lv->vg, lv->name, &path) < 0)
                return lvm_oom(res, index);
        if (!lvm_lv_is_active(lv))
                return provider_fail(res, index, 0, VSS_E_BAD_STATE, "%s is not active (lv_attr %s): activate it "
                                     "with 'lvchange -ay %s'", path, strna(lv->attr), path);
        if (startswith(lv->name, LVM_SNAPSHOT_LV_PREFIX) || lvm_lv_has_tag(lv, LVM_TAG))
                return provider_fail(res, index, 0, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, "%s is one of "
                                     "snapset's own snapshots: snapshot its origin instead", path);
        if (lv->origin && !lvm_lv_is_thin_volume(lv))
                return provider_fail(res, index, 0, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, "%s is a classic "
                                     "snapshot of %s, and LVM cannot snapshot a snapshot", path, lv->origin);
        if (streq_ptr(lv->segtype, "thin-pool") || streq_ptr(lv->segtype, "cache-pool") ||
            streq_ptr(lv->segtype, "vdo-pool"))
                return provider_fail(res, index, 0, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, "%s is a %s, not a "
                                     "volume", path, lv->segtype);
        return S_OK;
}

static VssCode lvm_begin_prepare(ProviderSet *ps, ProviderSnapshot *snap, ProviderResult *res) {
        const BlockDevice *v = snap->volume;
        Snapshot *model = snap->snapshot;
        size_t index = provider_snapshot_index(ps, snap);
        const ProviderSettings *set = ps->settings;
        LvmSnapState *st = NULL;
        const LvmLv *origin = NULL;
        const LvmVg *vg = NULL;
        VssCode code;

        if (!v || !blockdev_is_lvm(v) || !v->lvm_vg || !v->lvm_lv || !model)
                return provider_fail(res, index, EINVAL, E_INVALIDARG, "not an LVM logical volume");
        if (snap->state)
                return provider_fail(res, index, EALREADY, VSS_E_BAD_STATE, "%s is already prepared", strna(v->path));
        /* Passed to lvm as arguments: only what lvm itself accepts in names. */
        if (!lvm_name_is_valid(v->lvm_vg) || !lvm_name_is_valid(v->lvm_lv))
                return provider_fail(res, index, 0, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, "%s/%s is not a name "
                                     "lvm accepts", v->lvm_vg, v->lvm_lv);

        code = lvm_vg_cache_lookup(ps->set ? ps->set->id : NULL, v->lvm_vg, v->lvm_lv, &vg, &origin, index, res);
        if (code == S_OK)
                code = origin_check(origin, index, res);
        if (code != S_OK)
                goto finish;

        st = calloc(1, sizeof(LvmSnapState));
        if (!st) {
                code = lvm_oom(res, index);
                goto finish;
        }
        st->rec.method = _LVM_METHOD_INVALID;
        st->suspended_fd = st->fs_fd = -EBADF;
        st->thin = lvm_lv_is_thin_volume(origin);
        st->origin_size = origin->size;
        st->origin_major = v->major;
        st->origin_minor = v->minor;
        /* Computed for thin volumes too: they may get a classic snapshot (end_prepare). */
        st->rec.cow_size = lvm_cow_size(model->cow_size, set ? set->default_cow_percent : 10,
                                        set ? set->default_cow_size : 0, origin->size, vg->extent_size);
        if (snapshot_set_field(&st->rec.vg, v->lvm_vg) < 0 || snapshot_set_field(&st->rec.origin, v->lvm_lv) < 0 ||
            snapshot_set_field(&st->rec.origin_uuid, origin->uuid) < 0 ||
            snapshot_set_field(&st->rec.pool, st->thin ? origin->pool : NULL) < 0 ||
            asprintf(&st->rec.snapshot, LVM_SNAPSHOT_LV_PREFIX "%s", model->id) < 0) {
                code = lvm_oom(res, index);
                goto finish;
        }

        if (st->thin)
                code = pool_check(st->rec.vg, st->rec.pool, set, index, res);
        else if (st->rec.cow_size > vg->free) {
                char detail[300];

                snprintf(detail, sizeof detail, "of %s/%s", st->rec.vg, st->rec.origin);
                code = vg_space_fail(st->rec.vg, vg->free, st->rec.cow_size, detail, index, res);
        }
        if (code != S_OK)
                goto finish;

        /* Recorded before anything exists: if the daemon dies from here on, recovery looks for
         * this name and removes it, and finds nothing to remove if nothing was made. */
        if (lvm_record_store(model, &st->rec) < 0 ||
            snapshot_set_field(&model->kind, st->thin ? "thin" : "classic") < 0) {
                code = lvm_oom(res, index);
                goto finish;
        }
        snap->state = TAKE_PTR(st);
        log_debug("lvm: prepared a snapshot of %s/%s (%s, %" PRIu64 " bytes).", v->lvm_vg, v->lvm_lv,
                  origin->segtype, origin->size);
finish:
        lvm_snap_state_free(st);
        return code;
}

/* The share's volume groups, each once, and each snapshot's group. */
static int group_by_vg(ProviderSet *ps, LvmShareState *s) {
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                LvmSnapState *st = ps->snapshots[i]->state;
                size_t g;
                int r;

                for (g = 0; g < s->n_vgs && !streq(s->vgs[g], st->rec.vg); g++)
                        ;
                if (g == s->n_vgs) {
                        if (g >= MAX_PARALLEL_VGS)
                                return -E2BIG;
                        r = blockdev_strv_push(&s->vgs, st->rec.vg);
                        if (r < 0)
                                return r;
                        s->n_vgs++;
                }
                st->group = g;
        }
        s->next = calloc(s->n_vgs ?: 1, sizeof(size_t));
        s->running = calloc(s->n_vgs ?: 1, sizeof(Command *));
        return s->next && s->running ? 0 : -ENOMEM;
}

/* The classic snapshots of each group fit in its free space (a fresh look: other sets and the
 * administrator may have used some since AddToSnapshotSet). */
static VssCode check_vg_space(ProviderSet *ps, const LvmShareState *s, ProviderResult *res) {
        for (size_t g = 0; g < s->n_vgs; g++) {
                uint64_t needed = 0;
                size_t first = SIZE_MAX, count = 0;
                LvmVg vg = {};
                VssCode code;
                char detail[64];

                for (size_t i = 0; i < ps->n_snapshots; i++) {
                        LvmSnapState *st = ps->snapshots[i]->state;

                        if (st->group != g || !lvm_method_presuspends(st->rec.method))
                                continue;
                        needed += st->rec.cow_size;
                        count++;
                        if (first == SIZE_MAX)
                                first = i;
                }
                if (count == 0)
                        continue;
                code = lvm_query_vg(s->vgs[g], &vg, first, res);
                if (code == S_OK && needed > vg.free) {
                        snprintf(detail, sizeof detail, "of %zu volume%s of this set", count, count == 1 ? "" : "s");
                        code = vg_space_fail(s->vgs[g], vg.free, needed, detail, first, res);
                }
                lvm_vg_done(&vg);
                if (code != S_OK)
                        return code;
        }
        return S_OK;
}

static int add_tags(const ProviderSet *ps, Command *c) {
        int r;

        r = command_add(c, "--addtag") ?: command_add(c, LVM_TAG) ?:
            command_add(c, "--addtag") ?: command_addf(c, LVM_SET_TAG_PREFIX "%s", ps->set->id);
        /* Found again without a record (find_orphans): a backup set's snapshots are deleted then. */
        if (r >= 0 && ps->set->context == SET_CONTEXT_BACKUP)
                r = command_add(c, "--addtag") ?: command_add(c, LVM_BACKUP_TAG);
        return r;
}

/* The window's command for one snapshot, fully built now. The classic methods only combine the
 * origin with the COW LV made before the window ("lvconvert -s"): the COW LV's creation,
 * activation, zeroing and deactivation, with their udev waits, stay out of the window, which
 * measured about a third shorter per LV than with "lvcreate -s -L" inside (TCG, 6.1). */
static int build_create(const ProviderSet *ps, LvmSnapState *st) {
        _cleanup_(command_freep) Command *c = NULL;
        _cleanup_free_ char *origin = NULL, *snapshot = NULL;
        const char *fail = getenv("SNAPSETD_TEST_LVM_FAIL");
        bool classic = lvm_method_presuspends(st->rec.method);
        int r;

        r = lvm_lv_path(st->rec.vg, st->rec.origin, &origin);
        if (r >= 0)
                r = lvm_lv_path(st->rec.vg, st->rec.snapshot, &snapshot);
        if (r >= 0)
                r = lvm_new(classic ? "lvconvert" : "lvcreate", true, &c);
        if (r < 0)
                return r;
        /* -y: never a question (stdin is /dev/null anyway). -Zn: the COW LV was zeroed when it
         * was made. */
        if (classic)
                r = command_add(c, "-s") ?: command_add(c, "-Zn") ?: command_add(c, "-y");
        else
                /* Native thin: made inactive, without the activation-skip flag, and activated
                 * after the thaw, so that the window holds only the snapshot itself; -kn so that
                 * it comes up at boot like any LV. */
                r = command_add(c, "-s") ?: command_add(c, "-An") ?: command_add(c, "--ignoremonitoring") ?:
                    command_add(c, "-y") ?: command_add(c, "-kn") ?: command_add(c, "-an") ?:
                    command_add(c, "-n") ?: command_add(c, st->rec.snapshot) ?: add_tags(ps, c);
        /* SNAPSETD_TEST_LVM_FAIL=VG/LV (test suites only): an argument lvm refuses, so that the
         * command fails inside the window for real. */
        if (r >= 0 && fail && streq(fail, origin))
                r = command_add(c, "--addtag") ?: command_add(c, "snapset test failure");
        if (r >= 0)
                r = command_add(c, origin);
        if (r >= 0 && classic)
                r = command_add(c, snapshot);
        if (r < 0)
                return r;
        st->create = TAKE_PTR(c);
        return 0;
}

/* The COW LV of a classic snapshot, made now (zeroed, so that the snapshot target starts a new
 * store in it) and tagged like the snapshot it becomes. Deactivated afterwards, all of a VG in
 * one command (make_cow_lvs): lvconvert combines only inactive LVs. */
static VssCode make_cow_lv(const ProviderSet *ps, LvmSnapState *st, size_t index, ProviderResult *res) {
        _cleanup_(command_freep) Command *c = NULL;
        char what[300];
        VssCode code;
        int r;

        r = lvm_new("lvcreate", false, &c);
        if (r >= 0)
                r = command_add(c, "-L") ?: command_addf(c, "%" PRIu64 "b", st->rec.cow_size) ?:
                    command_add(c, "-n") ?: command_add(c, st->rec.snapshot) ?: command_add(c, "-Zy") ?:
                    command_add(c, "-Wy") ?: command_add(c, "-y") ?: add_tags(ps, c) ?: command_add(c, st->rec.vg);
        if (r < 0)
                return lvm_oom(res, index);
        snprintf(what, sizeof what, "Making the copy-on-write LV for the snapshot of %s/%s", st->rec.vg, st->rec.origin);
        code = lvm_run(c, what, index, res);
        if (code == S_OK)
                st->cow_made = true;
        return code;
}

static bool is_cow_made(const LvmSnapState *st) {
        return st->cow_made;
}

static VssCode run_for_group(ProviderSet *ps, size_t g, const char *subcommand, const char *const *args,
                             bool (*matches)(const LvmSnapState *st), const char *what, ProviderResult *res);

static VssCode make_cow_lvs(ProviderSet *ps, ProviderResult *res) {
        static const char *const deactivate[] = { "-an", NULL };
        VssCode code;

        for (size_t i = 0; i < ps->n_snapshots; i++) {
                LvmSnapState *st = ps->snapshots[i]->state;

                if (!lvm_method_presuspends(st->rec.method))
                        continue;
                code = make_cow_lv(ps, st, i, res);
                if (code != S_OK)
                        return code;
        }
        return run_for_group(ps, SIZE_MAX, "lvchange", deactivate, is_cow_made,
                             "Deactivating the copy-on-write LVs", res);
}

static VssCode lvm_end_prepare(ProviderSet *ps, ProviderResult *res) {
        const ProviderSettings *set = ps->settings;
        FreezeNesting nesting = FREEZE_NESTING_NO;
        LvmShareState *s;
        bool any_thin = false;
        VssCode code;
        int r;

        if (ps->state)
                return S_OK;
        /* From here on the group's reports are asked afresh (check_vg_space()). */
        lvm_vg_cache_drop();
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                LvmSnapState *st = ps->snapshots[i]->state;

                if (!st)
                        return provider_fail(res, i, EINVAL, VSS_E_BAD_STATE, "A volume was not prepared");
                any_thin = any_thin || st->thin;
        }
        /* Asked once per boot; only needed when there is a thin LV. */
        if (any_thin)
                nesting = freeze_nesting_probe(set ? set->run_directory : NULL, NULL);

        for (size_t i = 0; i < ps->n_snapshots; i++) {
                ProviderSnapshot *snap = ps->snapshots[i];
                LvmSnapState *st = snap->state;

                st->rec.method = lvm_method_choose(st->thin, ps->n_set_devices, nesting,
                                                   set && set->lvm_thin_classic);
                snap->skip_freeze = !lvm_method_needs_fifreeze(st->rec.method);
                if (st->rec.method == LVM_METHOD_THIN_NESTED || st->rec.method == LVM_METHOD_THIN_LOCKFS)
                        st->rec.cow_size = 0;
        }

        s = calloc(1, sizeof(LvmShareState));
        if (!s)
                return lvm_oom(res, SIZE_MAX);
        ps->state = s;
        s->have_cookie = dm_udev_cookie_new(&s->cookie) >= 0;
        r = group_by_vg(ps, s);
        if (r < 0)
                return provider_fail(res, SIZE_MAX, r, r == -E2BIG ? E_INVALIDARG : E_OUTOFMEMORY, r == -E2BIG ?
                                     "The set spans more than %d volume groups" : "Out of memory", MAX_PARALLEL_VGS);
        code = check_vg_space(ps, s, res);
        if (code == S_OK)
                code = make_cow_lvs(ps, res);
        if (code != S_OK)
                return code;

        for (size_t i = 0; i < ps->n_snapshots; i++) {
                LvmSnapState *st = ps->snapshots[i]->state;
                Snapshot *model = ps->snapshots[i]->snapshot;

                lvm_prepare_early_thaw(st, ps->snapshots[i]->volume);
                r = build_create(ps, st);
                if (r < 0)
                        return provider_fail(res, i, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                             "Cannot prepare the lvcreate command for %s/%s", st->rec.vg,
                                             st->rec.origin);
                model->cow_size = st->rec.cow_size;
                if (lvm_record_store(model, &st->rec) < 0 ||
                    snapshot_set_field(&model->kind, lvm_method_kind(st->rec.method)) < 0 ||
                    snapshot_set_field(&model->note, lvm_method_note(st->rec.method)) < 0)
                        return lvm_oom(res, i);
                /* Every thin snapshot names the pool it lives in (both thin methods): health and
                 * listings tell how full it is. */
                if (st->rec.pool && streq(lvm_method_kind(st->rec.method), "thin")) {
                        _cleanup_free_ char *pool = NULL;

                        if (lvm_lv_path(st->rec.vg, st->rec.pool, &pool) < 0 || snapshot_set_field(&model->pool, pool) < 0)
                                return lvm_oom(res, i);
                }
                log_debug("lvm: %s/%s will be snapshotted as %s (%s).", st->rec.vg, st->rec.origin,
                          st->rec.snapshot, lvm_method_to_string(st->rec.method));
        }
        return S_OK;
}

static VssCode lvm_pre_commit(ProviderSet *ps, ProviderResult *res) {
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                LvmSnapState *st = ps->snapshots[i]->state;
                _cleanup_free_ char *name = NULL;
                DmInfo o;

                if (!st || !st->create)
                        return provider_fail(res, i, EINVAL, VSS_E_BAD_STATE, "A volume was not prepared");
                /* Gone or changed since AddToSnapshotSet: better now than inside the window. */
                if (dm_lvm_name_join(st->rec.vg, st->rec.origin, NULL, &name) < 0)
                        return lvm_oom(res, i);
                if (dm_device_info(DM_REF_DEVNUM(st->origin_major, st->origin_minor), &o) < 0 || !streq(o.name, name))
                        return provider_fail(res, i, ENXIO, VSS_E_OBJECT_NOT_FOUND, "Logical volume %s/%s is gone "
                                             "(removed or renamed since it was added to the set)", st->rec.vg,
                                             st->rec.origin);
                if (o.suspended)
                        return provider_fail(res, i, EBUSY, VSS_E_BAD_STATE, "%s/%s is suspended (an lvm command is "
                                             "working on it?): retry when it has been resumed", st->rec.vg,
                                             st->rec.origin);
        }
        if (!ps->state)
                return provider_fail(res, SIZE_MAX, EINVAL, VSS_E_BAD_STATE, "end_prepare_snapshots was not called");
        return provider_window_crew_new(&((LvmShareState *) ps->state)->crew, ps->n_snapshots, res);
}

/* ---------------------------------------------------------------- after the window */

/* "lvm SUBCOMMAND ARGS... VG/SNAP..." for every snapshot of group g (or every group when g is
 * SIZE_MAX) that matches, or nothing if none does. */
static VssCode run_for_group(ProviderSet *ps, size_t g, const char *subcommand, const char *const *args,
                             bool (*matches)(const LvmSnapState *st), const char *what, ProviderResult *res) {
        _cleanup_(command_freep) Command *c = NULL;
        size_t first = SIZE_MAX;
        int r;

        r = lvm_new(subcommand, false, &c);
        for (const char *const *a = args; r >= 0 && a && *a; a++)
                r = command_add(c, *a);
        for (size_t i = 0; r >= 0 && i < ps->n_snapshots; i++) {
                LvmSnapState *st = ps->snapshots[i]->state;

                if (!st || (g != SIZE_MAX && st->group != g) || !matches(st))
                        continue;
                r = command_addf(c, "%s/%s", st->rec.vg, st->rec.snapshot);
                if (first == SIZE_MAX)
                        first = i;
        }
        if (r < 0)
                return provider_fail(res, SIZE_MAX, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                     "Cannot run lvm %s", subcommand);
        if (first == SIZE_MAX)
                return S_OK;
        return lvm_run(c, what, first, res);
}

static bool is_native_thin(const LvmSnapState *st) {
        return st->created && !lvm_method_presuspends(st->rec.method);
}

static bool is_classic(const LvmSnapState *st) {
        return st->created && lvm_method_presuspends(st->rec.method);
}

/* The snapshot's status into the model, from its device and, for thin, its pool's. */
static void query_into(Snapshot *model, const LvmRecord *rec) {
        _cleanup_free_ char *name = NULL, *type = NULL, *params = NULL;
        ThinPoolStatus s;

        model->invalid = false;
        if (dm_lvm_name_join(rec->vg, rec->snapshot, NULL, &name) < 0)
                return;
        if (dm_device_status(DM_REF_NAME(name), &type, &params) < 0) {
                model->invalid = true;   /* not active: there is nothing to read */
                return;
        }
        if (streq(type, "snapshot")) {
                unsigned long long used, total;

                if (sscanf(params, "%llu/%llu", &used, &total) == 2 && total > 0)
                        model->cow_used_percent = 100.0 * (double) used / (double) total;
                else
                        model->invalid = true;   /* "Invalid", "Overflow" */
                return;
        }
        if (rec->pool) {
                free(name);
                free(type);
                free(params);
                name = type = params = NULL;
                if (dm_lvm_name_join(rec->vg, rec->pool, "tpool", &name) >= 0 &&
                    dm_device_status(DM_REF_NAME(name), &type, &params) >= 0 &&
                    thin_pool_status_parse(params, &s) >= 0 && s.data_total > 0 && s.meta_total > 0) {
                        model->pool_data_used_percent = 100.0 * (double) s.data_used / (double) s.data_total;
                        model->pool_metadata_used_percent = 100.0 * (double) s.meta_used / (double) s.meta_total;
                        model->invalid = s.mode == THIN_POOL_FAIL;
                }
        }
}

static int model_set_device(Snapshot *model, const LvmRecord *rec) {
        char *p;

        if (asprintf(&p, "/dev/%s/%s", rec->vg, rec->snapshot) < 0)
                return -ENOMEM;
        free(model->device);
        model->device = p;
        return 0;
}

static VssCode lvm_post_commit(ProviderSet *ps, ProviderResult *res) {
        static const char *const activate[] = { "-ay", NULL };
        static const char *const monitor[] = { "--monitor", "y", NULL };
        LvmShareState *s = ps->state;
        _cleanup_(command_freep) Command *backup = NULL;
        VssCode code;
        int r;

        for (size_t i = 0; i < ps->n_snapshots; i++) {
                LvmSnapState *st = ps->snapshots[i]->state;

                if (!st || !st->created)
                        return provider_fail(res, i, EINVAL, VSS_E_BAD_STATE, "A snapshot was not committed");
        }
        /* The metadata backup -An left out inside the window, now that /etc/lvm is thawed. */
        r = lvm_new("vgcfgbackup", false, &backup);
        for (size_t g = 0; r >= 0 && g < s->n_vgs; g++)
                r = command_add(backup, s->vgs[g]);
        if (r < 0)
                return lvm_oom(res, SIZE_MAX);
        code = lvm_run(backup, "Backing up the volume groups' metadata", SIZE_MAX, res);
        if (code == S_OK)
                code = run_for_group(ps, SIZE_MAX, "lvchange", activate, is_native_thin,
                                     "Activating the thin snapshots", res);
        if (code == S_OK)
                code = run_for_group(ps, SIZE_MAX, "lvchange", monitor, is_classic,
                                     "Monitoring the classic snapshots (dmeventd)", res);
        if (code != S_OK)
                return code;

        for (size_t i = 0; i < ps->n_snapshots; i++) {
                LvmSnapState *st = ps->snapshots[i]->state;
                Snapshot *model = ps->snapshots[i]->snapshot;

                if (model_set_device(model, &st->rec) < 0 || lvm_record_store(model, &st->rec) < 0)
                        return lvm_oom(res, i);
                query_into(model, &st->rec);
                if (model->invalid)
                        return provider_fail(res, i, 0, VSS_E_PROVIDER_VETO, "Snapshot %s/%s was created but is not "
                                             "usable (inactive, or its copy-on-write store failed); see 'lvs -a %s'",
                                             st->rec.vg, st->rec.snapshot, st->rec.vg);
        }
        lvm_share_state_free(ps);
        return S_OK;
}

/* ---------------------------------------------------------------- undoing */

/* Removes the snapshot LV rec names (or the COW LV it would have become): gone already, or its
 * whole VG gone, is success. After a failed or killed command inside the window, the origin's
 * tables are refreshed from LVM's metadata, so that the kernel shows what LVM believes. One
 * lvm process for the removal, none to look first: under TCG each costs about a second. */
static VssCode remove_snapshot_lv(const LvmRecord *rec, bool refresh_origin, size_t index, ProviderResult *res) {
        _cleanup_free_ char *path = NULL, *origin = NULL;
        _cleanup_(command_freep) Command *c = NULL;
        VssCode code;
        char what[300];
        int r;

        if (lvm_lv_path(rec->vg, rec->snapshot, &path) < 0 || lvm_lv_path(rec->vg, rec->origin, &origin) < 0)
                return lvm_oom(res, index);
        snprintf(what, sizeof what, "Removing snapshot %s", path);
        r = lvm_new("lvremove", false, &c);
        if (r >= 0)
                r = command_add(c, "-f") ?: command_add(c, "-y") ?: command_add(c, path);
        if (r < 0)
                return lvm_oom(res, index);
        code = lvm_run(c, what, index, res);
        if (code == VSS_E_OBJECT_NOT_FOUND)
                code = S_OK;   /* nothing of it exists */
        if (code != S_OK || !refresh_origin)
                return code;
        command_free(c);
        c = NULL;
        snprintf(what, sizeof what, "Refreshing %s", origin);
        r = lvm_new("lvchange", false, &c);
        if (r >= 0)
                r = command_add(c, "--refresh") ?: command_add(c, origin);
        if (r < 0)
                return lvm_oom(res, index);
        code = lvm_run(c, what, index, res);
        /* An origin removed since (the set failed because it went) has nothing to refresh. */
        return code == VSS_E_OBJECT_NOT_FOUND ? S_OK : code;
}

static VssCode lvm_abort(ProviderSet *ps, ProviderResult *res) {
        VssCode code = S_OK;

        for (size_t i = ps->n_snapshots; i-- > 0;) {
                ProviderSnapshot *snap = ps->snapshots[i];
                LvmSnapState *st = snap->state;
                LvmRecord parsed = {};
                const LvmRecord *rec;
                bool messy = false;
                VssCode k;

                if (st) {
                        rec = &st->rec;
                        /* Never left suspended, whatever happened before. */
                        if (st->suspended) {
                                (void) dm_device_resume(DM_REF_DEVNUM(st->origin_major, st->origin_minor), DM_RULES_ALL,
                                                        lvm_share_cookie(ps));
                                st->suspended = false;
                        }
                        messy = st->failed;
                        if (!st->started && !st->created && !st->cow_made)
                                continue;   /* nothing of it was ever made */
                } else if (snap->snapshot && lvm_record_from_json(snap->snapshot->provider_data, &parsed) >= 0)
                        rec = &parsed;      /* committed; post_commit freed the state */
                else
                        continue;
                k = remove_snapshot_lv(rec, messy, i, res);
                if (k != S_OK && code == S_OK)
                        code = k;
                lvm_record_done(&parsed);
        }
        lvm_share_state_free(ps);
        return code;
}

/* ---------------------------------------------------------------- finished snapshots */


static VssCode lvm_delete(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res) {
        _cleanup_(lvm_record_done) LvmRecord rec = { .method = _LVM_METHOD_INVALID };
        VssCode code;

        code = lvm_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        code = remove_snapshot_lv(&rec, false, 0, res);
        if (code == VSS_E_BAD_STATE)
                /* lvm's message says it is open; say what to do about it. */
                strncat(res->message, "; unmount it (or stop what uses it) first",
                        sizeof res->message - strlen(res->message) - 1);
        return code;
}

/* One lvremove per volume group for all of the set's snapshots in it, the groups side by side
 * (each has its own lock): a set over two groups is deleted in about the time of the larger. */
static void lvm_prepare_delete(Snapshot *const *snaps, size_t n, const ProviderSettings *settings) {
        _cleanup_free_ LvmRecord *recs = calloc(n ?: 1, sizeof(LvmRecord));
        _cleanup_free_ bool *done = calloc(n ?: 1, sizeof(bool));
        _cleanup_free_ Command **cmds = calloc(n ?: 1, sizeof(Command *));
        ProviderResult res = { .failed = SIZE_MAX };
        size_t n_cmds = 0;
        int r = 0;

        if (!recs || !done || !cmds)
                return;
        for (size_t i = 0; i < n; i++)
                done[i] = lvm_record_from_json(snaps[i]->provider_data, &recs[i]) < 0;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (done[i])
                        continue;
                r = lvm_new("lvremove", false, &cmds[n_cmds]);
                if (r < 0)
                        break;
                r = command_add(cmds[n_cmds], "-f") ?: command_add(cmds[n_cmds], "-y");
                for (size_t j = i; r >= 0 && j < n; j++)
                        if (!done[j] && streq(recs[j].vg, recs[i].vg)) {
                                r = command_addf(cmds[n_cmds], "%s/%s", recs[j].vg, recs[j].snapshot);
                                done[j] = true;
                        }
                n_cmds++;
        }
        /* Whatever is not removed here, delete_snapshot removes (or says why it cannot). */
        if (r >= 0)
                (void) lvm_run_all(cmds, n_cmds, "Removing the snapshots", &res);
        for (size_t i = 0; i < n_cmds; i++)
                command_free(cmds[i]);
        for (size_t i = 0; i < n; i++)
                lvm_record_done(&recs[i]);
}

/* Before the interrupted set's filesystems are thawed: only resume the origin if it was left
 * suspended. No lvm command here: lvm would suspend with lockfs and may write to /etc/lvm. */
static VssCode lvm_recover(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res) {
        _cleanup_(lvm_record_done) LvmRecord rec = { .method = _LVM_METHOD_INVALID };
        _cleanup_free_ char *name = NULL;
        uint32_t cookie = 0;
        DmInfo info;
        VssCode code;
        int r;

        code = lvm_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        if (dm_lvm_name_join(rec.vg, rec.origin, NULL, &name) < 0)
                return lvm_oom(res, 0);
        if (dm_device_info(DM_REF_NAME(name), &info) < 0 || !info.suspended)
                return S_OK;
        /* With a cookie (see LvmShareState.cookie), waited on at once: nothing is suspended
         * any more. */
        (void) dm_udev_cookie_new(&cookie);
        r = dm_device_resume(DM_REF_NAME(name), DM_RULES_ALL, &cookie);
        if (r < 0)
                r = dm_device_resume(DM_REF_NAME(name), DM_RULES_ALL, NULL);
        (void) dm_udev_cookie_wait(&cookie);
        if (r < 0)
                return provider_fail(res, 0, r, VSS_E_PROVIDER_VETO, "Resuming %s failed; run 'dmsetup resume %s'",
                                     name, name);
        return S_OK;
}

/* Once thawed: remove the snapshot LV if lvcreate got to make it, and refresh the origin. */
static VssCode lvm_recover_after_thaw(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res) {
        _cleanup_(lvm_record_done) LvmRecord rec = { .method = _LVM_METHOD_INVALID };
        VssCode code;

        code = lvm_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        return remove_snapshot_lv(&rec, true, 0, res);
}

/* After a reboot LVM activates its snapshots itself (classic ones with their origin, thin ones
 * since they are made without the activation-skip flag); this makes sure, and finds out whether
 * the LV is still there at all. */
static VssCode lvm_activate(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res) {
        _cleanup_(lvm_record_done) LvmRecord rec = { .method = _LVM_METHOD_INVALID };
        _cleanup_free_ char *path = NULL;
        _cleanup_(command_freep) Command *c = NULL;
        LvmLv *lvs = NULL;
        size_t n = 0;
        bool found = false, active = false;
        VssCode code;
        int r;

        code = lvm_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        if (lvm_lv_path(rec.vg, rec.snapshot, &path) < 0)
                return lvm_oom(res, 0);
        code = lvm_query_lvs((char *[]) { rec.vg, NULL }, &lvs, &n, 0, res);
        if (code != S_OK)
                return code;
        for (size_t i = 0; i < n; i++)
                if (streq_ptr(lvs[i].name, rec.snapshot)) {
                        found = true;
                        active = lvm_lv_is_active(&lvs[i]);
                }
        lvm_lvs_free(lvs, n);
        if (!found) {
                res->snapshot_gone = true;
                return provider_fail(res, 0, ENOENT, VSS_E_OBJECT_NOT_FOUND, "Logical volume %s, snapshot %s, "
                                     "no longer exists (removed with lvremove?)", path, snap->id);
        }
        if (!active) {
                r = lvm_new("lvchange", false, &c);
                if (r >= 0)
                        r = command_add(c, "-ay") ?: command_add(c, "-K") ?: command_add(c, path);
                if (r < 0)
                        return lvm_oom(res, 0);
                code = lvm_run(c, "Activating the snapshot", 0, res);
                if (code != S_OK)
                        return code;
        }
        if (model_set_device(snap, &rec) < 0)
                return lvm_oom(res, 0);
        query_into(snap, &rec);
        return S_OK;
}

static VssCode lvm_query(Snapshot *snap, ProviderResult *res) {
        _cleanup_(lvm_record_done) LvmRecord rec = { .method = _LVM_METHOD_INVALID };
        VssCode code;

        code = lvm_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        /* From the devices' status: no lvm process for a listing. */
        query_into(snap, &rec);
        return S_OK;
}

/* ---------------------------------------------------------------- probe, support */

static int lvm_probe(char **ret_reason) {
        _cleanup_free_ char *lvm = NULL;
        int r;

        r = dm_probe(ret_reason);
        if (r <= 0)
                return r;
        lvm = command_find_executable("lvm");
        if (!lvm) {
                *ret_reason = strdup("the lvm command is not installed (install lvm2)");
                return *ret_reason ? 0 : -ENOMEM;
        }
        return 1;
}

/* How thin LVs join sets on this kernel: the answer of the freeze nesting probe. */
static int lvm_notes(char ***ret_notes) {
        _cleanup_free_ char *reason = NULL;
        FreezeNesting nesting;
        char **notes = calloc(1, sizeof(char *));
        char *s;
        int r;

        if (!notes)
                return -ENOMEM;
        /* Without device-mapper there is nothing to probe (and nothing to snapshot). */
        if (dm_probe(&reason) <= 0) {
                *ret_notes = notes;
                return 0;
        }
        free(reason);
        reason = NULL;
        nesting = freeze_nesting_probe(NULL, &reason);
        if (nesting == FREEZE_NESTING_YES)
                r = asprintf(&s, "Thin LVs: native thin snapshots, at one instant with the other volumes of "
                             "a set (this kernel lets LVM's freeze nest inside FIFREEZE).");
        else
                r = asprintf(&s, "Thin LVs: a native thin snapshot when alone in a set; a classic "
                             "(copy-on-write) snapshot in a set with other volumes, so that the set is one "
                             "instant (%s%s%s).", nesting == FREEZE_NESTING_NO ? "this kernel does not let "
                             "LVM's freeze nest inside FIFREEZE; Linux 6.8 and later do" :
                             "whether this kernel lets LVM's freeze nest inside FIFREEZE could not be found out: ",
                             nesting == FREEZE_NESTING_NO ? "" : strempty(reason), "");
        if (r < 0 || blockdev_strv_push(&notes, s) < 0) {
                if (r >= 0)
                        free(s);
                blockdev_strv_free(notes);
                return -ENOMEM;
        }
        free(s);
        *ret_notes = notes;
        return 0;
}

/* LVM's hidden sub-volumes: lvm refuses these strings in the names of ordinary LVs
 * (lib/metadata/lv_manip.c, apply_lvname_restrictions()), so finding one means the LV is an
 * internal part of another LV (a thin pool's data, a RAID image, a cache's metadata, ...). */
static bool lvm_lv_is_internal(const char *lv) {
        static const char *const reserved[] = {
                "_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_iorig", "_imeta", "_mimage",
                "_mlog", "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_vorigin",
                "_wcorig",
        };

        if (startswith(lv, "pvmove") || startswith(lv, "snapshot"))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                if (strstr(lv, reserved[i]))
                        return true;
        return false;
}

static int lvm_is_volume_supported(const BlockDevice *d, char **ret_reason) {
        if (!blockdev_is_lvm(d))
                return VOLUME_NOT_HANDLED;
        if (!d->lvm_vg || !d->lvm_lv)
                return provider_not_supported(ret_reason, "an LVM device whose device-mapper name "
                                              "\"%s\" is not of the form VG-LV", strna(d->dm_name));
        if (d->lvm_layer)
                return provider_not_supported(ret_reason, "an internal device of LVM logical volume "
                                              "%s/%s (layer \"%s\"): snapshot the logical volume itself",
                                              d->lvm_vg, d->lvm_lv, d->lvm_layer);
        if (lvm_lv_is_internal(d->lvm_lv))
                return provider_not_supported(ret_reason, "a hidden LVM sub-volume (%s/%s): snapshot "
                                              "the logical volume it belongs to", d->lvm_vg, d->lvm_lv);
        if (startswith(d->lvm_lv, LVM_SNAPSHOT_LV_PREFIX))
                return provider_not_supported(ret_reason, "one of snapset's own snapshots (%s/%s): "
                                              "snapshot its origin instead", d->lvm_vg, d->lvm_lv);
        if (blockdev_strv_contains(d->dm_targets, "snapshot"))
                return provider_not_supported(ret_reason, "a classic LVM snapshot, and LVM cannot "
                                              "snapshot a snapshot: snapshot its origin");
        if (blockdev_strv_contains(d->dm_targets, "snapshot-merge"))
                return provider_not_supported(ret_reason, "a snapshot is being merged into it: "
                                              "wait until the merge has finished");
        if (blockdev_strv_contains(d->dm_targets, "thin-pool"))
                return provider_not_supported(ret_reason, "an LVM thin pool, not a volume: snapshot "
                                              "the thin volumes in it");
        return VOLUME_SUPPORTED;
}

static const ProviderOps lvm_ops = {
        .probe = lvm_probe,
        .is_volume_supported = lvm_is_volume_supported,
        .notes = lvm_notes,
        .begin_prepare_snapshot = lvm_begin_prepare,
        .end_prepare_snapshots = lvm_end_prepare,
        .pre_commit_snapshots = lvm_pre_commit,
        .hold_writes = lvm_hold_writes,
        .commit_snapshots = lvm_commit,
        .release_writes = lvm_release_writes,
        .post_commit_snapshots = lvm_post_commit,
        .abort_snapshots = lvm_abort,
        .delete_snapshot = lvm_delete,
        .prepare_delete = lvm_prepare_delete,
        .activate_snapshot = lvm_activate,
        .recover = lvm_recover,
        .recover_after_thaw = lvm_recover_after_thaw,
        .query = lvm_query,
        .revert_start = lvm_revert_start,
        .revert_progress = lvm_revert_progress,
        .break_snapshot = lvm_break,
        .find_orphans = lvm_find_orphans,
};

const Provider provider_lvm = {
        .name = "lvm",
        .kind = "builtin",
        .priority = 10,
        .ops = &lvm_ops,
};
