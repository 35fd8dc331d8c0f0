/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Table-driven dispatch of a JSON object (the parameters of a varlink call) into a C struct, in
 * the style of systemd's json_dispatch(). A method handler declares what it accepts:
 *
 *         typedef struct Params { char *set_id; uint64_t cow; bool force; } Params;
 *
 *         static const JsonDispatch table[] = {
 *                 { "setId",        JSON_DISPATCH_STRING, offsetof(Params, set_id), JSON_MANDATORY },
 *                 { "cowSizeBytes", JSON_DISPATCH_UINT64, offsetof(Params, cow),    0 },
 *                 { "force",        JSON_DISPATCH_BOOL,   offsetof(Params, force),  0 },
 *                 {}
 *         };
 *         Params p = {};
 *         const char *bad;
 *
 *         r = json_dispatch(call->parameters, table, &p, &bad);
 *         if (r == -ENOMEM) ...
 *         if (r < 0) reply org.varlink.service.InvalidParameter {"parameter": bad}
 *         ...
 *         json_dispatch_done(table, &p);
 *
 * Every key of the object must be in the table; a field whose key is absent keeps the value the
 * caller put there, so defaults are set before dispatching. */

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

typedef enum JsonDispatchFlags {
        JSON_MANDATORY = 1 << 0,  /* the key must be present */
        JSON_NULLABLE  = 1 << 1,  /* null is accepted: a string, object or array field becomes
                                   * NULL, any other built-in field keeps its value */
} JsonDispatchFlags;

/* Stores value into field (target + offset). value is NULL for a JSON null. Returns 0 or a
 * negative errno; anything but -ENOMEM is reported as a bad value of parameter name. */
typedef int (*JsonDispatchCallback)(const char *name, json_object *value, JsonDispatchFlags flags,
                                    void *field);

/* The built-in dispatchers, for the type slot of a table entry. A custom type is a function of
 * the same signature in that slot (it sees null as value == NULL and decides with flags). */
int json_dispatch_string(const char *name, json_object *value, JsonDispatchFlags flags, void *field);
int json_dispatch_bool(const char *name, json_object *value, JsonDispatchFlags flags, void *field);
int json_dispatch_int64(const char *name, json_object *value, JsonDispatchFlags flags, void *field);
int json_dispatch_uint64(const char *name, json_object *value, JsonDispatchFlags flags, void *field);
int json_dispatch_double(const char *name, json_object *value, JsonDispatchFlags flags, void *field);
int json_dispatch_object(const char *name, json_object *value, JsonDispatchFlags flags, void *field);
int json_dispatch_array(const char *name, json_object *value, JsonDispatchFlags flags, void *field);

#define JSON_DISPATCH_STRING json_dispatch_string   /* char *: a copy; json_dispatch_done() frees it */
#define JSON_DISPATCH_BOOL   json_dispatch_bool     /* bool */
#define JSON_DISPATCH_INT64  json_dispatch_int64    /* int64_t */
#define JSON_DISPATCH_UINT64 json_dispatch_uint64   /* uint64_t: a negative value is out of range */
#define JSON_DISPATCH_DOUBLE json_dispatch_double   /* double: a JSON integer is accepted too */
#define JSON_DISPATCH_OBJECT json_dispatch_object   /* json_object *: borrowed, no reference taken,
                                                     * valid while the dispatched object lives */
#define JSON_DISPATCH_ARRAY  json_dispatch_array    /* json_object *: borrowed like OBJECT */

/* Four fields, so that positional entries as above compile without missing-initializer
 * warnings. */
typedef struct JsonDispatch {
        const char *name;               /* NULL ends the table */
        JsonDispatchCallback type;      /* JSON_DISPATCH_* or a custom function */
        size_t offset;
        JsonDispatchFlags flags;
} JsonDispatch;

/* Dispatches the keys of parameters (NULL counts as an empty object) into target. Returns 0, or:
 *   -EADDRNOTAVAIL  a key that is not in the table,
 *   -EINVAL         a value of the wrong type (also a null without JSON_NULLABLE, or a string
 *                   with an embedded NUL, which C would silently cut short),
 *   -ERANGE         an integer out of range of its field,
 *   -ENXIO          a JSON_MANDATORY key is missing,
 *   -ENOMEM,
 *   or what a callback returned.
 * On failure *reterr_parameter (if not NULL) names the offending parameter ("parameters" if
 * parameters is not an object at all); the name of an unknown key points into parameters, so use
 * it before releasing them. target may be partly filled: release it with json_dispatch_done()
 * either way. */
int json_dispatch(json_object *parameters, const JsonDispatch table[], void *target,
                  const char **reterr_parameter);

/* Frees the strings dispatched into target and sets them to NULL; the other fields are left as
 * they are (objects and arrays are borrowed). */
void json_dispatch_done(const JsonDispatch table[], void *target);
