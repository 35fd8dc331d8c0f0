/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The state directory: one JSON record per snapshot set, <dir>/sets/<id>.json, written
 * atomically (temporary file, fsync, rename, fsync of the directory), so that a crash or power
 * loss leaves either the old record or the new one, never a torn one. Never called inside the
 * freeze window: the state directory may live on a filesystem of the set. */

#include "snapshot-set.h"

/* Creates <dir>/sets if missing (mode 0700). */
int store_open(const char *dir);

/* Writes the set's record, replacing any previous one. */
int store_save_set(const char *dir, const SnapshotSet *s);

/* Removes the set's record; -ENOENT if there is none. */
int store_remove_set(const char *dir, const char *set_id);

/* Reads every record. Each well-formed one is passed to found(); the name of each malformed or
 * unreadable one to bad() with its error (so that the caller can log it and carry on: one bad
 * file must not hide every other set). Returns the number of sets found or negative errno if the
 * directory cannot be read. found() takes ownership of the set. */
int store_load_sets(const char *dir,
                    int (*found)(SnapshotSet *s, void *userdata),
                    void (*bad)(const char *path, int error, void *userdata),
                    void *userdata);

/* Writes data to dir/name atomically, as described above. */
int write_file_atomic(const char *dir, const char *name, const char *data, size_t size);
