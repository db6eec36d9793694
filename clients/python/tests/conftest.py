"""Starts the real `jobstore serve` on a free loopback port for each test that asks for it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[3]
BINARY = os.environ.get("JOBSTORE_BINARY", str(REPO / "build" / "cli" / "jobstore"))


class Server:
    def __init__(self, data_dir: str, *flags: str, port: int = 0):
        if not os.path.exists(BINARY):
            raise RuntimeError(f"jobstore binary not found at {BINARY} (set JOBSTORE_BINARY)")
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            [BINARY, "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}", *flags],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.port = 0
        for line in self.proc.stderr:
            self.lines.append(line)
            m = re.search(r"serving http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if not self.port:
            raise RuntimeError("jobstore did not start:\n" + "".join(self.lines))
        self._drain = threading.Thread(target=lambda: [self.lines.append(l) for l in self.proc.stderr],
                                       daemon=True)
        self._drain.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_for_waiters(self, n: int, timeout: float = 10) -> None:
        """Returns once the server counts at least n parked long-polls and streams (the
        jobstore_waiters gauge): a test then acts on a waiter that is really waiting, where a
        sleep passes even when it never parked."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with urllib.request.urlopen(self.url + "/metrics", timeout=5) as r:
                m = re.search(r"^jobstore_waiters (\d+)", r.read().decode(), re.M)
            if m and int(m.group(1)) >= n:
                return
            time.sleep(0.005)
        raise AssertionError(f"fewer than {n} waiters parked after {timeout} s")

    def stop(self) -> None:
        crashed = self.proc.poll()
        if crashed is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        elif not getattr(self, "stopped", False):
            raise RuntimeError(f"jobstore exited by itself with {crashed}:\n" + "".join(self.lines))
        self.stopped = True


@pytest.fixture
def start_server():
    """A factory: start_server(*flags) -> Server; every server is stopped after the test."""
    servers = []
    tmp = tempfile.TemporaryDirectory(prefix="jobstore-pytest-")

    def start(*flags: str, data_dir: str = None, port: int = 0) -> Server:
        s = Server(data_dir or os.path.join(tmp.name, "data"), *flags, port=port)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()
    tmp.cleanup()


@pytest.fixture
def server(start_server):
    return start_server()


@pytest.fixture
def proxy(server):
    """A loopback proxy in front of `server` (tests/proxy.py: delay, closes, HTML 502s)."""
    from proxy import Proxy
    p = Proxy(server.port)
    yield p
    p.close()
