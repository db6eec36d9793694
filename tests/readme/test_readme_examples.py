"""The README's "first five minutes" curl block, run as a user would against the real server.

Each command of the block runs through the shell with the port rewritten; every one must exit 0
and print a JSON answer of the expected status. The block runs twice on fresh servers: as
written, and with `-H 'Content-Type: application/json'` removed, because curl's default form
content type must keep working (only a foreign Origin or Sec-Fetch-Site is refused).
"""
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("JOBSTORE_BINARY", str(ROOT / "build" / "cli" / "jobstore"))


def readme_block():
    text = (ROOT / "README.md").read_text()
    section = text.split("## The first five minutes", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    commands, current = [], ""
    for line in block.splitlines():
        line = line.split("  #", 1)[0].rstrip() if not line.lstrip().startswith("curl") else line.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            commands.append(current.strip())
            current = ""
    return [c for c in commands if c.startswith("curl")]


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([BINARY, "serve", "--data-dir", f"{tmp}/data", "--listen", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        port = None
        for line in proc.stdout:
            m = re.search(r"serving http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        assert port, "the server did not start"
        yield port
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def run_block(port, strip_json_type):
    commands = readme_block()
    assert len(commands) >= 8, commands
    waiter = None
    for cmd in commands:
        cmd = cmd.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        if strip_json_type:
            cmd = cmd.replace("-H 'Content-Type: application/json'", "")
        if cmd.endswith("&"):  # the worker's long-poll: runs beside the answer
            waiter = subprocess.Popen(cmd.rstrip("&"), shell=True, stdout=subprocess.PIPE, text=True)
            time.sleep(0.3)
            continue
        if cmd.startswith("curl -N"):  # the live stream: read its first events, then stop
            out = subprocess.run(cmd + " --max-time 2", shell=True, capture_output=True, text=True)
            assert out.returncode == 28, out  # ended by --max-time, not by an error
            assert "event: job.completed" in out.stdout
            continue
        out = subprocess.run(cmd + " -w '\\n%{http_code}'", shell=True, capture_output=True, text=True)
        assert out.returncode == 0, (cmd, out.stderr)
        body, status = out.stdout.rsplit("\n", 1)
        assert status in ("200", "201"), (cmd, status, body)
        json.loads(body)
    answer = json.loads(waiter.communicate(timeout=30)[0])
    assert answer["response"] == {"formats": ["pdf"]}


def test_the_readme_block_runs_as_written(server):
    run_block(server, strip_json_type=False)


def test_the_readme_block_runs_with_curls_default_content_type(server):
    run_block(server, strip_json_type=True)
