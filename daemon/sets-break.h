/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* BreakSnapshotSet (sets-break.c). */

#include <stdbool.h>

#include "sets.h"

/* Makes every snapshot of set an ordinary volume and forgets them and the set. Unless
 * revert_identity, each filesystem gets a new UUID first (VSS_E_CANNOT_REVERT_DISKID, naming the
 * device and the tool's message, leaves the set as it was). Returns the volumes' device paths in
 * *ret_devices (a NULL-terminated list; free each and the list). */
VssCode sets_break(Manager *m, SnapshotSet *set, bool revert_identity, char ***ret_devices, SetOutcome *out);
