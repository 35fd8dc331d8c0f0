#!/usr/bin/python3
"""ExposeSnapshot, UnexposeSnapshot, 'snapsetctl expose' and 'snapsetctl exec' against a daemon of
this test's own (so that it can be stopped and started again), with the scriptable test provider.
That provider reports the origin's own device as the snapshot's device: the origins here are loop
devices with a filesystem, never mounted elsewhere, so what gets mounted is exactly the filesystem
the test wrote. Snapshots made by device-mapper are exposed in the VM tier (71-expose-exec.sh)."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from snapsettest import BUILDDIR, SNAPSETCTL, TOP, Connection, main, make_fs_loop

TEST_DIR = os.environ.get("SNAPSET_TEST_DIR", "")
SNAPSETD = os.path.join(TOP, BUILDDIR, "snapsetd") if not os.path.isabs(BUILDDIR) \
    else os.path.join(BUILDDIR, "snapsetd")
TEST_PROVIDER = os.path.join(TOP, "tests", "provider", "snapset-test-provider")

VSS_E_VOLUME_IN_USE = 0x8004231D
VSS_E_BAD_STATE = 0x80042301
E_INVALIDARG = 0x80070057


def mount_options(path):
    r = subprocess.run(["findmnt", "-n", "-o", "OPTIONS", "--mountpoint", path], capture_output=True, text=True)
    return r.stdout.strip().split(",") if r.returncode == 0 else None


@unittest.skipUnless(TEST_DIR and os.geteuid() == 0, "needs root and tests/integration/run")
class Expose(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(dir=TEST_DIR)
        cls.ext4 = make_fs_loop(cls.dir, "ext4", "ext4", "the ext4 origin\n")
        cls.xfs = make_fs_loop(cls.dir, "xfs", "xfs", "the xfs origin\n")
        os.mkdir(cls.dir + "/providers.d")
        with open(cls.dir + "/providers.d/test.provider", "w") as f:
            f.write("[Provider]\nExecutable=%s\nPriority=50\nTimeout=5\n[Settings]\nControl=%s/control.json\n"
                    "State=%s/state.jsonl\n" % (TEST_PROVIDER, cls.dir, cls.dir))
        with open(cls.dir + "/control.json", "w") as f:
            # A provider without revert and break (the test provider's own would "break" the
            # origins, which it gives as the snapshots' devices).
            json.dump({"volumes": [cls.ext4, cls.xfs],
                       "methods": {"RevertSnapshot": {"action": "missing"}, "BreakSnapshot": {"action": "missing"}}}, f)
        with open(cls.dir + "/snapsetd.conf", "w") as f:
            f.write("[Daemon]\nProviderDirectory=%s/providers.d\n" % cls.dir)
        cls.sock = cls.dir + "/sock"
        cls.start()

    @classmethod
    def start(cls):
        cls.log = open(cls.dir + "/log", "a")
        cls.daemon = subprocess.Popen([SNAPSETD, "--config", cls.dir + "/snapsetd.conf", "--socket", cls.sock,
                                       "--state-dir", cls.dir + "/state", "--log-level", "debug"],
                                      stdout=cls.log, stderr=cls.log)
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

    @classmethod
    def tearDownClass(cls):
        cls.stop()
        subprocess.run(["umount", "-R", "-l", cls.dir + "/mnt"], capture_output=True)
        for loop in (cls.ext4, cls.xfs):
            subprocess.run(["losetup", "-d", loop])
        shutil.rmtree(cls.dir, ignore_errors=True)

    def call(self, method, params=None):
        with Connection(self.sock, timeout=60) as c:
            return c.call(method, params)

    def create(self):
        r = self.call("CreateSnapshotSet", {"volumes": [{"volume": v, "provider": "test"} for v in (self.ext4, self.xfs)],
                                            "context": "persistent"})
        self.assertNotIn("error", r, r)
        s = r["parameters"]["set"]
        self.addCleanup(lambda: self.call("DeleteSnapshots", {"setId": s["id"]}))
        return s["id"], [x["id"] for x in s["snapshots"]]

    def snapsetctl(self, *args, **kw):
        return subprocess.run([SNAPSETCTL, "--socket", self.sock] + list(args), capture_output=True, text=True,
                              timeout=60, **kw)

    def no_sets(self):
        with Connection(self.sock) as c:
            r = c.call("ListSnapshotSets", more=True)
            return "set" not in r.get("parameters", {})

    def test_expose_mounts_read_only_and_unexpose_cleans_up(self):
        set_id, snaps = self.create()
        paths = []
        for snap, content in zip(snaps, ("the ext4 origin\n", "the xfs origin\n")):
            r = self.call("ExposeSnapshot", {"snapshotId": snap})
            self.assertNotIn("error", r, r)
            path = r["parameters"]["path"]
            paths.append(path)
            self.assertTrue(path.startswith("%s/mnt/%s/" % (self.dir, set_id)), path)
            with open(path + "/data") as f:
                self.assertEqual(f.read(), content)
            opts = mount_options(path)
            for o in ("ro", "nosuid", "nodev", "noexec"):
                self.assertIn(o, opts, (path, opts))
            with self.assertRaises(OSError):
                open(path + "/new", "w")
            self.assertEqual(self.call("GetSnapshot", {"snapshotId": snap})["parameters"]["snapshot"]["exposedAt"], path)
            # Asked again: the same answer, nothing mounted twice.
            self.assertEqual(self.call("ExposeSnapshot", {"snapshotId": snap})["parameters"]["path"], path)
        self.assertIn("nouuid", mount_options(paths[1]))
        self.assertIn("norecovery", mount_options(paths[1]))
        self.assertEqual(len(set(paths)), 2)

        for snap, path in zip(snaps, paths):
            self.assertNotIn("error", self.call("UnexposeSnapshot", {"snapshotId": snap}))
            self.assertIsNone(mount_options(path))
            self.assertFalse(os.path.exists(path))
            self.assertNotIn("exposedAt", self.call("GetSnapshot", {"snapshotId": snap})["parameters"]["snapshot"])
        self.assertFalse(os.path.exists("%s/mnt/%s" % (self.dir, set_id)))
        # Not exposed: nothing to do, no error.
        self.assertNotIn("error", self.call("UnexposeSnapshot", {"snapshotId": snaps[0]}))

    def test_a_path_of_ones_own_must_be_an_empty_directory_outside_the_runtime_directory(self):
        _, snaps = self.create()
        full = tempfile.mkdtemp(dir=TEST_DIR)
        open(full + "/something", "w").close()
        for path, words in ((self.dir + "/no-such-dir", "does not exist"), (full, "not empty"),
                            ("relative/dir", "not an absolute path"), (self.dir, "snapsetd manages")):
            with self.subTest(path=path):
                r = self.call("ExposeSnapshot", {"snapshotId": snaps[0], "path": path})
                self.assertEqual(r["parameters"]["hresult"], E_INVALIDARG, r)
                self.assertIn(words, r["parameters"]["message"])
        empty = tempfile.mkdtemp(dir=TEST_DIR)
        r = self.call("ExposeSnapshot", {"snapshotId": snaps[0], "path": empty})
        self.assertEqual(r["parameters"], {"path": empty, "device": self.ext4}, r)
        # Exposed there: not somewhere else too.
        other = tempfile.mkdtemp(dir=TEST_DIR)
        r = self.call("ExposeSnapshot", {"snapshotId": snaps[0], "path": other})
        self.assertEqual(r["parameters"]["hresult"], VSS_E_BAD_STATE, r)
        self.assertNotIn("error", self.call("UnexposeSnapshot", {"snapshotId": snaps[0]}))
        self.assertIsNone(mount_options(empty))
        self.assertTrue(os.path.isdir(empty), "the caller's own directory stays")
        # The device alone: nothing mounted.
        r = self.call("ExposeSnapshot", {"snapshotId": snaps[1], "mount": False})
        self.assertEqual(r["parameters"], {"device": self.xfs}, r)
        out = self.snapsetctl("expose", "--device-only", snaps[1])
        self.assertEqual((out.returncode, out.stdout), (0, self.xfs + "\n"), out.stderr)

    def test_deleting_an_exposed_snapshot_in_use_is_refused_naming_the_process(self):
        set_id, snaps = self.create()
        out = self.snapsetctl("expose", snaps[0])
        self.assertEqual(out.returncode, 0, out.stderr)
        path = out.stdout.strip()
        holder = subprocess.Popen(["sleep", "60"], cwd=path)
        try:
            r = self.call("DeleteSnapshots", {"setId": set_id})
            self.assertEqual(r["parameters"]["hresult"], VSS_E_VOLUME_IN_USE, r)
            self.assertIn("pid %d (sleep)" % holder.pid, r["parameters"]["message"])
            self.assertIsNotNone(mount_options(path), "still mounted")
        finally:
            holder.kill()
            holder.wait()
        self.assertNotIn("error", self.call("DeleteSnapshots", {"setId": set_id}))
        self.assertIsNone(mount_options(path))
        self.assertFalse(os.path.exists(path))

    def test_exposed_snapshots_are_mounted_again_after_a_restart(self):
        _, snaps = self.create()
        path = self.call("ExposeSnapshot", {"snapshotId": snaps[1]})["parameters"]["path"]
        # A restart: still mounted, and left so.
        type(self).stop()
        type(self).start()
        self.assertIsNotNone(mount_options(path))
        # A reboot: /run is empty again, and the mount gone.
        type(self).stop()
        subprocess.run(["umount", path], check=True)
        shutil.rmtree(self.dir + "/mnt")
        type(self).start()
        self.assertIn("nouuid", mount_options(path) or [], "mounted again after the 'reboot'")
        with open(path + "/data") as f:
            self.assertEqual(f.read(), "the xfs origin\n")
        self.assertEqual(self.call("GetSnapshot", {"snapshotId": snaps[1]})["parameters"]["snapshot"]["exposedAt"], path)

    def test_a_provider_that_cannot_revert_says_so(self):
        _, snaps = self.create()
        r = self.call("RevertToSnapshot", {"snapshotId": snaps[0]})
        self.assertEqual(r["parameters"]["hresult"], 0x8004232F, r)   # VSS_E_NOT_SUPPORTED
        self.assertIn("Provider 'test' cannot revert", r["parameters"]["message"])
        out = self.snapsetctl("revert", snaps[0])
        self.assertEqual(out.returncode, 40, out)
        self.assertNotIn("revert", self.call("GetSnapshot", {"snapshotId": snaps[0]})["parameters"]["snapshot"])

    def test_a_provider_that_cannot_break_says_so_and_changes_nothing(self):
        set_id, snaps = self.create()
        # --keep-identity: the test provider's snapshot devices are the origins themselves.
        out = self.snapsetctl("break", "--keep-identity", set_id)
        self.assertEqual(out.returncode, 40, out)   # VSS_E_NOT_SUPPORTED
        self.assertIn("nothing was changed", out.stderr)
        for snap in snaps:
            self.assertEqual(self.call("GetSnapshot", {"snapshotId": snap})["parameters"]["snapshot"]["setId"], set_id)

    def test_exec_runs_the_command_on_the_snapshots_and_releases_the_set(self):
        script = 'cat "$SNAPSET_MOUNT_1/data" "$2/data"; echo "$SNAPSET_COUNT $SNAPSET_VOLUME_2"; ' \
                 'test "$SNAPSET_MOUNTS" = "$1 $2"; touch "$1/x" 2>/dev/null && echo writable; exit 3'
        out = self.snapsetctl("exec", self.ext4 + ":provider=test", self.xfs + ":provider=test", "--",
                              "sh", "-c", script, "sh", "{}")
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertEqual(out.stdout, "the ext4 origin\nthe xfs origin\n2 %s\n" % self.xfs)
        self.assertTrue(self.no_sets())
        self.assertEqual(os.listdir(self.dir + "/mnt") if os.path.exists(self.dir + "/mnt") else [], [])

        # Braces that are no {N} stay; {N} after one is still replaced, once.
        out = self.snapsetctl("exec", self.ext4 + ":provider=test", "--", "echo", "{x}{1}{2a}")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"^\{x\}/\S+/mnt/[0-9a-f-]{36}/loop\d+\{2a\}\n$")
        self.assertTrue(self.no_sets())

        # {N} inside an argument, --cd, and success.
        out = self.snapsetctl("exec", "--cd", self.ext4 + ":provider=test", "--", "sh", "-c",
                              'test "$PWD" = "$1" && cat data', "sh", "{1}")
        self.assertEqual((out.returncode, out.stdout), (0, "the ext4 origin\n"), out.stderr)
        self.assertTrue(self.no_sets())

    def test_exec_killed_leaves_nothing_behind(self):
        ctl = subprocess.Popen([SNAPSETCTL, "--socket", self.sock, "exec", self.ext4 + ":provider=test", "--",
                                "sh", "-c", "echo ready; exec sleep 60"], stdout=subprocess.PIPE, text=True)
        self.assertEqual(ctl.stdout.readline(), "ready\n")
        self.assertFalse(self.no_sets())
        ctl.kill()
        ctl.wait()
        subprocess.run(["pkill", "-f", "^sleep 60$"])
        for _ in range(100):
            if self.no_sets():
                break
            time.sleep(0.05)
        self.assertTrue(self.no_sets(), "the backup set outlived snapsetctl")

    def test_exec_usage_errors_say_what_is_wrong(self):
        for args, words in ((["/dev/null"], "usage: snapsetctl exec"), (["--", "true"], "usage: snapsetctl exec"),
                            (["/dev/null", "--keep", "--", "true"], "options of exec come before")):
            with self.subTest(args=args):
                out = self.snapsetctl("exec", *args)
                self.assertEqual(out.returncode, 2, out)
                self.assertIn(words, out.stderr)


if __name__ == "__main__":
    main()
