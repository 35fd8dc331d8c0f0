/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The record of a set in creation, for crash recovery. It lives in /run/snapset/inflight (tmpfs:
 * never frozen, gone after a reboot, when nothing is frozen or suspended any more) and is
 * written before each step that creates something and before the window — never inside it — so
 * it always names a superset of what may need undoing: every snapshot with its provider's data
 * (devices, loop devices, COW files), and every mountpoint that may be frozen. */

#include "coordinator.h"
#include "freeze.h"
#include "window-undo.h"

/* Writes dir/<set id>.json (dir NULL: nothing to do). fs, if given, adds its mountpoints; undo,
 * if given, the window's undo list. */
int inflight_save(const char *dir, const SnapshotSet *set, const FreezeSet *fs, const WindowUndo *undo);

/* Removes the record; a missing one is fine. */
void inflight_remove(const char *dir, const char *set_id);

/* The first thing a starting daemon does, before it touches the state directory, loads a
 * provider or logs anything: for every record in dir, the window's undo list is run (resume the
 * volumes, thaw their filesystems: raw ioctls on /run and /dev only). The thaw guardian will
 * normally have done it already; this is for when it could not (killed with the daemon).
 * Returns the number of records, or negative errno; what it did is summed in
 * report, for the caller to log afterwards. */
int inflight_rescue(const char *dir, UndoReport *report);

/* Undoes what an interrupted run left, for every record in dir but skip_set_id's (the set in
 * creation, if any): first each snapshot's provider recovers (resumes what is suspended, removes
 * what was made; it skips lockfs, since the filesystems may still be frozen), then every recorded
 * mountpoint is thawed, then what needs thawed filesystems is removed (recover_after_thaw). A
 * record whose snapshots were all undone is removed; one with a snapshot that could not be
 * undone is kept, marked with why (see inflight_keep()), and *ret_kept counts it. Events go to
 * sink. Returns the number of records handled, or negative errno if dir cannot be read. At start
 * it runs after inflight_rescue(), before anything else; at runtime it is "snapsetctl cleanup". */
int inflight_recover(const char *dir, const char *skip_set_id, const ProviderSettings *settings,
                     SetEventSink sink, void *userdata, unsigned *ret_kept);

/* Keeps the record of a set whose abort did not undo everything, with why: it is not removed,
 * GetStatus lists it, and inflight_recover() tries again at every start and on Cleanup. */
int inflight_keep(const char *dir, const char *set_id, const char *why);

/* A snapshot a failed AddToSnapshotSet could not undo, while its set goes on: kept in a record of
 * its own (dir/<snapshot id>.json, the set with that one snapshot), marked with why, so that it
 * is retried at every start and on Cleanup like any other. */
int inflight_keep_snapshot(const char *dir, const SnapshotSet *set, const Snapshot *snap, const char *why);

/* Appends the id of every snapshot any record in dir names to *ids (blockdev_strv_push()). */
int inflight_snapshot_ids(const char *dir, char ***ids);

/* The records in dir (but skip_set_id's): what needs attention. */
typedef struct InflightEntry {
        char *set_id;
        char *attention;     /* why it is kept, or that it was interrupted */
} InflightEntry;

int inflight_list(const char *dir, const char *skip_set_id, InflightEntry **ret, size_t *ret_n);
void inflight_entries_free(InflightEntry *e, size_t n);
