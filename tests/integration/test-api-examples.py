#!/usr/bin/python3
"""The Python examples of io.snapset.Manager(7) run as printed, against the daemon under test:
the python3-varlink one on two loop devices with filesystems (taken by the scriptable test
provider), its copies checked; the one without a library prints the daemon's version. Only the
socket, the volumes and the backup directory are put in for the page's."""

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

from snapsettest import SOCKET, TOP, call, main, make_fs_loop

TEST_DIR = os.environ.get("SNAPSET_TEST_DIR", "")
CONTROL = os.path.join(TEST_DIR, "test-provider", "control.json")
PAGE = os.path.join(TOP, "man", "io.snapset.Manager.7")


def python_examples():
    with open(PAGE) as f:
        text = f.read()
    blocks = re.findall(r"^\.EX\n(.*?)^\.EE\n", text, re.S | re.M)
    out = []
    for b in blocks:
        if "import " not in b:
            continue
        b = b.replace("\\e", "\\").replace("\\-", "-").replace("\\(aq", "'").replace("\\(dq", '"')
        out.append(b)
    return out


class Examples(unittest.TestCase):
    def run_example(self, code):
        code = code.replace("/run/snapset/io.snapset.Manager", SOCKET)
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    def test_the_page_has_both_examples(self):
        self.assertEqual(len(python_examples()), 2)

    @unittest.skipUnless(TEST_DIR and os.geteuid() == 0, "needs root and tests/integration/run")
    def test_the_python3_varlink_example_backs_up_both_volumes(self):
        try:
            import varlink  # noqa: F401
        except ImportError:
            self.skipTest("python3-varlink is not installed")
        d = tempfile.mkdtemp(dir=TEST_DIR)
        loops = [make_fs_loop(d, "db", "ext4", "the database\n"), make_fs_loop(d, "log", "ext4", "the log\n")]
        self.addCleanup(lambda: [subprocess.run(["losetup", "-d", x]) for x in loops])
        with open(CONTROL, "w") as f:
            json.dump({"volumes": loops}, f)
        self.addCleanup(lambda: open(CONTROL, "w").write("{}"))
        backup = os.path.join(d, "backup")
        os.mkdir(backup)
        code = python_examples()[0].replace('"/srv/db"', json.dumps(loops[0])).replace('"/srv/log"', json.dumps(loops[1]))
        code = code.replace('"/backup/"', json.dumps(backup + "/"))
        r = self.run_example(code)
        self.assertEqual(r.returncode, 0, r.stderr)
        for loop, content in zip(loops, ("the database\n", "the log\n")):
            with open(os.path.join(backup, loop.strip("/").replace("/", "-"), "data")) as f:
                self.assertEqual(f.read(), content)
        # The backup set went with the example's connection.
        sets = call("ListSnapshotSets", more=True)
        self.assertNotIn("set", sets.get("parameters", {}), sets)

    def test_the_example_without_a_library_prints_the_version(self):
        r = self.run_example(python_examples()[1])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), call("GetStatus")["parameters"]["version"])


if __name__ == "__main__":
    main()
