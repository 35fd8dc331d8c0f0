/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* External providers, the pure parts: provider files (every error names file, line and key),
 * the validation of every reply a provider can send (what passes, how a Failed error maps to a
 * code with the raw HRESULT kept, and everything that is a malformed reply), the embedded
 * io.snapset.Provider interface, ProviderDirectory=, and how the coordinator words a provider
 * that crashed or hung. The process side (start, timeouts, crashes, stderr) runs against the real
 * daemon in tests/integration/test-external-providers.py. */

#include <check.h>
#include <stdio.h>
#include <syslog.h>

#include "config.h"
#include "coordinator.h"
#include "providers/external.h"
#include "set-events.h"
#include "snapshot-set.h"
#include "varlink.h"

/* ---------------------------------------------------------------- provider files */

static int parse_file(const char *name, const char *text, ExternalProviderConfig *ret, char **ret_message) {
        FILE *f = fmemopen((void *) text, strlen(text), "r");
        int r;

        ck_assert_ptr_nonnull(f);
        *ret_message = NULL;
        r = external_provider_config_parse(f, "/etc/snapset/providers.d/acme.provider", name, ret, ret_message);
        fclose(f);
        return r;
}

static void assert_file_error(const char *text, const char *message) {
        _cleanup_free_ char *m = NULL;
        ExternalProviderConfig c = {};

        ck_assert_int_eq(parse_file("acme", text, &c, &m), -EINVAL);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(m, message);
}

START_TEST(test_a_complete_provider_file_is_parsed) {
        _cleanup_free_ char *m = NULL;
        _cleanup_(external_provider_config_done) ExternalProviderConfig c = {};

        ck_assert_int_eq(parse_file("acme",
                                    "# ACME SAN\n"
                                    "[Provider]\n"
                                    "Executable = /bin/true\n"
                                    "Priority=5\n"
                                    "Timeout=12\n"
                                    "\n"
                                    "[Settings]\n"
                                    "Pool=fast\n"
                                    "Array=a1\n"
                                    "Pool=slow\n"
                                    "Empty=\n", &c, &m), 0);
        ck_assert_ptr_null(m);
        ck_assert_str_eq(c.name, "acme");
        ck_assert_str_eq(c.executable, "/bin/true");
        ck_assert_int_eq(c.priority, 5);
        ck_assert_uint_eq(c.timeout_sec, 12);
        ck_assert_uint_eq(c.n_settings, 3);
        ck_assert_str_eq(c.setting_keys[0], "Pool");
        ck_assert_str_eq(c.setting_values[0], "slow");   /* the later one wins */
        ck_assert_str_eq(c.setting_keys[1], "Array");
        ck_assert_str_eq(c.setting_values[2], "");
}
END_TEST

START_TEST(test_timeout_defaults_to_thirty_seconds) {
        _cleanup_free_ char *m = NULL;
        _cleanup_(external_provider_config_done) ExternalProviderConfig c = {};

        ck_assert_int_eq(parse_file("acme", "[Provider]\nExecutable=/bin/true\nPriority=0\n", &c, &m), 0);
        ck_assert_uint_eq(c.timeout_sec, EXTERNAL_DEFAULT_TIMEOUT_SEC);
        ck_assert_uint_eq(c.n_settings, 0);
}
END_TEST

START_TEST(test_every_bad_provider_file_names_file_line_and_key) {
        assert_file_error("[Provider]\nExecutable=/bin/true\nPriority=high\n",
                          "/etc/snapset/providers.d/acme.provider:3: Priority=high: not a number between 0 and 1000");
        assert_file_error("[Provider]\nExecutable=/bin/true\nPriority=1001\n",
                          "/etc/snapset/providers.d/acme.provider:3: Priority=1001: not a number between 0 and 1000");
        assert_file_error("[Provider]\nExecutable=/bin/true\nPriority=1\nTimeout=0\n",
                          "/etc/snapset/providers.d/acme.provider:4: Timeout=0: not a number of seconds between 1 and 3600");
        (void) unsetenv("WATCHDOG_PID");
        ck_assert_int_eq(setenv("WATCHDOG_USEC", "180000000", 1), 0);
        assert_file_error("[Provider]\nExecutable=/bin/true\nTimeout=90\nPriority=1\n",
                          "/etc/snapset/providers.d/acme.provider:3: Timeout=90: must stay below half of "
                          "snapsetd.service's WatchdogSec= (180 s), or the watchdog kills snapsetd while it waits "
                          "for the provider");
        (void) unsetenv("WATCHDOG_USEC");
        assert_file_error("[Provider]\nExecutable=bin/true\n",
                          "/etc/snapset/providers.d/acme.provider:2: Executable=bin/true: not an absolute path");
        assert_file_error("[Provider]\nExecutable=/bin/true\nPriority=1\nTimout=3\n",
                          "/etc/snapset/providers.d/acme.provider:4: Timout=3: unknown key in section [Provider] "
                          "(known: Executable, Priority, Timeout)");
        assert_file_error("Executable=/bin/true\n",
                          "/etc/snapset/providers.d/acme.provider:1: Executable=/bin/true: key outside of any section");
        assert_file_error("[Daemon]\n", "/etc/snapset/providers.d/acme.provider:1: unknown section [Daemon] "
                          "(known: [Provider], [Settings])");
        assert_file_error("[Provider]\nExecutable /bin/true\n",
                          "/etc/snapset/providers.d/acme.provider:2: 'Executable /bin/true': expected Key=value or [Section]");
        assert_file_error("[Provider]\nExecutable=/bin/true\nPriority=1\n[Settings]\nbad key=1\n",
                          "/etc/snapset/providers.d/acme.provider:5: bad key=1: not a valid setting name "
                          "(letters, digits, '-', '_', '.')");
        assert_file_error("[Provider]\nPriority=1\n",
                          "/etc/snapset/providers.d/acme.provider: Executable= is missing in [Provider]");
        assert_file_error("[Provider]\nExecutable=/bin/true\n",
                          "/etc/snapset/providers.d/acme.provider: Priority= is missing in [Provider]");
        assert_file_error("[Provider]\n\nExecutable=/no/such/provider\nPriority=1\n",
                          "/etc/snapset/providers.d/acme.provider:3: Executable=/no/such/provider: cannot execute "
                          "it: No such file or directory");
}
END_TEST

START_TEST(test_provider_names) {
        ck_assert(external_provider_name_is_valid("acme"));
        ck_assert(external_provider_name_is_valid("ceph-rbd_2.0"));
        ck_assert(!external_provider_name_is_valid(""));
        ck_assert(!external_provider_name_is_valid(".hidden"));
        ck_assert(!external_provider_name_is_valid("-x"));
        ck_assert(!external_provider_name_is_valid("a b"));
        ck_assert(!external_provider_name_is_valid("a/b"));
        ck_assert(!external_provider_name_is_valid("0123456789012345678901234567890123456789012345678901234567890123"));
}
END_TEST

START_TEST(test_provider_directory_is_a_list_of_absolute_paths) {
        const char *text = "[Daemon]\nProviderDirectory= /etc/p.d   /usr/lib/p.d \n";
        FILE *f = fmemopen((void *) text, strlen(text), "r");
        _cleanup_(config_done) Config c = {};
        _cleanup_free_ char *m = NULL;

        ck_assert_int_eq(config_parse(f, "t.conf", &c, &m), 0);
        fclose(f);
        ck_assert_str_eq(c.provider_directories, "/etc/p.d /usr/lib/p.d");
        config_done(&c);

        text = "[Daemon]\nProviderDirectory=/etc/p.d relative\n";
        f = fmemopen((void *) text, strlen(text), "r");
        ck_assert_int_eq(config_parse(f, "t.conf", &c, &m), -EINVAL);
        fclose(f);
        ck_assert_str_eq(m, "t.conf:2: ProviderDirectory=/etc/p.d relative: 'relative' is not an absolute path");

        ck_assert_int_eq(config_init(&c), 0);
        ck_assert_ptr_nonnull(strstr(c.provider_directories, "/snapset/providers.d"));
        ck_assert_ptr_nonnull(strchr(c.provider_directories, ' '));   /* /etc's, then the vendors' */
}
END_TEST

/* ---------------------------------------------------------------- replies */

static Snapshot snap_a = { .id = "11111111-1111-1111-1111-111111111111" };
static Snapshot snap_b = { .id = "22222222-2222-2222-2222-222222222222" };
static ProviderSnapshot psnap_a = { .snapshot = &snap_a }, psnap_b = { .snapshot = &snap_b };
static ProviderSnapshot *const share[] = { &psnap_a, &psnap_b };

static VssCode check_reply(ExternalMethod m, const char *json, ProviderResult *res) {
        _cleanup_(json_object_putp) json_object *msg = json_tokener_parse(json), *params = NULL;
        VssCode code;

        ck_assert_msg(msg, "test JSON does not parse: %s", json);
        *res = (ProviderResult) { .failed = SIZE_MAX };
        code = external_reply_check(m, msg, share, 2, &params, res);
        if (code == S_OK)
                ck_assert_ptr_nonnull(params);
        return code;
}

static void assert_malformed(ExternalMethod m, const char *json, const char *why) {
        ProviderResult res;

        ck_assert_int_eq(check_reply(m, json, &res), VSS_E_UNEXPECTED_PROVIDER_ERROR);
        ck_assert_uint_eq(res.hresult, 0);
        ck_assert_int_eq(res.error, EPROTO);
        ck_assert_msg(startswith(res.message, "sent a malformed reply: ") && strstr(res.message, why),
                      "%s: '%s' does not say '%s'", json, res.message, why);
}

START_TEST(test_replies_that_follow_the_interface_pass) {
        ProviderResult res;

        ck_assert_int_eq(check_reply(EXTERNAL_ON_LOAD, "{\"parameters\":{\"version\":\"1.2\"}}", &res), S_OK);
        ck_assert_int_eq(check_reply(EXTERNAL_COMMIT_SNAPSHOTS, "{\"parameters\":{}}", &res), S_OK);
        ck_assert_int_eq(check_reply(EXTERNAL_COMMIT_SNAPSHOTS, "{}", &res), S_OK);
        ck_assert_int_eq(check_reply(EXTERNAL_IS_VOLUME_SUPPORTED, "{\"parameters\":{\"supported\":true}}", &res), S_OK);
        ck_assert_int_eq(check_reply(EXTERNAL_IS_VOLUME_SUPPORTED,
                                     "{\"parameters\":{\"supported\":false,\"reason\":\"read-only LUN\"}}", &res), S_OK);
        ck_assert_int_eq(check_reply(EXTERNAL_BEGIN_PREPARE_SNAPSHOT,
                                     "{\"parameters\":{\"providerData\":{\"lun\":7}}}", &res), S_OK);
        ck_assert_int_eq(check_reply(EXTERNAL_BEGIN_PREPARE_SNAPSHOT, "{\"parameters\":{\"providerData\":null}}", &res), S_OK);
        ck_assert_int_eq(check_reply(EXTERNAL_POST_COMMIT_SNAPSHOTS,
                                     "{\"parameters\":{\"snapshots\":[{\"snapshotId\":\"11111111-1111-1111-1111-111111111111\","
                                     "\"device\":\"/dev/sdx\"},{\"snapshotId\":\"22222222-2222-2222-2222-222222222222\"}]}}",
                                     &res), S_OK);
        ck_assert_int_eq(check_reply(EXTERNAL_QUERY, "{\"parameters\":{\"status\":\"invalid\"}}", &res), S_OK);
        ck_assert_int_eq(check_reply(EXTERNAL_ACTIVATE_SNAPSHOT, "{\"parameters\":{\"device\":\"/dev/sdy\"}}", &res), S_OK);
}
END_TEST

START_TEST(test_failed_maps_the_hresult_and_keeps_the_raw_value) {
        ProviderResult res;

        ck_assert_int_eq(check_reply(EXTERNAL_COMMIT_SNAPSHOTS,
                                     "{\"error\":\"io.snapset.Provider.Failed\",\"parameters\":{\"hresult\":2147754783,"
                                     "\"message\":\"pool full\",\"snapshotId\":\"22222222-2222-2222-2222-222222222222\"}}",
                                     &res), VSS_E_INSUFFICIENT_STORAGE);
        ck_assert_uint_eq(res.hresult, 0x8004231F);
        ck_assert_str_eq(res.message, "pool full");
        ck_assert_uint_eq(res.failed, 1);

        /* Signed, as some languages write HRESULTs. */
        ck_assert_int_eq(check_reply(EXTERNAL_COMMIT_SNAPSHOTS,
                                     "{\"error\":\"io.snapset.Provider.Failed\",\"parameters\":{\"hresult\":-2147467259,"
                                     "\"message\":\"x\"}}", &res), E_FAIL);
        ck_assert_uint_eq(res.hresult, 0x80004005);
        ck_assert_uint_eq(res.failed, SIZE_MAX);

        /* An HRESULT nobody knows: no code, the raw value for the event. */
        ck_assert_int_eq(check_reply(EXTERNAL_HOLD_WRITES,
                                     "{\"error\":\"io.snapset.Provider.Failed\",\"parameters\":{\"hresult\":2147785113,"
                                     "\"message\":\"?\"}}", &res), _VSS_CODE_INVALID);
        ck_assert_uint_eq(res.hresult, 0x80049999);

        ck_assert_int_eq(check_reply(EXTERNAL_HOLD_WRITES,
                                     "{\"error\":\"io.snapset.Provider.Failed\",\"parameters\":{\"hresult\":1,"
                                     "\"message\":\"S_FALSE\"}}", &res), S_FALSE);

        /* The daemon's own catch-all, sent by the provider: said to come from it. */
        ck_assert_int_eq(check_reply(EXTERNAL_HOLD_WRITES,
                                     "{\"error\":\"io.snapset.Provider.Failed\",\"parameters\":{\"hresult\":2147754767,"
                                     "\"message\":\"oops\"}}", &res), VSS_E_UNEXPECTED_PROVIDER_ERROR);
        ck_assert_uint_eq(res.hresult, 0x8004230F);
        ck_assert_ptr_nonnull(strstr(res.message, "itself"));
}
END_TEST

START_TEST(test_everything_else_is_a_malformed_reply) {
        assert_malformed(EXTERNAL_ON_LOAD, "{\"parameters\":{}}", "'version' is missing");
        assert_malformed(EXTERNAL_ON_LOAD, "{\"parameters\":{\"version\":2}}", "'version' has the wrong type");
        assert_malformed(EXTERNAL_COMMIT_SNAPSHOTS, "{\"parameters\":{\"ok\":true}}", "'ok' is not in io.snapset.Provider");
        assert_malformed(EXTERNAL_COMMIT_SNAPSHOTS, "{\"parameters\":{},\"continues\":true}", "'continues'");
        assert_malformed(EXTERNAL_COMMIT_SNAPSHOTS, "{\"parameters\":[]}", "not a varlink reply");
        assert_malformed(EXTERNAL_COMMIT_SNAPSHOTS, "{\"result\":{}}", "not a varlink reply");
        assert_malformed(EXTERNAL_COMMIT_SNAPSHOTS, "{\"error\":\"org.varlink.service.MethodNotFound\"}",
                         "the error org.varlink.service.MethodNotFound");
        assert_malformed(EXTERNAL_COMMIT_SNAPSHOTS, "{\"error\":\"io.snapset.Provider.Failed\",\"parameters\":{\"message\":\"x\"}}",
                         "'hresult' is missing");
        assert_malformed(EXTERNAL_COMMIT_SNAPSHOTS, "{\"error\":\"io.snapset.Provider.Failed\",\"parameters\":{\"hresult\":5}}",
                         "'message' is missing");
        assert_malformed(EXTERNAL_COMMIT_SNAPSHOTS,
                         "{\"error\":\"io.snapset.Provider.Failed\",\"parameters\":{\"hresult\":\"E_FAIL\",\"message\":\"x\"}}",
                         "'hresult' has the wrong type");
        assert_malformed(EXTERNAL_COMMIT_SNAPSHOTS,
                         "{\"error\":\"io.snapset.Provider.Failed\",\"parameters\":{\"hresult\":0,\"message\":\"x\"}}",
                         "carries S_OK");
        assert_malformed(EXTERNAL_COMMIT_SNAPSHOTS,
                         "{\"error\":\"io.snapset.Provider.Failed\",\"parameters\":{\"hresult\":8589934592,\"message\":\"x\"}}",
                         "not a 32-bit HRESULT");
        assert_malformed(EXTERNAL_IS_VOLUME_SUPPORTED, "{\"parameters\":{\"reason\":\"x\"}}", "'supported' is missing");
        assert_malformed(EXTERNAL_IS_VOLUME_SUPPORTED, "{\"parameters\":{\"supported\":\"yes\"}}", "wrong type");
        assert_malformed(EXTERNAL_BEGIN_PREPARE_SNAPSHOT, "{\"parameters\":{\"providerData\":[1]}}", "wrong type");
        assert_malformed(EXTERNAL_POST_COMMIT_SNAPSHOTS, "{\"parameters\":{}}", "'snapshots' is missing");
        assert_malformed(EXTERNAL_POST_COMMIT_SNAPSHOTS,
                         "{\"parameters\":{\"snapshots\":[{\"snapshotId\":\"33333333-3333-3333-3333-333333333333\"}]}}",
                         "not one of this provider's");
        assert_malformed(EXTERNAL_POST_COMMIT_SNAPSHOTS,
                         "{\"parameters\":{\"snapshots\":[{\"snapshotId\":\"11111111-1111-1111-1111-111111111111\","
                         "\"device\":\"sdx\"}]}}", "not an absolute path");
        assert_malformed(EXTERNAL_POST_COMMIT_SNAPSHOTS, "{\"parameters\":{\"snapshots\":[{}]}}",
                         "snapshots[0]: 'snapshotId' is missing");
        assert_malformed(EXTERNAL_QUERY, "{\"parameters\":{\"status\":\"fine\"}}", "neither 'valid' nor 'invalid'");
}
END_TEST

/* QuerySnapshots: one status per snapshot asked about, in their order; the one optional method,
 * so a provider without it is no failure. */
START_TEST(test_query_snapshots_replies) {
        _cleanup_(json_object_putp) json_object *missing = NULL, *params = NULL;
        ProviderResult res;

        ck_assert_int_eq(check_reply(EXTERNAL_QUERY_SNAPSHOTS, "{\"parameters\":{\"statuses\":[\"valid\",\"invalid\"]}}",
                                     &res), S_OK);
        assert_malformed(EXTERNAL_QUERY_SNAPSHOTS, "{\"parameters\":{\"statuses\":[\"valid\"]}}", "1 statuses for 2 snapshots");
        assert_malformed(EXTERNAL_QUERY_SNAPSHOTS, "{\"parameters\":{\"statuses\":[\"valid\",\"full\"]}}",
                         "status 1 is neither 'valid' nor 'invalid'");
        assert_malformed(EXTERNAL_QUERY_SNAPSHOTS, "{\"parameters\":{\"statuses\":[\"valid\",7]}}",
                         "status 1 is neither");
        assert_malformed(EXTERNAL_QUERY_SNAPSHOTS, "{\"parameters\":{}}", "'statuses' is missing");

        for (int i = 0; i < 2; i++) {
                missing = json_tokener_parse(i == 0 ? "{\"error\":\"org.varlink.service.MethodNotFound\",\"parameters\":{}}"
                                                    : "{\"error\":\"org.varlink.service.MethodNotImplemented\"}");
                res = (ProviderResult) { .failed = SIZE_MAX };
                ck_assert_int_eq(external_reply_check(EXTERNAL_QUERY_SNAPSHOTS, missing, share, 2, &params, &res), S_OK);
                ck_assert_ptr_null(params);   /* no statuses: the caller asks with Query */
                json_object_put(missing);
                missing = NULL;
        }
        /* Only there: another method without an implementation is a broken provider. */
        assert_malformed(EXTERNAL_QUERY, "{\"error\":\"org.varlink.service.MethodNotFound\",\"parameters\":{}}",
                         "the error org.varlink.service.MethodNotFound");
}
END_TEST

/* ---------------------------------------------------------------- the interface */

START_TEST(test_every_method_called_is_in_the_embedded_interface) {
        const char *idl = external_interface_description();

        ck_assert_ptr_nonnull(strstr(idl, "interface " EXTERNAL_INTERFACE "\n"));
        ck_assert_ptr_nonnull(strstr(idl, "error Failed (hresult: int, message: string, snapshotId: ?string)"));
        for (ExternalMethod m = 0; m < _EXTERNAL_METHOD_MAX; m++) {
                char decl[64];

                snprintf(decl, sizeof decl, "\nmethod %s(", external_method_to_string(m));
                ck_assert_msg(strstr(idl, decl), "%s is not declared in io.snapset.Provider.varlink",
                              external_method_to_string(m));
        }
        ck_assert_ptr_null(external_method_to_string(_EXTERNAL_METHOD_MAX));
}
END_TEST

/* ---------------------------------------------------------------- the coordinator's words */

static SetEvent last_event;
static void record_event(const SetEvent *e, void *userdata) {
        last_event = *e;
}

START_TEST(test_a_crash_is_reported_as_what_happened_not_as_a_code) {
        ProviderResult res = { .failed = SIZE_MAX, .error = ESRCH };
        SetOutcome out = {};

        snprintf(res.message, sizeof res.message, "crashed (killed by signal 11, Segmentation fault)");
        ck_assert_int_eq(coordinator_check_code("acme", "CommitSnapshots", VSS_E_UNEXPECTED_PROVIDER_ERROR, &res,
                                                NULL, record_event, NULL, &out), VSS_E_UNEXPECTED_PROVIDER_ERROR);
        ck_assert_str_eq(last_event.message, "Provider 'acme' failed in CommitSnapshots: it crashed (killed by signal 11, "
                         "Segmentation fault); reporting VSS_E_UNEXPECTED_PROVIDER_ERROR.");
        ck_assert_str_eq(last_event.provider, "acme");
        ck_assert_str_eq(last_event.method, "CommitSnapshots");
        ck_assert_int_eq(out.code, VSS_E_UNEXPECTED_PROVIDER_ERROR);
        ck_assert_str_eq(out.method, "CommitSnapshots");

        /* An unknown HRESULT from a Failed reply: named by its value. */
        res = (ProviderResult) { .failed = SIZE_MAX, .hresult = 0x80049999 };
        snprintf(res.message, sizeof res.message, "boom");
        ck_assert_int_eq(coordinator_check_code("acme", "HoldWrites", _VSS_CODE_INVALID, &res, NULL, record_event,
                                                NULL, &out), VSS_E_UNEXPECTED_PROVIDER_ERROR);
        ck_assert_ptr_nonnull(strstr(last_event.message, "returned an unknown code (0x80049999) from HoldWrites"));
        ck_assert_uint_eq(last_event.hresult, 0x80049999);
}
END_TEST

Suite *suite_external(void);
Suite *suite_external(void) {
        Suite *s = suite_create("external");
        TCase *tc = tcase_create("files");

        tcase_add_test(tc, test_a_complete_provider_file_is_parsed);
        tcase_add_test(tc, test_timeout_defaults_to_thirty_seconds);
        tcase_add_test(tc, test_every_bad_provider_file_names_file_line_and_key);
        tcase_add_test(tc, test_provider_names);
        tcase_add_test(tc, test_provider_directory_is_a_list_of_absolute_paths);
        suite_add_tcase(s, tc);

        tc = tcase_create("replies");
        tcase_add_test(tc, test_replies_that_follow_the_interface_pass);
        tcase_add_test(tc, test_failed_maps_the_hresult_and_keeps_the_raw_value);
        tcase_add_test(tc, test_everything_else_is_a_malformed_reply);
        tcase_add_test(tc, test_query_snapshots_replies);
        tcase_add_test(tc, test_every_method_called_is_in_the_embedded_interface);
        tcase_add_test(tc, test_a_crash_is_reported_as_what_happened_not_as_a_code);
        suite_add_tcase(s, tc);
        return s;
}
