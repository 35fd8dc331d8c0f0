#!/usr/bin/python3
"""A third-party client, Debian's python3-varlink, against snapsetd: it fetches and parses our
interface definition, and checks every reply against the types declared there."""

import os
import unittest

from snapsettest import MANAGER, SOCKET, TOP, main

try:
    import varlink
except ImportError:
    varlink = None


@unittest.skipIf(varlink is None, "python3-varlink is not installed (tools/install-deps installs it)")
class PythonVarlink(unittest.TestCase):
    def setUp(self):
        self.client = varlink.Client(address="unix:" + SOCKET)

    def tearDown(self):
        self.client.cleanup()

    def test_the_library_parses_our_interface_definition(self):
        iface = self.client.get_interface(MANAGER)
        self.assertEqual(iface.name, MANAGER)
        with open(os.path.join(TOP, "common", MANAGER + ".varlink")) as f:
            local = varlink.Interface(f.read())
        self.assertEqual(sorted(iface.members), sorted(local.members))
        for m in ("StartSnapshotSet", "AddToSnapshotSet", "DoSnapshotSet", "CreateSnapshotSet",
                  "ListSnapshotSets", "DeleteSnapshots", "GetStatus", "ListProviders", "ListVolumes",
                  "SnapshotSetInProgress", "UnexpectedProviderError"):
            self.assertIn(m, iface.members)

    def test_get_info_through_the_library(self):
        with self.client.open("org.varlink.service") as con:
            info = con.GetInfo()
        self.assertEqual(info["product"], "snapsetd")
        self.assertIn(MANAGER, info["interfaces"])

    def test_replies_match_the_declared_types(self):
        with self.client.open(MANAGER) as con:
            status = con.GetStatus()
            self.assertGreaterEqual(status["uptimeUsec"], 0)
            self.assertGreaterEqual(status["limits"]["maxVolumesPerSet"], 1)
            providers = con.ListProviders()["providers"]
            self.assertEqual([p["name"] for p in providers][:3], ["lvm", "dm-thin", "dm-snapshot"])
            volumes = con.ListVolumes()["volumes"]
            self.assertIsInstance(volumes, list)

    def test_errors_arrive_as_varlink_errors_with_their_vss_fields(self):
        with self.client.open(MANAGER) as con:
            with self.assertRaises(varlink.VarlinkError) as cm:
                con.BreakSnapshotSet("00000000-0000-0000-0000-000000000000")
        self.assertEqual(cm.exception.error(), MANAGER + ".ObjectNotFound")
        self.assertEqual(cm.exception.parameters()["vssName"], "VSS_E_OBJECT_NOT_FOUND")
        self.assertEqual(cm.exception.parameters()["setId"], "00000000-0000-0000-0000-000000000000")

    def test_streaming_with_more(self):
        with self.client.open(MANAGER) as con:
            events = con.Monitor(_more=True)
            first = next(events)
            self.assertIn("type", first["event"])


if __name__ == "__main__":
    main()
