/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Reverting volumes to snapshots (sets-revert.c). */

#include <stdbool.h>
#include <stdint.h>

#include "sets.h"

/* Starts merging snap into its origin (unmounting the origin's filesystems first when
 * force_dismount); *ret_state is "merging", "pending" or "done". VSS_E_REVERT_IN_PROGRESS if the
 * volume is being reverted already; VSS_E_NOT_SUPPORTED for a provider that cannot. */
VssCode sets_revert(Manager *m, SnapshotSet *set, Snapshot *snap, bool force_dismount, const char **ret_state,
                    SetOutcome *out);

/* From the loop's timer: asks every merge where it stands (Monitor gets the progress), and
 * forgets the snapshots that are merged. */
void sets_revert_poll(Manager *m, uint64_t now);
/* The next poll, from now, if anything is being reverted (after a start, a restart, a revert). */
void sets_revert_schedule(Manager *m, uint64_t now);
/* When the timer must fire for it, UINT64_MAX if never. */
uint64_t sets_revert_deadline(const Manager *m);
