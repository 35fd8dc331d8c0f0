/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Handlers of ExposeSnapshot, UnexposeSnapshot and RevertToSnapshot (methods-use.c), listed in
 * methods.c. */

#include "methods.h"

int vl_method_expose_snapshot(MethodCall *mc, json_object *parameters);
int vl_method_unexpose_snapshot(MethodCall *mc, json_object *parameters);
int vl_method_revert_to_snapshot(MethodCall *mc, json_object *parameters);
int vl_method_break_snapshot_set(MethodCall *mc, json_object *parameters);
