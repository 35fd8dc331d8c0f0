/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Handlers of the scheduled-set methods (methods-schedule.c, methods-defined-set.c), listed in
 * methods.c's table. */

#include "methods.h"
#include "schedule/definition.h"
#include "snapshot-set.h"

int vl_method_list_definitions(MethodCall *mc, json_object *parameters);
int vl_method_create_defined_set(MethodCall *mc, json_object *parameters);
int vl_method_prune_sets(MethodCall *mc, json_object *parameters);

/* [{name, health}] of every set definition, for GetStatus. */
int schedule_health_json(const Manager *m, json_object **ret);

/* Shared by the two files. The created sets taken from definition name, oldest first (by
 * creation time); the array is the caller's, the sets the registry's. */
int schedule_sets_of(const Manager *m, const char *name, SnapshotSet ***ret, size_t *ret_n);

/* The usable definition name, or a refusal sent: 0 and *ret, 1 (refused), or -errno. */
int schedule_find_definition(MethodCall *mc, const char *name, SetDefinition **ret);

/* Events about a definition's space (WarnUsedPercent=) for its sets. */
int schedule_space_events(Manager *m, const SetDefinition *d, SnapshotSet *const *sets, size_t n);
