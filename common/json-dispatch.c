/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdint.h>

#include "json-dispatch.h"
#include "macro.h"

/* A JSON null: allowed only with JSON_NULLABLE. Returns 1 if value is null and that is fine, 0
 * if value is not null, -EINVAL otherwise. */
static int null_check(json_object *value, JsonDispatchFlags flags) {
        if (value)
                return 0;
        return (flags & JSON_NULLABLE) ? 1 : -EINVAL;
}

int json_dispatch_string(const char *name, json_object *value, JsonDispatchFlags flags, void *field) {
        char **s = field, *copy;
        const char *v;
        int r;

        r = null_check(value, flags);
        if (r != 0) {
                if (r > 0) {
                        free(*s);
                        *s = NULL;
                }
                return r < 0 ? r : 0;
        }
        if (!json_object_is_type(value, json_type_string))
                return -EINVAL;
        v = json_object_get_string(value);
        /* "\u0000" would cut the string short for C code: refuse it rather than truncate. */
        if (strlen(v) != (size_t) json_object_get_string_len(value))
                return -EINVAL;
        copy = strdup(v);
        if (!copy)
                return -ENOMEM;
        free(*s);
        *s = copy;
        return 0;
}

int json_dispatch_bool(const char *name, json_object *value, JsonDispatchFlags flags, void *field) {
        int r = null_check(value, flags);

        if (r != 0)
                return r < 0 ? r : 0;
        if (!json_object_is_type(value, json_type_boolean))
                return -EINVAL;
        *(bool *) field = json_object_get_boolean(value);
        return 0;
}

/* json-c keeps integers above INT64_MAX as unsigned and clamps them when asked for an int64; it
 * answers 0 when a negative integer is asked for as unsigned. Both clamps are undone here. */
int json_dispatch_int64(const char *name, json_object *value, JsonDispatchFlags flags, void *field) {
        int r = null_check(value, flags);
        int64_t i;

        if (r != 0)
                return r < 0 ? r : 0;
        if (!json_object_is_type(value, json_type_int))
                return -EINVAL;
        i = json_object_get_int64(value);
        if (i == INT64_MAX && json_object_get_uint64(value) > (uint64_t) INT64_MAX)
                return -ERANGE;
        *(int64_t *) field = i;
        return 0;
}

int json_dispatch_uint64(const char *name, json_object *value, JsonDispatchFlags flags, void *field) {
        int r = null_check(value, flags);

        if (r != 0)
                return r < 0 ? r : 0;
        if (!json_object_is_type(value, json_type_int))
                return -EINVAL;
        if (json_object_get_int64(value) < 0)
                return -ERANGE;
        *(uint64_t *) field = json_object_get_uint64(value);
        return 0;
}

int json_dispatch_double(const char *name, json_object *value, JsonDispatchFlags flags, void *field) {
        int r = null_check(value, flags);

        if (r != 0)
                return r < 0 ? r : 0;
        /* Clients send 1 for 1.0 (the Go certification client does), so integers are fine. */
        if (!json_object_is_type(value, json_type_double) && !json_object_is_type(value, json_type_int))
                return -EINVAL;
        *(double *) field = json_object_get_double(value);
        return 0;
}

static int dispatch_borrowed(json_object *value, JsonDispatchFlags flags, json_type type, json_object **field) {
        int r = null_check(value, flags);

        if (r != 0) {
                if (r > 0)
                        *field = NULL;
                return r < 0 ? r : 0;
        }
        if (!json_object_is_type(value, type))
                return -EINVAL;
        *field = value;
        return 0;
}

int json_dispatch_object(const char *name, json_object *value, JsonDispatchFlags flags, void *field) {
        return dispatch_borrowed(value, flags, json_type_object, field);
}

int json_dispatch_array(const char *name, json_object *value, JsonDispatchFlags flags, void *field) {
        return dispatch_borrowed(value, flags, json_type_array, field);
}

/* ---------------------------------------------------------------- tables */

static void *field_of(void *target, const JsonDispatch *d) {
        return (char *) target + d->offset;
}

static const JsonDispatch *table_find(const JsonDispatch table[], const char *name) {
        for (const JsonDispatch *d = table; d->name; d++)
                if (streq(d->name, name))
                        return d;
        return NULL;
}

static int fail(int r, const char *name, const char **reterr_parameter) {
        if (reterr_parameter)
                *reterr_parameter = name;
        return r;
}

static int dispatch_keys(json_object *parameters, const JsonDispatch table[], void *target,
                         const char **reterr_parameter) {
        json_object_object_foreach(parameters, key, v) {
                const JsonDispatch *d = table_find(table, key);
                int r;

                /* An unknown key is named by the string inside parameters: it lives as long as
                 * the call, long enough for the error reply. */
                if (!d || !d->type)
                        return fail(-EADDRNOTAVAIL, key, reterr_parameter);
                r = d->type(d->name, v, d->flags, field_of(target, d));
                if (r < 0)
                        return fail(r, d->name, reterr_parameter);
        }
        return 0;
}

int json_dispatch(json_object *parameters, const JsonDispatch table[], void *target,
                  const char **reterr_parameter) {
        int r;

        if (!table || !target)
                return -EINVAL;

        if (parameters) {
                if (!json_object_is_type(parameters, json_type_object))
                        return fail(-EINVAL, "parameters", reterr_parameter);
                r = dispatch_keys(parameters, table, target, reterr_parameter);
                if (r < 0)
                        return r;
        }

        for (const JsonDispatch *d = table; d->name; d++)
                if ((d->flags & JSON_MANDATORY) &&
                    !(parameters && json_object_object_get_ex(parameters, d->name, NULL)))
                        return fail(-ENXIO, d->name, reterr_parameter);

        return 0;
}

void json_dispatch_done(const JsonDispatch table[], void *target) {
        if (!table || !target)
                return;
        for (const JsonDispatch *d = table; d->name; d++)
                if (d->type == json_dispatch_string) {
                        char **field = field_of(target, d);

                        free(*field);
                        *field = NULL;
                }
}
