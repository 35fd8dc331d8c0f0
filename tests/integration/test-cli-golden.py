#!/usr/bin/python3
"""snapsetctl's output, human and JSON, for every verb that prints something about sets, against
the files in tests/integration/golden/ (the daemon under test, the scriptable test provider on two
loop devices). What changes from run to run is put back to placeholders first: ids (<SET>,
<SNAP1>, <SNAP2>), loop devices (<LOOP1>, <LOOP2>), times and durations. SNAPSET_UPDATE_GOLDEN=1
rewrites the files from this run: read the diff before committing it."""

import json
import os
import re
import subprocess
import unittest

from snapsettest import TOP, call, main, snapsetctl

TEST_DIR = os.environ.get("SNAPSET_TEST_DIR", "")
CONTROL = os.path.join(TEST_DIR, "test-provider", "control.json")
GOLDEN = os.path.join(TOP, "tests", "integration", "golden")


class Golden(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.loops = []
        for name in ("golden-1.img", "golden-2.img"):
            img = os.path.join(TEST_DIR, name)
            with open(img, "wb") as f:
                f.truncate(16 << 20)
            cls.loops.append(subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True,
                                            check=True).stdout.strip())
        with open(CONTROL, "w") as f:
            json.dump({"volumes": cls.loops}, f)

    @classmethod
    def tearDownClass(cls):
        with open(CONTROL, "w") as f:
            json.dump({}, f)
        for loop in cls.loops:
            subprocess.run(["losetup", "-d", loop])

    def setUp(self):
        self.names = {}

    def normalize(self, text):
        for value, name in sorted(self.names.items(), key=lambda kv: -len(kv[0])):   # loop10 before loop1
            text = text.replace(value, name)
        text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d( [A-Z]+)?", "<TIME>", text)
        text = re.sub(r"\d+(\.\d+)? (ms|s|µs|us)\b", "<DURATION>", text)
        text = re.sub(r'"(createdUsec|freezeWindowUsec|holdUsec|frozenUsec|timestampUsec)":\s*\d+', r'"\1": 0', text)
        text = re.sub(r"\(\d+\s*\w+ ago\)", "(<AGO>)", text)
        text = re.sub(r'"volumeDevice":\s*"7:\d+"', '"volumeDevice": "<LOOPDEV>"', text)
        text = re.sub(r"^(Volume device:\s+)7:\d+$", r"\1<LOOPDEV>", text, flags=re.M)
        # Column widths follow the names (/dev/loop1 or /dev/loop12): the columns' content and
        # order are checked here, their alignment by the unit tests of the table.
        text = re.sub(r"(?<=\S) {2,}", "  ", text)
        return text

    def check(self, name, *args, status=0):
        out = snapsetctl(*args)
        self.assertEqual(out.returncode, status, out.stderr)
        got = self.normalize(out.stdout + ("--- stderr\n" + out.stderr if out.stderr else ""))
        path = os.path.join(GOLDEN, name + ".txt")
        if os.environ.get("SNAPSET_UPDATE_GOLDEN") == "1":
            os.makedirs(GOLDEN, exist_ok=True)
            with open(path, "w") as f:
                f.write(got)
        with open(path) as f:
            self.assertEqual(got, f.read(), "snapsetctl %s: the output differs from %s" % (" ".join(args), path))

    def test_a_set_from_create_to_delete(self):
        vols = [loop + ":provider=test" for loop in self.loops]
        out = snapsetctl("--json", "create", *vols)
        self.assertEqual(out.returncode, 0, out.stderr)
        s = json.loads(out.stdout)
        self.names = {s["id"]: "<SET>", s["snapshots"][0]["id"]: "<SNAP1>", s["snapshots"][1]["id"]: "<SNAP2>",
                      self.loops[1]: "<LOOP2>", self.loops[0]: "<LOOP1>"}
        self.check("list", "list")
        self.check("list-json", "--json", "list")
        self.check("list-sets", "list", "--sets")
        self.check("list-set", "list", "--set", s["id"])
        self.check("show-set", "show", s["id"])
        self.check("show-snapshot", "show", s["snapshots"][0]["id"])
        self.check("show-snapshot-json", "--json=pretty", "show", s["snapshots"][0]["id"])
        self.check("delete-snapshot", "delete", s["snapshots"][1]["id"])
        self.check("delete-set", "delete", s["id"])
        self.check("list-empty", "list")
        self.check("show-missing", "show", "0badc0de-0000-4000-8000-000000000000", status=26)
        self.check("delete-missing-json", "--json", "delete", "0badc0de-0000-4000-8000-000000000000", status=26)

    def test_create_prints_the_set(self):
        vols = [loop + ":provider=test" for loop in self.loops]
        out = snapsetctl("create", *vols)
        self.assertEqual(out.returncode, 0, out.stderr)
        ids = re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", out.stdout)
        self.names = {ids[0]: "<SET>", self.loops[1]: "<LOOP2>", self.loops[0]: "<LOOP1>"}
        for k, i in enumerate(dict.fromkeys(ids[1:])):
            self.names[i] = "<SNAP%d>" % (k + 1)
        got = self.normalize(out.stdout)
        path = os.path.join(GOLDEN, "create.txt")
        if os.environ.get("SNAPSET_UPDATE_GOLDEN") == "1":
            with open(path, "w") as f:
                f.write(got)
        with open(path) as f:
            self.assertEqual(got, f.read())
        self.assertNotIn("error", call("DeleteSnapshots", {"setId": ids[0]}))


if __name__ == "__main__":
    main()
