#!/usr/bin/python3
"""Snapshot-set semantics that need no device-mapper, against the real daemon on the host: the one
creation lock (two racing clients, release on Do, on Abort, on disconnect, on idle), validation of
every input with the code and the object named, and the streamed lists. The device-mapper side
(real snapshots, consistency, failure injection) is proven in the VM tier."""

import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from snapsettest import MANAGER, Connection, call, main

ZERO = "00000000-0000-0000-0000-000000000000"


def error_name(r):
    return r.get("error", "").rsplit(".", 1)[-1]


class Lock(unittest.TestCase):
    def test_two_clients_racing_start_exactly_one_wins(self):
        conns = [Connection(), Connection()]
        results = [None, None]
        barrier = threading.Barrier(2)

        def start(i):
            barrier.wait()
            results[i] = conns[i].call("StartSnapshotSet", {"context": "backup"})

        threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [r for r in results if "error" not in r]
        losers = [r for r in results if "error" in r]
        self.assertEqual(len(winners), 1, results)
        self.assertEqual(len(losers), 1, results)
        self.assertEqual(error_name(losers[0]), "SnapshotSetInProgress")
        self.assertEqual(losers[0]["parameters"]["hresult"], 0x80042316)
        self.assertEqual(losers[0]["parameters"]["setId"], winners[0]["parameters"]["setId"])
        for c in conns:
            c.close()

    def test_the_lock_is_released_when_the_owner_disconnects(self):
        with Connection() as owner:
            r = owner.call("StartSnapshotSet")
            set_id = r["parameters"]["setId"]
            status = call("GetStatus")["parameters"]
            self.assertEqual(status["setInProgress"]["id"], set_id)
            self.assertEqual(status["setInProgress"]["phase"], "adding")
        time.sleep(0.3)
        self.assertIsNone(call("GetStatus")["parameters"]["setInProgress"])
        with Connection() as c:
            r = c.call("StartSnapshotSet")
            self.assertNotIn("error", r)

    def test_abort_releases_the_lock_and_any_root_client_may_abort(self):
        with Connection() as owner, Connection() as admin:
            set_id = owner.call("StartSnapshotSet")["parameters"]["setId"]
            self.assertEqual(error_name(admin.call("StartSnapshotSet")), "SnapshotSetInProgress")
            self.assertNotIn("error", admin.call("AbortSnapshotSet", {"setId": set_id}))
            self.assertNotIn("error", admin.call("StartSnapshotSet"))

    def test_do_without_volumes_is_invalid_and_releases_nothing_else(self):
        with Connection() as c:
            set_id = c.call("StartSnapshotSet")["parameters"]["setId"]
            r = c.call("DoSnapshotSet", {"setId": set_id})
            self.assertEqual(error_name(r), "InvalidArgument")
            c.call("AbortSnapshotSet", {"setId": set_id})

    def test_another_connection_cannot_use_a_set_it_did_not_start(self):
        with Connection() as owner, Connection() as other:
            set_id = owner.call("StartSnapshotSet")["parameters"]["setId"]
            r = other.call("AddToSnapshotSet", {"setId": set_id, "volume": "/dev/null"})
            self.assertEqual(error_name(r), "BadState")
            self.assertEqual(r["parameters"]["setId"], set_id)

    def test_an_unsupported_context_is_refused(self):
        r = call("StartSnapshotSet", {"context": "forever"})
        self.assertEqual(error_name(r), "UnsupportedContext")
        self.assertIn("forever", r["parameters"]["message"])


class Validation(unittest.TestCase):
    def setUp(self):
        self.c = Connection()
        self.set_id = self.c.call("StartSnapshotSet")["parameters"]["setId"]

    def tearDown(self):
        self.c.call("AbortSnapshotSet", {"setId": self.set_id})
        self.c.close()

    def add(self, volume, **extra):
        p = {"setId": self.set_id, "volume": volume}
        p.update(extra)
        return self.c.call("AddToSnapshotSet", p)

    def test_a_missing_path_is_object_not_found_naming_it(self):
        r = self.add("/dev/no-such-volume")
        self.assertEqual(error_name(r), "ObjectNotFound")
        self.assertEqual(r["parameters"]["volume"], "/dev/no-such-volume")
        self.assertEqual(r["parameters"]["hresult"], 0x80042308)

    def test_a_file_that_is_not_a_block_device_is_invalid_argument(self):
        with tempfile.NamedTemporaryFile() as f:
            r = self.add(f.name)
            self.assertEqual(error_name(r), "InvalidArgument")
            self.assertEqual(r["parameters"]["volume"], f.name)

    def test_a_relative_path_is_invalid_argument(self):
        self.assertEqual(error_name(self.add("dev/sda")), "InvalidArgument")

    def test_a_device_no_provider_takes_is_volume_not_supported_with_the_reason(self):
        r = self.add(self.loop_device())
        self.assertEqual(error_name(r), "VolumeNotSupported")
        self.assertIn("device-mapper", r["parameters"]["message"])

    def test_an_unknown_provider_is_provider_not_registered(self):
        r = self.add(self.loop_device(), provider="acme-san")
        self.assertEqual(error_name(r), "ProviderNotRegistered")
        self.assertEqual(r["parameters"]["provider"], "acme-san")

    def test_a_named_provider_that_refuses_is_not_supported_by_provider(self):
        r = self.add(self.loop_device(), provider="dm-snapshot")
        self.assertEqual(error_name(r), "VolumeNotSupportedByProvider")
        self.assertEqual(r["parameters"]["provider"], "dm-snapshot")

    def test_malformed_and_unknown_set_ids(self):
        r = self.c.call("AddToSnapshotSet", {"setId": "not-a-uuid", "volume": "/dev/null"})
        self.assertEqual(error_name(r), "InvalidArgument")
        self.assertIn("not-a-uuid", r["parameters"]["message"])
        r = self.c.call("DoSnapshotSet", {"setId": ZERO})
        self.assertEqual(error_name(r), "ObjectNotFound")
        self.assertEqual(r["parameters"]["setId"], ZERO)

    @unittest.skipUnless(shutil.which("mkfs.btrfs") and "btrfs" in open("/proc/filesystems").read(),
                         "needs btrfs-progs and a kernel with btrfs")
    def test_btrfs_is_refused_with_the_reason_for_its_device_and_its_directories(self):
        # btrfs reports an anonymous device for its files and may span devices: freezing "its"
        # block device is not possible, so it is refused, with what to use instead.
        img = os.path.join(os.environ.get("SNAPSET_TEST_DIR", "/tmp"), "sets-btrfs.img")
        with open(img, "wb") as f:
            f.truncate(128 << 20)
        self.addCleanup(os.unlink, img)
        loop = subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True,
                              check=True).stdout.strip()
        self.addCleanup(subprocess.run, ["losetup", "-d", loop])
        subprocess.run(["mkfs.btrfs", "-q", "-f", loop], check=True, capture_output=True)
        mnt = tempfile.mkdtemp(dir=os.environ.get("SNAPSET_TEST_DIR", "/tmp"))
        self.addCleanup(os.rmdir, mnt)
        subprocess.run(["mount", loop, mnt], check=True)
        self.addCleanup(subprocess.run, ["umount", mnt])
        os.mkdir(os.path.join(mnt, "data"))
        for volume in (loop, mnt, os.path.join(mnt, "data")):
            with self.subTest(volume=volume):
                r = self.add(volume)
                self.assertEqual(error_name(r), "VolumeNotSupported", r)
                self.assertEqual(r["parameters"]["hresult"], 0x8004230C)
                self.assertIn("btrfs", r["parameters"]["message"])
                self.assertIn("btrfs subvolume snapshot", r["parameters"]["message"])
        # Nothing was frozen: the filesystem takes a write at once.
        with open(os.path.join(mnt, "data", "f"), "w") as f:
            f.write("still writable")
            os.fsync(f.fileno())

    def loop_device(self):
        if not hasattr(self, "_loop"):
            img = os.path.join(os.environ.get("SNAPSET_TEST_DIR", "/tmp"), "sets-loop.img")
            with open(img, "wb") as f:
                f.truncate(16 << 20)
            self._loop = subprocess.run(["losetup", "-f", "--show", img], capture_output=True,
                                        text=True, check=True).stdout.strip()
            self.addCleanup(subprocess.run, ["losetup", "-d", self._loop])
        return self._loop


class Queries(unittest.TestCase):
    def test_listing_with_no_sets_streams_one_empty_reply(self):
        with Connection() as c:
            r = c.call("ListSnapshotSets", more=True)
            self.assertNotIn("error", r)
            self.assertFalse(r.get("continues", False))
            self.assertNotIn("set", r["parameters"])
            r = c.call("ListSnapshots", {}, more=True)
            self.assertNotIn("snapshot", r["parameters"])

    def test_unknown_and_malformed_ids_are_named(self):
        r = call("GetSnapshot", {"snapshotId": ZERO})
        self.assertEqual(error_name(r), "ObjectNotFound")
        self.assertEqual(r["parameters"]["snapshotId"], ZERO)
        r = call("GetSnapshot", {"snapshotId": "../../etc"})
        self.assertEqual(error_name(r), "InvalidArgument")
        r = call("DeleteSnapshots", {"setId": ZERO})
        self.assertEqual(error_name(r), "ObjectNotFound")
        r = call("DeleteSnapshots", {"oldestOfVolume": "/dev/no-such"})
        self.assertEqual(error_name(r), "ObjectNotFound")
        r = call("ListSnapshots", {"setId": ZERO}, more=True)
        self.assertEqual(error_name(r), "ObjectNotFound")

    def test_delete_needs_exactly_one_selector(self):
        self.assertEqual(error_name(call("DeleteSnapshots", {})), "InvalidArgument")
        r = call("DeleteSnapshots", {"setId": ZERO, "snapshotId": ZERO})
        self.assertEqual(error_name(r), "InvalidArgument")

    def test_create_with_a_bad_volume_leaves_no_set_in_creation(self):
        r = call("CreateSnapshotSet", {"volumes": [{"volume": "/dev/no-such-volume"}]})
        self.assertEqual(error_name(r), "ObjectNotFound")
        self.assertIsNone(call("GetStatus")["parameters"]["setInProgress"])
        r = call("CreateSnapshotSet", {"volumes": []})
        self.assertEqual(error_name(r), "InvalidArgument")
        r = call("CreateSnapshotSet", {"volumes": [{"volume": "/dev/x", "colour": 1}]})
        self.assertEqual(r["error"], "org.varlink.service.InvalidParameter")


class IdleTimeout(unittest.TestCase):
    def test_a_set_left_idle_is_aborted(self):
        # tests/integration/run configures SetIdleTimeoutSec=2 (and IdleTimeoutSec=3, which
        # may close the owner's connection too once it no longer owns a set).
        with Connection(timeout=20) as owner:
            set_id = owner.call("StartSnapshotSet")["parameters"]["setId"]
            time.sleep(2.6)
            self.assertIsNone(call("GetStatus")["parameters"]["setInProgress"])
            try:
                r = owner.call("DoSnapshotSet", {"setId": set_id})
            except (BrokenPipeError, ConnectionResetError):
                r = None
            self.assertTrue(r is None or error_name(r) == "ObjectNotFound", r)
            self.assertNotIn("error", call("StartSnapshotSet"))


if __name__ == "__main__":
    main()
