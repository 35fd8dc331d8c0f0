/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Undoing the snapshots of the device-mapper providers (dm-snapshot, dm-thin) with udev cookies:
 * one snapshot on its own, or a whole set's at once. A removal or resume whose udev events are
 * not waited for leaves /dev/mapper behind the kernel; waiting once per device makes a set's
 * delete wait for udev N times over. In a batch every removal joins one cookie, udev handles
 * them side by side, and the delete waits once. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provider.h"

/* A provider's undo of one snapshot from its record; its udev events join *cookie. */
typedef VssCode (*DmUndoFn)(Snapshot *snap, bool recovering, uint32_t *cookie, ProviderResult *res);

/* undo on snap, with a cookie of its own, waited for before this returns. */
VssCode dm_undo_one(DmUndoFn undo, Snapshot *snap, bool recovering, ProviderResult *res);

/* undo (not recovering) on each of the n snapshots, with one cookie, waited for once at the end.
 * For prepare_delete, whose result is advisory: each snapshot's delete_snapshot then finds it
 * gone, or fails again with the reason. */
void dm_undo_batch(DmUndoFn undo, Snapshot *const *snaps, size_t n);
