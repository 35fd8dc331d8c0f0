#!/usr/bin/python3
"""The benchmark's host half never rots (bench/README.md): bench/api-bench.py --smoke against a
daemon of its own, and bench/report.py on what it printed, give every number and a report."""

import json
import os
import subprocess
import tempfile
import unittest

from snapsettest import BUILDDIR, TOP, main


class BenchSmoke(unittest.TestCase):
    def test_the_api_half_measures_everything_and_the_report_is_written(self):
        builddir = BUILDDIR if os.path.isabs(BUILDDIR) else os.path.join(TOP, BUILDDIR)
        r = subprocess.run([os.path.join(TOP, "bench", "api-bench.py"), "--smoke", "--builddir", builddir],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        api = json.loads(r.stdout)
        for s in api["getStatus"]:
            self.assertEqual(s["errors"], 0, s)
            self.assertGreater(s["p50Usec"], 0)
        self.assertEqual(api["listSnapshots"]["snapshots"], 200)
        self.assertLessEqual(api["listSnapshots"]["receivedMedianMs"], api["listSnapshots"]["medianMs"])
        self.assertGreater(api["idleRssKib"], 0)
        self.assertGreaterEqual(api["set64"]["peakRssKib"], api["idleRssKib"])
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "api.json")
            with open(path, "w") as f:
                f.write(r.stdout)
            rep = subprocess.run([os.path.join(TOP, "bench", "report.py"), "--out", d, "--name", "smoke", path],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(rep.returncode, 0, rep.stderr)
            self.assertIn("GetStatus", rep.stdout)
            with open(os.path.join(d, "smoke.md")) as f:
                md = f.read()
            self.assertIn("ListSnapshots of 200 snapshots, until the last reply is in", md)
            self.assertIn('"getStatus"', md)


if __name__ == "__main__":
    main()
