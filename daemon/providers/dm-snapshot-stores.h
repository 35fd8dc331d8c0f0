/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The COW stores of the snapshots an origin already has. A new set must not freeze the
 * filesystem one of them lives on: the origin's writes inside the window are copied into every
 * snapshot it has, and a copy into a frozen filesystem waits for the thaw that waits for it.
 * The configured CowDirectory= is checked at AddToSnapshotSet; these are the stores of older
 * snapshots, made when CowDirectory= may have said something else. */

#include <stddef.h>
#include <sys/types.h>

typedef struct StoreConflict {
        char snapshot[128];           /* the older snapshot's device-mapper name */
        char store[4096];             /* its COW file */
        dev_t volume;                 /* the set's volume under (or on) that file's filesystem */
} StoreConflict;

/* For the origin whose real device is real_major:real_minor: 1 with *ret filled if the COW file
 * of one of its snapset snapshots is on a filesystem of the n set_devices (directly or through
 * a stack), 0 if none is, negative errno. */
int dm_snapshot_store_conflict(unsigned real_major, unsigned real_minor, const dev_t *set_devices, size_t n,
                               StoreConflict *ret);
