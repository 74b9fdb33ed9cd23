"""A backtest at 15-minute steps on traffic that is bursty inside the hour: each step's 1h
window cuts two hours, which are split by their minutes (``backtest`` fetches the minutes of
the hours its steps cut), so every fire and resolve lands on the step the truth crosses at,
never an hour late."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.simulator.org import TOKEN_PRICES, Organisation
from tests.conftest import ADMIN_KEY, NOW

BUDGETGUARD = str(Path(sys.executable).with_name("budgetguard"))
STEP = 900
#: the last whole quarter hour before NOW, and two days of steps before it
LAST = NOW - NOW % STEP
FIRST = LAST - 2 * 86400
_KEYS = {"input": "input", "cached input": "cached_input", "output": "output"}
_KEYS |= {"audio input": "audio_input", "audio output": "audio_output"}


def _pricing() -> str:
    lines = []
    for model, prices in TOKEN_PRICES.items():
        fields = {_KEYS[k]: v for k, v in prices.items()}
        fields.setdefault("output", 0)
        lines.append(f"    {model}: {{{', '.join(f'{k}: {v}' for k, v in fields.items())}}}")
    return "\n".join(lines)


def truth(org: Organisation, start: int, end: int) -> float:
    return sum(
        line.amount
        for index, stream in enumerate(org.streams)
        if stream.project_id == "proj_chatbot"
        for line in org.cost_lines(index, start, end, end)
    )


def expected_events(org: Organisation, limit: float) -> list[tuple[int, str]]:
    """When a 1h window's threshold at 100 % fires and resolves, step by step."""
    events, firing = [], False
    for at in range(FIRST, LAST + 1, STEP):
        over = truth(org, at - 3600, at) >= limit
        if over != firing:
            events.append((at, "fire" if over else "resolve"))
            firing = over
    return events


def test_backtest_transitions_land_on_the_truths_steps(tmp_path: Path) -> None:
    with SimulatorServer(build_api(now=NOW, days=10, costs_delay_hours=0)) as sim:
        org = sim.api.org
        spends = sorted(truth(org, at - 3600, at) for at in range(FIRST, LAST + 1, STEP))
        # a limit the hourly spend crosses many times, 2 cents from every step's truth
        limit = next(
            x / 100
            for x in range(int(spends[len(spends) // 2] * 100), 10**9)
            if all(abs(s - x / 100) > 0.02 for s in spends)
        )
        expected = expected_events(org, limit)
        assert len(expected) >= 6  # the window crosses and recrosses
        rules = tmp_path / "rules.yaml"
        rules.write_text(
            f"version: 1\npricing:\n  models:\n{_pricing()}\nbudgets:\n"
            f"  - {{name: chat-hour, limit: {limit}, window: 1h, cost_source: estimate,"
            " thresholds: ['100%'], match: {project: proj_chatbot}}\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("BUDGETGUARD_")} | {
            "OPENAI_ADMIN_KEY": ADMIN_KEY,
            "BUDGETGUARD_OPENAI_BASE_URL": sim.base_url,
            "BUDGETGUARD_DATABASE_URL": f"sqlite:///{tmp_path / 'bt.db'}",
            "BUDGETGUARD_NOW": datetime.fromtimestamp(NOW, UTC).isoformat(),
        }

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [BUDGETGUARD, *args, "-r", str(rules)],
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp_path,
                timeout=300,
                check=False,
            )

        collected = run("collect", "--since", "3d")
        assert collected.returncode == 0, collected.stderr
        iso = [datetime.fromtimestamp(t, UTC).isoformat() for t in (FIRST, LAST)]
        done = run("backtest", "--from", iso[0], "--to", iso[1], "--step", "15m")
    assert done.returncode == 0, done.stderr
    got = []
    for line in done.stdout.splitlines():
        at, event = line.split()[:2]
        got.append((int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()), event))
    assert got == expected, (got, expected)
