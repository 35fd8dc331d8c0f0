/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Strict parsing and building of varlink calls and replies, the name rules, and the embedded IDL
 * against the error table. */

#include <check.h>
#include <stdio.h>

#include "macro.h"
#include "varlink.h"
#include "vss-error.h"

static json_object *json(const char *text) {
        json_object *o = json_tokener_parse(text);

        ck_assert_msg(o, "test JSON does not parse: %s", text);
        return o;
}

/* Parses text as a call; returns what varlink_call_parse() returned, releasing the call. */
static int call_parse_text(const char *text) {
        _cleanup_(json_object_putp) json_object *o = json(text);
        VarlinkCall c;
        int r;

        r = varlink_call_parse(o, &c);
        if (r >= 0)
                varlink_call_done(&c);
        return r;
}

static int reply_parse_text(const char *text) {
        _cleanup_(json_object_putp) json_object *o = json(text);
        VarlinkReply reply;
        int r;

        r = varlink_reply_parse(o, &reply);
        if (r >= 0)
                varlink_reply_done(&reply);
        return r;
}

/* ---------------------------------------------------------------- calls */

START_TEST(test_call_is_split_into_interface_and_member_at_the_last_dot) {
        _cleanup_(json_object_putp) json_object *o =
                json("{\"method\":\"io.snapset.Manager.GetStatus\",\"parameters\":{\"a\":1}}");
        VarlinkCall c;

        ck_assert_int_eq(varlink_call_parse(o, &c), 0);
        ck_assert_str_eq(c.method, "io.snapset.Manager.GetStatus");
        ck_assert_str_eq(c.interface, "io.snapset.Manager");
        ck_assert_str_eq(c.member, "GetStatus");
        ck_assert(json_object_is_type(c.parameters, json_type_object));
        ck_assert_int_eq(json_object_get_int(json_object_object_get(c.parameters, "a")), 1);
        ck_assert(!c.oneway && !c.more && !c.upgrade);
        varlink_call_done(&c);
        ck_assert_ptr_null(c.method);
}
END_TEST

START_TEST(test_missing_null_and_empty_parameters_all_become_an_empty_object) {
        static const char *texts[] = {
                "{\"method\":\"org.varlink.service.GetInfo\"}",
                "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":null}",
                "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":{}}",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                _cleanup_(json_object_putp) json_object *o = json(texts[i]);
                VarlinkCall c;

                ck_assert_int_eq(varlink_call_parse(o, &c), 0);
                ck_assert_msg(json_object_is_type(c.parameters, json_type_object), "%s", texts[i]);
                ck_assert_int_eq(json_object_object_length(c.parameters), 0);
                varlink_call_done(&c);
        }
}
END_TEST

START_TEST(test_flags_are_read_when_true_or_false) {
        _cleanup_(json_object_putp) json_object *o =
                json("{\"method\":\"a.b.C\",\"oneway\":false,\"more\":true,\"upgrade\":false}");
        VarlinkCall c;

        ck_assert_int_eq(varlink_call_parse(o, &c), 0);
        ck_assert(c.more && !c.oneway && !c.upgrade);
        varlink_call_done(&c);
        ck_assert_int_eq(call_parse_text("{\"method\":\"a.b.C\",\"oneway\":true}"), 0);
        ck_assert_int_eq(call_parse_text("{\"method\":\"a.b.C\",\"upgrade\":true}"), 0);
}
END_TEST

START_TEST(test_oneway_and_more_together_is_a_protocol_error) {
        ck_assert_int_eq(call_parse_text("{\"method\":\"a.b.C\",\"oneway\":true,\"more\":true}"), -EPROTO);
        ck_assert_int_eq(call_parse_text("{\"method\":\"a.b.C\",\"oneway\":true,\"more\":false}"), 0);
}
END_TEST

START_TEST(test_an_unknown_key_in_a_call_is_a_protocol_error) {
        ck_assert_int_eq(call_parse_text("{\"method\":\"a.b.C\",\"id\":1}"), -EPROTO);
        ck_assert_int_eq(call_parse_text("{\"method\":\"a.b.C\",\"com.example.extension\":{}}"), -EPROTO);
}
END_TEST

START_TEST(test_a_call_without_method_is_a_protocol_error) {
        ck_assert_int_eq(call_parse_text("{}"), -EPROTO);
        ck_assert_int_eq(call_parse_text("{\"parameters\":{}}"), -EPROTO);
}
END_TEST

START_TEST(test_wrong_types_in_a_call_are_protocol_errors) {
        static const char *texts[] = {
                "{\"method\":1}",
                "{\"method\":null}",
                "{\"method\":[\"a.b.C\"]}",
                "{\"method\":\"a.b.C\",\"oneway\":1}",
                "{\"method\":\"a.b.C\",\"oneway\":null}",
                "{\"method\":\"a.b.C\",\"more\":\"true\"}",
                "{\"method\":\"a.b.C\",\"upgrade\":0}",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                ck_assert_msg(call_parse_text(texts[i]) == -EPROTO, "%s", texts[i]);
}
END_TEST

START_TEST(test_parameters_that_are_not_an_object_are_a_protocol_error) {
        static const char *texts[] = {
                "{\"method\":\"a.b.C\",\"parameters\":[]}",
                "{\"method\":\"a.b.C\",\"parameters\":\"x\"}",
                "{\"method\":\"a.b.C\",\"parameters\":0}",
                "{\"method\":\"a.b.C\",\"parameters\":false}",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                ck_assert_msg(call_parse_text(texts[i]) == -EPROTO, "%s", texts[i]);
}
END_TEST

START_TEST(test_malformed_method_names_are_protocol_errors) {
        static const char *texts[] = {
                "{\"method\":\"\"}",
                "{\"method\":\"GetStatus\"}",
                "{\"method\":\"snapset.GetStatus\"}",               /* one interface label */
                "{\"method\":\"io.snapset.Manager.getStatus\"}",    /* member in lower case */
                "{\"method\":\"io.snapset.Manager.\"}",
                "{\"method\":\"io..snapset.Manager.GetStatus\"}",
                "{\"method\":\"io.snapset.Manager.Get-Status\"}",
                "{\"method\":\"io.snapset.Manager.GetStatus\\u0000X\"}",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                ck_assert_msg(call_parse_text(texts[i]) == -EPROTO, "%s", texts[i]);
}
END_TEST

START_TEST(test_a_call_that_is_not_an_object_is_refused) {
        _cleanup_(json_object_putp) json_object *a = json("[]");
        VarlinkCall c;
        VarlinkReply r;

        ck_assert_int_eq(varlink_call_parse(a, &c), -EINVAL);
        ck_assert_int_eq(varlink_call_parse(NULL, &c), -EINVAL);
        ck_assert_int_eq(varlink_reply_parse(a, &r), -EINVAL);
}
END_TEST

START_TEST(test_a_failed_parse_leaves_the_call_untouched) {
        _cleanup_(json_object_putp) json_object *o = json("{\"method\":\"a.b.C\",\"x\":1}");
        VarlinkCall c = { .method = (char *) "sentinel" };

        ck_assert_int_eq(varlink_call_parse(o, &c), -EPROTO);
        ck_assert_str_eq(c.method, "sentinel");
}
END_TEST

/* ---------------------------------------------------------------- replies */

START_TEST(test_a_reply_carries_parameters_error_and_continues) {
        _cleanup_(json_object_putp) json_object *a = json("{\"parameters\":{\"x\":true},\"continues\":true}");
        _cleanup_(json_object_putp) json_object *b =
                json("{\"error\":\"io.snapset.Manager.BadState\",\"parameters\":{\"hresult\":1}}");
        VarlinkReply r;

        ck_assert_int_eq(varlink_reply_parse(a, &r), 0);
        ck_assert(r.continues);
        ck_assert_ptr_null(r.error);
        ck_assert(json_object_get_boolean(json_object_object_get(r.parameters, "x")));
        varlink_reply_done(&r);

        ck_assert_int_eq(varlink_reply_parse(b, &r), 0);
        ck_assert(!r.continues);
        ck_assert_str_eq(r.error, "io.snapset.Manager.BadState");
        ck_assert_int_eq(json_object_get_int(json_object_object_get(r.parameters, "hresult")), 1);
        varlink_reply_done(&r);
}
END_TEST

START_TEST(test_a_reply_without_parameters_gets_an_empty_object) {
        static const char *texts[] = { "{}", "{\"parameters\":null}", "{\"error\":\"a.b.C\"}" };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                _cleanup_(json_object_putp) json_object *o = json(texts[i]);
                VarlinkReply r;

                ck_assert_int_eq(varlink_reply_parse(o, &r), 0);
                ck_assert(json_object_is_type(r.parameters, json_type_object));
                ck_assert_int_eq(json_object_object_length(r.parameters), 0);
                varlink_reply_done(&r);
        }
}
END_TEST

START_TEST(test_an_error_that_continues_is_a_protocol_error) {
        ck_assert_int_eq(reply_parse_text("{\"error\":\"a.b.C\",\"continues\":true}"), -EPROTO);
        ck_assert_int_eq(reply_parse_text("{\"error\":\"a.b.C\",\"continues\":false}"), 0);
}
END_TEST

START_TEST(test_malformed_replies_are_protocol_errors) {
        static const char *texts[] = {
                "{\"parameters\":{},\"method\":\"a.b.C\"}",
                "{\"parameters\":[]}",
                "{\"parameters\":1}",
                "{\"continues\":1}",
                "{\"continues\":null}",
                "{\"error\":1}",
                "{\"error\":null}",
                "{\"error\":\"NotQualified\"}",
                "{\"error\":\"\"}",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                ck_assert_msg(reply_parse_text(texts[i]) == -EPROTO, "%s", texts[i]);
}
END_TEST

/* ---------------------------------------------------------------- names */

START_TEST(test_interface_names_follow_the_current_specification) {
        static const char *valid[] = {
                "io.snapset.Manager", "org.varlink.service", "a.b", "org.example.ftl",
                "com.example.some-thing", "io.systemd.Resolve", "a1.b2.c3", "x.y--z",
        };
        static const char *invalid[] = {
                "", "io", ".io.snapset", "io.snapset.", "io..snapset", "io.-snapset", "io.snapset-",
                "1io.snapset", "io.1snapset", "io.snap_set", "io.snap set", "io.snapset.Manager/",
        };

        for (size_t i = 0; i < ELEMENTSOF(valid); i++)
                ck_assert_msg(varlink_interface_name_is_valid(valid[i]), "%s", valid[i]);
        for (size_t i = 0; i < ELEMENTSOF(invalid); i++)
                ck_assert_msg(!varlink_interface_name_is_valid(invalid[i]), "%s", invalid[i]);
        ck_assert(!varlink_interface_name_is_valid(NULL));
}
END_TEST

START_TEST(test_member_names_start_with_a_capital_then_letters_and_digits) {
        ck_assert(varlink_member_name_is_valid("GetStatus"));
        ck_assert(varlink_member_name_is_valid("SnapshotSetInProgress"));
        ck_assert(varlink_member_name_is_valid("X"));
        ck_assert(varlink_member_name_is_valid("Test01"));
        ck_assert(!varlink_member_name_is_valid(""));
        ck_assert(!varlink_member_name_is_valid("getStatus"));
        ck_assert(!varlink_member_name_is_valid("1Get"));
        ck_assert(!varlink_member_name_is_valid("Get_Status"));
        ck_assert(!varlink_member_name_is_valid("Get-Status"));
        ck_assert(!varlink_member_name_is_valid("Get.Status"));
        ck_assert(!varlink_member_name_is_valid(NULL));
}
END_TEST

START_TEST(test_qualified_names_need_an_interface_and_a_member) {
        ck_assert(varlink_qualified_name_is_valid("io.snapset.Manager.GetStatus"));
        ck_assert(varlink_qualified_name_is_valid("org.varlink.service.InvalidParameter"));
        ck_assert(!varlink_qualified_name_is_valid("io.snapset"));          /* interface "io" */
        ck_assert(!varlink_qualified_name_is_valid("snapset.GetStatus"));
        ck_assert(!varlink_qualified_name_is_valid("GetStatus"));
        ck_assert(!varlink_qualified_name_is_valid("io.snapset.Manager.GetStatus."));
        ck_assert(!varlink_qualified_name_is_valid(NULL));
}
END_TEST

/* ---------------------------------------------------------------- builders */

static void assert_serializes_to(json_object *o, const char *expected) {
        ck_assert_ptr_nonnull(o);
        ck_assert_str_eq(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), expected);
        json_object_put(o);
}

START_TEST(test_a_built_call_omits_false_flags) {
        assert_serializes_to(varlink_message_call("a.b.C", NULL, false, false),
                             "{\"method\":\"a.b.C\",\"parameters\":{}}");
        assert_serializes_to(varlink_message_call("a.b.C", NULL, true, false),
                             "{\"method\":\"a.b.C\",\"parameters\":{},\"oneway\":true}");
        assert_serializes_to(varlink_message_call("a.b.C", NULL, false, true),
                             "{\"method\":\"a.b.C\",\"parameters\":{},\"more\":true}");
}
END_TEST

START_TEST(test_a_built_reply_always_has_parameters_and_continues_only_when_true) {
        _cleanup_(json_object_putp) json_object *p = json("{\"n\":1}");

        assert_serializes_to(varlink_message_reply(NULL, false), "{\"parameters\":{}}");
        assert_serializes_to(varlink_message_reply(p, true), "{\"parameters\":{\"n\":1},\"continues\":true}");
        assert_serializes_to(varlink_message_error(VARLINK_ERROR_INVALID_PARAMETER, p),
                             "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"n\":1}}");
        /* The parameters were shared, not consumed. */
        ck_assert_int_eq(json_object_get_int(json_object_object_get(p, "n")), 1);
}
END_TEST

START_TEST(test_built_messages_parse_back) {
        _cleanup_(json_object_putp) json_object *p = json("{\"volume\":\"/dev/vda\"}");
        _cleanup_(json_object_putp) json_object *call = varlink_message_call("io.snapset.Manager.ListSnapshots", p,
                                                                             false, true);
        _cleanup_(json_object_putp) json_object *err = varlink_message_error("io.snapset.Manager.BadState", NULL);
        VarlinkCall c;
        VarlinkReply r;

        ck_assert_int_eq(varlink_call_parse(call, &c), 0);
        ck_assert(c.more);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(c.parameters, "volume")), "/dev/vda");
        varlink_call_done(&c);
        ck_assert_int_eq(varlink_reply_parse(err, &r), 0);
        ck_assert_str_eq(r.error, "io.snapset.Manager.BadState");
        varlink_reply_done(&r);
}
END_TEST

/* ---------------------------------------------------------------- the IDL */

static const char idl[] =
#include "io.snapset.Manager.varlink.inc"
        ;

/* Returns the rest of the line that declares "error NAME (", or NULL. */
static const char *idl_error_declaration(const char *name) {
        char needle[256];

        snprintf(needle, sizeof needle, "\nerror %s ", name);
        return strstr(idl, needle);
}

START_TEST(test_every_error_of_the_table_is_declared_in_the_idl_with_its_fields) {
        ck_assert_ptr_nonnull(startswith(strstr(idl, "\ninterface ") ?: "", "\ninterface " SNAPSET_VARLINK_INTERFACE "\n"));

        for (VssCode c = 0; c < _VSS_CODE_MAX; c++) {
                const char *e = vss_code_varlink_error(c), *member, *decl, *eol;
                _cleanup_free_ char *line = NULL;

                if (vss_code_is_success(c))
                        continue;
                member = startswith(e, SNAPSET_VARLINK_INTERFACE ".");
                ck_assert_ptr_nonnull(member);
                decl = idl_error_declaration(member);
                ck_assert_msg(decl, "error %s is not declared in the IDL", member);
                eol = strchr(decl + 1, '\n') ?: decl + strlen(decl);
                line = strndup(decl, eol - decl);
                ck_assert_msg(strstr(line, "hresult: int"), "%s lacks hresult", member);
                ck_assert_msg(strstr(line, "vssName: string"), "%s lacks vssName", member);
                ck_assert_msg(strstr(line, "message: string"), "%s lacks message", member);
        }
}
END_TEST

Suite *suite_varlink_message(void) {
        Suite *s = suite_create("varlink-message");
        TCase *tc;

        tc = tcase_create("call");
        tcase_add_test(tc, test_call_is_split_into_interface_and_member_at_the_last_dot);
        tcase_add_test(tc, test_missing_null_and_empty_parameters_all_become_an_empty_object);
        tcase_add_test(tc, test_flags_are_read_when_true_or_false);
        tcase_add_test(tc, test_oneway_and_more_together_is_a_protocol_error);
        tcase_add_test(tc, test_an_unknown_key_in_a_call_is_a_protocol_error);
        tcase_add_test(tc, test_a_call_without_method_is_a_protocol_error);
        tcase_add_test(tc, test_wrong_types_in_a_call_are_protocol_errors);
        tcase_add_test(tc, test_parameters_that_are_not_an_object_are_a_protocol_error);
        tcase_add_test(tc, test_malformed_method_names_are_protocol_errors);
        tcase_add_test(tc, test_a_call_that_is_not_an_object_is_refused);
        tcase_add_test(tc, test_a_failed_parse_leaves_the_call_untouched);
        suite_add_tcase(s, tc);

        tc = tcase_create("reply");
        tcase_add_test(tc, test_a_reply_carries_parameters_error_and_continues);
        tcase_add_test(tc, test_a_reply_without_parameters_gets_an_empty_object);
        tcase_add_test(tc, test_an_error_that_continues_is_a_protocol_error);
        tcase_add_test(tc, test_malformed_replies_are_protocol_errors);
        suite_add_tcase(s, tc);

        tc = tcase_create("names");
        tcase_add_test(tc, test_interface_names_follow_the_current_specification);
        tcase_add_test(tc, test_member_names_start_with_a_capital_then_letters_and_digits);
        tcase_add_test(tc, test_qualified_names_need_an_interface_and_a_member);
        suite_add_tcase(s, tc);

        tc = tcase_create("build");
        tcase_add_test(tc, test_a_built_call_omits_false_flags);
        tcase_add_test(tc, test_a_built_reply_always_has_parameters_and_continues_only_when_true);
        tcase_add_test(tc, test_built_messages_parse_back);
        suite_add_tcase(s, tc);

        tc = tcase_create("idl");
        tcase_add_test(tc, test_every_error_of_the_table_is_declared_in_the_idl_with_its_fields);
        suite_add_tcase(s, tc);
        return s;
}
