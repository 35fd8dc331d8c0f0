#!/usr/bin/python3
"""The benchmark's host half (bench/README.md): the API of a real snapsetd on a temporary socket,
with the scriptable external test provider (tests/provider) taking loop devices, so that
snapshots are cheap and no device-mapper is needed.

  bench/api-bench.py [--smoke] [--builddir DIR] > api.json

Measures GetStatus round trips (p50, p99) with 1 client and with 64 concurrent clients (each a
process of its own, on its own connection), ListSnapshots of 10 000 snapshots (made through the
API: sets of 40 loop devices), the daemon's resident memory idle, with the snapshots loaded, and
its peak during a set of 64 volumes. --smoke: a few calls, 4 clients, 200 snapshots (make check).
Runs as root (loop devices). Prints one JSON object."""

import argparse
import collections
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
MANAGER = "io.snapset.Manager"


class Client:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(120)
        self.s.connect(path)
        self.partial = b""
        self.ready = collections.deque()

    def recv(self):
        # Every message of a chunk split off at once: a streamed reply of 10 000 messages arrives
        # in a few large chunks, and splitting one message at a time would copy the rest each time.
        while not self.ready:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("snapsetd closed the connection")
            *msgs, self.partial = (self.partial + chunk).split(b"\0")
            self.ready.extend(msgs)
        return json.loads(self.ready.popleft())

    def call(self, method, parameters=None, more=False):
        m = {"method": MANAGER + "." + method, "parameters": parameters or {}}
        if more:
            m["more"] = True
        self.s.sendall(json.dumps(m).encode() + b"\0")
        return self.recv()

    def stream_raw(self, method):
        """Calls method with "more" and returns the bytes of every reply, not parsed, once the
        final one (the first without "continues") is in: to time the daemon apart from the
        client's decoding. On a connection with no reply pending (nothing buffered by recv)."""
        self.s.sendall(json.dumps({"method": MANAGER + "." + method, "parameters": {}, "more": True}).encode() + b"\0")
        chunks, tail = [], b""
        while True:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("snapsetd closed the connection")
            chunks.append(chunk)
            tail = (tail + chunk)[-65536:]
            if tail.endswith(b"\0") and not json.loads(tail[:-1].rsplit(b"\0", 1)[-1]).get("continues"):
                return b"".join(chunks)

    def close(self):
        self.s.close()


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def status_client(args):
    path, calls, barrier_path = args
    c = Client(path)
    while not os.path.exists(barrier_path):   # every client connected before the first call
        time.sleep(0.001)
    lat = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        r = c.call("GetStatus")
        lat.append((time.perf_counter_ns() - t0) / 1000.0)
        if "error" in r:
            return {"error": r["error"]}
    c.close()
    return {"latencies": lat}


def get_status_round_trips(path, clients, calls, work):
    barrier = os.path.join(work, "go-%d" % clients)
    with multiprocessing.Pool(clients) as pool:
        pending = pool.map_async(status_client, [(path, calls, barrier)] * clients)
        time.sleep(0.5)
        open(barrier, "w").close()
        results = pending.get(timeout=600)
    errors = [r["error"] for r in results if "error" in r]
    lat = [x for r in results if "latencies" in r for x in r["latencies"]]
    return {"clients": clients, "calls": len(lat), "errors": len(errors),
            "p50Usec": round(percentile(lat, 50), 1) if lat else None,
            "p99Usec": round(percentile(lat, 99), 1) if lat else None}


def rss_kib(pid, field="VmRSS", source="status"):
    """A figure of /proc/PID/status (or smaps_rollup: Pss, shared pages counted in part), in KiB."""
    with open("/proc/%d/%s" % (pid, source)) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


class Daemon:
    """snapsetd with the test provider taking the given loop devices, in a scratch directory."""

    def __init__(self, builddir, work, loops):
        self.work = work
        self.sock = os.path.join(work, "io.snapset.Manager")
        control = os.path.join(work, "control.json")
        with open(control, "w") as f:
            json.dump({"volumes": loops, "methods": {}}, f)
        os.makedirs(os.path.join(work, "providers.d"), exist_ok=True)
        with open(os.path.join(work, "providers.d", "test.provider"), "w") as f:
            f.write("[Provider]\nExecutable=%s\nPriority=50\nTimeout=30\n\n[Settings]\nControl=%s\nState=%s\n" %
                    (os.path.join(TOP, "tests", "provider", "snapset-test-provider"), control,
                     os.path.join(work, "state.jsonl")))
        conf = os.path.join(work, "snapsetd.conf")
        with open(conf, "w") as f:
            f.write("[Daemon]\nProviderDirectory=%s\n[Limits]\nMaxVolumesPerSet=64\n"
                    "MaxSnapshotsPerVolume=512\nMaxConnections=256\nIdleTimeoutSec=0\n" %
                    os.path.join(work, "providers.d"))
        self.proc = subprocess.Popen([os.path.join(builddir, "snapsetd"), "--config", conf, "--socket", self.sock,
                                      "--state-dir", os.path.join(work, "state"), "--log-level", "warning"],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "snapsetd.log"), "w"))
        for _ in range(200):
            if os.path.exists(self.sock):
                return
            time.sleep(0.05)
        raise RuntimeError("snapsetd did not start; see %s/snapsetd.log" % work)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def create_set(c, volumes):
    r = c.call("CreateSnapshotSet", {"volumes": [{"volume": v, "provider": "test"} for v in volumes],
                                     "context": "persistent"})
    if "error" in r:
        raise RuntimeError("CreateSnapshotSet failed: %s" % r)
    return r["parameters"]["set"]["id"]


def list_snapshots(path):
    """ListSnapshots of everything: (snapshots, ms until the final reply is in, ms until every
    reply is also parsed). The first is what the daemon takes (reading the bytes costs the client
    little); the second what a Python client that decodes every message sees."""
    c = Client(path)
    t0 = time.perf_counter()
    raw = c.stream_raw("ListSnapshots")
    t1 = time.perf_counter()
    msgs = [json.loads(m) for m in raw.split(b"\0") if m]
    t2 = time.perf_counter()
    c.close()
    for r in msgs:
        if "error" in r:
            raise RuntimeError("ListSnapshots failed: %s" % r)
    n = sum(1 for r in msgs if "snapshot" in r.get("parameters", {}))
    return n, (t1 - t0) * 1000.0, (t2 - t0) * 1000.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--builddir", default=os.path.join(TOP, "build"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("api-bench: run as root (it makes loop devices)")

    calls, many, n_loops, n_sets = (20, 4, 8, 25) if a.smoke else (2000, 64, 40, 250)
    work = tempfile.mkdtemp(prefix="snapset-bench-")
    loops, daemon = [], None
    try:
        for i in range(max(n_loops, 64)):
            img = os.path.join(work, "loop%d.img" % i)
            with open(img, "wb") as f:
                f.truncate(1 << 20)
            loops.append(subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True,
                                        check=True).stdout.strip())
        daemon = Daemon(a.builddir, work, loops)
        out = {"host": os.uname().nodename, "kernel": os.uname().release, "smoke": a.smoke,
               "idleRssKib": rss_kib(daemon.proc.pid),
               # Of it, the daemon's own (not shared library pages, which every process shares).
               "idleRssAnonKib": rss_kib(daemon.proc.pid, "RssAnon"),
               # What it costs the machine: each shared page divided among the processes mapping it.
               "idlePssKib": rss_kib(daemon.proc.pid, "Pss", "smaps_rollup")}
        out["getStatus"] = [get_status_round_trips(daemon.sock, 1, calls, work),
                            get_status_round_trips(daemon.sock, many, max(10, calls // 20), work)]

        # Peak memory during a set of 64 volumes (VmHWM: the most ever resident).
        c = Client(daemon.sock)
        before = rss_kib(daemon.proc.pid, "VmHWM")
        t0 = time.perf_counter()
        big = create_set(c, loops[:64])
        out["set64"] = {"createMs": round((time.perf_counter() - t0) * 1000.0, 1),
                        "peakRssKibBefore": before, "peakRssKib": rss_kib(daemon.proc.pid, "VmHWM")}
        c.call("DeleteSnapshots", {"setId": big})

        t0 = time.perf_counter()
        for _ in range(n_sets):
            create_set(c, loops[:n_loops])
        made = time.perf_counter() - t0
        c.close()
        times, received = [], []
        for _ in range(5):
            n, in_ms, ms = list_snapshots(daemon.sock)
            received.append(in_ms)
            times.append(ms)
        out["listSnapshots"] = {"snapshots": n, "medianMs": round(statistics.median(times), 1),
                                "minMs": round(min(times), 1), "maxMs": round(max(times), 1),
                                "receivedMedianMs": round(statistics.median(received), 1),
                                "receivedMinMs": round(min(received), 1),
                                "receivedMaxMs": round(max(received), 1),
                                "createdInSec": round(made, 1)}
        out["loadedRssKib"] = rss_kib(daemon.proc.pid)
        json.dump(out, sys.stdout)
        print()
    finally:
        if daemon:
            daemon.stop()
        for loop in loops:
            subprocess.run(["losetup", "-d", loop])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
