#!/usr/bin/python3
"""snapsetctl against the real daemon: every verb in human and --json form, exit statuses from the
error table, usage errors, an unreachable daemon; and what the daemon reports of this machine:
providers usable or not (with the reason), and real loop-backed ext4 and xfs filesystems in the
volume list."""

import json
import os
import shutil
import subprocess
import unittest

from snapsettest import SNAPSETCTL, SOCKET, main, snapsetctl

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
HAVE_DM = os.path.exists("/dev/mapper/control")


class Verbs(unittest.TestCase):
    def test_status_human_and_json(self):
        r = snapsetctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0.1", r.stdout)
        r = snapsetctl("--json", "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertIn("uptimeUsec", j)
        self.assertIsNone(j.get("setInProgress"))

    def test_cleanup_with_nothing_left_and_status_saying_so(self):
        # Other tests of the tier may have left sets whose abort failed on purpose: first those.
        r = snapsetctl("cleanup")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"^Undid [0-9]+ snapshot set\(s\)\.\n$")
        r = snapsetctl("cleanup")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "Undid 0 snapshot set(s).\n")
        r = snapsetctl("--json", "cleanup")
        self.assertEqual(json.loads(r.stdout), {"undone": 0, "remaining": []})
        r = snapsetctl("status")
        self.assertRegex(r.stdout, r"Needs attention: +nothing")

    def test_providers_json_lists_the_builtins_with_usability(self):
        r = snapsetctl("--json", "providers")
        self.assertEqual(r.returncode, 0, r.stderr)
        providers = {p["name"]: p for p in json.loads(r.stdout)["providers"]}
        for name in ("lvm", "dm-thin", "dm-snapshot"):
            self.assertIn(name, providers)
        if not HAVE_DM:
            for name in ("dm-thin", "dm-snapshot"):
                self.assertFalse(providers[name]["usable"])
                self.assertIn("device-mapper", providers[name]["reason"])

    def test_providers_human_output_says_why_not(self):
        r = snapsetctl("providers")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("dm-snapshot", r.stdout)
        if not HAVE_DM:
            self.assertIn("device-mapper", r.stdout)

    def test_call_passes_json_through(self):
        r = snapsetctl("call", "org.varlink.service.GetInfo")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["product"], "snapsetd")
        r = snapsetctl("call", "GetStatus", "{}")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("limits", json.loads(r.stdout))

    def test_every_verb_has_help(self):
        for verb in ("status", "providers", "volumes", "cleanup", "call"):
            r = snapsetctl(verb, "--help")
            self.assertEqual(r.returncode, 0, verb)
            self.assertIn(verb, r.stdout)
        r = snapsetctl("--help")
        self.assertEqual(r.returncode, 0)


class ExitStatuses(unittest.TestCase):
    def test_access_denied_exits_with_its_table_status_and_names_the_code(self):
        r = subprocess.run(NOBODY + ["--", SNAPSETCTL, "--socket", SOCKET,
                                     "status"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 13, r.stderr)
        self.assertIn("E_ACCESSDENIED", r.stderr)
        self.assertIn("0x80070005", r.stderr)

    def test_unreachable_daemon_exits_69_and_says_where_it_looked(self):
        r = subprocess.run([SNAPSETCTL, "--socket", "/nonexistent/sock", "status"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 69)
        self.assertIn("/nonexistent/sock", r.stderr)

    def test_usage_errors_exit_2(self):
        for args in (["no-such-verb"], ["status", "--bogus"], ["call"], ["call", "GetStatus", "{not json"]):
            r = snapsetctl(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertTrue(r.stderr.strip(), args)

    def test_json_errors_are_json_too(self):
        r = snapsetctl("--json", "call", "GetStatus", '{"bogus": 1}')
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("InvalidParameter", r.stdout + r.stderr)


@unittest.skipIf(shutil.which("losetup") is None, "losetup missing")
class VolumesOfThisMachine(unittest.TestCase):
    """Loop devices with real ext4 and xfs filesystems, mounted, must show up in ListVolumes."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = os.environ.get("SNAPSET_TEST_DIR", "/tmp")
        cls.loops, cls.mounts = [], []
        for fs in ("ext4", "xfs"):
            img = os.path.join(cls.tmp, "vol-%s.img" % fs)
            with open(img, "wb") as f:
                f.truncate(320 * 1024 * 1024)
            loop = subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True,
                                  check=True).stdout.strip()
            cls.loops.append(loop)
            subprocess.run(["mkfs." + fs, "-q"] + (["-F"] if fs == "ext4" else ["-f"]) + [loop],
                           check=True, capture_output=True)
            mnt = os.path.join(cls.tmp, "mnt-" + fs)
            os.makedirs(mnt, exist_ok=True)
            subprocess.run(["mount", loop, mnt], check=True)
            cls.mounts.append((fs, loop, mnt))

    @classmethod
    def tearDownClass(cls):
        for _, _, mnt in cls.mounts:
            subprocess.run(["umount", mnt])
        for loop in cls.loops:
            subprocess.run(["losetup", "-d", loop])

    def test_loop_backed_filesystems_are_listed_with_type_and_mountpoint(self):
        r = snapsetctl("--json", "volumes")
        self.assertEqual(r.returncode, 0, r.stderr)
        vols = {v["path"]: v for v in json.loads(r.stdout)["volumes"]}
        for fs, loop, mnt in self.mounts:
            self.assertIn(loop, vols)
            v = vols[loop]
            self.assertEqual(v["type"], "loop")
            self.assertEqual(v["filesystem"], fs)
            self.assertIn(mnt, v["mountpoints"])
            self.assertEqual(v["sizeBytes"], 320 * 1024 * 1024)
            # A loop device is not a device-mapper device: no provider, and a reason.
            self.assertIsNone(v.get("provider"))
            self.assertTrue(v["reason"])

    def test_human_volume_list_shows_them(self):
        r = snapsetctl("volumes")
        self.assertEqual(r.returncode, 0, r.stderr)
        for fs, loop, mnt in self.mounts:
            self.assertIn(loop, r.stdout)
            self.assertIn(mnt, r.stdout)


if __name__ == "__main__":
    main()
