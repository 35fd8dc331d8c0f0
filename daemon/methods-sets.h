/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Handlers of the snapshot-set methods (methods-sets.c), listed in the method table of methods.c. */

#include "coordinator.h"
#include "methods.h"

int vl_method_start_snapshot_set(MethodCall *mc, json_object *parameters);
int vl_method_add_to_snapshot_set(MethodCall *mc, json_object *parameters);
int vl_method_do_snapshot_set(MethodCall *mc, json_object *parameters);
int vl_method_abort_snapshot_set(MethodCall *mc, json_object *parameters);
int vl_method_create_snapshot_set(MethodCall *mc, json_object *parameters);
int vl_method_list_snapshot_sets(MethodCall *mc, json_object *parameters);
int vl_method_list_snapshots(MethodCall *mc, json_object *parameters);
int vl_method_get_snapshot(MethodCall *mc, json_object *parameters);
int vl_method_delete_snapshots(MethodCall *mc, json_object *parameters);

/* For the other ways of making and deleting sets (CreateDefinedSet, PruneSets): */

/* StartSnapshotSet's part: takes the creation lock for a new set (context NULL: backup). Returns
 * 0 with *ret set, 1 when it replied the refusal, or a negative errno. */
int sets_method_start(MethodCall *mc, const char *context, SetCreation **ret);
/* AddToSnapshotSet's part, from the job thread: resolves the volume, chooses its provider and
 * prepares its snapshot. 0, 1 when it replied the refusal, or a negative errno. With
 * ret_failure, a volume its provider refuses (not enough space, say) is not replied but returned
 * there, with SETS_ADD_FAILED: the caller may still do something about it. */
#define SETS_ADD_FAILED 2
int sets_method_add(MethodCall *mc, SetCreation *c, const char *volume, const char *provider, uint64_t cow_size,
                    Snapshot **ret, SetOutcome *ret_failure);
/* On the loop, after set_creation_do(): releases the creation lock, and with code S_OK records
 * the set (decorate, if given, adds to it first) and replies it; otherwise replies out. */
typedef int (*SetDecorator)(SnapshotSet *set, void *userdata);
int sets_method_finish(MethodCall *mc, VssCode code, const SetOutcome *out, SetDecorator decorate, void *userdata);
/* Deletes every snapshot of a finished set, even past one that cannot go (its id is appended to
 * deleted, when given). Returns the first failure's code with *first filled, or S_OK. */
VssCode sets_delete_whole(Manager *m, SnapshotSet *set, json_object *deleted, SetOutcome *first);
/* Fresh status (COW use, invalid) of snapshots about to be shown; nothing while a job runs. */
void sets_refresh_statuses(const Manager *m, Snapshot **snaps, size_t n);
