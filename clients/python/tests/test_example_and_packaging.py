"""The example runs end to end, and the package installs with pip from its own files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def test_skill_creation_example_runs_end_to_end(server):
    out = subprocess.run([sys.executable, str(HERE / "examples" / "skill_creation.py"), server.url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "service: job completed with result" in out.stdout
    assert "'formats': ['pdf', 'xml']" in out.stdout and "'skill': 'parse_invoices'" in out.stdout
    assert "job.hitl_requested -> job.hitl_answered" in out.stdout


def test_pip_installs_the_package_without_the_network(tmp_path):
    # Built from a copy, so the build leaves nothing in the source tree.
    source = tmp_path / "src"
    shutil.copytree(HERE, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info",
                                                                "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-build-isolation",
                              "--no-index", "--quiet", str(source)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    check = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import jobstore_client; print(jobstore_client.Worker.__name__)"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert check.stdout.strip() == "Worker"
