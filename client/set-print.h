/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Snapshot sets and snapshots for people, as create, list and show print them. The objects are
 * the SnapshotSet and Snapshot types of io.snapset.Manager; a field that is missing prints as
 * "n/a" or "-", never as a failure, so that an older or newer daemon still gets its output
 * printed. Each function returns 0 or -ENOMEM. */

#include <json-c/json.h>

#include "output.h"

/* "Label: value" lines of one snapshot (show). */
int print_snapshot(json_object *snapshot);

/* "Label: value" lines of a set, then a table of its snapshots (create, show). */
int print_set(json_object *set);

/* One group of 'list': a line that describes the set, then the table of its snapshots, indented.
 * set is the SnapshotSet when ListSnapshotSets gave it, or NULL when only the snapshots are known
 * (ListSnapshots); snapshots is an array of Snapshot objects. */
int print_set_group(json_object *set, json_object *snapshots);

/* The table of 'list --sets': one row per set. */
Table *sets_table_new(void);
int sets_table_add(Table *t, json_object *set);

/* "12.345 ms (writes held 3.210 ms)", "12.345 ms", or NULL if the set has no freeze window. */
char *set_freeze_window_text(json_object *set);
