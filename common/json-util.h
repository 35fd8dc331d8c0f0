/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Small json-c builders used by every module that writes JSON, so that each one does not carry
 * its own copy. They consume what they are given, also on failure, so that a caller can chain
 * them with ?: and return on the first error. */

#include <json-c/json.h>
#include <stdint.h>

/* Adds v (consumed, also on failure) as key; a NULL v (an allocation that failed) is -ENOMEM. */
int json_add(json_object *o, const char *key, json_object *v);

/* Adds a string; a NULL s adds nothing: nullable fields of the IDL are left out. */
int json_add_string(json_object *o, const char *key, const char *s);

/* Like json_add_string(), but NULL gives the key a JSON null instead of leaving it out. */
int json_add_string_or_null(json_object *o, const char *key, const char *s);
int json_add_int(json_object *o, const char *key, int64_t v);

/* Appends v (consumed, also on failure) to array. */
int json_append(json_object *array, json_object *v);
