/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Leftovers of snapset's device-mapper providers that no record names: what a creation left when
 * the daemon stopped before it was recorded, or when its record was lost. Run at start, after
 * recovery, with every snapshot id the records name.
 *
 * What is provably snapset's own and only ever an unfinished creation is removed:
 *   - an inactive snapshot-origin table that points at a snapset real device (never made live);
 *   - a snapset real device (uuid SNAPSET-real-...) that nothing uses any more;
 *   - a snapset snapshot device (uuid SNAPSET-<id>) without a live table;
 *   - a COW file <CowDirectory>/<id>.cow that no snapshot device uses, with the loop devices
 *     over it.
 * A complete snapshot (a live snapshot or thin table) that no record names is reported and kept:
 * it may be a persistent snapshot whose record was lost, and deleting it would destroy the only
 * copy of that point in time. The message says how to remove it by hand. */

#include <stddef.h>

/* Returns the number of leftovers removed; logs what it removed, kept, or could not remove. */
int dm_leftovers_sweep(const char *cow_directory, char *const *known_ids);
