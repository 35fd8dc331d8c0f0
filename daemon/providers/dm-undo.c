/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "dm-undo.h"
#include "dm.h"
#include "window-crew.h"

VssCode dm_undo_one(DmUndoFn undo, Snapshot *snap, bool recovering, ProviderResult *res) {
        uint32_t cookie = 0;
        VssCode code;

        (void) dm_udev_cookie_new(&cookie);
        code = undo(snap, recovering, &cookie, res);
        (void) dm_udev_cookie_wait(&cookie);
        return code;
}

void dm_undo_batch(DmUndoFn undo, Snapshot *const *snaps, size_t n) {
        uint32_t cookie = 0;

        (void) dm_udev_cookie_new(&cookie);
        for (size_t i = 0; i < n; i++) {
                ProviderResult res = { .failed = SIZE_MAX };

                (void) undo(snaps[i], false, &cookie, &res);
        }
        (void) dm_udev_cookie_wait(&cookie);
}

typedef struct RemovalRun {
        DmRemoval *items;
        uint32_t *cookie;
} RemovalRun;

static int removal_one(size_t i, void *userdata) {
        RemovalRun *run = userdata;
        DmRemoval *d = &run->items[i];
        DmRef o = DM_REF_DEVNUM(d->origin_major, d->origin_minor);
        int r = 0, q;

        if (d->origin_major > 0 && d->origin_table)
                r = dm_device_swap_table(o, d->origin_table, run->cookie);
        else if (d->origin_major > 0 && d->suspend_origin)
                r = dm_device_suspend(o, true);
        for (size_t k = 0; r >= 0 && k < d->n_devices; k++)
                r = dm_device_remove(DM_REF_DEVNUM(d->major[k], d->minor[k]), run->cookie);
        if (d->origin_major > 0 && !d->origin_table && d->suspend_origin) {
                q = dm_device_resume(o, DM_RULES_ALL, run->cookie);
                if (q < 0)
                        q = dm_device_resume(o, DM_RULES_ALL, NULL);
                if (r >= 0)
                        r = q;
        }
        d->result = r;
        return r;
}

void dm_removals_run(DmRemoval *items, size_t n, uint32_t *cookie) {
        RemovalRun run = { items, cookie };
        WindowCrew *crew = NULL;

        if (n == 0)
                return;
        /* Without threads the crew runs the items one after another: slower, as correct. */
        (void) window_crew_new(n, &crew);
        (void) window_crew_run(crew, n, removal_one, &run, NULL);
        window_crew_free(crew);
}
