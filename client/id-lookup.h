/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What an id names. Snapshot ids and set ids are both UUIDs and cannot be told apart, so
 * commands that take either (show, delete) ask the daemon: GetSnapshot first, then the sets of
 * ListSnapshotSets. Both are read-only calls, which the daemon does not record in the journal; a
 * delete by a set's id therefore leaves no "There is no snapshot" refusal behind. */

#include <json-c/json.h>

#include "varlink.h"

typedef struct IdLookup {
        json_object *snapshot;   /* the Snapshot, if the id is a snapshot's (a reference of ours) */
        json_object *set;        /* else the SnapshotSet with its snapshots */
} IdLookup;

void id_lookup_done(IdLookup *l);

/* Looks id up. Returns 0 with exactly one of l->snapshot and l->set, or the exit status of the
 * failure, which it has reported: VSS_E_OBJECT_NOT_FOUND's when neither has the id, with a line
 * that says so. */
int id_lookup(VarlinkStream *s, const char *id, IdLookup *ret);
