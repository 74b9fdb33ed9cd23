"""The CLI entry points and ``budgetguard simulate`` as a user runs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx


def test_help_works_both_ways() -> None:
    script = shutil.which("budgetguard", path=str(Path(sys.executable).parent))
    assert script, "the budgetguard console script is installed beside the interpreter"
    for argv in ([sys.executable, "-m", "budgetguard", "--help"], [script, "--help"]):
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
        assert "simulate" in out.stdout


def test_simulate_serves_a_usable_api() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "budgetguard",
            "simulate",
            "--port",
            "0",
            "--days",
            "5",
            "--now",
            "2026-11-22T10:00:00Z",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "Simulated OpenAI admin API on http://127.0.0.1:" in first
        base_url = first.split(" on ", 1)[1].split(" ", 1)[0]
        r = httpx.get(
            f"{base_url}/organization/costs",
            params={"start_time": 1795305600 - 86400, "end_time": 1795305600},
            headers={"Authorization": "Bearer sk-admin-x"},
            timeout=30,
        )
        assert r.status_code == 200
        assert r.json()["data"][0]["results"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_simulate_rejects_a_bad_now() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "budgetguard", "simulate", "--now", "soon"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "--now" in out.stderr
