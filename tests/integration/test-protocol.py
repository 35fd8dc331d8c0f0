#!/usr/bin/python3
"""The varlink protocol as snapsetd speaks it, byte by byte: introspection, the standard errors,
strict parsing (a malformed message closes the connection), oneway, more, pipelining, the 16 MiB
cap, and clients that misbehave without wedging the daemon."""

import json
import os
import socket
import threading
import time
import unittest

from snapsettest import MANAGER, TOP, Connection, call, daemon_alive, main

SERVICE = "org.varlink.service"


class Introspection(unittest.TestCase):
    def test_get_info_names_the_service_and_both_interfaces(self):
        r = call(SERVICE + ".GetInfo")
        p = r["parameters"]
        self.assertEqual(p["product"], "snapsetd")
        self.assertTrue(p["version"])
        self.assertEqual(sorted(p["interfaces"]), [MANAGER, SERVICE])
        self.assertNotIn("error", r)

    def test_interface_description_is_the_exact_idl_text_of_the_tree(self):
        for name in (MANAGER, SERVICE):
            with open(os.path.join(TOP, "common", name + ".varlink")) as f:
                text = f.read()
            r = call(SERVICE + ".GetInterfaceDescription", {"interface": name})
            self.assertEqual(r["parameters"]["description"], text)

    def test_unknown_interface_is_interface_not_found_naming_it(self):
        r = call(SERVICE + ".GetInterfaceDescription", {"interface": "com.example.Nope"})
        self.assertEqual(r["error"], SERVICE + ".InterfaceNotFound")
        self.assertEqual(r["parameters"]["interface"], "com.example.Nope")
        r = call("com.example.Nope.Method")
        self.assertEqual(r["error"], SERVICE + ".InterfaceNotFound")
        self.assertEqual(r["parameters"]["interface"], "com.example.Nope")


class StandardErrors(unittest.TestCase):
    def test_unknown_method_is_method_not_found_naming_it(self):
        r = call("NoSuchMethod")
        self.assertEqual(r["error"], SERVICE + ".MethodNotFound")
        self.assertEqual(r["parameters"]["method"], MANAGER + ".NoSuchMethod")

    def test_declared_but_unimplemented_method_is_method_not_implemented(self):
        r = call("BreakSnapshotSet", {"setId": "00000000-0000-0000-0000-000000000000"})
        self.assertEqual(r["error"], SERVICE + ".MethodNotImplemented")
        self.assertEqual(r["parameters"]["method"], MANAGER + ".BreakSnapshotSet")

    def test_unknown_parameter_is_invalid_parameter_naming_it(self):
        r = call("GetStatus", {"bogus": 1})
        self.assertEqual(r["error"], SERVICE + ".InvalidParameter")
        self.assertEqual(r["parameters"]["parameter"], "bogus")

    def test_wrongly_typed_parameter_is_invalid_parameter_naming_it(self):
        r = call(SERVICE + ".GetInterfaceDescription", {"interface": 5})
        self.assertEqual(r["error"], SERVICE + ".InvalidParameter")
        self.assertEqual(r["parameters"]["parameter"], "interface")

    def test_missing_mandatory_parameter_is_invalid_parameter_naming_it(self):
        r = call(SERVICE + ".GetInterfaceDescription", {})
        self.assertEqual(r["error"], SERVICE + ".InvalidParameter")
        self.assertEqual(r["parameters"]["parameter"], "interface")

    def test_parameters_missing_null_or_empty_are_all_accepted(self):
        with Connection() as c:
            for msg in ({"method": MANAGER + ".GetStatus"},
                        {"method": MANAGER + ".GetStatus", "parameters": None},
                        {"method": MANAGER + ".GetStatus", "parameters": {}}):
                c.send(msg)
                r = c.recv()
                self.assertNotIn("error", r, msg)
                self.assertIn("version", r["parameters"])


class MalformedMessagesCloseTheConnection(unittest.TestCase):
    def assert_closed(self, data):
        with Connection() as c:
            c.send(data)
            self.assertTrue(c.closed_by_peer(), data[:80])
        # ... and the daemon goes on serving everybody else.
        self.assertIn("version", call("GetStatus")["parameters"])

    def test_invalid_json(self):
        self.assert_closed(b'{"method": "io.snapset.Manager.GetStatus",\0')

    def test_trailing_garbage_after_the_object(self):
        self.assert_closed(b'{"method": "io.snapset.Manager.GetStatus"} xyz\0')

    def test_a_message_that_is_not_an_object(self):
        self.assert_closed(b'[1, 2, 3]\0')

    def test_an_empty_message(self):
        self.assert_closed(b'\0')

    def test_an_unknown_key(self):
        self.assert_closed(b'{"method": "io.snapset.Manager.GetStatus", "colour": "blue"}\0')

    def test_a_method_that_is_not_a_string(self):
        self.assert_closed(b'{"method": 7}\0')

    def test_a_missing_method(self):
        self.assert_closed(b'{"parameters": {}}\0')

    def test_a_malformed_method_name(self):
        self.assert_closed(b'{"method": "GetStatus"}\0')

    def test_parameters_that_are_not_an_object(self):
        self.assert_closed(b'{"method": "io.snapset.Manager.GetStatus", "parameters": [1]}\0')

    def test_oneway_that_is_not_a_boolean(self):
        self.assert_closed(b'{"method": "io.snapset.Manager.GetStatus", "oneway": 1}\0')

    def test_oneway_and_more_together(self):
        self.assert_closed(b'{"method": "io.snapset.Manager.Monitor", "oneway": true, "more": true}\0')

    def test_a_message_over_16_mib(self):
        with Connection(timeout=30) as c:
            chunk = b'{"method": "io.snapset.Manager.GetStatus", "parameters": {"x": "' + b"a" * 65536
            try:
                for _ in range(16 * 16 + 2):  # a little over 16 MiB, never terminated
                    c.send(chunk if _ == 0 else b"a" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.assertTrue(c.closed_by_peer())
        self.assertIn("version", call("GetStatus")["parameters"])


class CallFlags(unittest.TestCase):
    def test_oneway_call_gets_no_reply_not_even_an_error(self):
        with Connection() as c:
            c.send({"method": MANAGER + ".GetStatus", "oneway": True})
            c.send({"method": MANAGER + ".NoSuchMethod", "oneway": True})
            c.send({"method": SERVICE + ".GetInfo"})
            r = c.recv()
            self.assertEqual(r["parameters"]["product"], "snapsetd")
            c.sock.settimeout(0.5)
            with self.assertRaises(socket.timeout):
                c.recv()

    def test_streaming_method_with_more_sends_replies_that_continue(self):
        with Connection() as c:
            r = c.call("Monitor", more=True)
            self.assertNotIn("error", r)
            self.assertTrue(r.get("continues"))
            self.assertIn("event", r["parameters"])

    def test_streaming_method_without_more_is_expected_more(self):
        r = call("Monitor")
        self.assertEqual(r["error"], SERVICE + ".ExpectedMore")

    def test_more_on_a_plain_method_gets_one_final_reply(self):
        with Connection() as c:
            r = c.call("GetStatus", more=True)
            self.assertIn("version", r["parameters"])
            self.assertFalse(r.get("continues", False))

    def test_pipelined_calls_are_answered_in_order(self):
        n = 300
        calls = []
        for i in range(n):
            if i % 3 == 0:
                calls.append({"method": SERVICE + ".GetInfo"})
            elif i % 3 == 1:
                calls.append({"method": MANAGER + ".GetStatus"})
            else:
                calls.append({"method": MANAGER + ".NoSuchMethod%d" % i})
        with Connection() as c:
            c.send(b"".join(json.dumps(m).encode() + b"\0" for m in calls))
            for i in range(n):
                r = c.recv()
                if i % 3 == 0:
                    self.assertEqual(r["parameters"]["product"], "snapsetd")
                elif i % 3 == 1:
                    self.assertIn("uptimeUsec", r["parameters"])
                else:
                    self.assertEqual(r["parameters"]["method"], MANAGER + ".NoSuchMethod%d" % i)

    def test_a_call_split_into_single_bytes_is_understood(self):
        with Connection() as c:
            for b in json.dumps({"method": SERVICE + ".GetInfo"}).encode() + b"\0":
                c.sock.send(bytes([b]))
            self.assertEqual(c.recv()["parameters"]["product"], "snapsetd")


class HostileClients(unittest.TestCase):
    def test_a_client_that_never_reads_its_replies_does_not_wedge_the_daemon(self):
        hog = Connection()
        call_bytes = json.dumps({"method": SERVICE + ".GetInterfaceDescription",
                                 "parameters": {"interface": MANAGER}}).encode() + b"\0"
        hog.sock.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sent < 20000:
            try:
                hog.sock.send(call_bytes)
                sent += 1
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                time.sleep(0.01)
        start = time.monotonic()
        self.assertIn("version", call("GetStatus")["parameters"])
        self.assertLess(time.monotonic() - start, 2.0)
        hog.close()
        self.assertTrue(daemon_alive())

    def test_idle_connections_are_closed_after_the_idle_timeout(self):
        # tests/integration/run configures IdleTimeoutSec=3.
        with Connection(timeout=15) as c:
            start = time.monotonic()
            self.assertTrue(c.closed_by_peer())
            self.assertGreaterEqual(time.monotonic() - start, 2.5)

    def test_connections_past_the_per_user_cap_are_refused_and_the_daemon_recovers(self):
        # MaxConnectionsPerUser=12 in the test configuration.
        conns = [Connection() for _ in range(12)]
        try:
            for c in conns:
                self.assertIn("version", c.call("GetStatus")["parameters"])
            extra = Connection()
            try:
                r = extra.call("GetStatus")
            except (ConnectionResetError, BrokenPipeError):
                r = None
            self.assertTrue(r is None or "error" in r, r)
            extra.close()
        finally:
            for c in conns:
                c.close()
        time.sleep(0.2)
        self.assertIn("version", call("GetStatus")["parameters"])

    def test_many_clients_at_once_are_all_served(self):
        errors = []

        def worker():
            try:
                for _ in range(20):
                    r = call("GetStatus")
                    if "version" not in r["parameters"]:
                        errors.append(r)
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(e)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])


if __name__ == "__main__":
    main()
