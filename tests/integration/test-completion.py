#!/usr/bin/python3
"""Bash completion of snapsetctl (completion/snapsetctl.bash) against the daemon under test:
commands and options as snapsetctl's own --help has them, snapshot and set ids from the daemon
(only snapshots where a snapshot is meant), set definition names, method names for call, and a command after exec's
"--". Each case runs the completion function in a bash with bash-completion loaded."""

import json
import os
import subprocess
import unittest

from snapsettest import SNAPSETCTL, TOP, call, main

TEST_DIR = os.environ.get("SNAPSET_TEST_DIR", "")
CONTROL = os.path.join(TEST_DIR, "test-provider", "control.json")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
SCRIPT = os.path.join(TOP, "completion", "snapsetctl.bash")


def complete(line):
    """The candidates bash completion offers for line (the cursor at its end)."""
    words = line.split(" ")
    prog = """
. %s
. %s
COMP_WORDS=(%s)
COMP_CWORD=%d
COMP_LINE=%s
COMP_POINT=${#COMP_LINE}
_snapsetctl snapsetctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%%s\\n' "${COMPREPLY[@]}"
""" % (BASH_COMPLETION, SCRIPT, " ".join("'%s'" % w for w in words), len(words) - 1, "'%s'" % line)
    env = dict(os.environ, PATH=os.path.dirname(SNAPSETCTL) + ":" + os.environ["PATH"])
    r = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, env=env, timeout=60)
    return [x for x in r.stdout.splitlines() if x]


@unittest.skipUnless(os.path.exists(BASH_COMPLETION), "needs bash-completion")
@unittest.skipUnless(TEST_DIR and os.geteuid() == 0, "needs root and tests/integration/run")
class Completion(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        img = os.path.join(TEST_DIR, "completion.img")
        with open(img, "wb") as f:
            f.truncate(16 << 20)
        cls.loop = subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True,
                                  check=True).stdout.strip()
        os.unlink(img)   # the loop device keeps it until it is detached
        with open(CONTROL, "w") as f:
            json.dump({"volumes": [cls.loop]}, f)
        r = call("CreateSnapshotSet", {"volumes": [{"volume": cls.loop, "provider": "test"}], "context": "persistent"})
        cls.set_id = r["parameters"]["set"]["id"]
        cls.snap_id = r["parameters"]["set"]["snapshots"][0]["id"]
        # The daemon reads its SetDefinitionDirectory at every call.
        cls.definition = os.path.join(TEST_DIR, "sets.d", "nightly.conf")
        with open(cls.definition, "w") as f:
            f.write("[Set]\nOnCalendar=daily\n\n[Volume]\nPath=%s\n" % cls.loop)

    @classmethod
    def tearDownClass(cls):
        call("DeleteSnapshots", {"setId": cls.set_id})
        os.unlink(cls.definition)
        with open(CONTROL, "w") as f:
            json.dump({}, f)
        subprocess.run(["losetup", "-d", cls.loop])

    def test_commands_and_global_options(self):
        verbs = complete("snapsetctl ")
        for v in ("status", "create", "list", "show", "delete", "exec", "expose", "unexpose", "abort", "call", "help"):
            self.assertIn(v, verbs)
        self.assertEqual(complete("snapsetctl ex"), ["exec", "expose"])
        self.assertIn("--timeout=", complete("snapsetctl --t"))
        self.assertIn("--json", complete("snapsetctl --j"))

    def test_the_options_of_a_command(self):
        self.assertEqual(sorted(complete("snapsetctl list --se")), ["--set=", "--sets"])
        self.assertIn("--device-only", complete("snapsetctl expose --"))
        self.assertIn("--keep", complete("snapsetctl exec --"))

    def test_ids_come_from_the_daemon(self):
        self.assertEqual(sorted(complete("snapsetctl show ")), sorted([self.set_id, self.snap_id]))
        self.assertEqual(complete("snapsetctl expose "), [self.snap_id])
        self.assertEqual(complete("snapsetctl list --set " + self.set_id[:4]), [self.set_id])
        self.assertEqual(complete("snapsetctl revert "), [self.snap_id])
        self.assertEqual(complete("snapsetctl break "), [self.set_id])

    def test_definition_names_come_from_the_daemon(self):
        self.assertEqual(complete("snapsetctl prune "), ["nightly"])
        self.assertEqual(complete("snapsetctl check n"), ["nightly"])
        self.assertEqual(complete("snapsetctl create --definition=n"), ["nightly"])
        self.assertIn("--dry-run", complete("snapsetctl prune --"))

    def test_method_names_and_a_command_after_exec(self):
        self.assertEqual(sorted(complete("snapsetctl call io.snapset.Manager.GetS")),
                         ["io.snapset.Manager.GetSnapshot", "io.snapset.Manager.GetStatus"])
        self.assertIn("echo", complete("snapsetctl exec /dev/null -- ech"))


if __name__ == "__main__":
    main()
