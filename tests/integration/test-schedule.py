#!/usr/bin/python3
"""Set definitions (sets.d), CreateDefinedSet with application hooks, PruneSets and health, against
a daemon of this test's own with the scriptable test provider, on two mounted loop filesystems (so
that the set really freezes them, and hooks can be timed against the freeze window). The timers
that fire definitions under systemd are tested in the VM tier (72-scheduled-sets.sh)."""

import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from snapsettest import BUILDDIR, SNAPSETCTL, TOP, Connection, main, make_fs_loop

TEST_DIR = os.environ.get("SNAPSET_TEST_DIR", "")
SNAPSETD = os.path.join(TOP, BUILDDIR, "snapsetd") if not os.path.isabs(BUILDDIR) \
    else os.path.join(BUILDDIR, "snapsetd")
TEST_PROVIDER = os.path.join(TOP, "tests", "provider", "snapset-test-provider")
E_ABORT = 0x80004004
VSS_E_OBJECT_NOT_FOUND = 0x80042308
VSS_E_INSUFFICIENT_STORAGE = 0x8004231F
VSS_E_BAD_STATE = 0x80042301
VSS_E_PROVIDER_VETO = 0x80042306
HOUR = 3600 * 1000000

# A hook that records its phase, its environment and the time (microseconds) to a log.
HOOK = """#!/bin/sh
now=$(date +%%s%%6N)
echo "$1 $now $SNAPSET_HOOK_PHASE $SNAPSET_SET_ID $SNAPSET_COUNT $SNAPSET_MOUNT_1 $SNAPSET_MOUNT_2 ${SNAPSET_RESULT:--} ${SNAPSET_ERROR:--}" >> %s
echo "hook says hello from $1"
exit %d
"""


@unittest.skipUnless(TEST_DIR and os.geteuid() == 0, "needs root and tests/integration/run")
class Schedule(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(dir=TEST_DIR)
        cls.loops = [make_fs_loop(cls.dir, "a", "ext4", "a\n"), make_fs_loop(cls.dir, "b", "ext4", "b\n")]
        cls.mounts = []
        for i, loop in enumerate(cls.loops):
            m = "%s/m%d" % (cls.dir, i)
            os.mkdir(m)
            subprocess.run(["mount", loop, m], check=True)
            cls.mounts.append(m)
        os.mkdir(cls.dir + "/providers.d")
        os.mkdir(cls.dir + "/sets.d")
        os.mkdir(cls.dir + "/hooks.d")
        with open(cls.dir + "/providers.d/test.provider", "w") as f:
            f.write("[Provider]\nExecutable=%s\nPriority=50\nTimeout=5\n[Settings]\nControl=%s/control.json\n"
                    "State=%s/state.jsonl\n" % (TEST_PROVIDER, cls.dir, cls.dir))
        with open(cls.dir + "/control.json", "w") as f:
            json.dump({"volumes": cls.loops}, f)
        with open(cls.dir + "/snapsetd.conf", "w") as f:
            f.write("[Daemon]\nProviderDirectory=%s/providers.d\nSetDefinitionDirectory=%s/sets.d\n"
                    "HookDirectory=%s/hooks.d\n" % (cls.dir, cls.dir, cls.dir))
        cls.sock = cls.dir + "/sock"
        cls.hook_log = cls.dir + "/hooks.log"
        cls.start()

    @classmethod
    def start(cls):
        cls.log = open(cls.dir + "/log", "a")
        # The daemon's test hooks (SNAPSETD_TEST_HOOKS syntax), re-read at every set: empty, none.
        cls.test_hooks = cls.dir + "/test-hooks"
        open(cls.test_hooks, "a").close()
        cls.daemon = subprocess.Popen([SNAPSETD, "--config", cls.dir + "/snapsetd.conf", "--socket", cls.sock,
                                       "--state-dir", cls.dir + "/state", "--log-level", "debug"],
                                      stdout=cls.log, stderr=cls.log,
                                      env=dict(os.environ, SNAPSETD_TEST_HOOKS_FILE=cls.test_hooks))
        for _ in range(100):
            if os.path.exists(cls.sock):
                return
            time.sleep(0.05)
        raise AssertionError("snapsetd did not start")

    @classmethod
    def stop(cls):
        cls.daemon.send_signal(signal.SIGTERM)
        assert cls.daemon.wait(timeout=30) == 0
        cls.log.close()
        if os.path.exists(cls.sock):
            os.unlink(cls.sock)

    @classmethod
    def tearDownClass(cls):
        cls.stop()
        for m in cls.mounts:
            subprocess.run(["umount", m])
        for loop in cls.loops:
            subprocess.run(["losetup", "-d", loop])
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        for p in glob.glob(self.dir + "/sets.d/*") + glob.glob(self.dir + "/hooks.d/*"):
            os.unlink(p)
        if os.path.exists(self.hook_log):
            os.unlink(self.hook_log)
        self.addCleanup(self.delete_all)

    def set_ids(self):
        with Connection(self.sock) as c:
            r = c.call("ListSnapshotSets", more=True)
            ids = [r["parameters"]["set"]["id"]] if "set" in r.get("parameters", {}) else []
            while r.get("continues"):
                r = c.recv()
                ids.append(r["parameters"]["set"]["id"])
        return ids

    def delete_all(self):
        for i in self.set_ids():
            self.call("DeleteSnapshots", {"setId": i})

    def call(self, method, params=None):
        with Connection(self.sock, timeout=60) as c:
            return c.call(method, params)

    def snapsetctl(self, *args):
        return subprocess.run([SNAPSETCTL, "--socket", self.sock] + list(args), capture_output=True, text=True,
                              timeout=60)

    def define(self, name, extra="", volumes=None):
        text = "".join("[Volume]\nPath=%s\nProvider=test\n" % v for v in (volumes or self.mounts)) + extra
        with open("%s/sets.d/%s.conf" % (self.dir, name), "w") as f:
            f.write(text)

    def hook(self, name, status=0, body=None, directory=None):
        path = "%s/%s" % (directory or self.dir, name)
        with open(path, "w") as f:
            f.write(body or HOOK % (self.hook_log, status))
        os.chmod(path, 0o755)
        return path

    def hook_lines(self):
        with open(self.hook_log) as f:
            return [line.split() for line in f]

    def take(self, name):
        r = self.call("CreateDefinedSet", {"definition": name})
        return r

    def definitions(self):
        return {d["name"]: d for d in self.call("ListDefinitions")["parameters"]["definitions"]}

    # ------------------------------------------------------------ definitions

    def test_broken_definition_is_reported_and_the_others_still_work(self):
        self.define("good", "[Set]\nOnCalendar=hourly\n[Retention]\nKeepLast=2\n")
        with open(self.dir + "/sets.d/bad.conf", "w") as f:
            f.write("[Volume]\nPath=/srv\n[Retention]\nKeepDaily=seven\n")
        defs = self.definitions()
        self.assertEqual(defs["bad"]["error"],
                         "%s/sets.d/bad.conf:4: KeepDaily=seven: not a number of sets between 0 and 100000" % self.dir)
        self.assertNotIn("volumes", defs["bad"])
        self.assertEqual(defs["bad"]["health"]["status"], "critical")
        self.assertEqual([v["volume"] for v in defs["good"]["volumes"]], self.mounts)
        self.assertEqual(defs["good"]["schedule"], "hourly")
        self.assertEqual(defs["good"]["retention"]["keepLast"], 2)
        r = self.take("bad")
        self.assertEqual(r["parameters"]["hresult"], 0x80070057, r)
        self.assertIn("KeepDaily=seven", r["parameters"]["message"])
        self.assertNotIn("error", self.take("good"))
        out = self.snapsetctl("sets")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"(?m)^good +2 +1 ")
        self.assertIn("bad: the definition cannot be used: %s/sets.d/bad.conf:4: KeepDaily=seven" % self.dir, out.stdout)
        r = self.take("nonesuch")
        self.assertEqual(r["parameters"]["hresult"], VSS_E_OBJECT_NOT_FOUND, r)

    # ------------------------------------------------------------ hooks

    def test_hooks_run_around_the_freeze_window_and_the_set_records_them(self):
        self.hook("hooks.d/10-global")
        own = self.hook("own")
        self.define("db", "[Hooks]\nHook=%s\n" % own)
        r = self.take("db")
        self.assertNotIn("error", r, r)
        s = r["parameters"]["set"]
        self.assertEqual(s["definition"], "db")
        self.assertEqual(s["consistency"], "application-consistent")
        runs = [(h["phase"], os.path.basename(h["hook"]), h["result"]) for h in s["hooks"]]
        self.assertEqual(runs, [("prepare", "10-global", "succeeded"), ("prepare", "own", "succeeded"),
                                ("thaw", "own", "succeeded"), ("thaw", "10-global", "succeeded")])
        frozen, window = s["frozenUsec"], s["freezeWindowUsec"]
        lines = self.hook_lines()
        self.assertEqual([(l[0], l[2]) for l in lines], [("prepare", "prepare")] * 2 + [("thaw", "thaw")] * 2)
        for l in lines:
            self.assertEqual(l[3], s["id"])
            self.assertEqual(l[4], "2")
            self.assertEqual(l[5:7], self.mounts)
        # No hook runs while a filesystem is frozen: every prepare hook ended before the first
        # freeze, every thaw hook started after the last thaw.
        for h in s["hooks"]:
            if h["phase"] == "prepare":
                self.assertLess(h["finishedUsec"], frozen, h)
            else:
                self.assertGreater(h["startedUsec"], frozen + window, h)
        self.assertEqual([l[7] for l in lines if l[0] == "thaw"], ["created", "created"])
        # The hooks' own output went to the log after the thaw.
        with open(self.dir + "/log") as f:
            self.assertIn("hook says hello from prepare", f.read())
        # show says it too, a line per hook run.
        out = self.snapsetctl("show", s["id"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"(?m)^Consistency: +application-consistent$")
        self.assertRegex(out.stdout, r"(?m)^Definition: +db$")
        self.assertRegex(out.stdout, r"(?m)^Hooks: +prepare 10-global: succeeded \(exit status 0, \d+ ms\)$")
        self.assertRegex(out.stdout, r"(?m)^ +thaw 10-global: succeeded ")
        # A manual set has no definition and no hooks ran for it.
        r = self.call("CreateSnapshotSet", {"volumes": [{"volume": self.mounts[0], "provider": "test"}],
                                            "context": "persistent"})
        self.assertEqual(r["parameters"]["set"]["consistency"], "crash-consistent")
        self.assertNotIn("definition", r["parameters"]["set"])

    def test_failing_prepare_hook_warns_by_default_and_vetoes_when_asked(self):
        bad = self.hook("bad", status=3)
        self.define("warned", "[Hooks]\nHook=%s\nGlobalHooks=no\n" % bad)
        r = self.take("warned")
        self.assertNotIn("error", r, r)
        self.assertEqual(r["parameters"]["set"]["consistency"], "crash-consistent")
        self.assertEqual(r["parameters"]["set"]["hooks"][0]["exitStatus"], 3)

        os.unlink(self.hook_log)
        self.define("vetoed", "[Hooks]\nHook=%s\nHookFailure=veto\n" % bad)
        r = self.take("vetoed")
        self.assertEqual(r["parameters"]["hresult"], E_ABORT, r)
        self.assertIn("The prepare hook %s of set definition 'vetoed' failed and HookFailure=veto" % bad,
                      r["parameters"]["message"])
        # thaw and abort still ran, told why; and no set of it exists.
        lines = self.hook_lines()
        self.assertEqual([l[0] for l in lines], ["prepare", "thaw", "abort"])
        self.assertEqual(lines[2][7:9], ["failed", "E_ABORT"])
        self.assertEqual(self.definitions()["vetoed"]["sets"], 0)
        with open(self.dir + "/log") as f:
            log = f.read()
        self.assertIn("The prepare hook %s of set definition 'vetoed' failed with exit status 3." % bad, log)

    def test_a_prepare_hook_that_ignores_sigterm_is_gone_before_the_freeze(self):
        ticks = self.dir + "/ticks"
        stubborn = self.hook("stubborn", body='#!/bin/sh\ntrap "" TERM\n[ "$SNAPSET_HOOK_PHASE" = prepare ] || exit 0\n'
                             'while :; do date +%s%6N >> ' + ticks + '; sleep 0.05; done\n')
        self.define("stubborn", "[Hooks]\nHook=%s\nHookTimeoutSec=1\nGlobalHooks=no\n" % stubborn)
        r = self.take("stubborn")
        self.assertNotIn("error", r, r)
        s = r["parameters"]["set"]
        self.assertEqual(s["hooks"][0]["result"], "timed-out")
        with open(ticks) as f:
            seen = [int(t) for t in f.read().split()]
        self.assertGreater(len(seen), 0)   # a loaded machine may give it only a few turns
        # Every write of the hook came before the first freeze, and none comes after.
        self.assertLess(max(seen), s["frozenUsec"])
        time.sleep(0.5)
        with open(ticks) as f:
            self.assertEqual(len(f.read().split()), len(seen), "the hook still runs after the set")

    def test_hanging_hook_is_killed_at_its_timeout(self):
        hang = self.hook("hang", body="#!/bin/sh\nsleep 600 &\nsleep 600\n")
        self.define("slow", "[Hooks]\nHook=%s\nHookTimeoutSec=1\n" % hang)
        t0 = time.monotonic()
        r = self.take("slow")
        elapsed = time.monotonic() - t0
        self.assertNotIn("error", r, r)
        prepare = r["parameters"]["set"]["hooks"][0]
        self.assertEqual(prepare["result"], "timed-out")
        # prepare and thaw each at most their timeout and the kill's grace, not 600 s.
        self.assertLess(elapsed, 30)
        self.assertGreaterEqual(prepare["finishedUsec"] - prepare["startedUsec"], 1000000)
        # The whole process group is gone: no "sleep 600" is left over.
        left = subprocess.run(["pgrep", "-f", "^sleep 600$"], capture_output=True, text=True)
        self.assertEqual(left.stdout, "")

    def test_prune_waits_for_the_set_in_creation_and_then_counts_it(self):
        mark = self.dir + "/in-prepare"
        slow = self.hook("slow", body='#!/bin/sh\n[ "$SNAPSET_HOOK_PHASE" = prepare ] && touch %s && sleep 2\n'
                         'exit 0\n' % mark)
        self.define("busy", "[Retention]\nKeepLast=1\n[Hooks]\nHook=%s\nGlobalHooks=no\n" % slow,
                    volumes=[self.mounts[0]])
        first = self.take("busy")["parameters"]["set"]["id"]
        os.unlink(mark)
        done = {}

        def create():
            done["set"] = self.take("busy")["parameters"]["set"]["id"]
        t = threading.Thread(target=create)
        t.start()
        for _ in range(600):   # the create is in its prepare hook, holding the creation lock
            if os.path.exists(mark):
                break
            time.sleep(0.05)
        self.assertTrue(os.path.exists(mark), "the second create never reached its prepare hook")
        in_prepare = time.monotonic()
        pruned = self.call("PruneSets", {"definition": "busy"})
        pruned_at = time.monotonic()
        t.join(60)
        self.assertIn("set", done, "the create did not finish")
        # The prune waited for the create (its hook sleeps 2 s) and saw its set: the newer one is kept.
        self.assertGreaterEqual(pruned_at - in_prepare, 1.5)
        verdict = {d["setId"]: d["keep"] for d in pruned["parameters"]["decisions"]}
        self.assertEqual(verdict, {first: False, done["set"]: True})
        self.assertEqual(self.set_ids(), [done["set"]])

    def test_check_is_critical_while_a_set_that_could_not_be_undone_waits(self):
        self.define("fine", "[Set]\nOnCalendar=hourly\n", volumes=[self.mounts[0]])
        self.assertNotIn("error", self.take("fine"))
        self.assertEqual(self.check("fine")[0], 0)
        with open(self.dir + "/control.json", "w") as f:
            json.dump({"volumes": self.loops, "methods": {
                "CommitSnapshots": {"hresult": VSS_E_PROVIDER_VETO, "message": "no"},
                "AbortSnapshots": {"hresult": VSS_E_BAD_STATE, "message": "held open by pid 4242"}}}, f)
        r = self.call("CreateSnapshotSet", {"volumes": [{"volume": self.mounts[1], "provider": "test"}],
                                            "context": "persistent"})
        self.assertIn("error", r, r)
        code, out = self.check("fine")
        self.assertEqual(code, 2, out)
        self.assertIn("SNAPSET CRITICAL - snapsetd: 1 interrupted set(s) could not be undone", out)
        with open(self.dir + "/control.json", "w") as f:
            json.dump({"volumes": self.loops}, f)
        self.assertEqual(self.call("Cleanup")["parameters"]["undone"], 1)
        self.assertEqual(self.check("fine")[0], 0)

    def test_thaw_and_abort_hooks_run_after_a_failed_freeze(self):
        self.hook("hooks.d/10-global")
        self.define("frail")
        with open(self.test_hooks, "w") as f:
            f.write("fail=flushing:1\n")   # the second volume's freeze fails, the first is frozen
        self.addCleanup(lambda: open(self.test_hooks, "w").close())
        r = self.take("frail")
        self.assertIn("error", r, r)
        vss = r["parameters"]["vssName"]
        lines = self.hook_lines()
        self.assertEqual([l[0] for l in lines], ["prepare", "thaw", "abort"])
        self.assertEqual(lines[1][7], "failed")
        self.assertEqual(lines[2][7:9], ["failed", vss])
        # Both filesystems take writes again (a write to a frozen one would block).
        for m in self.mounts:
            out = subprocess.run(["timeout", "10", "sh", "-c", "echo x > %s/probe && rm %s/probe" % (m, m)])
            self.assertEqual(out.returncode, 0, "%s is still frozen" % m)
        self.assertEqual(self.set_ids(), [])

    # ------------------------------------------------------------ retention and health

    def age_sets(self, created):
        """Gives the sets, in creation order, the creation times created (microseconds), by
        rewriting their records with the daemon stopped."""
        self.stop()
        records = []
        for p in glob.glob(self.dir + "/state/sets/*.json"):
            with open(p) as f:
                records.append((json.load(f), p))
        records.sort(key=lambda x: x[0]["createdUsec"])
        mine = [r for r in records if r[0].get("definition")]
        self.assertEqual(len(mine), len(created))
        for (rec, path), usec in zip(mine, created):
            rec["createdUsec"] = usec
            with open(path, "w") as f:
                json.dump(rec, f)
        self.start()
        return [r[0]["id"] for r in mine]

    def test_prune_dry_run_changes_nothing_and_prune_deletes_exactly_that(self):
        self.define("hourly", "[Set]\nOnCalendar=hourly\n[Retention]\nKeepLast=1\nKeepDaily=2\n",
                    volumes=[self.mounts[0]])
        for _ in range(4):
            self.assertNotIn("error", self.take("hourly"))
        manual = self.call("CreateSnapshotSet", {"volumes": [{"volume": self.mounts[0], "provider": "test"}],
                                                 "context": "persistent"})["parameters"]["set"]["id"]
        now = int(time.time() * 1000000)
        day = 24 * HOUR
        # Oldest first: 3 days ago, 2 days ago (twice that day), 1 minute ago.
        ids = self.age_sets([now - 3 * day, now - 2 * day - HOUR, now - 2 * day, now - 60000000])
        dry = self.call("PruneSets", {"definition": "hourly", "dryRun": True})["parameters"]["decisions"]
        verdict = {d["setId"]: (d["keep"], d["reason"]) for d in dry}
        self.assertEqual(verdict[ids[3]], (True, "keep-last (1/1)"))
        self.assertTrue(verdict[ids[2]][0] and verdict[ids[2]][1].startswith("daily "), verdict[ids[2]])
        self.assertTrue(verdict[ids[1]][1].startswith("not the latest of daily"), verdict[ids[1]])
        self.assertTrue(verdict[ids[0]][0], verdict[ids[0]])   # the second daily period
        self.assertNotIn(manual, verdict)
        self.assertTrue(all("deleted" not in d for d in dry))
        self.assertEqual(self.definitions()["hourly"]["sets"], 4)
        out = self.snapsetctl("prune", "--dry-run", "hourly")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"%s .* would delete +not the latest of daily" % ids[1])

        out = self.snapsetctl("prune", "--json", "hourly")
        self.assertEqual(out.returncode, 0, out.stderr)
        done = {d["setId"]: d for d in json.loads(out.stdout)[0]["decisions"]}
        self.assertEqual([i for i in ids if not done[i]["keep"]], [ids[1]])
        self.assertTrue(done[ids[1]]["deleted"])
        self.assertEqual(self.definitions()["hourly"]["sets"], 3)
        # The manual set is still there.
        out = self.snapsetctl("show", manual)
        self.assertEqual(out.returncode, 0, out.stderr)

    def check(self, *names):
        out = self.snapsetctl("check", *names)
        return out.returncode, out.stdout

    def test_check_gives_each_nagios_status(self):
        self.define("fresh", "[Set]\nOnCalendar=hourly\n[Retention]\nKeepLast=5\n", volumes=[self.mounts[0]])
        self.assertNotIn("error", self.take("fresh"))
        code, out = self.check("fresh")
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"^SNAPSET OK - fresh: 1 set\(s\), newest ")

        now = int(time.time() * 1000000)
        self.age_sets([now - 2 * HOUR])          # 2 periods old: over 1.5, under 3
        code, out = self.check("fresh")
        self.assertEqual(code, 1, out)
        self.assertIn("SNAPSET WARNING - fresh: newest set is 2h 0min old, over 1.5 periods of its schedule (every 1h 0min)", out)

        self.age_sets([now - 4 * HOUR])
        code, out = self.check("fresh")
        self.assertEqual(code, 2, out)
        self.assertIn("SNAPSET CRITICAL - fresh: newest set is 4h 0min old, over 3 periods", out)

        # Pruning overdue: more sets than KeepLast=1 keeps, the newest past the grace.
        self.define("fresh", "[Set]\nOnCalendar=hourly\n[Retention]\nKeepLast=1\n", volumes=[self.mounts[0]])
        self.assertNotIn("error", self.take("fresh"))
        self.age_sets([now - 30 * 60000000, now - 20 * 60000000])
        code, out = self.check("fresh")
        self.assertEqual(code, 1, out)
        self.assertIn("pruning is overdue: 1 of 2 sets are past the retention policy", out)

        code, out = self.check("nonesuch")
        self.assertEqual(code, 3, out)
        self.assertIn("SNAPSET UNKNOWN - nonesuch: no such set definition", out)

        with open(self.dir + "/sets.d/broken.conf", "w") as f:
            f.write("[Set]\nOnCalendar=hourly\n")
        code, out = self.check()
        self.assertEqual(code, 2, out)
        self.assertIn("SNAPSET CRITICAL - broken: the definition cannot be used", out)
        status = self.call("GetStatus")["parameters"]["health"]
        self.assertEqual({h["name"]: h["health"]["status"] for h in status}, {"broken": "critical", "fresh": "warning"})
        out = self.snapsetctl("check", "--json")
        self.assertEqual(out.returncode, 2)
        self.assertEqual(json.loads(out.stdout)["status"], "critical")


    # ------------------------------------------------------------ space

    def no_room(self, times):
        """The test provider refuses the next `times` volumes for want of space, as a full thin
        pool would, saying how much is missing."""
        with open(self.dir + "/control.json", "w") as f:
            json.dump({"volumes": self.loops, "methods": {"BeginPrepareSnapshot": {
                "hresult": VSS_E_INSUFFICIENT_STORAGE, "times": times,
                "message": "Thin pool vg0/pool is 97% full; the snapshot needs 1.5 GiB more"}}}, f)
        self.addCleanup(lambda: json.dump({"volumes": self.loops}, open(self.dir + "/control.json", "w")))

    def test_a_set_that_does_not_fit_fails_with_the_amount_or_prunes_the_oldest_first(self):
        self.define("strict", "[Retention]\nKeepLast=10\n", volumes=[self.mounts[0]])
        self.hook("hooks.d/10-global")
        self.no_room(1)
        r = self.take("strict")
        self.assertEqual(r["parameters"]["hresult"], VSS_E_INSUFFICIENT_STORAGE, r)
        self.assertIn("the snapshot needs 1.5 GiB more", r["parameters"]["message"])
        self.assertIn("set PruneOnLowSpace=yes in %s/sets.d/strict.conf" % self.dir, r["parameters"]["message"])
        # Nothing is left, and no hook ran: space is judged before the prepare hooks.
        self.assertEqual(self.set_ids(), [])
        self.assertFalse(os.path.exists(self.hook_log))

        self.define("tight", "[Retention]\nKeepLast=10\nPruneOnLowSpace=yes\n", volumes=[self.mounts[0]])
        for _ in range(3):
            self.assertNotIn("error", self.take("tight"))
        now = int(time.time() * 1000000)
        ids = self.age_sets([now - 3 * HOUR, now - 2 * HOUR, now - HOUR])
        os.unlink(self.hook_log)
        manual = self.call("CreateSnapshotSet", {"volumes": [{"volume": self.mounts[0], "provider": "test"}],
                                                 "context": "persistent"})["parameters"]["set"]["id"]
        # Two refusals: the two oldest sets go, one at a time, and the third try fits.
        self.no_room(2)
        r = self.take("tight")
        self.assertNotIn("error", r, r)
        new = r["parameters"]["set"]["id"]
        self.assertEqual(sorted(self.set_ids()), sorted([ids[2], manual, new]))
        # The hooks ran once, for the set that was taken.
        self.assertEqual([(l[0], l[3]) for l in self.hook_lines()], [("prepare", new), ("thaw", new)])
        with open(self.dir + "/log") as f:
            log = f.read()
        for i in ids[:2]:
            self.assertIn("Set definition 'tight': set %s deleted to make room for a new set (PruneOnLowSpace=yes)." % i, log)

        # No room however much goes: the newest set is never deleted for room, nor the manual one.
        self.no_room(10)
        r = self.take("tight")
        self.assertEqual(r["parameters"]["hresult"], VSS_E_INSUFFICIENT_STORAGE, r)
        self.assertIn("PruneOnLowSpace=yes deleted 1 set(s) of 'tight' (the first %s) and it still does not fit: "
                      "no other set of it that holds a snapshot of %s may go" % (ids[2], self.mounts[0]), r["parameters"]["message"])
        self.assertEqual(sorted(self.set_ids()), sorted([manual, new]))


if __name__ == "__main__":
    main()
