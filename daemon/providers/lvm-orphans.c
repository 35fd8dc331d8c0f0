/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Reconcile at start: snapset's LVM snapshots that no record names, found by their tags. */

#include <stdio.h>

#include "lvm-run.h"
#include "lvm-state.h"
#include "log.h"
#include "snapshot-set.h"

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
int lvm_find_orphans(Snapshot *const *known, size_t n_known, ProviderOrphan **ret, size_t *ret_n) {
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
