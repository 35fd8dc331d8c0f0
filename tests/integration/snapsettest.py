"""Helpers for the integration tests: a raw varlink connection to the daemon under test (so the
tests can send exactly the bytes they mean, malformed ones included), and a runner that prints
the project's "N passed, N failed" line.

The daemon under test is started by tests/integration/run, which exports SNAPSET_SOCKET (its
socket), SNAPSETD_PID, SNAPSET_BUILDDIR and SNAPSET_TEST_DIR (a scratch directory)."""

import json
import os
import socket
import subprocess
import tempfile
import sys
import unittest

SOCKET = os.environ.get("SNAPSET_SOCKET", "/run/snapset/io.snapset.Manager")
BUILDDIR = os.environ.get("SNAPSET_BUILDDIR", "build")
TOP = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
SNAPSETCTL = os.path.join(TOP, BUILDDIR, "snapsetctl") if not os.path.isabs(BUILDDIR) \
    else os.path.join(BUILDDIR, "snapsetctl")
MANAGER = "io.snapset.Manager"


class Connection:
    """One raw connection; send() takes dicts or bytes, recv() returns the next message."""

    def __init__(self, path=SOCKET, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, msg):
        data = msg if isinstance(msg, bytes) else json.dumps(msg).encode() + b"\0"
        self.sock.sendall(data)

    def recv(self):
        """The next message as a dict; None if the daemon closed the connection."""
        while b"\0" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, parameters=None, **flags):
        if "." not in method:
            method = MANAGER + "." + method
        msg = {"method": method}
        if parameters is not None:
            msg["parameters"] = parameters
        msg.update(flags)
        self.send(msg)
        return None if flags.get("oneway") else self.recv()

    def closed_by_peer(self):
        """True if the daemon closes the connection (EOF or reset) before sending anything."""
        try:
            return self.recv() is None
        except (ConnectionResetError, BrokenPipeError):
            return True


def call(method, parameters=None, **flags):
    with Connection() as c:
        return c.call(method, parameters, **flags)


def run_as(user_args, argv, **kw):
    """Runs argv under setpriv with the given credentials (e.g. ['--reuid=65534', ...])."""
    return subprocess.run(["setpriv"] + user_args + ["--"] + argv, **kw)


def snapsetctl(*args, env=None, user=None):
    argv = [SNAPSETCTL, "--socket", SOCKET] + list(args)
    if user:
        argv = ["setpriv"] + user + ["--"] + argv
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


def make_fs_loop(d, name, fs, content):
    """A loop device on an image in d with a filesystem (ext4 or xfs) holding one file, data,
    with content; not mounted."""
    img = os.path.join(d, name + ".img")
    with open(img, "wb") as f:
        f.truncate((300 if fs == "xfs" else 32) << 20)
    subprocess.run(["mkfs." + fs, "-q"] + (["-f"] if fs == "xfs" else ["-F"]) + [img], check=True)
    loop = subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True,
                          check=True).stdout.strip()
    m = tempfile.mkdtemp(dir=d)
    subprocess.run(["mount", loop, m], check=True)
    with open(os.path.join(m, "data"), "w") as f:
        f.write(content)
    subprocess.run(["umount", m], check=True)
    os.rmdir(m)
    return loop


def daemon_alive():
    pid = int(os.environ.get("SNAPSETD_PID", "0"))
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def main():
    """Runs the calling module's tests; prints one line per test and the summary line."""
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules["__main__"])
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(0 if failed == 0 else 1)
