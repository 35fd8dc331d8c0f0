/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Handlers of the scheduled-set methods (methods-schedule.c), listed in methods.c's table. */

#include "methods.h"

int vl_method_list_definitions(MethodCall *mc, json_object *parameters);
int vl_method_create_defined_set(MethodCall *mc, json_object *parameters);
int vl_method_prune_sets(MethodCall *mc, json_object *parameters);

/* [{name, health}] of every set definition, for GetStatus. */
int schedule_health_json(const Manager *m, json_object **ret);
