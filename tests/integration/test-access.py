#!/usr/bin/python3
"""Access control by peer credentials: root may call everything; members of the configured read
group (tests/integration/run sets ReadGroup=users, gid 100) may call read-only methods; anyone
else gets E_ACCESSDENIED for io.snapset.Manager. Introspection stays open to everyone. The clients
run as nobody through setpriv, with or without the read group as a supplementary group."""

import json
import subprocess
import unittest

from snapsettest import MANAGER, SOCKET, call, main

NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups"]
NOBODY_READER = ["--reuid=65534", "--regid=65534", "--groups=100"]

# Runs as the other user, so it must not need anything from the source tree.
CLIENT = r'''
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(json.dumps({"method": sys.argv[2], "parameters": json.loads(sys.argv[3])}).encode() + b"\0")
buf = b""
while b"\0" not in buf:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
print(buf.split(b"\0")[0].decode())
'''


def call_as(user, method, parameters=None):
    if "." not in method:
        method = MANAGER + "." + method
    out = subprocess.run(["setpriv"] + user + ["--", "/usr/bin/python3", "-c", CLIENT, SOCKET,
                          method, json.dumps(parameters or {})],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError("client as %s failed: %s" % (user, out.stderr))
    return json.loads(out.stdout)


SET_ID = {"setId": "00000000-0000-0000-0000-000000000000"}


class Access(unittest.TestCase):
    def assert_access_denied(self, r):
        self.assertEqual(r.get("error"), MANAGER + ".AccessDenied", r)
        self.assertEqual(r["parameters"]["vssName"], "E_ACCESSDENIED")
        self.assertEqual(r["parameters"]["hresult"], 0x80070005)
        self.assertTrue(r["parameters"]["message"])

    def test_a_stranger_may_not_start_a_snapshot_set(self):
        self.assert_access_denied(call_as(NOBODY, "StartSnapshotSet"))

    def test_a_stranger_may_not_read_the_status(self):
        self.assert_access_denied(call_as(NOBODY, "GetStatus"))
        self.assert_access_denied(call_as(NOBODY, "ListVolumes"))

    def test_a_stranger_may_still_introspect(self):
        r = call_as(NOBODY, "org.varlink.service.GetInfo")
        self.assertEqual(r["parameters"]["product"], "snapsetd")

    def test_a_member_of_the_read_group_may_read(self):
        for m in ("GetStatus", "ListProviders", "ListVolumes"):
            r = call_as(NOBODY_READER, m)
            self.assertNotIn("error", r, m)

    def test_a_member_of_the_read_group_may_not_change_anything(self):
        self.assert_access_denied(call_as(NOBODY_READER, "StartSnapshotSet"))
        self.assert_access_denied(call_as(NOBODY_READER, "DeleteSnapshots", SET_ID))
        self.assert_access_denied(call_as(NOBODY_READER, "AbortSnapshotSet", SET_ID))

    def test_access_is_checked_before_the_method_is_looked_at(self):
        # A stranger learns nothing about which mutating methods exist or are implemented.
        self.assert_access_denied(call_as(NOBODY, "BreakSnapshotSet", SET_ID))

    def test_root_is_not_denied(self):
        r = call("StartSnapshotSet")
        self.assertNotEqual(r.get("error"), MANAGER + ".AccessDenied")
        if "error" not in r:   # once sets exist, leave none behind
            call("AbortSnapshotSet", {"setId": r["parameters"]["setId"]})


if __name__ == "__main__":
    main()
