"""Bounds everywhere: a rules or `.env` file that is not a regular file or is too large is one
line and exit 2 (never a read without end, never a block); rules errors cost time linear in
their number; a service at a fixed past ``BUDGETGUARD_NOW`` says so in ``/healthz``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from budgetguard.rules import RulesError, load_rules
from budgetguard.rules.loader import MAX_RULES_BYTES
from budgetguard.service.health import FIXED_NOW_GRACE, HealthState
from budgetguard.settings import MAX_DOTENV_BYTES

BUDGETGUARD = str(Path(sys.executable).with_name("budgetguard"))
RULES = "version: 1\nbudgets:\n  - {name: a, limit: 1, window: 1h, cost_source: estimate}\n"


def run(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGETGUARD_", "OPENAI_"))}
    return subprocess.run(
        [BUDGETGUARD, *argv],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(done: subprocess.CompletedProcess[str], *mentions: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert all(m in lines[0] for m in mentions), lines[0]


@pytest.mark.parametrize("command", [["validate"], ["check", "--offline"], ["digest"]])
def test_rules_that_are_not_a_small_regular_file_are_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")
    big = tmp_path / "big.yaml"
    big.write_text(RULES + "#" * MAX_RULES_BYTES)
    began = time.monotonic()
    one_line(run(tmp_path, *command, "-r", "/dev/zero"), "/dev/zero:1:1:", "a device")
    one_line(run(tmp_path, *command, "-r", "fifo.yaml"), "fifo.yaml:1:1:", "FIFO")
    one_line(run(tmp_path, *command, "-r", "big.yaml"), "big.yaml:1:1:", "larger than 16 MB")
    one_line(run(tmp_path, *command, "-r", str(tmp_path)), "a directory")
    assert time.monotonic() - began < 40


def test_a_dotenv_that_is_not_a_small_regular_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    dotenv = tmp_path / ".env"
    os.mkfifo(dotenv)
    one_line(run(tmp_path, "check", "--offline"), ".env: cannot read it", "FIFO")
    dotenv.unlink()
    dotenv.symlink_to("/dev/zero")
    one_line(run(tmp_path, "validate"), ".env: cannot read it", "a device")
    dotenv.unlink()
    dotenv.write_text("OPENAI_ADMIN_KEY=sk-admin-x\n" + "#" * MAX_DOTENV_BYTES)
    one_line(run(tmp_path, "check", "--offline"), ".env: cannot read it", "larger than 1 MB")


def test_a_small_rules_file_with_windows_newlines_still_loads(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_bytes(RULES.replace("\n", "\r\n").encode())
    assert [b.name for b in load_rules(rules).budgets] == ["a"]


BUDGET = "version: 1\nbudgets:\n  - name: a\n    limit: 1\n    window: 1h\n"
#: where 2,000 unknown keys go: (what comes before them, their indent)
PLACES = {
    "budget": (BUDGET, "    "),
    "top": ("version: 1\n", ""),
    "match": (BUDGET + "    match:\n", "      "),
}


@pytest.mark.parametrize("where", sorted(PLACES))
def test_rules_errors_take_time_linear_in_their_number(tmp_path: Path, where: str) -> None:
    def seconds(n: int) -> float:
        head, indent = PLACES[where]
        path = tmp_path / f"{where}-{n}.yaml"
        path.write_text(head + "".join(f"{indent}x{i}: 1\n" for i in range(n)))
        began = time.process_time()
        with pytest.raises(RulesError) as caught:
            load_rules(path)
        assert len(caught.value.errors) == n
        return time.process_time() - began

    small, large = seconds(1000), seconds(8000)
    assert large < 3.0, large  # 2,000 unknown keys in one mapping took 43 s
    assert large < 16 * max(small, 0.02), (small, large)  # linear: 8x, not 64x


def test_a_fixed_past_now_makes_healthz_say_so() -> None:
    now = time.time()
    state = HealthState(interval=900, last_success=now)
    assert state.ready(now)[0] == 200
    state.fixed_now = now - 60  # a trial run started a minute ago: fine
    assert state.ready(now)[0] == 200
    state.fixed_now = now - FIXED_NOW_GRACE - 15 * 86400
    code, body = state.ready(now)
    assert code == 503
    (reason,) = body["reasons"]  # type: ignore[misc]
    assert "fixes the time at" in str(reason) and "15.0 days before the clock" in str(reason)
