/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "dm-undo.h"
#include "dm.h"

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
