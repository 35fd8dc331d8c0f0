/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "dm-hold.h"
#include "dm.h"

typedef struct HeldRun {
        ProviderSet *ps;
        DmHeldOf of;
        uint32_t *cookie;
} HeldRun;

static int suspend_one(size_t i, void *userdata) {
        HeldRun *run = userdata;
        DmHeld h = run->of(run->ps, i);
        int r;

        if (!h.suspended)
                return 0;
        r = dm_device_suspend(DM_REF_DEVNUM(h.major, h.minor), /* skip_lockfs= */ true);
        if (r >= 0)
                *h.suspended = true;
        return r;
}

static int resume_one(size_t i, void *userdata) {
        HeldRun *run = userdata;
        DmHeld h = run->of(run->ps, i);
        DmRef o = DM_REF_DEVNUM(h.major, h.minor);
        int r;

        if (!h.suspended || !*h.suspended)
                return 0;
        r = dm_device_resume(o, DM_RULES_ALL, run->cookie);
        if (r < 0 && run->cookie)
                r = dm_device_resume(o, DM_RULES_ALL, NULL);
        if (r >= 0)
                *h.suspended = false;
        return r;
}

int dm_held_suspend(WindowCrew *crew, ProviderSet *ps, size_t n, DmHeldOf of, size_t *ret_failed) {
        HeldRun run = { .ps = ps, .of = of };

        return window_crew_run(crew, n, suspend_one, &run, ret_failed);
}

int dm_held_resume(WindowCrew *crew, ProviderSet *ps, DmHeldOf of, uint32_t *cookie, size_t *ret_failed) {
        HeldRun run = { .ps = ps, .of = of, .cookie = cookie };

        return window_crew_run(crew, ps->n_snapshots, resume_one, &run, ret_failed);
}
