/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The record of a set in creation, for crash recovery. It lives in /run/snapset/inflight (tmpfs:
 * never frozen, gone after a reboot, when nothing is frozen or suspended any more) and is
 * written before each step that creates something and before the window — never inside it — so
 * it always names a superset of what may need undoing: every snapshot with its provider's data
 * (devices, loop devices, COW files), and every mountpoint that may be frozen. */

#include "coordinator.h"
#include "freeze.h"

/* Writes dir/<set id>.json (dir NULL: nothing to do). fs, if given, adds its mountpoints. */
int inflight_save(const char *dir, const SnapshotSet *set, const FreezeSet *fs);

/* Removes the record; a missing one is fine. */
void inflight_remove(const char *dir, const char *set_id);

/* Undoes what an interrupted run left, for every record in dir: first each snapshot's provider
 * recovers (resumes what is suspended, removes what was made; it skips lockfs, since the
 * filesystems may still be frozen), then every recorded mountpoint is thawed, then the record is
 * removed. Events (what was undone, what could not be) go to sink. Returns the number of
 * records handled, or negative errno if dir cannot be read. Call it first thing at start, before
 * anything is logged: the journal may sit on a filesystem a crash left frozen. */
int inflight_recover(const char *dir, const ProviderSettings *settings, SetEventSink sink, void *userdata);
