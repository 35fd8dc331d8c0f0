/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Handlers of the snapshot-set methods (methods-sets.c), listed in the method table of methods.c. */

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
