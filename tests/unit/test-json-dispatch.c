/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Table-driven dispatch of method parameters: every type, the flags, and the name reported for
 * each kind of bad parameter. */

#include <check.h>
#include <stdint.h>

#include "json-dispatch.h"
#include "macro.h"
#include "varlink.h"

typedef enum Context { CONTEXT_BACKUP, CONTEXT_PERSISTENT } Context;

typedef struct Params {
        char *set_id;
        char *provider;
        uint64_t cow;
        int64_t offset;
        double ratio;
        bool force;
        json_object *volumes;
        json_object *options;
        Context context;
} Params;

/* A custom type: an enum from its name. */
static int dispatch_context(const char *name, json_object *v, JsonDispatchFlags flags, void *field) {
        const char *s = json_object_get_string(v);

        if (!json_object_is_type(v, json_type_string))
                return -EINVAL;
        if (streq(s, "backup"))
                *(Context *) field = CONTEXT_BACKUP;
        else if (streq(s, "persistent"))
                *(Context *) field = CONTEXT_PERSISTENT;
        else
                return -EINVAL;
        return 0;
}

static const JsonDispatch table[] = {
        { "setId",        JSON_DISPATCH_STRING, offsetof(Params, set_id),   JSON_MANDATORY },
        { "provider",     JSON_DISPATCH_STRING, offsetof(Params, provider), JSON_NULLABLE },
        { "cowSizeBytes", JSON_DISPATCH_UINT64, offsetof(Params, cow),      0 },
        { "offset",       JSON_DISPATCH_INT64,  offsetof(Params, offset),   JSON_NULLABLE },
        { "ratio",        JSON_DISPATCH_DOUBLE, offsetof(Params, ratio),    0 },
        { "force",        JSON_DISPATCH_BOOL,   offsetof(Params, force),    0 },
        { "volumes",      JSON_DISPATCH_ARRAY,  offsetof(Params, volumes),  0 },
        { "options",      JSON_DISPATCH_OBJECT, offsetof(Params, options),  JSON_NULLABLE },
        { "context",      dispatch_context,     offsetof(Params, context),  0 },
        {}
};

/* Dispatches text into *p; returns the result and the name reported. */
static int dispatch_text(const char *text, Params *p, const char **bad) {
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(text);

        ck_assert_msg(o, "test JSON does not parse: %s", text);
        *bad = NULL;
        return json_dispatch(o, table, p, bad);
}

/* Asserts that text fails with error r naming parameter. The name of an unknown key points into
 * the parameters, so they are kept until it is checked. */
static void assert_bad(const char *text, int r, const char *parameter) {
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(text);
        Params p = {};
        const char *bad = NULL;

        ck_assert_msg(o, "test JSON does not parse: %s", text);
        ck_assert_msg(json_dispatch(o, table, &p, &bad) == r, "%s", text);
        ck_assert_str_eq(bad, parameter);
        json_dispatch_done(table, &p);
}

START_TEST(test_every_type_is_dispatched_into_its_field) {
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(
                "{\"setId\":\"s1\",\"provider\":\"dm-thin\",\"cowSizeBytes\":18446744073709551615,"
                "\"offset\":-9223372036854775808,\"ratio\":0.5,\"force\":true,\"volumes\":[\"/dev/vda\"],"
                "\"options\":{\"a\":1},\"context\":\"persistent\"}");
        Params p = {};
        const char *bad = "unset";

        ck_assert_int_eq(json_dispatch(o, table, &p, &bad), 0);
        ck_assert_str_eq(bad, "unset"); /* only set on failure */
        ck_assert_str_eq(p.set_id, "s1");
        ck_assert_str_eq(p.provider, "dm-thin");
        ck_assert_uint_eq(p.cow, UINT64_MAX);
        ck_assert_int_eq(p.offset, INT64_MIN);
        ck_assert_double_eq(p.ratio, 0.5);
        ck_assert(p.force);
        ck_assert_int_eq(json_object_array_length(p.volumes), 1);
        ck_assert_ptr_eq(p.options, json_object_object_get(o, "options")); /* borrowed */
        ck_assert_int_eq(p.context, CONTEXT_PERSISTENT);
        json_dispatch_done(table, &p);
        ck_assert_ptr_null(p.set_id);
        ck_assert_ptr_null(p.provider);
}
END_TEST

START_TEST(test_absent_keys_keep_their_defaults) {
        Params p = { .cow = 42, .ratio = 1.5, .context = CONTEXT_PERSISTENT };
        const char *bad;

        ck_assert_int_eq(dispatch_text("{\"setId\":\"s\"}", &p, &bad), 0);
        ck_assert_uint_eq(p.cow, 42);
        ck_assert_double_eq(p.ratio, 1.5);
        ck_assert_int_eq(p.context, CONTEXT_PERSISTENT);
        ck_assert_ptr_null(p.provider);
        json_dispatch_done(table, &p);
}
END_TEST

START_TEST(test_an_unknown_key_is_named) {
        assert_bad("{\"setId\":\"s\",\"sized\":1}", -EADDRNOTAVAIL, "sized");
}
END_TEST

START_TEST(test_a_missing_mandatory_key_is_named) {
        assert_bad("{}", -ENXIO, "setId");
        assert_bad("{\"force\":true}", -ENXIO, "setId");
}
END_TEST

START_TEST(test_a_value_of_the_wrong_type_is_named) {
        assert_bad("{\"setId\":1}", -EINVAL, "setId");
        assert_bad("{\"setId\":\"s\",\"force\":1}", -EINVAL, "force");
        assert_bad("{\"setId\":\"s\",\"force\":\"true\"}", -EINVAL, "force");
        assert_bad("{\"setId\":\"s\",\"cowSizeBytes\":\"1\"}", -EINVAL, "cowSizeBytes");
        assert_bad("{\"setId\":\"s\",\"cowSizeBytes\":1.0}", -EINVAL, "cowSizeBytes");
        assert_bad("{\"setId\":\"s\",\"offset\":1.5}", -EINVAL, "offset");
        assert_bad("{\"setId\":\"s\",\"ratio\":\"0.5\"}", -EINVAL, "ratio");
        assert_bad("{\"setId\":\"s\",\"volumes\":{}}", -EINVAL, "volumes");
        assert_bad("{\"setId\":\"s\",\"options\":[]}", -EINVAL, "options");
}
END_TEST

START_TEST(test_integers_out_of_range_are_named) {
        assert_bad("{\"setId\":\"s\",\"cowSizeBytes\":-1}", -ERANGE, "cowSizeBytes");
        assert_bad("{\"setId\":\"s\",\"offset\":9223372036854775808}", -ERANGE, "offset");
}
END_TEST

START_TEST(test_integer_limits_are_in_range) {
        Params p = {};
        const char *bad;

        ck_assert_int_eq(dispatch_text("{\"setId\":\"s\",\"cowSizeBytes\":0,\"offset\":9223372036854775807}",
                                       &p, &bad), 0);
        ck_assert_uint_eq(p.cow, 0);
        ck_assert_int_eq(p.offset, INT64_MAX);
        json_dispatch_done(table, &p);
}
END_TEST

START_TEST(test_a_double_accepts_an_integer) {
        Params p = {};
        const char *bad;

        ck_assert_int_eq(dispatch_text("{\"setId\":\"s\",\"ratio\":1}", &p, &bad), 0);
        ck_assert_double_eq(p.ratio, 1.0);
        json_dispatch_done(table, &p);
}
END_TEST

START_TEST(test_null_is_accepted_only_where_nullable) {
        Params p = { .offset = 7 };
        const char *bad;

        ck_assert_int_eq(dispatch_text("{\"setId\":\"s\",\"provider\":null,\"offset\":null,\"options\":null}",
                                       &p, &bad), 0);
        ck_assert_ptr_null(p.provider);
        ck_assert_ptr_null(p.options);
        ck_assert_int_eq(p.offset, 7);
        json_dispatch_done(table, &p);

        assert_bad("{\"setId\":null}", -EINVAL, "setId");
        assert_bad("{\"setId\":\"s\",\"force\":null}", -EINVAL, "force");
        assert_bad("{\"setId\":\"s\",\"volumes\":null}", -EINVAL, "volumes");
}
END_TEST

START_TEST(test_a_string_with_an_embedded_nul_is_refused) {
        assert_bad("{\"setId\":\"s\\u0000t\"}", -EINVAL, "setId");
}
END_TEST

START_TEST(test_a_custom_callback_decides_and_its_error_is_named) {
        Params p = {};
        const char *bad;

        ck_assert_int_eq(dispatch_text("{\"setId\":\"s\",\"context\":\"backup\"}", &p, &bad), 0);
        ck_assert_int_eq(p.context, CONTEXT_BACKUP);
        json_dispatch_done(table, &p);
        assert_bad("{\"setId\":\"s\",\"context\":\"forever\"}", -EINVAL, "context");
        assert_bad("{\"setId\":\"s\",\"context\":null}", -EINVAL, "context");
}
END_TEST

START_TEST(test_a_string_dispatched_twice_does_not_leak) {
        Params p = {};
        const char *bad;

        ck_assert_int_eq(dispatch_text("{\"setId\":\"a\"}", &p, &bad), 0);
        ck_assert_int_eq(dispatch_text("{\"setId\":\"b\",\"provider\":\"x\"}", &p, &bad), 0);
        ck_assert_str_eq(p.set_id, "b");
        ck_assert_int_eq(dispatch_text("{\"setId\":\"c\",\"provider\":null}", &p, &bad), 0);
        ck_assert_ptr_null(p.provider);
        json_dispatch_done(table, &p);
}
END_TEST

START_TEST(test_missing_parameters_are_an_empty_object_and_others_are_refused) {
        static const JsonDispatch optional[] = {
                { "force", JSON_DISPATCH_BOOL, offsetof(Params, force), 0 },
                {}
        };
        _cleanup_(json_object_putp) json_object *array = json_object_new_array();
        Params p = {};
        const char *bad = NULL;

        ck_assert_int_eq(json_dispatch(NULL, optional, &p, &bad), 0);
        ck_assert_int_eq(json_dispatch(NULL, table, &p, &bad), -ENXIO);
        ck_assert_str_eq(bad, "setId");
        ck_assert_int_eq(json_dispatch(array, table, &p, &bad), -EINVAL);
        ck_assert_str_eq(bad, "parameters");
        ck_assert_int_eq(json_dispatch(array, table, &p, NULL), -EINVAL);
}
END_TEST

Suite *suite_json_dispatch(void) {
        Suite *s = suite_create("json-dispatch");
        TCase *tc = tcase_create("dispatch");

        tcase_add_test(tc, test_every_type_is_dispatched_into_its_field);
        tcase_add_test(tc, test_absent_keys_keep_their_defaults);
        tcase_add_test(tc, test_an_unknown_key_is_named);
        tcase_add_test(tc, test_a_missing_mandatory_key_is_named);
        tcase_add_test(tc, test_a_value_of_the_wrong_type_is_named);
        tcase_add_test(tc, test_integers_out_of_range_are_named);
        tcase_add_test(tc, test_integer_limits_are_in_range);
        tcase_add_test(tc, test_a_double_accepts_an_integer);
        tcase_add_test(tc, test_null_is_accepted_only_where_nullable);
        tcase_add_test(tc, test_a_string_with_an_embedded_nul_is_refused);
        tcase_add_test(tc, test_a_custom_callback_decides_and_its_error_is_named);
        tcase_add_test(tc, test_a_string_dispatched_twice_does_not_leak);
        tcase_add_test(tc, test_missing_parameters_are_an_empty_object_and_others_are_refused);
        suite_add_tcase(s, tc);
        return s;
}
