/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Exposing the snapshots of finished sets (sets-expose.c; the mechanism is expose.h). */

#include <stdbool.h>

#include "sets.h"

/* Mounts snap read-only at path, or at its default place under /run/snapset/mnt when path is
 * NULL, and records where. Already exposed there (or anywhere, when path is NULL): S_OK. */
VssCode sets_expose(Manager *m, SnapshotSet *set, Snapshot *snap, const char *path, SetOutcome *out);

/* Unmounts snap if it is exposed, and forgets where: lazily (the mount goes with its last user),
 * or only if nothing uses it (VSS_E_VOLUME_IN_USE naming the processes; what a delete does). */
VssCode sets_unexpose(Manager *m, SnapshotSet *set, Snapshot *snap, bool lazy, SetOutcome *out);

/* At start: every exposed snapshot mounted where its record says (again, after a reboot), or its
 * record no longer says so, logged with why. */
void sets_restore_exposed(Manager *m);
