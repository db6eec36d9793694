"""The Prometheus rules in deploy/prometheus/ against promtool and against the real server:
`promtool check rules`, `promtool test rules` (jobstore.rules.test.yml), and every metric a rule
names is one a live `jobstore serve` exports (a single instance, and one on NATS for the
cluster's metrics). Run by ctest as `prometheus_rules`."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RULES = REPO / "deploy" / "prometheus" / "jobstore.rules.yml"
BINARY = os.environ.get("JOBSTORE_BINARY", str(REPO / "build" / "cli" / "jobstore"))
NATS = os.environ.get("NATS_SERVER_BINARY", "/usr/sbin/nats-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics_of(*flags: str) -> str:
    """Starts `jobstore serve` with `flags`, creates a job, returns its /metrics, stops it."""
    with tempfile.TemporaryDirectory(prefix="jobstore-prom-") as tmp:
        port = free_port()
        proc = subprocess.Popen([BINARY, "serve", "--data-dir", f"{tmp}/data", "--listen",
                                 f"127.0.0.1:{port}", *flags],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                        break
                except OSError:
                    assert time.time() < deadline, "jobstore did not become ready"
                    time.sleep(0.1)
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/jobs",
                                         data=b'{"type":"t"}', method="POST",
                                         headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=10).read()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                return r.read().decode()
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def exported_names(text: str) -> set:
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_promtool_checks_the_rules():
    subprocess.run(["promtool", "check", "rules", str(RULES)], check=True)


def test_promtool_unit_tests_pass():
    subprocess.run(["promtool", "test", "rules", "jobstore.rules.test.yml"], cwd=HERE, check=True)


def test_every_metric_a_rule_names_is_exported_by_a_live_server():
    names = exported_names(metrics_of())
    with tempfile.TemporaryDirectory(prefix="jobstore-prom-nats-") as tmp:
        nats_port = free_port()
        nats = subprocess.Popen([NATS, "-js", "-a", "127.0.0.1", "-p", str(nats_port),
                                 "-sd", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            names |= exported_names(metrics_of("--nats", f"nats://127.0.0.1:{nats_port}",
                                               "--replicas", "1"))
        finally:
            nats.terminate()
            nats.wait(timeout=30)
    rules = RULES.read_text()
    named = set(re.findall(r"\bjobstore_[a-z_]+", "\n".join(
        line for line in rules.splitlines() if not line.lstrip().startswith("#"))))
    assert named, "no metric found in the rules"
    missing = sorted(named - names)
    assert not missing, f"rules name metrics jobstore does not export: {missing}"
