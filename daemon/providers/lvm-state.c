/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdio.h>

#include "dm.h"
#include "lvm-state.h"
#include "result.h"
#include "snapshot-set.h"
#include "thin-pool.h"
#include "varlink.h"

void lvm_snap_state_free(LvmSnapState *s) {
        if (!s)
                return;
        lvm_record_done(&s->rec);
        command_free(s->create);
        safe_close(s->suspended_fd);
        safe_close(s->fs_fd);
        free(s);
}

void lvm_share_state_free(ProviderSet *ps) {
        LvmShareState *s = ps->state;

        if (s) {
                if (s->have_cookie)
                        (void) dm_udev_cookie_wait(&s->cookie);
                window_crew_free(s->crew);
                blockdev_strv_free(s->vgs);
                free(s->next);
                free(s->running);
                free(s);
                ps->state = NULL;
        }
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                lvm_snap_state_free(ps->snapshots[i]->state);
                ps->snapshots[i]->state = NULL;
        }
        command_reap_abandoned();
        lvm_vg_cache_drop();
}

VssCode lvm_oom(ProviderResult *res, size_t index) {
        return provider_fail(res, index, ENOMEM, E_OUTOFMEMORY, "Out of memory");
}

int lvm_record_store(Snapshot *model, const LvmRecord *rec) {
        json_object *j;
        int r;

        r = lvm_record_to_json(rec, &j);
        if (r < 0)
                return r;
        provider_data_replace(model, j);
        return 0;
}

unsigned lvm_max_used_percent(const ProviderSettings *s) {
        unsigned p = s ? s->thin_pool_max_used_percent : 0;

        return p > 0 && p <= 100 ? p : THIN_POOL_DEFAULT_MAX_USED_PERCENT;
}

/* "vg/lv", for lvm's arguments and for messages. */
int lvm_lv_path(const char *vg, const char *lv, char **ret) {
        return asprintf(ret, "%s/%s", vg, lv) < 0 ? -ENOMEM : 0;
}

VssCode lvm_record_of(const Snapshot *snap, LvmRecord *ret, ProviderResult *res) {
        int r;

        r = lvm_record_from_json(snap->provider_data, ret);
        if (r < 0)
                return provider_fail(res, 0, r, provider_code_from_errno(r, E_INVALIDARG), "Snapshot %s has no "
                                     "valid lvm record (provider data)", snap->id);
        return S_OK;
}
