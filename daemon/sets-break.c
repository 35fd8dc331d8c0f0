/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* BreakSnapshotSet: every snapshot of a set becomes an ordinary volume that snapset forgets.
 * Everything that can refuse does so before anything changes: a provider that cannot break, an
 * exposed snapshot in use, a filesystem whose identity cannot be renewed (each is renewed before
 * any snapshot is let go, so that a failure leaves the set in the registry, its records and its
 * devices as they were; filesystems renewed before the failing one keep their new UUID, which
 * harms nothing). */

#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>

#include "fs-identity.h"
#include "log.h"
#include "providers/provider.h"
#include "sets-break.h"
#include "sets-expose.h"

static VssCode check(const SnapshotSet *set, SetOutcome *out) {
        for (size_t i = 0; i < set->n_snapshots; i++) {
                Snapshot *snap = set->snapshots[i];
                const Provider *p = provider_by_name(snap->provider);

                if (!p || !p->ops->break_snapshot)
                        return sets_outcome(out, VSS_E_NOT_SUPPORTED, 0, snap, "Provider '%s' cannot break snapshot %s "
                                            "off into a volume of its own (it does not implement BreakSnapshot); "
                                            "nothing was changed", snap->provider, snap->id);
                if (snap->revert)
                        return sets_outcome(out, VSS_E_REVERT_IN_PROGRESS, 0, snap, "Snapshot %s is being merged into "
                                            "'%s'; nothing was changed", snap->id, snap->volume);
                if (!snap->device)
                        return sets_outcome(out, VSS_E_BAD_STATE, 0, snap, "Snapshot %s has no device", snap->id);
        }
        return S_OK;
}

/* The snapshot to break next: an external provider's first, since only its answer tells whether
 * it can (a provider without BreakSnapshot then refuses before any other snapshot is let go). */
static size_t next_to_break(const SnapshotSet *set) {
        for (size_t i = 0; i < set->n_snapshots; i++) {
                const Provider *p = provider_by_name(set->snapshots[i]->provider);

                if (p && streq(p->kind, "external"))
                        return i;
        }
        return 0;
}

VssCode sets_break(Manager *m, SnapshotSet *set, bool revert_identity, char ***ret_devices, SetOutcome *out) {
        _cleanup_free_ char **devices = NULL;
        char reason[512];
        size_t n = set->n_snapshots;
        VssCode code;
        int r;

        *out = (SetOutcome) {};
        code = check(set, out);
        for (size_t i = 0; code == S_OK && i < n; i++)
                code = sets_unexpose(m, set, set->snapshots[i], /* lazy= */ false, out);
        for (size_t i = 0; code == S_OK && !revert_identity && i < n; i++) {
                r = fs_identity_renew(set->snapshots[i]->device, reason, sizeof reason);
                if (r < 0)
                        code = sets_outcome(out, r == -ENOMEM ? E_OUTOFMEMORY : VSS_E_CANNOT_REVERT_DISKID, r,
                                            set->snapshots[i], "Cannot give the filesystem on %s a new UUID: %s. "
                                            "The set is left as it was; break it with revertIdentity to keep the "
                                            "UUID (the copy then cannot be mounted beside its origin)",
                                            set->snapshots[i]->device, reason);
        }
        if (code != S_OK)
                return code;

        devices = calloc(n + 1, sizeof(char *));
        if (!devices)
                return sets_outcome(out, E_OUTOFMEMORY, ENOMEM, set->snapshots[0], "Out of memory");
        /* From here on each snapshot goes as soon as it is broken off; the set with the last. */
        for (size_t i = 0; i < n; i++) {
                Snapshot *snap = set->snapshots[next_to_break(set)];
                const Provider *p = provider_by_name(snap->provider);
                ProviderResult res = { .failed = SIZE_MAX };

                code = p->ops->break_snapshot(snap, &m->sets->settings, &devices[i], &res);
                if (code != S_OK) {
                        code = sets_provider_failure(m, snap, "BreakSnapshot", code, &res, out);
                        break;
                }
                sets_event(m, LOG_NOTICE, "snapshot-broken", set, snap, "Snapshot %s of '%s' is now the volume %s, "
                           "which snapset no longer manages%s.", snap->id, snap->volume, devices[i],
                           revert_identity ? " (same filesystem UUID as its origin)" : " (with a new filesystem UUID)");
                sets_forget_snapshot(m, set, snap);   /* the set goes with its last snapshot */
        }
        if (code != S_OK) {
                for (size_t i = 0; devices[i]; i++)
                        free(devices[i]);
                return code;
        }
        *ret_devices = TAKE_PTR(devices);
        return S_OK;
}
