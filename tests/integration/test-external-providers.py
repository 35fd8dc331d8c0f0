#!/usr/bin/python3
"""External providers against the real daemon, with the scriptable test provider
(tests/provider/snapset-test-provider, installed by tests/integration/run as provider 'test',
Priority=50, Timeout=1, taking nothing until its control file says so) on loop devices.

For every provider method the coordinator calls, and every outcome a provider can produce (each
valid code, S_FALSE, E_FAIL, E_UNEXPECTED, E_ABORT, an unknown HRESULT, a crash, a hang past the
timeout, a reply that is not JSON): the caller gets the code itself or
VSS_E_UNEXPECTED_PROVIDER_ERROR; the daemon's log (tests/integration/run writes it to
$SNAPSET_TEST_DIR/snapsetd.log; there is no journald on the host, so events fall back to it) has
the event naming provider and method, or for AbortSnapshots no translation at all; and the set is
rolled back: the provider was asked to abort every snapshot it prepared, and no set exists."""

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from snapsettest import BUILDDIR, MANAGER, TOP, Connection, call, main, snapsetctl

TEST_DIR = os.environ.get("SNAPSET_TEST_DIR", "")
PROVIDER_FILE = os.path.join(TEST_DIR, "providers.d", "test.provider")
CONTROL = os.path.join(TEST_DIR, "test-provider", "control.json")
STATE = os.path.join(TEST_DIR, "test-provider", "state.jsonl")
LOG = os.path.join(TEST_DIR, "snapsetd.log")
SNAPSETD = os.path.join(TOP, BUILDDIR, "snapsetd") if not os.path.isabs(BUILDDIR) \
    else os.path.join(BUILDDIR, "snapsetd")
TEST_PROVIDER = os.path.join(TOP, "tests", "provider", "snapset-test-provider")

VALID = {
    "E_OUTOFMEMORY": 0x8007000E,
    "E_INVALIDARG": 0x80070057,
    "E_ACCESSDENIED": 0x80070005,
    "VSS_E_BAD_STATE": 0x80042301,
    "VSS_E_OBJECT_NOT_FOUND": 0x80042308,
    "VSS_E_INSUFFICIENT_STORAGE": 0x8004231F,
    "VSS_E_VOLUME_NOT_SUPPORTED": 0x8004230C,
    "VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER": 0x8004230E,
    "VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED": 0x80042317,
    "VSS_E_PROVIDER_VETO": 0x80042306,
    "VSS_E_CANNOT_REVERT_DISKID": 0x800423FE,
}
INVALID = {
    "S_FALSE": 0x00000001,
    "E_FAIL": 0x80004005,
    "E_UNEXPECTED": 0x8000FFFF,
    "E_ABORT": 0x80004004,
    None: 0x80049999,          # an HRESULT nobody knows
}
FAILURES = {"crash": "crashed (killed by signal 11", "hang": "did not answer within 1 s",
            "notjson": "sent a malformed reply: not a JSON object"}
UNEXPECTED = 0x8004230F

# The methods the coordinator calls while creating a set, in order.
SET_METHODS = ["BeginPrepareSnapshot", "EndPrepareSnapshots", "PreCommitSnapshots", "HoldWrites",
               "CommitSnapshots", "ReleaseWrites", "PostCommitSnapshots"]


def error_name(r):
    return r.get("error", "").rsplit(".", 1)[-1]


def write_control(ctl):
    with open(CONTROL + ".tmp", "w") as f:
        json.dump(ctl, f)
    os.rename(CONTROL + ".tmp", CONTROL)


def read_state():
    try:
        with open(STATE) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def log_size():
    return os.stat(LOG).st_size


def log_since(offset):
    with open(LOG, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def make_loop(name, size=32 << 20):
    img = os.path.join(TEST_DIR, name)
    with open(img, "wb") as f:
        f.truncate(size)
    return subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True,
                          check=True).stdout.strip()


def provider_state():
    provs = call("ListProviders")["parameters"]["providers"]
    return [p for p in provs if p["name"] == "test"][0]


def revive():
    """A provider that failed EXTERNAL_MAX_FAILURES times in a row is unloaded until a reload
    (SIGHUP). Tests that make it fail on purpose call this to start from a loaded provider."""
    if provider_state()["state"] != "unloaded":
        return
    os.kill(int(os.environ["SNAPSETD_PID"]), signal.SIGHUP)
    for _ in range(100):
        if provider_state()["state"] == "loaded":
            return
        time.sleep(0.05)
    raise AssertionError("the test provider did not come back after SIGHUP")


def no_sets_left(test):
    with Connection() as c:
        r = c.call("ListSnapshotSets", more=True)
        test.assertNotIn("set", r.get("parameters", {}), r)
    test.assertIsNone(call("GetStatus")["parameters"]["setInProgress"])


@unittest.skipUnless(os.path.exists(PROVIDER_FILE), "tests/integration/run installs the test provider")
class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.loop = make_loop("external-%s.img" % cls.__name__)
        cls.loop2 = make_loop("external-%s-2.img" % cls.__name__)

    @classmethod
    def tearDownClass(cls):
        write_control({})
        for loop in (cls.loop, cls.loop2):
            subprocess.run(["losetup", "-d", loop])

    def setUp(self):
        write_control({})
        revive()
        open(STATE, "w").close()
        self.offset = log_size()

    def control(self, methods=None, volumes=None, **extra):
        ctl = {"volumes": [self.loop, self.loop2] if volumes is None else volumes,
               "methods": methods or {}, "logFile": LOG}
        ctl.update(extra)
        write_control(ctl)

    def create(self, *volumes, **extra):
        vols = [{"volume": v, "provider": "test"} for v in (volumes or (self.loop, self.loop2))]
        p = {"volumes": vols, "context": "persistent"}
        p.update(extra)
        with Connection(timeout=30) as c:
            return c.call("CreateSnapshotSet", p)

    def assert_rolled_back(self):
        state = read_state()
        prepared = {e["snapshotId"] for e in state if e["method"] == "BeginPrepareSnapshot"}
        aborted = set()
        for e in state:
            if e["method"] == "AbortSnapshots":
                aborted.update(e["snapshots"])
        self.assertTrue(prepared, state)
        self.assertLessEqual(prepared, aborted, "prepared but never aborted: %s" % (prepared - aborted))
        no_sets_left(self)

    def delete_all(self):
        with Connection() as c:
            r = c.call("ListSnapshotSets", more=True)
            ids = []
            while r and "set" in r.get("parameters", {}):
                ids.append(r["parameters"]["set"]["id"])
                if not r.get("continues"):
                    break
                r = c.recv()
        for i in ids:
            self.assertNotIn("error", call("DeleteSnapshots", {"setId": i}))


class Matrix(Base):
    """Every set method × every outcome."""

    def run_case(self, method, rule, expect_code, expect_event):
        self.setUp()
        # A second volume, so that "everything" is more than the volume that failed.
        self.control({method: rule})
        r = self.create()
        self.assertIn("error", r, "%s %s: no failure: %s" % (method, rule, r))
        self.assertEqual(r["parameters"]["hresult"], expect_code, "%s %s: %s" % (method, rule, r))
        self.assertEqual(r["parameters"].get("provider"), "test", r)
        log = log_since(self.offset)
        self.assertRegex(log, expect_event, "%s %s: event missing; log:\n%s" % (method, rule, log))
        self.assert_rolled_back()

    def test_valid_codes_reach_the_caller_as_they_are(self):
        for method in SET_METHODS:
            for name, hr in VALID.items():
                with self.subTest(method=method, code=name):
                    self.run_case(method, {"hresult": hr, "message": "told to fail with " + name},
                                  hr, r"Provider 'test' failed in %s with %s \(0x%08X\)" % (method, name, hr))

    def test_invalid_codes_become_unexpected_provider_error_with_the_original_logged(self):
        for method in SET_METHODS:
            for name, hr in INVALID.items():
                with self.subTest(method=method, code=name or hex(hr)):
                    what = name or "an unknown code"
                    self.run_case(method, {"hresult": hr}, UNEXPECTED,
                                  r"Provider 'test' returned %s \(0x%08X\) from %s, which a provider may not "
                                  r"return; reporting VSS_E_UNEXPECTED_PROVIDER_ERROR" % (what, hr, method))

    def test_crashes_hangs_and_garbage_become_unexpected_provider_error(self):
        for method in SET_METHODS:
            for action, said in FAILURES.items():
                with self.subTest(method=method, action=action):
                    self.run_case(method, {"action": action}, UNEXPECTED,
                                  r"Provider 'test' failed in %s: it %s.*reporting VSS_E_UNEXPECTED_PROVIDER_ERROR"
                                  % (method, re.escape(said)))

    def test_other_protocol_violations_are_malformed_replies(self):
        for action, said in {"unknownfield": "'bogus' is not in io.snapset.Provider",
                             "wrongtype": "'hresult' has the wrong type",
                             "baderror": "the error org.example.Oops",
                             "missingfield": "'message' is missing",
                             "tworeplies": "more than one message",
                             "exit": "exited with status 3",
                             "close": "closed its connection"}.items():
            with self.subTest(action=action):
                self.run_case("CommitSnapshots", {"action": action}, UNEXPECTED,
                              r"failed in CommitSnapshots: it .*%s" % re.escape(said))

    def test_abort_snapshots_is_never_translated_and_never_changes_the_outcome(self):
        veto = VALID["VSS_E_PROVIDER_VETO"]
        outcomes = [{"hresult": hr} for hr in list(VALID.values()) + list(INVALID.values())]
        outcomes += [{"action": a} for a in FAILURES]
        for rule in outcomes:
            with self.subTest(rule=rule):
                self.setUp()
                self.control({"PreCommitSnapshots": {"hresult": veto, "message": "renew the licence"},
                              "AbortSnapshots": rule})
                r = self.create()
                self.assertEqual(r["parameters"]["hresult"], veto, r)
                self.assertIn("renew the licence", r["parameters"]["message"])
                log = log_since(self.offset)
                self.assertNotRegex(log, r"(from|in) AbortSnapshots[:,].*reporting VSS_E_UNEXPECTED_PROVIDER_ERROR")
                self.assertIn("renew the licence", log)   # the veto's explanation is logged
                self.assert_rolled_back()

    def test_the_provider_still_works_after_all_that(self):
        self.control()
        r = self.create()
        self.assertNotIn("error", r, r)
        snaps = r["parameters"]["set"]["snapshots"]
        self.assertEqual(sorted(s["device"] for s in snaps), sorted([self.loop, self.loop2]))
        self.assertEqual({s["provider"] for s in snaps}, {"test"})
        self.delete_all()
        deleted = [e for e in read_state() if e["method"] == "DeleteSnapshot"]
        self.assertEqual(len(deleted), 2)


class Mounted(Base):
    """Base for tests that need a real filesystem on the first loop device (to be frozen)."""

    def setUp(self):
        super().setUp()
        self.mnt = tempfile.mkdtemp(dir=TEST_DIR)
        subprocess.run(["mkfs.ext4", "-q", "-F", self.loop], check=True)
        subprocess.run(["mount", self.loop, self.mnt], check=True)

    def tearDown(self):
        subprocess.run(["umount", self.mnt])
        os.rmdir(self.mnt)
        self.delete_all()


class Window(Mounted):
    """Messages a provider writes inside the freeze window reach the log after the thaw."""


    def test_a_message_logged_during_commit_is_written_after_the_thaw(self):
        marker = "frozen-marker-%d" % os.getpid()
        self.control({"CommitSnapshots": {"log": "<4>" + marker}})
        r = self.create(self.loop)
        self.assertNotIn("error", r, r)
        self.assertGreater(r["parameters"]["set"]["freezeWindowUsec"], 0)
        state = {e["method"]: e for e in read_state()}
        # The provider measured the log inside the window: at the hold and at the release (it had
        # written its line, and the daemon read it, in between). Nothing was written meanwhile.
        self.assertEqual(state["HoldWrites"]["logSize"], state["ReleaseWrites"]["logSize"], state)
        with open(LOG, "rb") as f:
            text = f.read().decode(errors="replace")
        at = text.find(marker, self.offset)
        self.assertGreaterEqual(at, state["ReleaseWrites"]["logSize"])
        line = text[text.rfind("\n", 0, at) + 1:text.find("\n", at)]
        self.assertIn("Provider 'test': " + marker, line)
        self.assertIn("queued while frozen", line)
        # ... and before the set was reported created, which happens after the thaw.
        self.assertLess(at, text.find("created", at))

    def test_a_message_logged_outside_the_window_is_logged_at_once(self):
        marker = "prepare-marker-%d" % os.getpid()
        self.control({"EndPrepareSnapshots": {"log": marker}})
        r = self.create(self.loop)
        self.assertNotIn("error", r, r)
        log = log_since(self.offset)
        self.assertIn("Provider 'test': " + marker, log)
        self.assertNotIn(marker + " (queued", log)


class Concurrency(Mounted):
    """The daemon keeps serving while a set is created: another client's GetStatus and
    ListSnapshots are answered at once with the phase the set is in, Monitor streams every phase,
    and calls that need the providers wait for the set instead of running beside it."""

    PHASES = ["adding", "preparing", "flushing", "holding", "committing", "releasing",
              "thawing", "finishing", "done"]


    def wait_for_call(self, method, deadline):
        while time.monotonic() < deadline:
            if any(e["method"] == method for e in read_state()):
                return
            time.sleep(0.02)
        self.fail("the provider was never called in %s: %s" % (method, read_state()))

    def status_now(self):
        t = time.monotonic()
        status = call("GetStatus")["parameters"]
        return status, time.monotonic() - t

    def test_status_lists_and_monitor_are_served_during_creation(self):
        # Each sleep is well under the provider's 1 s Timeout= and long enough for a GetStatus.
        self.control({"EndPrepareSnapshots": {"sleepMs": 700}, "CommitSnapshots": {"sleepMs": 700}})
        monitor = Connection(timeout=30)
        monitor.send({"method": MANAGER + ".Monitor", "more": True})
        time.sleep(0.2)   # subscribed before the set starts
        result = {}
        creator = threading.Thread(target=lambda: result.update(r=self.create(self.loop)))
        creator.start()
        deadline = time.monotonic() + 20

        self.wait_for_call("EndPrepareSnapshots", deadline)
        status, took = self.status_now()
        print("GetStatus while the provider prepares: %.1f ms" % (took * 1000))
        self.assertIsNotNone(status["setInProgress"], status)
        self.assertEqual(status["setInProgress"]["phase"], "preparing", status)
        self.assertEqual(status["setInProgress"]["volumes"], [self.loop])
        with Connection() as other:
            r = other.call("StartSnapshotSet")
            self.assertEqual(error_name(r), "SnapshotSetInProgress", r)
            self.assertIn("phase preparing", r["parameters"]["message"])

        self.wait_for_call("CommitSnapshots", deadline)
        status, took = self.status_now()
        print("GetStatus while the provider commits (filesystem frozen): %.1f ms" % (took * 1000))
        self.assertEqual(status["setInProgress"]["phase"], "committing", status)
        with Connection() as lister:
            r = lister.call("ListSnapshots", more=True)
            self.assertNotIn("error", r, r)
        # Needs the providers: answered once the set is done, not beside its window.
        with Connection(timeout=30) as waiter:
            waiter.send({"method": MANAGER + ".ListProviders"})
            r = waiter.recv()
            self.assertIn("providers", r["parameters"], r)
            self.assertIsNone(call("GetStatus")["parameters"]["setInProgress"],
                              "ListProviders was answered while the set was still being created")

        creator.join(30)
        self.assertNotIn("error", result["r"], result)
        set_id = result["r"]["parameters"]["set"]["id"]
        phases = []
        monitor.sock.settimeout(5)
        while phases[-1:] != ["done"]:
            e = monitor.recv()["parameters"]["event"]
            if e["type"] == "set-phase" and e.get("setId") == set_id:
                phases.append(e["phase"])
        monitor.close()
        self.assertEqual(phases, self.PHASES)


class Selection(Base):
    def add(self, volume, provider=None):
        with Connection() as c:
            set_id = c.call("StartSnapshotSet")["parameters"]["setId"]
            p = {"setId": set_id, "volume": volume}
            if provider:
                p["provider"] = provider
            r = c.call("AddToSnapshotSet", p)
            c.call("AbortSnapshotSet", {"setId": set_id})
            return r

    def test_listed_with_kind_executable_and_state(self):
        provs = call("ListProviders")["parameters"]["providers"]
        test = [p for p in provs if p["name"] == "test"][0]
        self.assertEqual(test["kind"], "external")
        self.assertEqual(test["executable"], os.path.realpath(TEST_PROVIDER))
        self.assertEqual(test["state"], "loaded")
        self.assertEqual(test["priority"], 50)
        self.assertEqual([p["priority"] for p in provs], sorted(p["priority"] for p in provs))

    def test_taken_automatically_when_it_supports_the_volume(self):
        self.control()
        r = self.add(self.loop)
        self.assertNotIn("error", r, r)
        self.assertIn(self.loop, [e.get("volume") for e in read_state() if e["method"] == "BeginPrepareSnapshot"])

    def test_no_provider_takes_it_automatically_is_volume_not_supported(self):
        self.control(volumes=[])
        r = self.add(self.loop)
        self.assertEqual(error_name(r), "VolumeNotSupported", r)

    def test_the_named_provider_refusing_is_not_supported_by_provider_with_its_reason(self):
        self.control(volumes=[], refuse={self.loop: "this array is read-only"})
        r = self.add(self.loop, "test")
        self.assertEqual(error_name(r), "VolumeNotSupportedByProvider", r)
        self.assertIn("this array is read-only", r["parameters"]["message"])
        r = self.add(self.loop)
        self.assertEqual(error_name(r), "VolumeNotSupported", r)
        self.assertIn("this array is read-only", r["parameters"]["message"])

    def test_a_provider_that_fails_in_is_volume_supported(self):
        for action in ("crash", "notjson"):
            with self.subTest(action=action):
                self.control({"IsVolumeSupported": {"action": action}})
                offset = log_size()
                r = self.add(self.loop, "test")
                self.assertEqual(error_name(r), "UnexpectedProviderError", r)
                self.assertIn("Provider 'test' failed in IsVolumeSupported", log_since(offset))
                r = self.add(self.loop)   # automatic: passed over
                self.assertEqual(error_name(r), "VolumeNotSupported", r)
                revive()

    def test_failing_three_times_in_a_row_unloads_it_until_a_reload(self):
        self.control({"IsVolumeSupported": {"action": "crash"}})
        for _ in range(3):
            self.add(self.loop, "test")
        state = provider_state()
        self.assertEqual(state["state"], "unloaded")
        self.assertFalse(state["usable"])
        self.assertIn("3 failures in a row", state["reason"])
        self.assertIn("failed 3 times in a row", log_since(self.offset))
        self.control()
        revive()
        self.assertNotIn("error", self.add(self.loop, "test"))


class OutsideCreation(Base):
    """DeleteSnapshots, and Query on listing, are validated like the set phases."""

    def test_delete_failures_are_translated_and_the_snapshot_stays(self):
        self.control()
        r = self.create(self.loop)
        self.assertNotIn("error", r, r)
        set_id = r["parameters"]["set"]["id"]
        for rule, code in (({"hresult": INVALID["E_FAIL"]}, UNEXPECTED), ({"action": "crash"}, UNEXPECTED),
                           ({"hresult": VALID["VSS_E_BAD_STATE"]}, VALID["VSS_E_BAD_STATE"])):
            with self.subTest(rule=rule):
                self.control({"DeleteSnapshot": rule})
                offset = log_size()
                r = call("DeleteSnapshots", {"setId": set_id})
                self.assertEqual(r["parameters"]["hresult"], code, r)
                self.assertRegex(log_since(offset), r"Provider 'test' (failed in|returned .* from) DeleteSnapshots")
        self.control()
        self.assertNotIn("error", call("DeleteSnapshots", {"setId": set_id}))
        no_sets_left(self)

    def list_snapshots(self, **params):
        out = []
        with Connection() as c:
            r = c.call("ListSnapshots", params, more=True)
            while True:
                self.assertNotIn("error", r, r)
                if "snapshot" in r.get("parameters", {}):
                    out.append(r["parameters"]["snapshot"])
                if not r.get("continues"):
                    return out
                r = c.recv()

    def test_a_query_failure_is_logged_and_the_listing_goes_on(self):
        self.control()
        r = self.create(self.loop)
        set_id = r["parameters"]["set"]["id"]
        snap_id = r["parameters"]["set"]["snapshots"][0]["id"]
        # Query is asked when the provider has no QuerySnapshots.
        for method, rules in (("QuerySnapshots", {"QuerySnapshots": {"action": "notjson"}}),
                              ("Query", {"QuerySnapshots": {"action": "missing"}, "Query": {"action": "notjson"}})):
            with self.subTest(method=method):
                self.control(rules)
                offset = log_size()
                self.assertEqual(len(self.list_snapshots(setId=set_id)), 1)
                r = call("GetSnapshot", {"snapshotId": snap_id})
                self.assertNotIn("error", r, r)
                self.assertRegex(log_since(offset), r"Provider 'test' failed in %s: it sent a malformed reply" % method)
        self.control()
        self.delete_all()

    def test_a_listing_asks_the_provider_once_for_every_snapshot(self):
        """ListSnapshots refreshes every snapshot's status with one QuerySnapshots call, not one
        Query per snapshot, and shows what it answered."""
        self.control()
        ids = []
        for _ in range(3):
            r = self.create(self.loop, self.loop2)
            self.assertNotIn("error", r, r)
            ids += [s["id"] for s in r["parameters"]["set"]["snapshots"]]
        self.control(invalid=[ids[4]])
        open(STATE, "w").close()
        listed = self.list_snapshots()
        self.assertEqual(sorted(s["id"] for s in listed), sorted(ids))
        self.assertEqual([s["id"] for s in listed if s["status"] == "invalid"], [ids[4]])
        calls = [e for e in read_state() if e["method"] in ("Query", "QuerySnapshots")]
        self.assertEqual([e["method"] for e in calls], ["QuerySnapshots"], calls)
        self.assertEqual(sorted(calls[0]["snapshots"]), sorted(ids))
        self.control()
        self.delete_all()

    def test_a_provider_without_query_snapshots_is_asked_one_by_one(self):
        """A provider written before QuerySnapshots answers MethodNotFound: the listing asks it
        with Query, snapshot by snapshot, does not count that as a failure, and does not ask
        with QuerySnapshots again."""
        self.control()
        r = self.create(self.loop, self.loop2)
        ids = [s["id"] for s in r["parameters"]["set"]["snapshots"]]
        self.control({"QuerySnapshots": {"action": "missing"}}, invalid=[ids[1]])
        for attempt in range(2):
            open(STATE, "w").close()
            offset = log_size()
            listed = self.list_snapshots()
            self.assertEqual([s["id"] for s in listed if s["status"] == "invalid"], [ids[1]])
            methods = [e["method"] for e in read_state() if e["method"] in ("Query", "QuerySnapshots")]
            self.assertEqual(methods, (["QuerySnapshots"] if attempt == 0 else []) + ["Query", "Query"], methods)
            self.assertNotIn("Provider 'test' failed", log_since(offset))
        self.assertEqual(provider_state()["state"], "loaded")
        # A new process may be a newer program: after a restart QuerySnapshots is asked again.
        self.control({"Query": {"action": "exit"}})
        call("GetSnapshot", {"snapshotId": ids[0]})
        self.control()
        open(STATE, "w").close()
        self.list_snapshots()
        self.assertIn("QuerySnapshots", [e["method"] for e in read_state()])
        self.delete_all()


class UsingSnapshots(Base):
    """RevertToSnapshot and BreakSnapshotSet through RevertSnapshot, RevertProgress and
    BreakSnapshot, which a provider may leave out."""

    NOT_SUPPORTED = 0x8004232F
    REVERT_IN_PROGRESS = 0x80042325

    def one_snapshot(self):
        r = self.create(self.loop)
        self.assertNotIn("error", r, r)
        return r["parameters"]["set"]["id"], r["parameters"]["set"]["snapshots"][0]["id"]

    def test_a_revert_is_followed_until_the_provider_says_done(self):
        self.control(revert=["merging", "merging", "done"])
        set_id, snap = self.one_snapshot()
        r = call("RevertToSnapshot", {"snapshotId": snap})
        self.assertEqual(r.get("parameters"), {"revert": "merging"}, r)
        again = call("RevertToSnapshot", {"snapshotId": snap})
        self.assertEqual(again["parameters"]["hresult"], self.REVERT_IN_PROGRESS, again)
        for _ in range(150):   # polled every 2 s: done at the second RevertProgress
            if "error" in call("GetSnapshot", {"snapshotId": snap}):
                break
            time.sleep(0.1)
        self.assertIn("error", call("GetSnapshot", {"snapshotId": snap}), "still there after 15 s")
        methods = [e["method"] for e in read_state() if e["method"].startswith("Revert")]
        self.assertEqual(methods, ["RevertSnapshot", "RevertProgress", "RevertProgress"], methods)
        self.assertRegex(log_since(self.offset), "Snapshot %s was merged into" % snap)
        no_sets_left(self)

    def test_without_the_methods_revert_and_break_are_not_supported_and_change_nothing(self):
        self.control({"RevertSnapshot": {"action": "missing"}, "BreakSnapshot": {"action": "missing"}})
        set_id, snap = self.one_snapshot()
        r = call("RevertToSnapshot", {"snapshotId": snap})
        self.assertEqual(r["parameters"]["hresult"], self.NOT_SUPPORTED, r)
        self.assertIn("does not implement RevertSnapshot", r["parameters"]["message"], r)
        r = call("BreakSnapshotSet", {"setId": set_id, "revertIdentity": True})
        self.assertEqual(r["parameters"]["hresult"], self.NOT_SUPPORTED, r)
        self.assertIn("does not implement BreakSnapshot", r["parameters"]["message"], r)
        self.assertNotIn("error", call("GetSnapshot", {"snapshotId": snap}))
        self.assertIsNone(call("GetSnapshot", {"snapshotId": snap})["parameters"]["snapshot"].get("revert"))
        self.delete_all()

    def test_a_malformed_revert_answer_is_an_unexpected_provider_error(self):
        self.control(revert=["finished"])
        set_id, snap = self.one_snapshot()
        r = call("RevertToSnapshot", {"snapshotId": snap})
        self.assertEqual(r["parameters"]["hresult"], UNEXPECTED, r)
        self.assertIn("state 'finished' is none of", r["parameters"]["message"], r)
        self.delete_all()

    def test_a_revert_that_cannot_be_followed_fails_and_can_then_be_deleted(self):
        self.control({"RevertProgress": {"action": "missing"}}, revert=["merging"])
        set_id, snap = self.one_snapshot()
        self.assertEqual(call("RevertToSnapshot", {"snapshotId": snap}).get("parameters"), {"revert": "merging"})
        # Deleting a snapshot being merged is refused.
        r = call("DeleteSnapshots", {"snapshotId": snap})
        self.assertEqual(r["parameters"]["hresult"], self.REVERT_IN_PROGRESS, r)
        for _ in range(100):
            state = call("GetSnapshot", {"snapshotId": snap})["parameters"]["snapshot"].get("revert")
            if state == "failed":
                break
            time.sleep(0.1)
        self.assertEqual(state, "failed")
        self.assertRegex(log_since(self.offset), "cannot go on: provider 'test' answered RevertSnapshot, but does "
                         "not implement RevertProgress")
        # Asked no more, and the way out is to delete it.
        asked = len([e for e in read_state() if e["method"] == "RevertProgress"])
        time.sleep(2.5)
        self.assertEqual(len([e for e in read_state() if e["method"] == "RevertProgress"]), asked)
        self.assertNotIn("error", call("DeleteSnapshots", {"snapshotId": snap}))
        no_sets_left(self)

    def test_codes_outside_the_provider_table_become_unexpected_provider_error(self):
        self.control({"RevertSnapshot": {"hresult": INVALID["E_FAIL"]}, "BreakSnapshot": {"hresult": INVALID["E_FAIL"]}})
        set_id, snap = self.one_snapshot()
        r = call("RevertToSnapshot", {"snapshotId": snap})
        self.assertEqual(r["parameters"]["hresult"], UNEXPECTED, r)
        r = call("BreakSnapshotSet", {"setId": set_id, "revertIdentity": True})
        self.assertEqual(r["parameters"]["hresult"], UNEXPECTED, r)
        log = log_since(self.offset)
        self.assertRegex(log, r"Provider 'test' returned E_FAIL \(0x80004005\) from RevertSnapshot")
        self.assertRegex(log, r"Provider 'test' returned E_FAIL \(0x80004005\) from BreakSnapshot")
        self.assertIsNone(call("GetSnapshot", {"snapshotId": snap})["parameters"]["snapshot"].get("revert"))
        self.delete_all()

    def test_break_returns_the_providers_device_and_forgets_the_set(self):
        self.control()
        set_id, snap = self.one_snapshot()
        r = call("BreakSnapshotSet", {"setId": set_id, "revertIdentity": True})
        self.assertEqual(r.get("parameters"), {"volumes": [self.loop]}, r)
        self.assertIn("BreakSnapshot", [e["method"] for e in read_state()])
        no_sets_left(self)


class SnapsetctlDelete(Base):
    """snapsetctl delete looks an id up before it deletes (GetSnapshot, then the sets): a set's id
    deletes the set without a refused DeleteSnapshots of a snapshot by that id in the log, and an
    id of neither is refused without any delete asked."""

    def test_a_set_id_deletes_the_set_and_leaves_no_refusal_in_the_log(self):
        self.control()
        r = self.create(self.loop, self.loop2)
        self.assertNotIn("error", r, r)
        s = r["parameters"]["set"]
        offset = log_size()
        out = snapsetctl("delete", s["id"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.splitlines(), ["Deleted snapshot set " + s["id"]] +
                         ["  snapshot " + x["id"] for x in s["snapshots"]])
        self.assertNotIn("refused", log_since(offset))
        no_sets_left(self)

    def test_a_snapshot_id_deletes_only_that_snapshot(self):
        self.control()
        r = self.create(self.loop, self.loop2)
        snaps = [x["id"] for x in r["parameters"]["set"]["snapshots"]]
        out = snapsetctl("delete", snaps[0])
        self.assertEqual((out.returncode, out.stdout), (0, "Deleted snapshot %s\n" % snaps[0]), out.stderr)
        self.assertNotIn("error", call("GetSnapshot", {"snapshotId": snaps[1]}))
        self.delete_all()

    def test_an_id_of_nothing_is_refused_before_any_delete(self):
        self.control()
        offset = log_size()
        missing = "0badc0de-0000-4000-8000-000000000000"
        out = snapsetctl("delete", missing)
        self.assertEqual(out.returncode, 26, out)
        self.assertIn("No snapshot and no snapshot set has the id '%s'" % missing, out.stderr)
        self.assertNotIn("DeleteSnapshots", log_since(offset))


class EarlyActivation(Base):
    """snapsetd --activate (snapset-activate.service, before the local filesystems are mounted)
    reads the records and writes nothing: / may be read-only for it and /var not mounted yet.
    It only re-arms providers that must be active before their origins are written
    (dm-snapshot); the rest, and a backup set (deleted only by snapsetd's own start), are left
    as they are."""

    def snapshot_of_state(self, d):
        out = {}
        for root, _dirs, files in os.walk(d):
            for name in files:
                p = os.path.join(root, name)
                with open(p, "rb") as f:
                    out[os.path.relpath(p, d)] = (os.stat(p).st_mtime_ns, f.read())
        return out

    def run_activate(self, state_dir):
        return subprocess.run([SNAPSETD, "--activate", "--state-dir", state_dir, "--config",
                               os.path.join(TEST_DIR, "snapsetd.conf"), "--log-level", "debug"],
                              capture_output=True, text=True, timeout=30)

    def test_it_reads_the_records_writes_nothing_and_leaves_the_rest_to_snapsetd(self):
        self.control()
        with Connection(timeout=30) as backup_client:
            r = backup_client.call("CreateSnapshotSet", {"volumes": [{"volume": self.loop2, "provider": "test"}],
                                                         "context": "backup"})
            self.assertNotIn("error", r, r)
            r = self.create(self.loop)
            self.assertNotIn("error", r, r)
            with tempfile.TemporaryDirectory(dir=TEST_DIR) as copy:
                state = os.path.join(copy, "state")
                subprocess.run(["cp", "-a", os.path.join(TEST_DIR, "state"), state], check=True)
                # One snapshot made to look like dm-snapshot's, with a record it cannot use
                # (there is no device-mapper here): tried, then left to snapsetd.
                sets = os.path.join(state, "sets")
                persistent = [n for n in os.listdir(sets)
                              if r["parameters"]["set"]["id"] in n][0]
                with open(os.path.join(sets, persistent)) as f:
                    record = json.load(f)
                record["snapshots"][0]["provider"] = "dm-snapshot"
                with open(os.path.join(sets, persistent), "w") as f:
                    json.dump(record, f)
                before = self.snapshot_of_state(state)
                self.assertEqual(len(before), 2, before.keys())
                a = self.run_activate(state)
                self.assertEqual(a.returncode, 0, a.stderr)
                self.assertRegex(a.stderr, r"Snapshot \S+ of '%s' is left to snapsetd: " % re.escape(self.loop))
                self.assertIn("0 snapshot(s) re-armed before the local filesystems are mounted, 1 left to snapsetd",
                              a.stderr)
                self.assertEqual(self.snapshot_of_state(state), before, "the state directory changed")
                # No state directory (/var not mounted yet): nothing to do, and none is made.
                missing = os.path.join(copy, "not-mounted")
                a = self.run_activate(missing)
                self.assertEqual(a.returncode, 0, a.stderr)
                self.assertFalse(os.path.exists(missing))
        # External providers are not even loaded early: their snapshots are snapsetd's to activate.
        self.assertNotIn("ActivateSnapshot", [e["method"] for e in read_state()])
        self.delete_all()


class KeptRecords(Base):
    """A set whose abort cannot undo everything keeps its in-flight record: GetStatus lists it under
    needsAttention with the provider's reason, Cleanup tries again (asking the provider to
    Recover) and keeps it while that fails, and removes it once it succeeds."""

    def attention(self):
        return call("GetStatus")["parameters"]["needsAttention"]

    def test_a_failed_abort_needs_attention_until_cleanup_succeeds(self):
        self.control({"CommitSnapshots": {"hresult": VALID["VSS_E_PROVIDER_VETO"], "message": "no"},
                      "AbortSnapshots": {"hresult": VALID["VSS_E_BAD_STATE"],
                                         "message": "the snapshot is held open by pid 4242"},
                      "Recover": {"hresult": VALID["VSS_E_BAD_STATE"], "message": "still held open"}})
        r = self.create()
        self.assertIn("error", r, r)
        set_id = r["parameters"].get("setId")
        att = self.attention()
        self.assertEqual(len(att), 1, att)
        if set_id:
            self.assertEqual(att[0]["setId"], set_id, att)
        self.assertIn("held open by pid 4242", att[0]["message"])
        self.assertRegex(log_since(self.offset), r"not fully undone; its record is kept")

        # Recover fails too: still there, now with that reason.
        r = call("Cleanup")["parameters"]
        self.assertEqual(r["undone"], 0, r)
        self.assertEqual([a["setId"] for a in r["remaining"]], [att[0]["setId"]], r)
        self.assertIn("still held open", r["remaining"][0]["message"])

        # The holder is gone: Cleanup undoes it, and nothing needs attention any more.
        self.control({})
        r = call("Cleanup")["parameters"]
        self.assertEqual(r, {"undone": 1, "remaining": []})
        self.assertEqual(self.attention(), [])
        recovered = {s for e in read_state() if e["method"] == "Recover" for s in e.get("snapshots", [])}
        self.assertEqual(len(recovered), 2, read_state())
        self.assertEqual(call("Cleanup")["parameters"], {"undone": 0, "remaining": []})


class OwnDaemon(unittest.TestCase):
    """What needs a daemon of its own: bad provider files, OnLoad failures, OnUnload at stop."""

    def start(self, files, control=None):
        d = tempfile.mkdtemp(dir=TEST_DIR or None)
        os.mkdir(os.path.join(d, "providers.d"))
        for name, text in files.items():
            with open(os.path.join(d, "providers.d", name), "w") as f:
                f.write(text.replace("@DIR@", d).replace("@EXE@", TEST_PROVIDER))
        with open(os.path.join(d, "control.json"), "w") as f:
            json.dump(control or {}, f)
        with open(os.path.join(d, "snapsetd.conf"), "w") as f:
            f.write("[Daemon]\nProviderDirectory=%s/providers.d\n" % d)
        log = open(os.path.join(d, "log"), "w")
        p = subprocess.Popen([SNAPSETD, "--config", d + "/snapsetd.conf", "--socket", d + "/sock",
                              "--state-dir", d + "/state", "--log-level", "debug"], stdout=log, stderr=log)
        for _ in range(100):
            if os.path.exists(d + "/sock"):
                break
            time.sleep(0.05)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        return p, d

    GOOD = "[Provider]\nExecutable=@EXE@\nPriority=7\nTimeout=1\n[Settings]\nControl=@DIR@/control.json\n" \
           "State=@DIR@/state.jsonl\n"

    def stop(self, p, d):
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=20), 0)
        with open(d + "/log") as f:
            return f.read()

    def test_bad_provider_files_are_skipped_naming_file_line_and_key(self):
        p, d = self.start({"good.provider": self.GOOD,
                           "bad.provider": "[Provider]\nExecutable=/bin/true\nPriority=high\n",
                           "noexe.provider": "[Provider]\nExecutable=/no/such/provider\nPriority=1\n",
                           "typo.provider": "[Provider]\nExecutable=/bin/true\nPriority=1\nTimout=3\n"})
        with Connection(d + "/sock") as c:
            names = [x["name"] for x in c.call("ListProviders")["parameters"]["providers"]]
        self.assertIn("good", names)
        self.assertNotIn("bad", names)
        log = self.stop(p, d)
        self.assertIn("bad.provider:3: Priority=high: not a number", log)
        self.assertIn("noexe.provider:2: Executable=/no/such/provider: cannot execute it", log)
        self.assertIn("typo.provider:4: Timout=3: unknown key", log)

    def test_on_unload_is_called_at_stop_and_never_translated(self):
        for rule in ({"hresult": INVALID["E_FAIL"]}, {"action": "crash"}, {"action": "hang"}, {"action": "notjson"}):
            with self.subTest(rule=rule):
                p, d = self.start({"good.provider": self.GOOD}, {"methods": {"OnUnload": rule}})
                log = self.stop(p, d)
                with open(d + "/state.jsonl") as f:
                    methods = [json.loads(line)["method"] for line in f]
                self.assertEqual(methods[-1], "OnUnload")
                self.assertNotRegex(log, r"OnUnload.*reporting VSS_E_UNEXPECTED_PROVIDER_ERROR")

    def test_a_provider_failing_to_load_is_unloaded_after_three_failures(self):
        p, d = self.start({"good.provider": self.GOOD}, {"methods": {"OnLoad": {"action": "crash"}}})
        with Connection(d + "/sock") as c:
            for _ in range(3):
                provs = c.call("ListProviders")["parameters"]["providers"]
        good = [x for x in provs if x["name"] == "good"][0]
        self.assertFalse(good["usable"])
        self.assertEqual(good["state"], "unloaded")
        self.assertIn("crashed", good["reason"])
        log = self.stop(p, d)
        self.assertIn("failed 3 times in a row", log)


if __name__ == "__main__":
    main()
