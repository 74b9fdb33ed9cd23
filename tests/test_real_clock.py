"""Live, at the clock as it is (never a ``--now`` frozen on a boundary), through the installed
console script, against the simulator and against a second fake written from the reference
notes (``fake_admin_api``): pages whose last usage bucket is cut at the moment of the request,
traffic bursty inside the hour. ``check`` runs twice, a minute apart, on one store (the cut
bucket is read again and replaced, never added twice): no budget unknown, no exit 3, every
figure the fake's truth. ``run`` (its jobs in worker processes) reaches ``/healthz`` 200
against both, and the digest of the last complete week runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.simulator.org import TOKEN_PRICES, Organisation
from tests.conftest import ADMIN_KEY
from tests.fake_admin_api import PRICES, FakeAdminAPI, FakeAdminServer

BUDGETGUARD = str(Path(sys.executable).with_name("budgetguard"))
_KEYS = {"input": "input", "cached input": "cached_input", "output": "output"}
_KEYS |= {"audio input": "audio_input", "audio output": "audio_output"}
#: The budgets both worlds are checked with: a Kolkata day (its start cuts 18:00 UTC in
#: half), rolling windows that start wherever the clock is (mid-hour, mid-minute), one under
#: an hour (read from minutes), a project's 24h, tokens.
BUDGETS = """
budgets:
  - {name: day-auto, limit: 1000000, period: day}
  - {name: w1h-estimate, limit: 1000000, window: 1h, cost_source: estimate}
  - {name: w20m-estimate, limit: 1000000, window: 20m, cost_source: estimate}
  - {name: w24h-project, limit: 1000000, window: 24h, cost_source: estimate,
     match: {project: PROJECT}}
  - {name: w90m-tokens, limit: 1000000000000, window: 90m, metric: tokens}
digest: {period: week}
"""


def _pricing(prices: dict[str, dict[str, Any]]) -> str:
    lines = []
    for model, table in prices.items():
        fields = {_KEYS.get(k, k): v for k, v in table.items()}
        fields.setdefault("output", 0)
        lines.append(f"    {model}: {{{', '.join(f'{k}: {v}' for k, v in fields.items())}}}")
    return "\n".join(lines)


def rules_text(prices: dict[str, dict[str, Any]], project: str) -> str:
    return (
        f"version: 1\ntimezone: Asia/Kolkata\npricing:\n  models:\n{_pricing(prices)}\n"
        + BUDGETS.replace("PROJECT", project)
    )


class World:
    """One fake API at the real clock and how to tell the truth of an interval."""

    def __init__(
        self,
        name: str,
        base_url: str,
        rules: str,
        truth: Callable[[int, int, str | None], Decimal],
        tokens: Callable[[int, int], int],
        project: str,
    ) -> None:
        self.name, self.base_url, self.rules = name, base_url, rules
        self.truth, self.tokens, self.project = truth, tokens, project


def _sim_truth(org: Organisation) -> Callable[[int, int, str | None], Decimal]:
    def truth(start: int, end: int, project: str | None) -> Decimal:
        return sum(
            (
                Decimal(repr(line.amount))
                for index, stream in enumerate(org.streams)
                if project in (None, stream.project_id)
                for line in org.cost_lines(index, start, end, end)
            ),
            Decimal(0),
        )

    return truth


def _sim_tokens(org: Organisation) -> Callable[[int, int], int]:
    def tokens(start: int, end: int) -> int:
        return sum(
            org.total(i, start, end, end).get(m, 0)
            for i, _ in enumerate(org.streams)
            for m in ("input_tokens", "output_tokens")
        )

    return tokens


@pytest.fixture(scope="module")
def worlds() -> Iterator[list[World]]:
    """The simulator at the real clock (40 days), and the second fake (16 days)."""
    with SimulatorServer(build_api(days=40)) as sim, FakeAdminServer(FakeAdminAPI(days=16)) as fake:
        org = sim.api.org
        yield [
            World(
                "simulator",
                sim.base_url,
                rules_text(TOKEN_PRICES, "proj_chatbot"),
                _sim_truth(org),
                _sim_tokens(org),
                "proj_chatbot",
            ),
            World(
                "notes-fake",
                fake.base_url,
                rules_text(PRICES, "proj_etl"),
                lambda a, b, p: fake.api.truth(a, b, project=p),
                fake.api.tokens,
                "proj_etl",
            ),
        ]


def _env(world: World, db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUDGETGUARD_")}
    return env | {
        "OPENAI_ADMIN_KEY": ADMIN_KEY,
        "BUDGETGUARD_OPENAI_BASE_URL": world.base_url,
        "BUDGETGUARD_DATABASE_URL": f"sqlite:///{db}",
    }


def check(world: World, tmp: Path) -> dict[str, Any]:
    rules = tmp / f"{world.name}.yaml"
    rules.write_text(world.rules)
    done = subprocess.run(
        [BUDGETGUARD, "check", "-r", str(rules), "--format", "json", "--fail-on", "never"],
        capture_output=True,
        text=True,
        env=_env(world, tmp / f"{world.name}.db"),
        cwd=tmp,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, (world.name, done.stderr)
    assert "Traceback" not in done.stderr
    return dict(json.loads(done.stdout))


def _stamp(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def assert_true(world: World, report: dict[str, Any]) -> None:
    """Every budget known and equal to the truth of its window: to the cent where its start
    is a whole minute; else between the truth without and with the minute it cuts."""
    assert report["status"] != "unknown", report
    for budget in report["budgets"]:
        name = budget["name"]
        assert budget["severity"] != "unknown", (world.name, name, budget["data"])
        assert "by time" not in (budget["data"]["note"] or ""), (world.name, name, budget)
        start, end = _stamp(budget["window"]["start"]), _stamp(budget["window"]["end"])
        late, early = -(-start // 60) * 60, start - start % 60
        if budget["metric"] == "tokens":
            low, high = world.tokens(late, end), world.tokens(early, end)
            assert low <= budget["spend"] <= high, (world.name, name, budget["spend"], low, high)
            continue
        project = world.project if name == "w24h-project" else None
        low, high = (float(world.truth(at, end, project)) for at in (late, early))
        spend = budget["spend"]
        assert low - 0.01 <= spend <= high + 0.01, (world.name, name, spend, low, high)


def test_check_at_the_real_clock_twice_a_minute_apart(worlds: list[World], tmp_path: Path) -> None:
    first = {w.name: check(w, tmp_path) for w in worlds}
    for world in worlds:
        assert_true(world, first[world.name])
    # the next minute: the bucket cut at the first check is read again, and replaced
    minute = _stamp(max(r["evaluated_at"] for r in first.values())) // 60 + 1
    time.sleep(max(0.0, minute * 60 + 1 - time.time()))
    for world in worlds:
        again = check(world, tmp_path)
        assert _stamp(again["evaluated_at"]) // 60 >= minute
        assert_true(world, again)


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.timeout(400)
@pytest.mark.parametrize("which", ["simulator", "notes-fake"])
def test_run_becomes_healthy_at_the_real_clock(
    worlds: list[World], which: str, tmp_path: Path
) -> None:
    """``budgetguard run`` as users start it (the installed command, its jobs in worker
    processes, no --now): /healthz answers 200 once the first tick has collected, and
    /status holds every budget, known and true."""
    world = next(w for w in worlds if w.name == which)
    rules = tmp_path / "rules.yaml"
    rules.write_text(world.rules)
    env = _env(world, tmp_path / "run.db") | {"BUDGETGUARD_RULES": str(rules)}
    process = subprocess.Popen(
        [BUDGETGUARD, "run", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stderr is not None
        port = None
        for line in process.stderr:
            found = re.search(r"http://localhost:(\d+)/healthz", line)
            if found:
                port = int(found.group(1))
                break
        assert port is not None, f"run did not start (exit {process.poll()})"
        # keep reading its log, or a full pipe would stop the service
        threading.Thread(target=process.stderr.read, daemon=True).start()
        deadline = time.monotonic() + 300  # a first tick on a loaded 2-core machine
        status, body = _get(f"http://127.0.0.1:{port}/healthz")
        while status != 200 and time.monotonic() < deadline:
            time.sleep(1)
            status, body = _get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200, body
        _, report = _get(f"http://127.0.0.1:{port}/status")
        assert_true(world, report)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("which", ["simulator", "notes-fake"])
def test_the_digest_at_the_real_clock(worlds: list[World], which: str, tmp_path: Path) -> None:
    world = next(w for w in worlds if w.name == which)
    rules = tmp_path / "rules.yaml"
    rules.write_text(world.rules)
    done = subprocess.run(
        [BUDGETGUARD, "digest", "-r", str(rules)],
        capture_output=True,
        text=True,
        env=_env(world, tmp_path / "digest.db"),
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "by time" not in done.stdout, done.stdout
    assert "missing" not in done.stdout, done.stdout


def _run_json(
    world: World, tmp: Path, db: str, rules: str, *args: str, code: int = 0
) -> dict[str, Any]:
    path = tmp / f"{world.name}-past.yaml"
    path.write_text(rules)
    done = subprocess.run(
        [BUDGETGUARD, "check", "-r", str(path), "--format", "json", "--fail-on", "never", *args],
        capture_output=True,
        text=True,
        env=_env(world, tmp / db),
        cwd=tmp,
        timeout=300,
        check=False,
    )
    assert done.returncode == code, (world.name, args, done.stderr)
    return dict(json.loads(done.stdout))


def test_a_past_now_is_the_truth_on_a_fresh_store_and_leaves_the_store_true(
    worlds: list[World], tmp_path: Path
) -> None:
    """``check --now`` two days back, inside an hour (a CI runner: a fresh store): the UTC
    costs day that instant cuts holds spend after it, apportioned by the day's usage and the
    cut hour's minutes, never counted whole; every figure the truth. On a store collected at
    the clock, offline, the hour it cuts has no minutes: unknown, never split by time; a
    collection at that instant fetches them, and leaves the store true at the clock."""
    stamp = int(time.time()) - 2 * 86400
    past = datetime.fromtimestamp(stamp - stamp % 3600 + 17 * 60, UTC)
    at = past.isoformat().replace("+00:00", "Z")
    for world in worlds:  # a UTC costs day both ends of a Kolkata day cut
        rules = world.rules.replace(
            "digest:",
            "  - {name: day-costs, limit: 1000000, period: day, cost_source: costs}\ndigest:",
        )
        fresh = _run_json(world, tmp_path, f"{world.name}-fresh.db", rules, "--now", at)
        assert _stamp(fresh["evaluated_at"]) == int(past.timestamp())
        assert_true(world, fresh)
        costs = next(b for b in fresh["budgets"] if b["name"] == "day-costs")
        assert "apportioned by usage" in costs["data"]["note"], costs

        db = f"{world.name}-clock.db"
        _run_json(world, tmp_path, db, rules)  # collected at the clock (costs lag there)
        offline = _run_json(world, tmp_path, db, rules, "--offline", "--now", at, code=3)
        cut = [b for b in offline["budgets"] if b["severity"] == "unknown"]
        assert cut and all("the hour --now cuts" in b["data"]["note"] for b in cut), offline
        assert not any("by time" in (b["data"]["note"] or "") for b in offline["budgets"])
        assert_true(world, _run_json(world, tmp_path, db, rules, "--now", at))
        # at the clock: still true (but for today's costs, which lag the truth by hours)
        assert_true(world, _run_json(world, tmp_path, db, world.rules))


@pytest.mark.parametrize("which", ["simulator", "notes-fake"])
def test_a_kolkata_day_digest_is_the_truth_whatever_the_rules_period(
    worlds: list[World], which: str, tmp_path: Path
) -> None:
    """``digest --period day`` on a fresh store, rules in Kolkata with no digest section (a
    weekly digest, whose bounds need not be the day's): the last local day starts and ends
    at 18:30 UTC, inside UTC costs days (the last one open). The collection reads the costs,
    usage and minutes of the period asked, not the rules': the total is the truth to the
    cent, never split by time."""
    from zoneinfo import ZoneInfo

    world = next(w for w in worlds if w.name == which)
    rules = tmp_path / "rules.yaml"
    rules.write_text(world.rules.replace("digest: {period: week}\n", ""))  # none: a week
    done = subprocess.run(
        [BUDGETGUARD, "digest", "-r", str(rules), "--period", "day"],
        capture_output=True,
        text=True,
        env=_env(world, tmp_path / "day.db"),
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "by time" not in done.stdout, done.stdout
    day = re.search(r"digest · (\d{4}-\d\d-\d\d)", done.stdout)
    total = re.search(r"Total\s+\$([\d,]+\.\d\d)", done.stdout)
    assert day and total, done.stdout
    zone = ZoneInfo("Asia/Kolkata")
    first = datetime.combine(datetime.fromisoformat(day.group(1)).date(), datetime.min.time())
    lo = int(first.replace(tzinfo=zone).timestamp())
    truth = float(world.truth(lo, lo + 86400, None))
    assert abs(float(total.group(1).replace(",", "")) - truth) < 0.006, (total.group(1), truth)
