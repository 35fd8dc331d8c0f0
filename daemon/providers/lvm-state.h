/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The lvm provider's state between the phases of a set, shared by its files: lvm.c (the
 * provider: preparation, after the window, finished snapshots), lvm-window.c (the freeze window:
 * hold, commit, early thaw, release) and lvm-orphans.c (reconcile at start). Nothing outside the
 * lvm provider includes this. */

#include "command.h"
#include "lvm-report.h"
#include "lvm.h"
#include "provider.h"
#include "window-crew.h"

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
        /* The hold's suspends, all at once (window-crew.h): made at pre_commit. */
        WindowCrew *crew;
} LvmShareState;

void lvm_snap_state_free(LvmSnapState *s);
/* Frees the share's and its snapshots' state, after waiting on the share's udev cookie. */
void lvm_share_state_free(ProviderSet *ps);
VssCode lvm_oom(ProviderResult *res, size_t index);
/* The snapshot's record from its provider_data; E_INVALIDARG in res if it has none. */
VssCode lvm_record_of(const Snapshot *snap, LvmRecord *ret, ProviderResult *res);
/* lvm-use.c: RevertToSnapshot (ProviderOps.revert_start, revert_progress) and BreakSnapshotSet
 * (ProviderOps.break_snapshot). */
VssCode lvm_revert_start(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret, ProviderResult *res);
VssCode lvm_revert_progress(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret, ProviderResult *res);
VssCode lvm_break(Snapshot *snap, const ProviderSettings *settings, char **ret_device, ProviderResult *res);
/* The record as the snapshot's provider_data. */
int lvm_record_store(Snapshot *model, const LvmRecord *rec);
unsigned lvm_max_used_percent(const ProviderSettings *s);
/* "vg/lv", for lvm's arguments and for messages. */
int lvm_lv_path(const char *vg, const char *lv, char **ret);

/* lvm-vg-cache.c: the reports of volume group vg (vgs) and of its LV lv (lvs) for set set_id,
 * asked once per group of the set being prepared; valid until lvm_vg_cache_drop() or the next
 * lookup. S_OK, or the failure in res (VSS_E_OBJECT_NOT_FOUND for an LV lvs does not know). */
VssCode lvm_vg_cache_lookup(const char *set_id, const char *vg, const char *lv, const LvmVg **ret_vg,
                            const LvmLv **ret_lv, size_t index, ProviderResult *res);
void lvm_vg_cache_drop(void);

/* lvm-window.c */
void lvm_prepare_early_thaw(LvmSnapState *st, const BlockDevice *v);
VssCode lvm_hold_writes(ProviderSet *ps, ProviderResult *res);
VssCode lvm_commit(ProviderSet *ps, ProviderResult *res);
VssCode lvm_release_writes(ProviderSet *ps, bool committed, ProviderResult *res);
/* The share's udev cookie for resumes of LVM devices, or NULL. */
uint32_t *lvm_share_cookie(ProviderSet *ps);

/* lvm-orphans.c */
int lvm_find_orphans(Snapshot *const *known, size_t n_known, ProviderOrphan **ret, size_t *ret_n);
