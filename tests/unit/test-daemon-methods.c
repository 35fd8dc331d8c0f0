/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* methods_dispatch() without a socket: each call goes in as a parsed message, and the replies it
 * sends are captured, so that what a client would receive can be checked exactly. */

#include <check.h>
#include <stdio.h>

#include "config.h"
#include "macro.h"
#include "manager.h"
#include "methods.h"
#include "varlink.h"
#include "vss-error.h"

static const Peer root_peer = { .pid = 1, .uid = 0, .gid = 0 };
static const Peer nobody_peer = { .pid = 2, .uid = 65534, .gid = 65534 };

typedef struct Capture {
        json_object *replies[8];
        unsigned n;
} Capture;

static int capture_send(void *userdata, json_object *msg) {
        Capture *c = userdata;

        ck_assert_uint_lt(c->n, ELEMENTSOF(c->replies));
        c->replies[c->n++] = json_object_get(msg);
        return 0;
}

static void capture_done(Capture *c) {
        for (unsigned i = 0; i < c->n; i++)
                json_object_put(c->replies[i]);
        c->n = 0;
}

static Manager *test_manager(const char *read_group) {
        Manager *m = NULL;
        Config c;

        ck_assert_int_eq(config_init(&c), 0);
        if (read_group)
                c.read_group = strdup(read_group);
        ck_assert_int_eq(manager_new(&c, &m), 0);
        m->state_directory = strdup("/var/lib/snapset-test");
        return m;
}

/* Dispatches the call text for peer; returns what methods_dispatch() returned. */
static int dispatch(Manager *m, const Peer *peer, const char *text, Capture *cap) {
        _cleanup_(json_object_putp) json_object *msg = json_tokener_parse(text);

        ck_assert_msg(msg != NULL, "test call is not JSON: %s", text);
        return methods_dispatch(m, peer, msg, capture_send, cap);
}

static const char *reply_error(const Capture *cap) {
        json_object *e;

        ck_assert_uint_eq(cap->n, 1);
        if (!json_object_object_get_ex(cap->replies[0], "error", &e))
                return NULL;
        return json_object_get_string(e);
}

static json_object *reply_parameters(const Capture *cap) {
        json_object *p = NULL;

        ck_assert_uint_ge(cap->n, 1);
        ck_assert(json_object_object_get_ex(cap->replies[cap->n - 1], "parameters", &p));
        return p;
}

static const char *param_string(json_object *p, const char *key) {
        json_object *v;

        ck_assert_msg(json_object_object_get_ex(p, key, &v), "no '%s' in %s", key, json_object_to_json_string(p));
        return json_object_get_string(v);
}

static int64_t param_int(json_object *p, const char *key) {
        json_object *v;

        ck_assert_msg(json_object_object_get_ex(p, key, &v), "no '%s'", key);
        ck_assert(json_object_is_type(v, json_type_int));
        return json_object_get_int64(v);
}

START_TEST(test_get_info_describes_the_service) {
        _cleanup_(manager_freep) Manager *m = test_manager(NULL);
        Capture cap = {};
        json_object *p, *ifaces;

        ck_assert_int_eq(dispatch(m, &nobody_peer, "{\"method\":\"org.varlink.service.GetInfo\"}", &cap), 0);
        ck_assert_ptr_null(reply_error(&cap));
        p = reply_parameters(&cap);
        ck_assert_str_eq(param_string(p, "vendor"), "snapset");
        ck_assert_str_eq(param_string(p, "product"), "snapsetd");
        ck_assert_str_eq(param_string(p, "version"), SNAPSET_VERSION);
        ck_assert(json_object_object_get_ex(p, "interfaces", &ifaces));
        ck_assert_uint_eq(json_object_array_length(ifaces), 2);
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(ifaces, 0)), "org.varlink.service");
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(ifaces, 1)), "io.snapset.Manager");
        capture_done(&cap);
}
END_TEST

START_TEST(test_get_info_accepts_null_and_empty_parameters_but_no_others) {
        _cleanup_(manager_freep) Manager *m = test_manager(NULL);
        Capture cap = {};

        ck_assert_int_eq(dispatch(m, &root_peer, "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":null}", &cap), 0);
        ck_assert_ptr_null(reply_error(&cap));
        capture_done(&cap);
        ck_assert_int_eq(dispatch(m, &root_peer, "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":{}}", &cap), 0);
        ck_assert_ptr_null(reply_error(&cap));
        capture_done(&cap);
        ck_assert_int_eq(dispatch(m, &root_peer, "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":{\"x\":1}}", &cap), 0);
        ck_assert_str_eq(reply_error(&cap), VARLINK_ERROR_INVALID_PARAMETER);
        ck_assert_str_eq(param_string(reply_parameters(&cap), "parameter"), "x");
        capture_done(&cap);
}
END_TEST

START_TEST(test_interface_description_is_the_exact_idl_text) {
        _cleanup_(manager_freep) Manager *m = test_manager(NULL);
        _cleanup_free_ char *file = NULL;
        Capture cap = {};
        size_t size = 0;
        FILE *f;

        ck_assert_int_eq(dispatch(m, &nobody_peer,
                                  "{\"method\":\"org.varlink.service.GetInterfaceDescription\","
                                  "\"parameters\":{\"interface\":\"io.snapset.Manager\"}}", &cap), 0);
        ck_assert_ptr_null(reply_error(&cap));

        f = fopen("common/io.snapset.Manager.varlink", "re");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(getdelim(&file, &size, 0, f) > 0, 1);
        fclose(f);
        ck_assert_str_eq(param_string(reply_parameters(&cap), "description"), file);
        capture_done(&cap);
}
END_TEST

START_TEST(test_interface_description_errors) {
        _cleanup_(manager_freep) Manager *m = test_manager(NULL);
        Capture cap = {};

        ck_assert_int_eq(dispatch(m, &root_peer,
                                  "{\"method\":\"org.varlink.service.GetInterfaceDescription\","
                                  "\"parameters\":{\"interface\":\"org.example.none\"}}", &cap), 0);
        ck_assert_str_eq(reply_error(&cap), VARLINK_ERROR_INTERFACE_NOT_FOUND);
        ck_assert_str_eq(param_string(reply_parameters(&cap), "interface"), "org.example.none");
        capture_done(&cap);

        ck_assert_int_eq(dispatch(m, &root_peer, "{\"method\":\"org.varlink.service.GetInterfaceDescription\"}", &cap), 0);
        ck_assert_str_eq(reply_error(&cap), VARLINK_ERROR_INVALID_PARAMETER);
        ck_assert_str_eq(param_string(reply_parameters(&cap), "parameter"), "interface");
        capture_done(&cap);

        ck_assert_int_eq(dispatch(m, &root_peer,
                                  "{\"method\":\"org.varlink.service.GetInterfaceDescription\","
                                  "\"parameters\":{\"interface\":7}}", &cap), 0);
        ck_assert_str_eq(reply_error(&cap), VARLINK_ERROR_INVALID_PARAMETER);
        ck_assert_str_eq(param_string(reply_parameters(&cap), "parameter"), "interface");
        capture_done(&cap);
}
END_TEST

START_TEST(test_unknown_interface_and_method) {
        _cleanup_(manager_freep) Manager *m = test_manager(NULL);
        Capture cap = {};

        ck_assert_int_eq(dispatch(m, &nobody_peer, "{\"method\":\"org.example.Foo.Bar\"}", &cap), 0);
        ck_assert_str_eq(reply_error(&cap), VARLINK_ERROR_INTERFACE_NOT_FOUND);
        ck_assert_str_eq(param_string(reply_parameters(&cap), "interface"), "org.example.Foo");
        capture_done(&cap);

        ck_assert_int_eq(dispatch(m, &nobody_peer, "{\"method\":\"io.snapset.Manager.TakeSnapshot\"}", &cap), 0);
        ck_assert_str_eq(reply_error(&cap), VARLINK_ERROR_METHOD_NOT_FOUND);
        ck_assert_str_eq(param_string(reply_parameters(&cap), "method"), "io.snapset.Manager.TakeSnapshot");
        capture_done(&cap);
}
END_TEST

START_TEST(test_non_root_caller_of_a_mutating_method_gets_access_denied) {
        _cleanup_(manager_freep) Manager *m = test_manager("root");
        Capture cap = {};
        json_object *p;

        ck_assert_int_eq(dispatch(m, &nobody_peer, "{\"method\":\"io.snapset.Manager.StartSnapshotSet\"}", &cap), 0);
        ck_assert_str_eq(reply_error(&cap), "io.snapset.Manager.AccessDenied");
        p = reply_parameters(&cap);
        ck_assert_int_eq(param_int(p, "hresult"), 0x80070005);
        ck_assert_str_eq(param_string(p, "vssName"), "E_ACCESSDENIED");
        ck_assert_str_eq(param_string(p, "method"), "io.snapset.Manager.StartSnapshotSet");
        ck_assert_str_eq(param_string(p, "message"), "Permission denied: io.snapset.Manager.StartSnapshotSet needs root.");
        capture_done(&cap);
}
END_TEST

START_TEST(test_read_group_member_still_cannot_mutate) {
        /* Group "root" and a peer running with gid 0: a member, but not uid 0. */
        _cleanup_(manager_freep) Manager *m = test_manager("root");
        const Peer member = { .pid = 3, .uid = 4000000000U, .gid = 0 };
        Capture cap = {};

        ck_assert_int_eq(dispatch(m, &member, "{\"method\":\"io.snapset.Manager.GetStatus\"}", &cap), 0);
        ck_assert_ptr_null(reply_error(&cap));
        capture_done(&cap);

        ck_assert_int_eq(dispatch(m, &member, "{\"method\":\"io.snapset.Manager.DeleteSnapshots\"}", &cap), 0);
        ck_assert_str_eq(reply_error(&cap), "io.snapset.Manager.AccessDenied");
        capture_done(&cap);
}
END_TEST

START_TEST(test_read_only_method_without_read_group_is_denied_to_non_root) {
        _cleanup_(manager_freep) Manager *m = test_manager(NULL);
        Capture cap = {};

        ck_assert_int_eq(dispatch(m, &nobody_peer, "{\"method\":\"io.snapset.Manager.GetStatus\"}", &cap), 0);
        ck_assert_str_eq(reply_error(&cap), "io.snapset.Manager.AccessDenied");
        ck_assert_str_eq(param_string(reply_parameters(&cap), "message"),
                         "Permission denied: io.snapset.Manager.GetStatus needs root (no ReadGroup= is configured in snapsetd.conf).");
        capture_done(&cap);
}
END_TEST

START_TEST(test_break_of_a_malformed_id_is_refused_naming_it) {
        _cleanup_(manager_freep) Manager *m = test_manager(NULL);
        Capture cap = {};

        ck_assert_int_eq(dispatch(m, &root_peer, "{\"method\":\"io.snapset.Manager.BreakSnapshotSet\",\"parameters\":{\"setId\":\"x\"}}", &cap), 0);
        ck_assert_str_eq(reply_error(&cap), "io.snapset.Manager.InvalidArgument");
        ck_assert_ptr_nonnull(strstr(param_string(reply_parameters(&cap), "message"), "'x' is not a valid snapshot set id"));
        capture_done(&cap);
}
END_TEST

START_TEST(test_streaming_method_without_more_gets_expected_more) {
        _cleanup_(manager_freep) Manager *m = test_manager(NULL);
        Capture cap = {};

        ck_assert_int_eq(dispatch(m, &root_peer, "{\"method\":\"io.snapset.Manager.Monitor\"}", &cap), 0);
        ck_assert_str_eq(reply_error(&cap), VARLINK_ERROR_EXPECTED_MORE);
        capture_done(&cap);

}
END_TEST

START_TEST(test_monitor_sends_the_current_state_and_stays_open) {
        _cleanup_(manager_freep) Manager *m = test_manager("root");
        const Peer member = { .pid = 3, .uid = 4000000000U, .gid = 0 };
        Capture cap = {};
        json_object *event, *continues;

        /* 1: the call stays open for events. */
        ck_assert_int_eq(dispatch(m, &member, "{\"method\":\"io.snapset.Manager.Monitor\",\"more\":true}", &cap), 1);
        ck_assert_ptr_null(reply_error(&cap));
        ck_assert(json_object_object_get_ex(cap.replies[0], "continues", &continues));
        ck_assert(json_object_get_boolean(continues));
        ck_assert(json_object_object_get_ex(reply_parameters(&cap), "event", &event));
        ck_assert_str_eq(param_string(event, "type"), "status");
        ck_assert_int_gt(param_int(event, "timestampUsec"), 0);
        capture_done(&cap);
}
END_TEST

START_TEST(test_oneway_calls_get_no_reply_even_on_error) {
        _cleanup_(manager_freep) Manager *m = test_manager(NULL);
        Capture cap = {};

        ck_assert_int_eq(dispatch(m, &root_peer, "{\"method\":\"org.varlink.service.GetInfo\",\"oneway\":true}", &cap), 0);
        ck_assert_int_eq(dispatch(m, &root_peer, "{\"method\":\"io.snapset.Manager.Nope\",\"oneway\":true}", &cap), 0);
        ck_assert_int_eq(dispatch(m, &nobody_peer, "{\"method\":\"io.snapset.Manager.DoSnapshotSet\",\"oneway\":true}", &cap), 0);
        ck_assert_int_eq(dispatch(m, &root_peer, "{\"method\":\"io.snapset.Manager.GetStatus\",\"oneway\":true,\"parameters\":{\"bad\":1}}", &cap), 0);
        ck_assert_uint_eq(cap.n, 0);
}
END_TEST

START_TEST(test_malformed_calls_are_protocol_errors) {
        _cleanup_(manager_freep) Manager *m = test_manager(NULL);
        Capture cap = {};

        ck_assert_int_eq(dispatch(m, &root_peer, "{\"method\":\"GetInfo\"}", &cap), -EPROTO);
        ck_assert_int_eq(dispatch(m, &root_peer, "{\"method\":\"org.varlink.service.GetInfo\",\"extra\":1}", &cap), -EPROTO);
        ck_assert_int_eq(dispatch(m, &root_peer, "{\"method\":\"org.varlink.service.GetInfo\",\"oneway\":true,\"more\":true}", &cap), -EPROTO);
        ck_assert_int_eq(dispatch(m, &root_peer, "{\"parameters\":{}}", &cap), -EPROTO);
        ck_assert_uint_eq(cap.n, 0);
}
END_TEST

START_TEST(test_get_status_reports_limits_and_state) {
        _cleanup_(manager_freep) Manager *m = test_manager(NULL);
        Capture cap = {};
        json_object *p, *limits, *v;

        m->config.max_volumes_per_set = 7;
        ck_assert_int_eq(dispatch(m, &root_peer, "{\"method\":\"io.snapset.Manager.GetStatus\"}", &cap), 0);
        ck_assert_ptr_null(reply_error(&cap));
        p = reply_parameters(&cap);
        ck_assert_str_eq(param_string(p, "version"), SNAPSET_VERSION);
        ck_assert_int_ge(param_int(p, "uptimeUsec"), 0);
        ck_assert(json_object_object_get_ex(p, "setInProgress", &v));
        ck_assert_ptr_null(v);
        ck_assert_int_eq(param_int(p, "sets"), 0);
        ck_assert_int_eq(param_int(p, "snapshots"), 0);
        ck_assert_int_eq(param_int(p, "connections"), 0);
        ck_assert_str_eq(param_string(p, "stateDirectory"), "/var/lib/snapset-test");
        ck_assert(json_object_object_get_ex(p, "limits", &limits));
        ck_assert_int_eq(param_int(limits, "maxVolumesPerSet"), 7);
        ck_assert_int_eq(param_int(limits, "maxMessageBytes"), 16 * 1024 * 1024);
        ck_assert_int_eq(param_int(limits, "holdTimeoutSec"), 10);
        ck_assert_int_eq(json_object_object_length(limits), 9);
        capture_done(&cap);
}
END_TEST

START_TEST(test_vss_error_parameters_carry_the_table_and_the_fields) {
        _cleanup_(json_object_putp) json_object *p = NULL;

        p = vss_error_parameters(VSS_E_SNAPSHOT_SET_IN_PROGRESS,
                                 &(VssErrorFields) { .set_id = "s1", .volume = "/dev/vda", .error = -EBUSY }, NULL);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(param_int(p, "hresult"), vss_code_hresult(VSS_E_SNAPSHOT_SET_IN_PROGRESS));
        ck_assert_str_eq(param_string(p, "vssName"), "VSS_E_SNAPSHOT_SET_IN_PROGRESS");
        ck_assert_str_eq(param_string(p, "message"), vss_code_message(VSS_E_SNAPSHOT_SET_IN_PROGRESS));
        ck_assert_str_eq(param_string(p, "setId"), "s1");
        ck_assert_str_eq(param_string(p, "volume"), "/dev/vda");
        ck_assert_int_eq(param_int(p, "errno"), EBUSY);
        ck_assert(!json_object_object_get_ex(p, "provider", NULL));
        ck_assert(!json_object_object_get_ex(p, "snapshotId", NULL));
}
END_TEST

START_TEST(test_upgrade_is_refused) {
        _cleanup_(manager_freep) Manager *m = test_manager(NULL);
        Capture cap = {};

        ck_assert_int_eq(dispatch(m, &root_peer, "{\"method\":\"org.varlink.service.GetInfo\",\"upgrade\":true}", &cap), 0);
        ck_assert_str_eq(reply_error(&cap), VARLINK_ERROR_INVALID_PARAMETER);
        ck_assert_str_eq(param_string(reply_parameters(&cap), "parameter"), "upgrade");
        capture_done(&cap);
}
END_TEST

Suite *suite_daemon_methods(void);
Suite *suite_daemon_methods(void) {
        Suite *s = suite_create("daemon-methods");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_get_info_describes_the_service);
        tcase_add_test(tc, test_get_info_accepts_null_and_empty_parameters_but_no_others);
        tcase_add_test(tc, test_interface_description_is_the_exact_idl_text);
        tcase_add_test(tc, test_interface_description_errors);
        tcase_add_test(tc, test_unknown_interface_and_method);
        tcase_add_test(tc, test_non_root_caller_of_a_mutating_method_gets_access_denied);
        tcase_add_test(tc, test_read_group_member_still_cannot_mutate);
        tcase_add_test(tc, test_read_only_method_without_read_group_is_denied_to_non_root);
        tcase_add_test(tc, test_break_of_a_malformed_id_is_refused_naming_it);
        tcase_add_test(tc, test_streaming_method_without_more_gets_expected_more);
        tcase_add_test(tc, test_monitor_sends_the_current_state_and_stays_open);
        tcase_add_test(tc, test_oneway_calls_get_no_reply_even_on_error);
        tcase_add_test(tc, test_malformed_calls_are_protocol_errors);
        tcase_add_test(tc, test_get_status_reports_limits_and_state);
        tcase_add_test(tc, test_vss_error_parameters_carry_the_table_and_the_fields);
        tcase_add_test(tc, test_upgrade_is_refused);
        suite_add_tcase(s, tc);
        return s;
}
