/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The coordinator's state machine with two scripted fake providers: the order of every phase,
 * a failure injected at every phase on either provider (everything undone, in reverse, by every
 * provider), codes a provider may not return (translated, with an event naming provider and
 * method), nothing emitted while the window is open, the hold timeout, and crash recovery from
 * the in-flight record. The freeze module runs for real on an empty mount table. */

#include <check.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <syslog.h>

#include "coordinator.h"
#include "inflight.h"
#include "log.h"
#include "set-events.h"

/* ---------------------------------------------------------------- the fakes */

enum { M_BEGIN, M_END, M_PRE, M_HOLD, M_COMMIT, M_RELEASE, M_POST, M_ABORT, M_RECOVER, _M_MAX };
static const char *const method_names[_M_MAX] = {
        "begin", "end", "pre", "hold", "commit", "release", "post", "abort", "recover",
};

static char calls[4096];                 /* "A.begin B.begin A.end ..." */
static VssCode script[2][_M_MAX];        /* what each fake returns from each method */
static const char *veto_message[2];
static unsigned hold_sleep_usec;
static bool window_violation;            /* a method inside the window saw the log not held */
static bool last_release_committed;

static void record(int which, int m) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s%c.%s", calls[0] ? " " : "", "AB"[which], method_names[m]);
        strncat(calls, buf, sizeof calls - strlen(calls) - 1);
}

static VssCode answer(int which, int m, ProviderResult *res) {
        record(which, m);
        if (script[which][m] != S_OK) {
                res->failed = 0;
                res->error = EIO;
                if (veto_message[which])
                        snprintf(res->message, sizeof res->message, "%s", veto_message[which]);
        }
        return script[which][m];
}

/* Whether the in-flight record named each snapshot when its provider's begin was called. */
static bool record_before_begin = true;
static bool inflight_names(const char *id);

static void check_inside_window(void) {
        if (!log_is_held() || !set_events_held())
                window_violation = true;
}

#define FAKE_OPS(which)                                                                                  \
        static VssCode begin_##which(ProviderSet *ps, ProviderSnapshot *s, ProviderResult *r) {          \
                if (!inflight_names(s->snapshot->id))                                                    \
                        record_before_begin = false;                                                     \
                return answer(which, M_BEGIN, r);                                                        \
        }                                                                                                \
        static VssCode end_##which(ProviderSet *ps, ProviderResult *r) { return answer(which, M_END, r); } \
        static VssCode pre_##which(ProviderSet *ps, ProviderResult *r) { return answer(which, M_PRE, r); } \
        static VssCode hold_##which(ProviderSet *ps, ProviderResult *r) {                                \
                check_inside_window();                                                                   \
                if (hold_sleep_usec)                                                                     \
                        usleep(hold_sleep_usec);                                                         \
                return answer(which, M_HOLD, r);                                                         \
        }                                                                                                \
        static VssCode commit_##which(ProviderSet *ps, ProviderResult *r) {                              \
                check_inside_window();                                                                   \
                return answer(which, M_COMMIT, r);                                                       \
        }                                                                                                \
        static VssCode release_##which(ProviderSet *ps, bool committed, ProviderResult *r) {             \
                check_inside_window();                                                                   \
                last_release_committed = committed;                                                      \
                return answer(which, M_RELEASE, r);                                                      \
        }                                                                                                \
        static VssCode post_##which(ProviderSet *ps, ProviderResult *r) { return answer(which, M_POST, r); } \
        static VssCode abort_##which(ProviderSet *ps, ProviderResult *r) { return answer(which, M_ABORT, r); } \
        static VssCode recover_##which(Snapshot *s, const ProviderSettings *st, ProviderResult *r) {     \
                return answer(which, M_RECOVER, r);                                                      \
        }                                                                                                \
        static const ProviderOps ops_##which = {                                                         \
                .begin_prepare_snapshot = begin_##which, .end_prepare_snapshots = end_##which,           \
                .pre_commit_snapshots = pre_##which, .hold_writes = hold_##which,                        \
                .commit_snapshots = commit_##which, .release_writes = release_##which,                   \
                .post_commit_snapshots = post_##which, .abort_snapshots = abort_##which,                 \
                .recover = recover_##which,                                                              \
        };

FAKE_OPS(0)
FAKE_OPS(1)

static const Provider fake_a = { .name = "fake-a", .kind = "builtin", .priority = 1, .ops = &ops_0 };
static const Provider fake_b = { .name = "fake-b", .kind = "builtin", .priority = 2, .ops = &ops_1 };

/* What the sink received, and whether anything arrived while the window was open. */
static SetEvent events[64];
static size_t n_events;
static bool event_inside_window;

static void sink(const SetEvent *e, void *userdata) {
        if (set_events_held() || log_is_held())
                event_inside_window = true;
        if (n_events < ELEMENTSOF(events))
                events[n_events++] = *e;
}

static bool some_event_contains(const char *a, const char *b) {
        for (size_t i = 0; i < n_events; i++)
                if (strstr(events[i].message, a) && (!b || strstr(events[i].message, b)))
                        return true;
        return false;
}

/* ---------------------------------------------------------------- fixtures */

static char tmp[] = "/tmp/snapset-coord-XXXXXX";
static char mountinfo[300], inflight_dir[300];
static ProviderSettings settings;
static CoordinatorOptions options;

static void setup(void) {
        FILE *f;

        ck_assert_ptr_nonnull(mkdtemp(strcpy(tmp, "/tmp/snapset-coord-XXXXXX")));
        snprintf(mountinfo, sizeof mountinfo, "%s/mountinfo", tmp);
        snprintf(inflight_dir, sizeof inflight_dir, "%s/inflight", tmp);
        f = fopen(mountinfo, "we");   /* nothing mounted: the freeze set is empty */
        fclose(f);

        calls[0] = 0;
        memset(script, 0, sizeof script);
        veto_message[0] = veto_message[1] = "how to resolve: nothing, this is a test";
        hold_sleep_usec = 0;
        window_violation = event_inside_window = false;
        n_events = 0;
        settings = (ProviderSettings) { .cow_directory = tmp };
        options = (CoordinatorOptions) {
                .flush_timeout_usec = 5 * USEC_PER_SEC,
                .hold_timeout_usec = 5 * USEC_PER_SEC,
                .settings = &settings,
                .mountinfo_path = mountinfo,
                .inflight_directory = inflight_dir,
                .sink = sink,
                .hooks = { .fail_phase = _SET_PHASE_INVALID, .kill_phase = _SET_PHASE_INVALID },
        };
        ck_assert_int_eq(provider_register(&fake_a), 0);
        ck_assert_int_eq(provider_register(&fake_b), 0);
}

static void teardown(void) {
        char cmd[300];

        provider_unregister(&fake_a);
        provider_unregister(&fake_b);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        ck_assert_int_eq(system(cmd), 0);
}

static BlockDevice volume(unsigned minor) {
        static char names[8][16], paths[8][32];

        snprintf(names[minor], sizeof names[minor], "dm-%u", minor);
        snprintf(paths[minor], sizeof paths[minor], "/dev/mapper/v%u", minor);
        return (BlockDevice) {
                .name = names[minor], .path = paths[minor], .major = 250, .minor = minor,
                .type = BLOCK_DEVICE_DM, .size_bytes = 1 << 30,
        };
}

/* A set of three volumes: v0 and v2 on fake-a, v1 on fake-b. */
static SetCreation *three_volume_set(void) {
        SetCreation *c;
        SetOutcome out;
        BlockDevice v0 = volume(0), v1 = volume(1), v2 = volume(2);

        ck_assert_int_eq(set_creation_new(SET_CONTEXT_PERSISTENT, &options, &c), 0);
        ck_assert_int_eq(set_creation_add(c, "/dev/mapper/v0", &v0, &fake_a, 0, NULL, &out), S_OK);
        ck_assert_int_eq(set_creation_add(c, "/dev/mapper/v1", &v1, &fake_b, 0, NULL, &out), S_OK);
        ck_assert_int_eq(set_creation_add(c, "/srv/v2", &v2, &fake_a, 4096, NULL, &out), S_OK);
        return c;
}

static size_t count_files(const char *dir) {
        char cmd[400], buf[32];
        FILE *p;

        snprintf(cmd, sizeof cmd, "ls -A '%s' 2>/dev/null | wc -l", dir);
        p = popen(cmd, "r");
        ck_assert_ptr_nonnull(fgets(buf, sizeof buf, p));
        pclose(p);
        return (size_t) atoi(buf);
}

/* Some record in inflight_dir names id. */
static bool inflight_names(const char *id) {
        char cmd[400];

        snprintf(cmd, sizeof cmd, "grep -qs '%s' '%s'/*.json", id, inflight_dir);
        return system(cmd) == 0;
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_a_successful_set_runs_every_phase_in_order_across_providers) {
        _cleanup_(set_creation_freep) SetCreation *c = three_volume_set();
        SetOutcome out = {};
        const SnapshotSet *s;

        ck_assert_int_eq(set_creation_do(c, &out), S_OK);
        ck_assert_str_eq(calls, "A.begin B.begin A.begin A.end B.end A.pre B.pre A.hold B.hold "
                                "A.commit B.commit B.release A.release A.post B.post");
        ck_assert(last_release_committed);
        s = set_creation_set(c);
        ck_assert_int_eq(s->state, SET_STATE_CREATED);
        ck_assert_uint_eq(s->n_snapshots, 3);
        ck_assert_uint_eq(s->snapshots[2]->cow_size, 4096);
        ck_assert_str_eq(s->snapshots[1]->provider, "fake-b");
        ck_assert_int_ge(s->freeze_window_usec, s->hold_usec);
        ck_assert(!window_violation);
        ck_assert(!event_inside_window);
        ck_assert(some_event_contains("created", "3 volume(s)"));
        /* The record stays until the set is in the state directory (sets_add() removes it). */
        ck_assert_uint_eq(count_files(inflight_dir), 1);
        ck_assert_int_eq(set_creation_phase(c), SET_PHASE_DONE);
}
END_TEST

/* A failure in method m of provider which: the set fails with that code, every provider that
 * began aborts, in reverse, and holds are released uncommitted. */
static void check_failure_undoes_everything(int which, int m, const char *expected_tail) {
        _cleanup_(set_creation_freep) SetCreation *c = three_volume_set();
        SetOutcome out = {};

        script[which][m] = VSS_E_PROVIDER_VETO;
        calls[0] = 0;
        ck_assert_int_eq(set_creation_do(c, &out), VSS_E_PROVIDER_VETO);
        ck_assert_msg(strstr(calls, expected_tail), "calls: %s\nexpected to end with: %s", calls, expected_tail);
        ck_assert_str_eq(calls + strlen(calls) - strlen(expected_tail), expected_tail);
        ck_assert_int_eq(set_creation_set(c)->state, SET_STATE_ABORTED);
        ck_assert_str_eq(out.provider, which ? "fake-b" : "fake-a");
        ck_assert_str_eq(out.message, "how to resolve: nothing, this is a test");
        ck_assert(!event_inside_window);
        ck_assert_uint_eq(count_files(inflight_dir), 0);
        ck_assert(some_event_contains("failed", "how to resolve"));
}

START_TEST(test_end_prepare_failure_aborts_every_provider) {
        check_failure_undoes_everything(1, M_END, "A.end B.end B.abort A.abort");
}
END_TEST

START_TEST(test_pre_commit_failure_aborts_every_provider) {
        check_failure_undoes_everything(0, M_PRE, "A.pre B.abort A.abort");
}
END_TEST

START_TEST(test_hold_failure_on_the_second_provider_releases_the_first_uncommitted) {
        check_failure_undoes_everything(1, M_HOLD, "A.hold B.hold B.release A.release B.abort A.abort");
        ck_assert(!last_release_committed);
}
END_TEST

START_TEST(test_commit_failure_on_the_first_provider_undoes_both) {
        check_failure_undoes_everything(0, M_COMMIT, "A.hold B.hold A.commit B.release A.release B.abort A.abort");
        ck_assert(!last_release_committed);
}
END_TEST

START_TEST(test_commit_failure_on_the_last_provider_undoes_the_committed_first) {
        check_failure_undoes_everything(1, M_COMMIT, "A.commit B.commit B.release A.release B.abort A.abort");
        ck_assert(!last_release_committed);
}
END_TEST

START_TEST(test_post_commit_failure_removes_snapshots_already_made) {
        check_failure_undoes_everything(0, M_POST, "A.release A.post B.abort A.abort");
        ck_assert(last_release_committed);
}
END_TEST

START_TEST(test_codes_a_provider_may_not_return_become_unexpected_provider_error) {
        static const VssCode bad[] = { S_FALSE, E_FAIL, E_UNEXPECTED, E_ABORT, VSS_E_UNEXPECTED,
                                       VSS_E_SNAPSHOT_SET_IN_PROGRESS, (VssCode) 999 };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(set_creation_freep) SetCreation *c = three_volume_set();
                SetOutcome out = {};

                memset(script, 0, sizeof script);
                script[1][M_COMMIT] = bad[i];
                n_events = 0;
                ck_assert_int_eq(set_creation_do(c, &out), VSS_E_UNEXPECTED_PROVIDER_ERROR);
                ck_assert_str_eq(out.provider, "fake-b");
                ck_assert_str_eq(out.method, "CommitSnapshots");
                ck_assert_msg(some_event_contains("fake-b", "CommitSnapshots"), "no translation event for code %d", bad[i]);
                ck_assert(some_event_contains("may not return", vss_code_name(bad[i]) ?: "an unknown code"));
                ck_assert(!event_inside_window);
        }
}
END_TEST

START_TEST(test_a_veto_without_an_explanation_is_logged_as_such) {
        _cleanup_(set_creation_freep) SetCreation *c = three_volume_set();
        SetOutcome out = {};

        veto_message[0] = NULL;
        script[0][M_PRE] = VSS_E_PROVIDER_VETO;
        ck_assert_int_eq(set_creation_do(c, &out), VSS_E_PROVIDER_VETO);
        ck_assert(some_event_contains("gave no explanation", NULL));
}
END_TEST

START_TEST(test_valid_failure_codes_pass_through_unchanged) {
        _cleanup_(set_creation_freep) SetCreation *c = three_volume_set();
        SetOutcome out = {};

        script[0][M_END] = VSS_E_INSUFFICIENT_STORAGE;
        ck_assert_int_eq(set_creation_do(c, &out), VSS_E_INSUFFICIENT_STORAGE);
        ck_assert_str_eq(out.volume, "/dev/mapper/v0");
}
END_TEST

START_TEST(test_an_abort_that_fails_does_not_change_the_outcome) {
        _cleanup_(set_creation_freep) SetCreation *c = three_volume_set();
        SetOutcome out = {};

        script[1][M_COMMIT] = VSS_E_PROVIDER_VETO;
        script[0][M_ABORT] = E_FAIL;
        script[1][M_ABORT] = (VssCode) 999;
        ck_assert_int_eq(set_creation_do(c, &out), VSS_E_PROVIDER_VETO);
        ck_assert_str_eq(out.provider, "fake-b");
        ck_assert(!some_event_contains("may not return", NULL));
        ck_assert(some_event_contains("could not undo everything", NULL));
}
END_TEST

START_TEST(test_a_failed_add_undoes_only_that_volume_and_the_set_goes_on) {
        _cleanup_(set_creation_freep) SetCreation *c = NULL;
        BlockDevice v0 = volume(0), v1 = volume(1);
        SetOutcome out = {};

        ck_assert_int_eq(set_creation_new(SET_CONTEXT_BACKUP, &options, &c), 0);
        ck_assert_int_eq(set_creation_add(c, "/dev/mapper/v0", &v0, &fake_a, 0, NULL, &out), S_OK);
        script[1][M_BEGIN] = VSS_E_INSUFFICIENT_STORAGE;
        ck_assert_int_eq(set_creation_add(c, "/dev/mapper/v1", &v1, &fake_b, 0, NULL, &out), VSS_E_INSUFFICIENT_STORAGE);
        ck_assert_str_eq(out.volume, "/dev/mapper/v1");
        ck_assert_uint_eq(set_creation_n_volumes(c), 1);
        ck_assert_str_eq(calls, "A.begin B.begin B.abort");
        calls[0] = 0;
        ck_assert_int_eq(set_creation_do(c, &out), S_OK);
        ck_assert_str_eq(calls, "A.end A.pre A.hold A.commit A.release A.post");
}
END_TEST

START_TEST(test_do_without_volumes_and_add_after_do_are_refused) {
        _cleanup_(set_creation_freep) SetCreation *c = NULL;
        BlockDevice v0 = volume(0);
        SetOutcome out = {};

        ck_assert_int_eq(set_creation_new(SET_CONTEXT_BACKUP, &options, &c), 0);
        ck_assert_int_eq(set_creation_do(c, &out), E_INVALIDARG);
        ck_assert_int_eq(set_creation_add(c, "/dev/mapper/v0", &v0, &fake_a, 0, NULL, &out), S_OK);
        ck_assert_int_eq(set_creation_do(c, &out), S_OK);
        ck_assert_int_eq(set_creation_add(c, "/dev/mapper/v0", &v0, &fake_a, 0, NULL, &out), VSS_E_BAD_STATE);
        ck_assert_int_eq(set_creation_do(c, &out), VSS_E_BAD_STATE);
}
END_TEST

START_TEST(test_holding_too_long_is_hold_writes_timeout_and_undone) {
        _cleanup_(set_creation_freep) SetCreation *c = three_volume_set();
        SetOutcome out = {};

        options.hold_timeout_usec = 20 * USEC_PER_MSEC;
        set_creation_free(TAKE_PTR(c));
        c = three_volume_set();
        hold_sleep_usec = 30 * 1000;
        calls[0] = 0;
        ck_assert_int_eq(set_creation_do(c, &out), VSS_E_HOLD_WRITES_TIMEOUT);
        ck_assert_str_eq(calls, "A.end B.end A.pre B.pre A.hold B.hold B.release A.release B.abort A.abort");
        ck_assert(!last_release_committed);
}
END_TEST

START_TEST(test_the_test_hook_fails_the_phase_of_the_named_volume) {
        _cleanup_(set_creation_freep) SetCreation *c = NULL;
        SetOutcome out = {};

        options.hooks.fail_phase = SET_PHASE_COMMITTING;
        options.hooks.fail_index = 1;   /* v1: fake-b */
        c = three_volume_set();
        calls[0] = 0;
        ck_assert_int_eq(set_creation_do(c, &out), VSS_E_PROVIDER_VETO);
        ck_assert_str_eq(out.volume, "/dev/mapper/v1");
        ck_assert_str_eq(calls, "A.end B.end A.pre B.pre A.hold B.hold A.commit B.release A.release B.abort A.abort");
}
END_TEST

START_TEST(test_every_snapshot_is_recorded_before_its_provider_begins) {
        _cleanup_(set_creation_freep) SetCreation *c = NULL;

        record_before_begin = true;
        c = three_volume_set();
        ck_assert(record_before_begin);
}
END_TEST

/* A failed AddToSnapshotSet whose provider cannot undo it either: the set goes on without the
 * volume, and the snapshot keeps a record of its own for Cleanup, naming why. */
START_TEST(test_a_failed_add_that_cannot_be_undone_keeps_a_record_of_its_own) {
        _cleanup_(set_creation_freep) SetCreation *c = three_volume_set();
        BlockDevice v3 = volume(3);
        InflightEntry *e = NULL;
        Snapshot *snap = NULL;
        SetOutcome out = {};
        size_t n = 0;

        script[1][M_BEGIN] = VSS_E_PROVIDER_VETO;
        script[1][M_ABORT] = VSS_E_PROVIDER_VETO;
        veto_message[1] = "device busy";
        ck_assert_int_eq(set_creation_add(c, "/dev/mapper/v3", &v3, &fake_b, 0, &snap, &out), VSS_E_PROVIDER_VETO);
        ck_assert_uint_eq(set_creation_set(c)->n_snapshots, 3);
        ck_assert_uint_eq(count_files(inflight_dir), 2);
        ck_assert_int_eq(inflight_list(inflight_dir, set_creation_set(c)->id, &e, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(e[0].set_id, set_creation_set(c)->id);
        ck_assert_msg(strstr(e[0].attention, "/dev/mapper/v3") && strstr(e[0].attention, "device busy"),
                      "%s", e[0].attention);
        inflight_entries_free(e, n);
        ck_assert(some_event_contains("could not undo", "snapsetctl cleanup"));

        /* Cleanup: its provider recovers the one snapshot, and the record goes; the set's own
         * record (in creation) is left alone. */
        script[1][M_BEGIN] = script[1][M_ABORT] = S_OK;
        calls[0] = 0;
        ck_assert_int_eq(inflight_recover(inflight_dir, set_creation_set(c)->id, &settings, sink, NULL, NULL), 1);
        ck_assert_str_eq(calls, "B.recover");
        ck_assert_uint_eq(count_files(inflight_dir), 1);
}
END_TEST

START_TEST(test_an_abort_before_do_aborts_what_was_prepared) {
        _cleanup_(set_creation_freep) SetCreation *c = three_volume_set();

        calls[0] = 0;
        ck_assert_uint_eq(count_files(inflight_dir), 1);
        set_creation_abort(c);
        ck_assert_str_eq(calls, "B.abort A.abort");
        ck_assert_int_eq(set_creation_set(c)->state, SET_STATE_ABORTED);
        ck_assert_uint_eq(count_files(inflight_dir), 0);
        set_creation_abort(c);   /* twice is harmless */
        ck_assert_str_eq(calls, "B.abort A.abort");
}
END_TEST

START_TEST(test_recovery_lets_every_recorded_snapshot_recover_and_removes_the_record) {
        _cleanup_(set_creation_freep) SetCreation *c = three_volume_set();

        /* The daemon "dies" with the record in place. */
        ck_assert_uint_eq(count_files(inflight_dir), 1);
        calls[0] = 0;
        ck_assert_int_eq(inflight_recover(inflight_dir, NULL, &settings, sink, NULL, NULL), 1);
        ck_assert_str_eq(calls, "A.recover B.recover A.recover");
        ck_assert_uint_eq(count_files(inflight_dir), 0);
        ck_assert(some_event_contains("interrupted", "undone"));
        ck_assert_int_eq(inflight_recover(inflight_dir, NULL, &settings, sink, NULL, NULL), 0);
}
END_TEST

/* A failed abort keeps the record, marked with why; recovery that fails keeps it too; the set in
 * creation is never taken for a leftover; once recovery succeeds the record goes. */
START_TEST(test_a_failed_abort_keeps_its_record_until_recovery_succeeds) {
        _cleanup_(set_creation_freep) SetCreation *c = three_volume_set(), *other = NULL;
        InflightEntry *e = NULL;
        size_t n = 0;
        unsigned kept = 0;

        script[1][M_ABORT] = VSS_E_PROVIDER_VETO;
        veto_message[1] = "the snapshot device is held open by pid 42";
        set_creation_abort(c);
        ck_assert(set_creation_needs_cleanup(c));
        ck_assert_uint_eq(count_files(inflight_dir), 1);
        ck_assert(some_event_contains("not fully undone", "snapsetctl cleanup"));
        ck_assert_int_eq(inflight_list(inflight_dir, NULL, &e, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(e[0].set_id, set_creation_set(c)->id);
        ck_assert_msg(strstr(e[0].attention, "held open by pid 42"), "%s", e[0].attention);
        inflight_entries_free(e, n);

        /* Another set in creation: Cleanup passes over its record. */
        other = three_volume_set();
        ck_assert_uint_eq(count_files(inflight_dir), 2);
        script[1][M_RECOVER] = VSS_E_PROVIDER_VETO;
        calls[0] = 0;
        ck_assert_int_eq(inflight_recover(inflight_dir, set_creation_set(other)->id, &settings, sink, NULL, &kept), 1);
        ck_assert_uint_eq(kept, 1);
        ck_assert_str_eq(calls, "A.recover B.recover A.recover");
        ck_assert_uint_eq(count_files(inflight_dir), 2);

        script[1][M_RECOVER] = S_OK;
        ck_assert_int_eq(inflight_recover(inflight_dir, set_creation_set(other)->id, &settings, sink, NULL, &kept), 1);
        ck_assert_uint_eq(kept, 0);
        ck_assert_uint_eq(count_files(inflight_dir), 1);
        ck_assert_int_eq(inflight_list(inflight_dir, set_creation_set(other)->id, &e, &n), 0);
        ck_assert_uint_eq(n, 0);
        inflight_entries_free(e, n);
        script[1][M_ABORT] = S_OK;
        set_creation_abort(other);
        ck_assert_uint_eq(count_files(inflight_dir), 0);
}
END_TEST

Suite *suite_coordinator(void) {
        Suite *s = suite_create("coordinator");
        TCase *tc = tcase_create("phases");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_a_successful_set_runs_every_phase_in_order_across_providers);
        tcase_add_test(tc, test_end_prepare_failure_aborts_every_provider);
        tcase_add_test(tc, test_pre_commit_failure_aborts_every_provider);
        tcase_add_test(tc, test_hold_failure_on_the_second_provider_releases_the_first_uncommitted);
        tcase_add_test(tc, test_commit_failure_on_the_first_provider_undoes_both);
        tcase_add_test(tc, test_commit_failure_on_the_last_provider_undoes_the_committed_first);
        tcase_add_test(tc, test_post_commit_failure_removes_snapshots_already_made);
        tcase_add_test(tc, test_codes_a_provider_may_not_return_become_unexpected_provider_error);
        tcase_add_test(tc, test_a_veto_without_an_explanation_is_logged_as_such);
        tcase_add_test(tc, test_valid_failure_codes_pass_through_unchanged);
        tcase_add_test(tc, test_an_abort_that_fails_does_not_change_the_outcome);
        tcase_add_test(tc, test_a_failed_add_undoes_only_that_volume_and_the_set_goes_on);
        tcase_add_test(tc, test_do_without_volumes_and_add_after_do_are_refused);
        tcase_add_test(tc, test_holding_too_long_is_hold_writes_timeout_and_undone);
        tcase_add_test(tc, test_the_test_hook_fails_the_phase_of_the_named_volume);
        tcase_add_test(tc, test_every_snapshot_is_recorded_before_its_provider_begins);
        tcase_add_test(tc, test_a_failed_add_that_cannot_be_undone_keeps_a_record_of_its_own);
        tcase_add_test(tc, test_an_abort_before_do_aborts_what_was_prepared);
        tcase_add_test(tc, test_recovery_lets_every_recorded_snapshot_recover_and_removes_the_record);
        tcase_add_test(tc, test_a_failed_abort_keeps_its_record_until_recovery_succeeds);
        suite_add_tcase(s, tc);
        return s;
}
