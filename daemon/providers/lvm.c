/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The lvm provider: LVM logical volumes, classic and thin, through the lvm2 command line (the
 * maintained interface now that liblvm2app is gone). LVM keeps its own metadata, so snapset never
 * edits an LVM device's tables or sends its pools messages: lvm does. The one thing done outside
 * lvm is suspending and resuming an origin's device, which LVM itself expects of a caller that
 * holds a device suspended (it then skips its own suspend). Records are in lvm.h.
 *
 * One instant for the whole set, on the kernels there are (lvm-thin-facts.md; snapsetd(8)):
 *
 *   classic LVs        FIFREEZE (the coordinator), suspend the origin skip-lockfs (hold_writes),
 *                      "lvcreate -s -L": lvm finds the origin suspended, skips its own lockfs
 *                      suspend (which would collide with FIFREEZE before 6.8), and resumes it into
 *                      the snapshot's tables. LVM_METHOD_CLASSIC.
 *   thin LVs, 6.8+     FIFREEZE, then a native "lvcreate -s" without any suspend of ours: lvm's
 *                      lockfs suspend nests inside the FIFREEZE, and lvm sends the pool's
 *                      create_snap from it. LVM_METHOD_THIN_NESTED.
 *   thin LVs, < 6.8    alone in their set: "lvcreate -s" with lvm's own freeze, no FIFREEZE
 *                      (LVM_METHOD_THIN_LOCKFS); with other volumes: a classic COW snapshot of the
 *                      thin LV, as for classic LVs (LVM_METHOD_CLASSIC_OF_THIN), said so in the
 *                      snapshot's note. Never a pre-suspended thin origin with a native thin
 *                      lvcreate: lvm then reports success but never sends create_snap, and the
 *                      pool's transaction id no longer matches LVM's.
 *
 * Inside the window the lvm commands are started from command lines built before it, with -An (no
 * archive or backup in /etc/lvm, which may be frozen), --ignoremonitoring, LVM_SUPPRESS_SYSLOG,
 * HOME in /run, and a --config that fails on a held VG lock instead of waiting and skips
 * suspended devices when scanning. Volume groups run in parallel (each has its own lock), the LVs
 * of one group one after another; everything is bounded by the hold timeout, past which the
 * commands are killed and the set undone. After the thaw: vgcfgbackup, activation of thin
 * snapshots, monitoring of classic ones. */

#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "cow.h"
#include "dm.h"
#include "freeze-nesting.h"
#include "log.h"
#include "lvm-run.h"
#include "lvm.h"
#include "provider.h"
#include "result.h"
#include "snapshot-set.h"
#include "thin-pool.h"

/* The most volume groups a set may span (each runs its own lvm at once). */
#define MAX_PARALLEL_VGS 32

/* ---------------------------------------------------------------- state between phases */

typedef struct LvmSnapState {
        LvmRecord rec;
        uint64_t origin_size;
        unsigned origin_major, origin_minor;
        bool thin;
        Command *create;           /* the window's lvcreate, built in end_prepare */
        size_t group;              /* its volume group's index in LvmShareState.vgs */
        bool suspended;            /* by hold_writes */
        bool cow_made;             /* the classic methods: the COW LV exists (made in end_prepare) */
        bool started, created, failed;
        /* The early thaw (prepare_early_thaw()), everything opened and resolved before the
         * window; -EBADF/unset when it cannot be done. */
        int fs_fd;                 /* the origin's filesystem */
        int suspended_fd;          /* THIN_NESTED: the origin's /sys/dev/block/M:m/dm/suspended */
        unsigned tpool_major, tpool_minor;
        uint64_t tid_start;        /* the pool's transaction id when its lvcreate started */
        bool watch, early_thawed;
} LvmSnapState;

typedef struct LvmShareState {
        char **vgs;                /* the share's volume groups, each once */
        size_t n_vgs;
        uint64_t deadline_usec;    /* end of the hold, for the window's commands */
        /* The window's bookkeeping, allocated before it: per group the next snapshot to
         * start, and the commands running. */
        size_t *next;
        Command **running;
        /* The udev cookie of our own resumes of LVM devices (made before the window, waited on
         * after it). Without one, libdm's uevent lacks the primary-source flag, LVM's udev rules
         * skip the event, and udev drops the device's /dev/VG/LV link. */
        uint32_t cookie;
        bool have_cookie;
} LvmShareState;

static void snap_state_free(LvmSnapState *s) {
        if (!s)
                return;
        lvm_record_done(&s->rec);
        command_free(s->create);
        safe_close(s->suspended_fd);
        safe_close(s->fs_fd);
        free(s);
}

static void share_state_free(ProviderSet *ps) {
        LvmShareState *s = ps->state;

        if (s) {
                if (s->have_cookie)
                        (void) dm_udev_cookie_wait(&s->cookie);
                blockdev_strv_free(s->vgs);
                free(s->next);
                free(s->running);
                free(s);
                ps->state = NULL;
        }
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                snap_state_free(ps->snapshots[i]->state);
                ps->snapshots[i]->state = NULL;
        }
        command_reap_abandoned();
}

static size_t snapshot_index(const ProviderSet *ps, const ProviderSnapshot *snap) {
        for (size_t i = 0; i < ps->n_snapshots; i++)
                if (ps->snapshots[i] == snap)
                        return i;
        return SIZE_MAX;
}

static VssCode oom(ProviderResult *res, size_t index) {
        return provider_fail(res, index, ENOMEM, E_OUTOFMEMORY, "Out of memory");
}

static int record_store(Snapshot *model, const LvmRecord *rec) {
        json_object *j;
        int r;

        r = lvm_record_to_json(rec, &j);
        if (r < 0)
                return r;
        json_object_put(model->provider_data);
        model->provider_data = j;
        return 0;
}

static unsigned max_used_percent(const ProviderSettings *s) {
        unsigned p = s ? s->thin_pool_max_used_percent : 0;

        return p > 0 && p <= 100 ? p : THIN_POOL_DEFAULT_MAX_USED_PERCENT;
}

/* "vg/lv", for lvm's arguments and for messages. */
static int lv_path(const char *vg, const char *lv, char **ret) {
        return asprintf(ret, "%s/%s", vg, lv) < 0 ? -ENOMEM : 0;
}

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
                return oom(res, index);
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
        r = thin_pool_check_space(&s, what, block * 512, max_used_percent(settings), msg, sizeof msg);
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
static VssCode origin_query(const BlockDevice *v, size_t index, LvmLv *ret, ProviderResult *res) {
        _cleanup_free_ char *path = NULL;
        LvmLv *lvs = NULL;
        size_t n = 0;
        VssCode code;

        if (lv_path(v->lvm_vg, v->lvm_lv, &path) < 0)
                return oom(res, index);
        code = lvm_query_lvs((char *[]) { path, NULL }, &lvs, &n, index, res);
        if (code != S_OK)
                return code;
        if (n != 1) {
                lvm_lvs_free(lvs, n);
                return provider_fail(res, index, ENOENT, VSS_E_OBJECT_NOT_FOUND, "lvs does not know %s", path);
        }
        *ret = lvs[0];
        free(lvs);
        if (!lvm_lv_is_active(ret))
                return provider_fail(res, index, 0, VSS_E_BAD_STATE, "%s is not active (lv_attr %s): activate it "
                                     "with 'lvchange -ay %s'", path, strna(ret->attr), path);
        if (startswith(ret->name, LVM_SNAPSHOT_LV_PREFIX) || lvm_lv_has_tag(ret, LVM_TAG))
                return provider_fail(res, index, 0, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, "%s is one of "
                                     "snapset's own snapshots: snapshot its origin instead", path);
        if (ret->origin && !lvm_lv_is_thin_volume(ret))
                return provider_fail(res, index, 0, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, "%s is a classic "
                                     "snapshot of %s, and LVM cannot snapshot a snapshot", path, ret->origin);
        if (streq_ptr(ret->segtype, "thin-pool") || streq_ptr(ret->segtype, "cache-pool") ||
            streq_ptr(ret->segtype, "vdo-pool"))
                return provider_fail(res, index, 0, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, "%s is a %s, not a "
                                     "volume", path, ret->segtype);
        return S_OK;
}

static VssCode lvm_begin_prepare(ProviderSet *ps, ProviderSnapshot *snap, ProviderResult *res) {
        const BlockDevice *v = snap->volume;
        Snapshot *model = snap->snapshot;
        size_t index = snapshot_index(ps, snap);
        const ProviderSettings *set = ps->settings;
        LvmSnapState *st = NULL;
        LvmLv origin = {};
        LvmVg vg = {};
        VssCode code;

        if (!v || !blockdev_is_lvm(v) || !v->lvm_vg || !v->lvm_lv || !model)
                return provider_fail(res, index, EINVAL, E_INVALIDARG, "not an LVM logical volume");
        if (snap->state)
                return provider_fail(res, index, EALREADY, VSS_E_BAD_STATE, "%s is already prepared", strna(v->path));
        /* Passed to lvm as arguments: only what lvm itself accepts in names. */
        if (!lvm_name_is_valid(v->lvm_vg) || !lvm_name_is_valid(v->lvm_lv))
                return provider_fail(res, index, 0, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, "%s/%s is not a name "
                                     "lvm accepts", v->lvm_vg, v->lvm_lv);

        code = origin_query(v, index, &origin, res);
        if (code == S_OK)
                code = lvm_query_vg(v->lvm_vg, &vg, index, res);
        if (code != S_OK)
                goto finish;

        st = calloc(1, sizeof(LvmSnapState));
        if (!st) {
                code = oom(res, index);
                goto finish;
        }
        st->rec.method = _LVM_METHOD_INVALID;
        st->suspended_fd = st->fs_fd = -EBADF;
        st->thin = lvm_lv_is_thin_volume(&origin);
        st->origin_size = origin.size;
        st->origin_major = v->major;
        st->origin_minor = v->minor;
        /* Computed for thin volumes too: they may get a classic snapshot (end_prepare). */
        st->rec.cow_size = lvm_cow_size(model->cow_size, set ? set->default_cow_percent : 10,
                                        set ? set->default_cow_size : 0, origin.size, vg.extent_size);
        if (snapshot_set_field(&st->rec.vg, v->lvm_vg) < 0 || snapshot_set_field(&st->rec.origin, v->lvm_lv) < 0 ||
            snapshot_set_field(&st->rec.origin_uuid, origin.uuid) < 0 ||
            snapshot_set_field(&st->rec.pool, st->thin ? origin.pool : NULL) < 0 ||
            asprintf(&st->rec.snapshot, LVM_SNAPSHOT_LV_PREFIX "%s", model->id) < 0) {
                code = oom(res, index);
                goto finish;
        }

        if (st->thin)
                code = pool_check(st->rec.vg, st->rec.pool, set, index, res);
        else if (st->rec.cow_size > vg.free) {
                char detail[300];

                snprintf(detail, sizeof detail, "of %s/%s", st->rec.vg, st->rec.origin);
                code = vg_space_fail(st->rec.vg, vg.free, st->rec.cow_size, detail, index, res);
        }
        if (code != S_OK)
                goto finish;

        /* Recorded before anything exists: if the daemon dies from here on, recovery looks for
         * this name and removes it, and finds nothing to remove if nothing was made. */
        if (record_store(model, &st->rec) < 0 ||
            snapshot_set_field(&model->kind, st->thin ? "thin" : "classic") < 0) {
                code = oom(res, index);
                goto finish;
        }
        snap->state = TAKE_PTR(st);
        log_debug("lvm: prepared a snapshot of %s/%s (%s, %" PRIu64 " bytes).", v->lvm_vg, v->lvm_lv,
                  origin.segtype, origin.size);
finish:
        snap_state_free(st);
        lvm_lv_done(&origin);
        lvm_vg_done(&vg);
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

        r = lv_path(st->rec.vg, st->rec.origin, &origin);
        if (r >= 0)
                r = lv_path(st->rec.vg, st->rec.snapshot, &snapshot);
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
                return oom(res, index);
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

/* Opens what the early thaw of an origin needs: its filesystem, to thaw it as soon as its own
 * snapshot exists (lvm_commit()), and for THIN_NESTED the origin's suspend state and its pool,
 * to thaw it while lvm still holds it suspended (watch_early_thaw()). Nothing is lost when
 * something is missing: the filesystem is then thawed with the others, at the end. */
static void prepare_early_thaw(LvmSnapState *st, const BlockDevice *v) {
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

static VssCode lvm_end_prepare(ProviderSet *ps, ProviderResult *res) {
        const ProviderSettings *set = ps->settings;
        FreezeNesting nesting = FREEZE_NESTING_NO;
        LvmShareState *s;
        bool any_thin = false;
        VssCode code;
        int r;

        if (ps->state)
                return S_OK;
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
                return oom(res, SIZE_MAX);
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

                prepare_early_thaw(st, ps->snapshots[i]->volume);
                r = build_create(ps, st);
                if (r < 0)
                        return provider_fail(res, i, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                             "Cannot prepare the lvcreate command for %s/%s", st->rec.vg,
                                             st->rec.origin);
                model->cow_size = st->rec.cow_size;
                if (record_store(model, &st->rec) < 0 ||
                    snapshot_set_field(&model->kind, lvm_method_kind(st->rec.method)) < 0 ||
                    snapshot_set_field(&model->note, lvm_method_note(st->rec.method)) < 0)
                        return oom(res, i);
                if (st->rec.pool && st->rec.method == LVM_METHOD_THIN_NESTED) {
                        _cleanup_free_ char *pool = NULL;

                        if (lv_path(st->rec.vg, st->rec.pool, &pool) < 0 || snapshot_set_field(&model->pool, pool) < 0)
                                return oom(res, i);
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
                        return oom(res, i);
                if (dm_device_info(DM_REF_DEVNUM(st->origin_major, st->origin_minor), &o) < 0 || !streq(o.name, name))
                        return provider_fail(res, i, ENXIO, VSS_E_OBJECT_NOT_FOUND, "Logical volume %s/%s is gone "
                                             "(removed or renamed since it was added to the set)", st->rec.vg,
                                             st->rec.origin);
                if (o.suspended)
                        return provider_fail(res, i, EBUSY, VSS_E_BAD_STATE, "%s/%s is suspended (an lvm command is "
                                             "working on it?): retry when it has been resumed", st->rec.vg,
                                             st->rec.origin);
        }
        return S_OK;
}

/* ---------------------------------------------------------------- the window
 *
 * From here to release_writes: no malloc of ours, no logging, no path lookup but lvm's. */

static VssCode lvm_hold_writes(ProviderSet *ps, ProviderResult *res) {
        LvmShareState *s = ps->state;
        uint64_t hold = ps->settings && ps->settings->hold_timeout_usec ? ps->settings->hold_timeout_usec :
                        120 * USEC_PER_SEC;

        if (!s)
                return provider_fail(res, SIZE_MAX, EINVAL, VSS_E_BAD_STATE, "end_prepare_snapshots was not called");
        /* A little before the coordinator's own timeout, so that a command killed at its end
         * still leaves time to resume and thaw within it. */
        s->deadline_usec = command_now_usec() + hold - hold / 10;
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                LvmSnapState *st = ps->snapshots[i]->state;
                int r;

                if (!lvm_method_presuspends(st->rec.method))
                        continue;
                /* skip-lockfs: the filesystem is frozen already, and lvm, finding the origin
                 * suspended, skips its own lockfs suspend, which would fail with EBUSY on a
                 * FIFREEZE before Linux 6.8. With a flush: every acknowledged write is in. */
                r = dm_device_suspend(DM_REF_DEVNUM(st->origin_major, st->origin_minor), true);
                if (r < 0)
                        return provider_fail(res, i, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                             "Suspending %s/%s failed", st->rec.vg, st->rec.origin);
                st->suspended = true;
        }
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

static VssCode lvm_commit(ProviderSet *ps, ProviderResult *res) {
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
                uint64_t now = command_now_usec();

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

static uint32_t *share_cookie(ProviderSet *ps) {
        LvmShareState *s = ps->state;

        return s && s->have_cookie ? &s->cookie : NULL;
}

static VssCode lvm_release_writes(ProviderSet *ps, bool committed, ProviderResult *res) {
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
                r = dm_device_resume(o, DM_RULES_ALL, share_cookie(ps));
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
                return oom(res, SIZE_MAX);
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

                if (model_set_device(model, &st->rec) < 0 || record_store(model, &st->rec) < 0)
                        return oom(res, i);
                query_into(model, &st->rec);
                if (model->invalid)
                        return provider_fail(res, i, 0, VSS_E_PROVIDER_VETO, "Snapshot %s/%s was created but is not "
                                             "usable (inactive, or its copy-on-write store failed); see 'lvs -a %s'",
                                             st->rec.vg, st->rec.snapshot, st->rec.vg);
        }
        share_state_free(ps);
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

        if (lv_path(rec->vg, rec->snapshot, &path) < 0 || lv_path(rec->vg, rec->origin, &origin) < 0)
                return oom(res, index);
        snprintf(what, sizeof what, "Removing snapshot %s", path);
        r = lvm_new("lvremove", false, &c);
        if (r >= 0)
                r = command_add(c, "-f") ?: command_add(c, "-y") ?: command_add(c, path);
        if (r < 0)
                return oom(res, index);
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
                return oom(res, index);
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
                                                        share_cookie(ps));
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
        share_state_free(ps);
        return code;
}

/* ---------------------------------------------------------------- finished snapshots */

static VssCode record_of(const Snapshot *snap, LvmRecord *ret, ProviderResult *res) {
        int r;

        r = lvm_record_from_json(snap->provider_data, ret);
        if (r < 0)
                return provider_fail(res, 0, r, provider_code_from_errno(r, E_INVALIDARG), "Snapshot %s has no "
                                     "valid lvm record (provider data)", snap->id);
        return S_OK;
}

static VssCode lvm_delete(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res) {
        _cleanup_(lvm_record_done) LvmRecord rec = { .method = _LVM_METHOD_INVALID };
        VssCode code;

        code = record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        code = remove_snapshot_lv(&rec, false, 0, res);
        if (code == VSS_E_BAD_STATE)
                /* lvm's message says it is open; say what to do about it. */
                strncat(res->message, "; unmount it (or stop what uses it) first",
                        sizeof res->message - strlen(res->message) - 1);
        return code;
}

/* One lvremove per volume group for all of the set's snapshots in it. */
static void lvm_prepare_delete(Snapshot *const *snaps, size_t n, const ProviderSettings *settings) {
        _cleanup_free_ LvmRecord *recs = calloc(n ?: 1, sizeof(LvmRecord));
        _cleanup_free_ bool *done = calloc(n ?: 1, sizeof(bool));
        ProviderResult res = { .failed = SIZE_MAX };

        if (!recs || !done)
                return;
        for (size_t i = 0; i < n; i++)
                done[i] = lvm_record_from_json(snaps[i]->provider_data, &recs[i]) < 0;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(command_freep) Command *c = NULL;
                int r;

                if (done[i])
                        continue;
                r = lvm_new("lvremove", false, &c);
                if (r >= 0)
                        r = command_add(c, "-f") ?: command_add(c, "-y");
                for (size_t j = i; r >= 0 && j < n; j++)
                        if (!done[j] && streq(recs[j].vg, recs[i].vg)) {
                                r = command_addf(c, "%s/%s", recs[j].vg, recs[j].snapshot);
                                done[j] = true;
                        }
                if (r >= 0)
                        (void) lvm_run(c, "Removing the snapshots", SIZE_MAX, &res);
        }
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

        code = record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        if (dm_lvm_name_join(rec.vg, rec.origin, NULL, &name) < 0)
                return oom(res, 0);
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

        code = record_of(snap, &rec, res);
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

        code = record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        if (lv_path(rec.vg, rec.snapshot, &path) < 0)
                return oom(res, 0);
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
                        return oom(res, 0);
                code = lvm_run(c, "Activating the snapshot", 0, res);
                if (code != S_OK)
                        return code;
        }
        if (model_set_device(snap, &rec) < 0)
                return oom(res, 0);
        query_into(snap, &rec);
        return S_OK;
}

static VssCode lvm_query(Snapshot *snap, ProviderResult *res) {
        _cleanup_(lvm_record_done) LvmRecord rec = { .method = _LVM_METHOD_INVALID };
        VssCode code;

        code = record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        /* From the devices' status: no lvm process for a listing. */
        query_into(snap, &rec);
        return S_OK;
}

/* ---------------------------------------------------------------- orphans */

static bool known_snapshot(Snapshot *const *known, size_t n, const LvmLv *lv) {
        for (size_t i = 0; i < n; i++) {
                LvmRecord rec = { .method = _LVM_METHOD_INVALID };
                bool match;

                if (!streq_ptr(known[i]->provider, provider_lvm.name) ||
                    lvm_record_from_json(known[i]->provider_data, &rec) < 0)
                        continue;
                match = streq_ptr(rec.vg, lv->vg) && streq_ptr(rec.snapshot, lv->name);
                lvm_record_done(&rec);
                if (match)
                        return true;
        }
        return false;
}

/* The set a snapset LV belongs to, from its "snapset_set_<id>" tag. */
static bool set_id_of(const LvmLv *lv, char ret[static 37]) {
        for (const char *t = lv->tags; t && *t; ) {
                size_t l = strcspn(t, ",");
                const char *id = startswith(t, LVM_SET_TAG_PREFIX);

                if (id && (size_t) (t + l - id) == 36) {
                        memcpy(ret, id, 36);
                        ret[36] = 0;
                        return snapset_id_is_valid(ret);
                }
                t += l;
                if (*t == ',')
                        t++;
        }
        return false;
}

static int orphan_of(const LvmLv *lv, ProviderOrphan *ret) {
        /* A COW LV made before a window that never came has no origin: its own name stands in. */
        LvmRecord rec = {
                .vg = lv->vg, .origin = lv->origin ?: lv->name, .snapshot = lv->name, .pool = lv->pool,
                .method = streq_ptr(lv->segtype, "thin") ? LVM_METHOD_THIN_NESTED : LVM_METHOD_CLASSIC,
                .cow_size = streq_ptr(lv->segtype, "snapshot") ? lv->size : 0,
        };
        ProviderOrphan o = {};
        int r;

        memcpy(o.snapshot_id, lv->name + strlen(LVM_SNAPSHOT_LV_PREFIX), 36);
        if (!set_id_of(lv, o.set_id))
                return -EBADMSG;
        o.discard = lvm_lv_has_tag(lv, LVM_BACKUP_TAG) || !lv->origin;
        o.created_usec = lv->time * USEC_PER_SEC;
        r = lvm_record_to_json(&rec, &o.provider_data);
        if (r < 0)
                return r;
        if (asprintf(&o.volume, "/dev/%s/%s", lv->vg, rec.origin) < 0) {
                json_object_put(o.provider_data);
                return -ENOMEM;
        }
        *ret = o;
        return 0;
}

/* Every LV tagged "snapset" that looks like ours (named snapset-<uuid>, tagged with its set)
 * and that no record names. */
static int lvm_find_orphans(Snapshot *const *known, size_t n_known, ProviderOrphan **ret, size_t *ret_n) {
        ProviderResult res = { .failed = SIZE_MAX };
        ProviderOrphan *orphans = NULL;
        LvmLv *lvs = NULL;
        size_t n = 0, k = 0;
        int r = 0;

        if (lvm_query_lvs((char *[]) { (char *) "@" LVM_TAG, NULL }, &lvs, &n, 0, &res) != S_OK)
                return log_debug_errno(EIO, "Cannot look for snapset's LVs: %s", res.message);
        orphans = calloc(n ?: 1, sizeof(ProviderOrphan));
        if (!orphans) {
                lvm_lvs_free(lvs, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                const char *id = startswith(strempty(lvs[i].name), LVM_SNAPSHOT_LV_PREFIX);

                if (!id || !snapset_id_is_valid(id) || known_snapshot(known, n_known, &lvs[i]))
                        continue;
                r = orphan_of(&lvs[i], &orphans[k]);
                if (r == -ENOMEM)
                        break;
                if (r >= 0)
                        k++;
                r = 0;
        }
        lvm_lvs_free(lvs, n);
        if (r < 0) {
                provider_orphans_free(orphans, k);
                return r;
        }
        *ret = orphans;
        *ret_n = k;
        return 0;
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
        .find_orphans = lvm_find_orphans,
};

const Provider provider_lvm = {
        .name = "lvm",
        .kind = "builtin",
        .priority = 10,
        .ops = &lvm_ops,
};
