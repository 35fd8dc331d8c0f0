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

/* ---------------------------------------------------------------- removals side by side
 *
 * A set's delete spends its time in the kernel: every DM_DEV_REMOVE and every suspend waits for
 * RCU grace periods (35 ms each under TCG), one after another. prepare_delete gives the removals
 * of all the set's snapshots to a crew of threads (window-crew.h), which overlaps those waits;
 * the per-snapshot delete then finds the devices gone and removes the rest (loop devices,
 * stores, thin ids). The threads name devices by number only: libdm then stacks no
 * /dev/mapper node operation (its one list without a lock), and udev removes the nodes. */

typedef struct DmRemoval {
        /* The snapshot's origin (major 0: none): its live table becomes origin_table first, if set
         * (the last snapshot of a dm-snapshot origin), or it is suspended around the removals
         * (skip-lockfs), if suspend_origin (a snapshot whose origin keeps other snapshots). */
        unsigned origin_major, origin_minor;
        const char *origin_table;
        bool suspend_origin;
        /* Removed in this order (the snapshot, then what it alone used). */
        unsigned major[2], minor[2];
        size_t n_devices;
        int result;                  /* 0, or the first failure */
} DmRemoval;

/* Runs every removal at once, their udev events joining *cookie (which may be NULL). A failure
 * stops only its own item, in result. */
void dm_removals_run(DmRemoval *items, size_t n, uint32_t *cookie);
