"""The README's quick start and its "for real" commands, run as written against the
simulator: a fresh virtual environment, `pip install .`, `budgetguard demo`; then
`budgetguard simulate` on a free port, `cp rules.example.yaml rules.yaml`, `budgetguard
check` once and `budgetguard run` as the service, whose jobs run in worker processes."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import INSTALL_TIMEOUT

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

pytestmark = pytest.mark.timeout(INSTALL_TIMEOUT)


def _shell(folder: Path, line: str, env: dict[str, str], timeout: float = 300) -> str:
    """One README line in bash, in the quick start's virtual environment."""
    done = subprocess.run(
        ["bash", "-euc", f". .venv/bin/activate\n{line}"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 1), (line, done.returncode, done.stderr[-1500:])
    return done.stdout


def _clean_env() -> dict[str, str]:
    """A user's shell: none of budgetguard's settings or the example's notifier secrets."""
    drop = ("BUDGETGUARD_", "OPENAI_", "SLACK_", "SMTP_", "AUDIT_", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def test_the_quick_start_runs_as_written(quick_start: Path) -> None:
    block = README.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    steps = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert steps[1] == "pip install . && budgetguard demo"  # the fixture ran the install
    out = _shell(quick_start, "budgetguard demo", _clean_env())
    for heading in ("1. Collect", "2. Check", "3. Alerts", "4. Backtest", "5. Digest"):
        assert heading in out


@pytest.fixture
def simulator(quick_start: Path) -> Iterator[str]:
    """`budgetguard simulate` on a free port, from the quick start's environment: its URL."""
    process = subprocess.Popen(
        [str(quick_start / ".venv" / "bin" / "budgetguard"), "simulate", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_clean_env(),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"on (http://127\.0\.0\.1:\d+/v1)", line)
    assert found, line
    try:
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_for_real_check_once_and_run_the_service(
    quick_start: Path, simulator: str, tmp_path: Path
) -> None:
    for command in ("cp rules.example.yaml rules.yaml", "budgetguard check", "budgetguard run"):
        assert f"`{command}`" in README
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / ".venv").symlink_to(quick_start / ".venv")
    shutil.copy(quick_start / "rules.example.yaml", folder / "rules.example.yaml")
    env = _clean_env() | {
        "OPENAI_ADMIN_KEY": "sk-admin-demo",
        "BUDGETGUARD_OPENAI_BASE_URL": simulator,
    }
    _shell(folder, "cp rules.example.yaml rules.yaml", env)
    out = _shell(folder, "budgetguard check", env)
    assert "org-month" in out and "chatbot-gpt-4o" in out

    service = subprocess.Popen(
        [str(folder / ".venv" / "bin" / "budgetguard"), "run"],
        cwd=folder,
        env=env | {"BUDGETGUARD_HTTP_PORT": "0"},  # a free port: the machine is shared
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert service.stderr is not None
        port = None
        for line in service.stderr:
            if found := re.search(r"http://localhost:(\d+)/healthz", line):
                port = int(found.group(1))
                break
        assert port, "run did not start"
        deadline = time.monotonic() + 240  # the first tick, in a worker process
        while json.loads(_get(f"http://127.0.0.1:{port}/status")[1])["status"] == "starting":
            assert time.monotonic() < deadline, _get(f"http://127.0.0.1:{port}/healthz")
            assert service.poll() is None
            time.sleep(0.5)
        status = json.loads(_get(f"http://127.0.0.1:{port}/status")[1])
        assert status["collect_problems"] == []
        assert {b["name"] for b in status["budgets"]} >= {"org-month", "chatbot-gpt-4o"}
        code, health = _get(f"http://127.0.0.1:{port}/healthz")
        assert code == 200 or "tick failed" not in health, health  # ready, or says why
        assert _get(f"http://127.0.0.1:{port}/livez")[0] == 200
        _, metrics = _get(f"http://127.0.0.1:{port}/metrics")
        assert "budgetguard_tick_duration_seconds" in metrics
        assert not re.search(r"budgetguard_job_failures_total\{[^}]*\} [1-9]", metrics)
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=30) == 0
    finally:
        if service.poll() is None:
            service.kill()
