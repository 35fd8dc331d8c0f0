/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Using LVM snapshots: break (below) and revert.
 *
 * RevertToSnapshot for LVM: "lvconvert --merge", which LVM carries out by itself and records in
 * its own metadata, so that a merge survives a crash or a reboot without snapset.
 *
 *   classic    the origin's table becomes snapshot-merge and the kernel copies the COW data back
 *              in the background; lvm's poller removes the snapshot LV when it is done. While
 *              the origin is open (mounted), lvm defers the merge to its next activation.
 *   thin       the thin ids of origin and snapshot are swapped: done at once if the origin is
 *              not open, else at its next activation.
 *
 * Where a merge stands is read from the devices and lvm's report: the snapshot LV gone is done; an
 * origin whose table is snapshot-merge is merging (its status counts the COW data left); anything
 * else is pending. */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dm-snapshot.h"
#include "dm.h"
#include "lvm-run.h"
#include "lvm-state.h"
#include "result.h"
#include "snapshot-set.h"

/* The snapshot-merge status of the origin: COW data left to merge, in sectors. */
static int merge_left(const LvmRecord *rec, uint64_t *ret) {
        _cleanup_free_ char *name = NULL, *type = NULL, *params = NULL;
        uint64_t used, total, metadata;
        const char *state = NULL;
        int r;

        r = dm_lvm_name_join(rec->vg, rec->origin, NULL, &name);
        if (r >= 0)
                r = dm_device_status(DM_REF_NAME(name), &type, &params);
        if (r < 0)
                return r;
        if (!streq(type, "snapshot-merge"))
                return -ENOMSG;   /* not merging (yet) */
        r = dm_snapshot_status_parse(params, &used, &total, &metadata, &state);
        if (r < 0)
                return r;
        *ret = used > metadata ? used - metadata : 0;
        return 0;
}

/* Whether the snapshot LV still exists: 1, 0, or the failure in res. The volume group is listed
 * whole (lvs -a VG: lvm hides a classic snapshot while it is merged), so that a group that is
 * not there (its PV not seen yet at boot) is a failure, not a merge that is done. */
static int snapshot_exists(const LvmRecord *rec, ProviderResult *res) {
        LvmLv *lvs = NULL;
        size_t n = 0;
        bool found = false;
        VssCode code;

        code = lvm_query_lvs_all((char *[]) { rec->vg, NULL }, &lvs, &n, 0, res);
        if (code != S_OK)
                return -EIO;
        for (size_t i = 0; i < n; i++) {
                const char *name = lvs[i].name;

                if (name && name[0] == '[')   /* hidden LVs are reported as [NAME] */
                        name++;
                found = found || (name && strncmp(name, rec->snapshot, strlen(rec->snapshot)) == 0 &&
                                  (name[strlen(rec->snapshot)] == 0 || name[strlen(rec->snapshot)] == ']'));
        }
        lvm_lvs_free(lvs, n);
        return found;
}

static VssCode stand(Snapshot *snap, LvmRecord *rec, ProviderRevert *ret, ProviderResult *res) {
        uint64_t left;
        int r;

        *ret = (ProviderRevert) { .percent = -1 };
        r = snapshot_exists(rec, res);
        if (r == -ENOMEM)
                return lvm_oom(res, 0);
        if (r < 0)
                return res->message[0] ? VSS_E_PROVIDER_VETO : VSS_E_UNEXPECTED;
        if (r == 0)
                return provider_revert_done(ret);
        r = merge_left(rec, &left);
        if (r == -ENOMSG) {
                ret->pending = true;
                return S_OK;
        }
        if (r < 0)
                return provider_fail(res, 0, r, VSS_E_UNEXPECTED, "Cannot read the merge status of %s/%s",
                                     rec->vg, rec->origin);
        if (rec->merge_start_sectors == 0 || left > rec->merge_start_sectors) {
                /* First seen merging (or after a restart without it): progress from here. */
                rec->merge_start_sectors = left > 0 ? left : 1;
                if (lvm_record_store(snap, rec) < 0)
                        return lvm_oom(res, 0);
        }
        ret->percent = 100.0 * (double) (rec->merge_start_sectors - left) / (double) rec->merge_start_sectors;
        return S_OK;
}

VssCode lvm_revert_start(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret, ProviderResult *res) {
        _cleanup_(lvm_record_done) LvmRecord rec = { .method = _LVM_METHOD_INVALID };
        _cleanup_(command_freep) Command *c = NULL;
        _cleanup_free_ char *path = NULL;
        char what[300];
        VssCode code;
        int r;

        code = lvm_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        if (lvm_lv_path(rec.vg, rec.snapshot, &path) < 0)
                return lvm_oom(res, 0);
        snprintf(what, sizeof what, "Merging %s into %s/%s", path, rec.vg, rec.origin);
        /* --background: lvm's poller carries the merge to its end; we only watch. */
        r = lvm_new("lvconvert", false, &c);
        if (r >= 0)
                r = command_add(c, "--merge") ?: command_add(c, "--background") ?: command_add(c, "-y") ?:
                    command_add(c, path);
        if (r < 0)
                return lvm_oom(res, 0);
        code = lvm_run(c, what, 0, res);
        if (code != S_OK)
                return code;
        return stand(snap, &rec, ret, res);
}

VssCode lvm_revert_progress(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret, ProviderResult *res) {
        _cleanup_(lvm_record_done) LvmRecord rec = { .method = _LVM_METHOD_INVALID };
        VssCode code;

        code = lvm_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        return stand(snap, &rec, ret, res);
}

/* BreakSnapshotSet: the snapshot LV becomes an LV like any other, named ORIGIN_snap_XXXXXXXX
 * (the first characters of the snapshot's id) rather than snapset-ID, which snapset refuses as an
 * origin, and without snapset's tags, by which snapset would find it again at its start. A
 * classic snapshot stays what LVM makes of it (it still depends on its origin); a thin one is a
 * thin volume of its own. */
VssCode lvm_break(Snapshot *snap, const ProviderSettings *settings, char **ret_device, ProviderResult *res) {
        _cleanup_(lvm_record_done) LvmRecord rec = { .method = _LVM_METHOD_INVALID };
        _cleanup_(command_freep) Command *c = NULL;
        _cleanup_free_ char *path = NULL, *name = NULL, *device = NULL;
        VssCode code;
        int r;

        code = lvm_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        if (lvm_lv_path(rec.vg, rec.snapshot, &path) < 0 || asprintf(&name, "%s_snap_%.8s", rec.origin, snap->id) < 0 ||
            asprintf(&device, "/dev/%s/%s", rec.vg, name) < 0)
                return lvm_oom(res, 0);
        /* The rename first: an LV that lost its tags but kept its snapset- name would be
         * refused as an origin and found by nothing. */
        r = lvm_new("lvrename", false, &c);
        if (r >= 0)
                r = command_add(c, rec.vg) ?: command_add(c, rec.snapshot) ?: command_add(c, name);
        if (r < 0)
                return lvm_oom(res, 0);
        code = lvm_run(c, "Renaming the snapshot", 0, res);
        if (code != S_OK)
                return code;
        command_free(c);
        c = NULL;
        free(path);
        path = NULL;
        if (lvm_lv_path(rec.vg, name, &path) < 0)
                return lvm_oom(res, 0);
        r = lvm_new("lvchange", false, &c);
        if (r >= 0)
                r = command_add(c, "--deltag") ?: command_add(c, LVM_TAG) ?: command_add(c, "--deltag") ?:
                    command_addf(c, LVM_SET_TAG_PREFIX "%s", snap->set_id) ?: command_add(c, "--deltag") ?:
                    command_add(c, LVM_BACKUP_TAG) ?: command_add(c, path);
        if (r < 0)
                return lvm_oom(res, 0);
        code = lvm_run(c, "Removing snapset's tags", 0, res);
        if (code != S_OK)
                return code;
        *ret_device = TAKE_PTR(device);
        return S_OK;
}
