/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* What lvs and vgs say of the volume groups of the set being prepared, asked once per group
 * rather than once per volume. Every lvm command scans the devices and reads the metadata: for a
 * set of 16 LVs of one group, two commands per AddToSnapshotSet were about a third of the whole
 * create under TCG. One set is prepared at a time (the creation lock), so there is one cache, for
 * that set; it is dropped when another set asks, when it is older than a burst of
 * AddToSnapshotSet calls takes (CACHE_MAX_AGE_USEC), and at end_prepare. What changed meanwhile
 * is caught at pre_commit, which checks every origin's device again; an LV the cache does not
 * know is asked for once more before it is refused. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "lvm-run.h"
#include "lvm-state.h"
#include "result.h"
#include "snapshot-set.h"

#define CACHE_MAX_AGE_USEC (30 * USEC_PER_SEC)

typedef struct CachedVg {
        LvmVg vg;
        LvmLv *lvs;
        size_t n_lvs;
} CachedVg;

static struct {
        char set_id[SNAPSET_ID_LENGTH + 1];
        uint64_t taken_usec;
        CachedVg *vgs;
        size_t n_vgs;
} cache;

void lvm_vg_cache_drop(void) {
        for (size_t i = 0; i < cache.n_vgs; i++) {
                lvm_vg_done(&cache.vgs[i].vg);
                lvm_lvs_free(cache.vgs[i].lvs, cache.vgs[i].n_lvs);
        }
        free(cache.vgs);
        cache.vgs = NULL;
        cache.n_vgs = 0;
        cache.set_id[0] = 0;
}

static CachedVg *cached(const char *vg) {
        for (size_t i = 0; i < cache.n_vgs; i++)
                if (streq(cache.vgs[i].vg.name, vg))
                        return &cache.vgs[i];
        return NULL;
}

static const LvmLv *cached_lv(const CachedVg *g, const char *lv) {
        for (size_t i = 0; g && i < g->n_lvs; i++)
                if (streq_ptr(g->lvs[i].name, lv))
                        return &g->lvs[i];
        return NULL;
}

static void forget(CachedVg *g) {
        lvm_vg_done(&g->vg);
        lvm_lvs_free(g->lvs, g->n_lvs);
        *g = cache.vgs[--cache.n_vgs];
}

static VssCode ask(const char *vg, size_t index, ProviderResult *res) {
        CachedVg g = {}, *a;
        VssCode code;

        code = lvm_query_vg(vg, &g.vg, index, res);
        if (code == S_OK)
                code = lvm_query_lvs((char *[]) { (char *) vg, NULL }, &g.lvs, &g.n_lvs, index, res);
        if (code == S_OK && !streq_ptr(g.vg.name, vg))
                code = provider_fail(res, index, 0, VSS_E_OBJECT_NOT_FOUND, "vgs did not report volume group %s", vg);
        if (code == S_OK && !(a = reallocarray(cache.vgs, cache.n_vgs + 1, sizeof(CachedVg))))
                code = lvm_oom(res, index);
        if (code != S_OK) {
                lvm_vg_done(&g.vg);
                lvm_lvs_free(g.lvs, g.n_lvs);
                return code;
        }
        cache.vgs = a;
        cache.vgs[cache.n_vgs++] = g;
        return S_OK;
}

VssCode lvm_vg_cache_lookup(const char *set_id, const char *vg, const char *lv, const LvmVg **ret_vg,
                            const LvmLv **ret_lv, size_t index, ProviderResult *res) {
        uint64_t now = now_monotonic_usec();
        CachedVg *g;
        VssCode code;

        if (!set_id || !streq(cache.set_id, set_id) || now - cache.taken_usec > CACHE_MAX_AGE_USEC) {
                lvm_vg_cache_drop();
                snprintf(cache.set_id, sizeof cache.set_id, "%s", strempty(set_id));
                cache.taken_usec = now;
        }
        g = cached(vg);
        if (g && !cached_lv(g, lv))
                forget(g);   /* made since? ask again */
        g = cached(vg);
        if (!g) {
                code = ask(vg, index, res);
                if (code != S_OK)
                        return code;
                g = cached(vg);
        }
        *ret_vg = &g->vg;
        *ret_lv = cached_lv(g, lv);
        if (!*ret_lv)
                return provider_fail(res, index, ENOENT, VSS_E_OBJECT_NOT_FOUND, "lvs does not know %s/%s", vg, lv);
        return S_OK;
}
