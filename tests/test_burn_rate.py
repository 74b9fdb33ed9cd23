"""Alerts on pace: burn-rate pairs, forecasts at any threshold, seasonal anomalies.

The traffic is the second fake's (``fake_admin_api``: bursty inside the hour, busy days and
quiet nights), reshaped per hour where a test needs a runaway, a ramp or a doubled hour, and
collected over loopback HTTP into a real SQLite store as ``check`` does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from budgetguard import pipeline
from budgetguard.alerts.grouping import group_events
from budgetguard.alerts.lifecycle import conditions, routes, transitions
from budgetguard.alerts.outbox import render
from budgetguard.alerts.silences import Silence, apply_silences
from budgetguard.cli import app
from budgetguard.collect import Collector
from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.evaluator import Finding, evaluate
from budgetguard.evaluate.pricing import Pricer
from budgetguard.providers.openai import AdminClient
from budgetguard.rules import Rules, RulesError, load_rules_text
from budgetguard.rules.model import BurnRatePair
from budgetguard.rules.needs import plan_queries
from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.store import Store
from tests.conftest import ADMIN_KEY, NOW
from tests.fake_admin_api import HOUR, PRICES, FakeAdminAPI, FakeAdminServer, Request, Traffic

END = datetime(2026, 11, 28, tzinfo=UTC)
END_TS = int(END.timestamp())
#: the fake's history: the month to END and the 7 days a forecast averages before its first
#: step, and the 4 weeks a seasonal anomaly compares with
HISTORY_DAYS = 31
BUDGETGUARD = str(Path(sys.executable).with_name("budgetguard"))


def _pricing() -> str:
    rows = []
    for model, prices in PRICES.items():
        fields = ", ".join(f"{k}: {v}" for k, v in prices.items())
        rows.append(f"    {model}: {{{fields}}}")
    return "pricing:\n  models:\n" + "\n".join(rows) + "\n"


def rules_of(budgets: str) -> Rules:
    return load_rules_text(f"version: 1\n{_pricing()}budgets:\n{budgets}")


class Shaped(Traffic):
    """The fake's traffic with each hour's tokens scaled by ``factor(hour start)``."""

    def __init__(self, seed: int, first: int, factor: Callable[[int], float]) -> None:
        super().__init__(seed, first)
        self.factor = factor

    def hour(self, hour: int) -> list[Request]:
        f = self.factor(hour * HOUR)
        found = super().hour(hour)
        if f == 1:
            return found
        return [
            dataclasses.replace(
                r,
                input_tokens=int(r.input_tokens * f),
                cached_tokens=int(r.cached_tokens * f),
                output_tokens=int(r.output_tokens * f),
            )
            for r in found
        ]


def collected(
    tmp: Path, rules: Rules, factor: Callable[[int], float], *, steps: Sequence[datetime] = ()
) -> tuple[FakeAdminAPI, SpendData]:
    """The fake at END with reshaped traffic, collected for ``rules`` (and the replayed
    ``steps``) into a new store, and the data loaded as a replay loads it."""
    api = FakeAdminAPI(days=HISTORY_DAYS, clock=lambda: END_TS)
    api.traffic = Shaped(3, END_TS - HISTORY_DAYS * 86400, factor)
    plan = plan_queries(rules, END, replayed=list(steps))
    tmp.mkdir(parents=True, exist_ok=True)
    store = Store.open(f"sqlite:///{tmp / 'pace.db'}")
    with FakeAdminServer(api) as fake:

        async def run() -> None:
            async with AdminClient(ADMIN_KEY, fake.base_url) as client:
                await Collector(client, store).collect(plan, END)

        asyncio.run(run())
    data = SpendData.load(store, plan, Pricer(rules.pricing.models))
    store.close()
    return api, data


# -- rules ----------------------------------------------------------------------------------


def test_default_pairs_per_period_and_off() -> None:
    rules = load_rules_text(
        "version: 1\ndefaults: {burn_rate: default}\nbudgets:\n"
        "  - {name: m, limit: 100, period: month}\n"
        "  - {name: w, limit: 100, period: week}\n"
        "  - {name: d, limit: 100, period: day}\n"
        "  - {name: r, limit: 100, window: 3h}\n"
        "  - {name: o, limit: 100, period: month, burn_rate: off}\n"
        "  - {name: s, anomaly: {window: 1h, baseline: 7d, factor: 3}}\n"
    )
    pairs = {
        b.name: [(p.key, str(p.factor), p.severity) for p in b.burn_rate] for b in rules.budgets
    }
    assert pairs["m"] == [
        ("1h/15m", "14.4", "critical"),
        ("6h/30m", "6", "critical"),
        ("24h/2h", "3", "warning"),
    ]
    assert pairs["w"] == [
        ("1h/15m", "13.4", "critical"),
        ("6h/30m", "3.5", "critical"),
        ("24h/2h", "1.4", "warning"),
    ]
    assert pairs["d"] == [("1h/15m", "6", "critical"), ("4h/30m", "3", "critical")]
    assert pairs["r"] == [("1h/15m", "6", "critical")]  # no pair longer than the window
    assert pairs["o"] == [] and pairs["s"] == []
    # without burn_rate anywhere, nothing changes for existing rules
    plain = load_rules_text("version: 1\nbudgets:\n  - {name: m, limit: 100, period: month}\n")
    assert plain.budgets[0].burn_rate == ()


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        (
            "{name: b, limit: 9, period: month, burn_rate: [{long: 1h, short: 5m, factor: 9}]}",
            "short: a burn-rate window is at least 15m",
        ),
        (
            "{name: b, limit: 9, period: month, burn_rate: [{long: 1h, short: 1h, factor: 9}]}",
            "short: must be shorter than the long window",
        ),
        (
            "{name: b, limit: 9, window: 2h, burn_rate: [{long: 6h, short: 30m, factor: 9}]}",
            "long: longer than the budget's window (2h)",
        ),
        (
            "{name: b, anomaly: {window: 1h, baseline: 7d, factor: 3}, burn_rate: default}",
            "burn_rate: needs a limit",
        ),
        (
            "{name: b, limit: 9, window: 7d, thresholds: [{at: 80%, forecast: true}]}",
            "forecast: only period budgets have an end to forecast",
        ),
        ("{name: b, anomaly: {window: 1h, factor: 3}}", "missing required key 'baseline'"),
        (
            "{name: b, anomaly: {window: 1h, factor: 3, seasonal: true, baseline: 10d}}",
            "a seasonal baseline is whole weeks",
        ),
    ],
)
def test_rules_that_cannot_be_measured_are_refused(budget: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        load_rules_text(f"version: 1\nbudgets:\n  - {budget}\n")
    assert message in str(caught.value)


# -- burn rates -----------------------------------------------------------------------------


def _finding(findings: list[Finding], name: str) -> Finding:
    return next(f for f in findings if f.budget.name == name)


def test_a_runaway_fires_the_short_pairs_and_says_when_the_budget_runs_out(
    tmp_path: Path,
) -> None:
    """A job looping over the last two hours (400x the tokens of the night's sparse
    requests): the month's 1h/15m and 6h/30m pairs hold on a limit of twice the month's usual
    spend, and not a day earlier; the message says when the budget runs out."""
    runaway = lambda at: 400.0 if at >= END_TS - 2 * HOUR else 1.0  # noqa: E731
    usual = FakeAdminAPI(days=HISTORY_DAYS, clock=lambda: END_TS).truth(END_TS - 28 * 86400, END_TS)
    month = usual / 28 * 60  # twice the usual: the month's limit is not spent yet
    rules = rules_of(
        f"  - {{name: org, limit: {month:.2f}, period: month, cost_source: estimate,"
        " burn_rate: default}\n"
        f"  - {{name: org-off, limit: {month:.2f}, period: month, cost_source: estimate}}\n"
    )
    _, data = collected(tmp_path, rules, runaway)
    findings = evaluate(rules, data, END)
    org = _finding(findings, "org")
    held = {b.pair.key: b.holds for b in org.burn}
    assert all(b.known for b in org.burn), org.note
    assert held["1h/15m"] and held["6h/30m"]
    assert _finding(findings, "org-off").burn == ()
    kinds = [(k, t.key if t else None, h) for k, t, h, _ in conditions(org)]
    assert ("burn_rate", "1h/15m", True) in kinds
    # a firing critical pair is the budget's severity (the report's status, check's exit)
    assert org.severity == "critical" and not org.crossed
    assert org.note is not None and "burn rate 1h/15m: " in org.note  # the text report's why
    assert _finding(findings, "org-off").severity == "ok"
    # the same traffic a day earlier: quiet, every pair known and none holds
    quiet = evaluate(rules, data, END - timedelta(days=1))
    assert not any(b.holds for b in _finding(quiet, "org").burn)
    # the notification: kind burn_rate, the pair's figures, the share and the time
    _, events = transitions(findings, {}, END)
    fired = [e for e in events if e.kind == "burn_rate" and e.event == "fire"]
    assert {e.threshold.key for e in fired if e.threshold} >= {"1h/15m", "6h/30m"}
    # silences match kind=burn_rate and its severity; a pair's own notify routes it
    states = {**transitions(findings, {}, END)[0]}
    running = [
        Silence(
            "s1", (("kind", "burn_rate"), ("severity", "critical")), END, END + timedelta(hours=1)
        )
    ]
    outcome = apply_silences(events, findings, states, running, {}, END)
    assert {e.kind for e in outcome.silenced} == {"burn_rate"}
    assert all(e.kind != "burn_rate" or e.severity != "critical" for e in outcome.send)
    pair = BurnRatePair.model_validate(
        {"long": "1h", "short": "15m", "factor": 14.4, "notify": ["pager"]}
    )
    routed = org.budget.model_copy(update={"burn_rate": (pair,)})
    assert routes(dataclasses.replace(org, budget=routed), routed.burn_rate[0]) == ("pager",)
    alert = render(group_events([dataclasses.replace(fired[0], notify=("x",))])[0])
    body = alert.to_payload()
    assert body["kind"] == "burn_rate"
    assert body["burn_rate"]["long_rate"] > 14.4
    assert "at this pace the budget runs out at 2026-" in body["message"]
    assert "of the limit burnt in the last" in body["message"]


def test_a_window_without_its_minutes_is_unknown_never_ok(tmp_path: Path) -> None:
    """Evaluated at a minute that cuts hours, with the minutes not collected: the 15m
    window would be an even split of its hour, which hides a burst: the pair is unknown,
    raises no alert (neither fires nor resolves) and the note says why."""
    rules = rules_of(
        "  - {name: org, limit: 100000, period: month, cost_source: estimate,"
        " burn_rate: [{long: 1h, short: 15m, factor: 2}]}\n"
    )
    at = END - timedelta(minutes=7)
    plan = [q for q in plan_queries(rules, at) if q.width != "1m"]  # no minutes
    api = FakeAdminAPI(days=HISTORY_DAYS, clock=lambda: END_TS)
    store = Store.open(f"sqlite:///{tmp_path / 'hours.db'}")
    with FakeAdminServer(api) as fake:

        async def run() -> None:
            async with AdminClient(ADMIN_KEY, fake.base_url) as client:
                await Collector(client, store).collect(plan, END)

        asyncio.run(run())
    data = SpendData.load(store, plan, Pricer(rules.pricing.models))
    store.close()
    (finding,) = evaluate(rules, data, at)
    (rate,) = finding.burn
    assert not rate.known and rate.note is not None
    assert "burn rate 1h/15m unknown" in (finding.note or "")
    assert not [c for c in conditions(finding) if c[0] == "burn_rate"]
    # with the minutes, it is known
    _, whole = collected(tmp_path / "m", rules, lambda t: 1.0, steps=[at])
    (known,) = evaluate(rules, whole, at)
    assert known.burn[0].known


# -- forecasts at any threshold -------------------------------------------------------------


def test_a_forecast_threshold_at_80_percent_fires_before_spend_crosses_it(
    tmp_path: Path,
) -> None:
    """A steady ramp (10 % more each day): the 80 % forecast threshold fires days before
    the month's spend reaches 80 %; the threshold itself fires when it does."""
    start = END_TS - HISTORY_DAYS * 86400
    ramp = lambda at: 1 + (at - start) / 86400 / 10  # noqa: E731
    first, last = datetime(2026, 11, 8, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)
    steps = [first + timedelta(hours=12 * i) for i in range(39)]
    probe = FakeAdminAPI(days=HISTORY_DAYS, clock=lambda: END_TS)
    probe.traffic = Shaped(3, start, ramp)
    month = datetime(2026, 11, 1, tzinfo=UTC)
    crossed_at = datetime(2026, 11, 22, tzinfo=UTC)
    spent = probe.truth(int(month.timestamp()), int(crossed_at.timestamp()))
    limit = spent / Decimal("0.8")
    rules = rules_of(
        f"  - {{name: ramp, limit: {limit:.2f}, period: month, cost_source: estimate,"
        " thresholds: [{at: 80%, forecast: true}, 100%]}\n"
    )
    _, data = collected(tmp_path, rules, ramp, steps=steps)
    fires: dict[str, datetime] = {}
    for moment, events in pipeline.replay(rules, data, first, last, timedelta(hours=12)):
        for e in events:
            if e.event == "fire" and e.threshold is not None:
                fires.setdefault(f"{e.kind} {e.threshold.key}", moment)
    assert "forecast 0.8" in fires and "threshold 0.8" in fires, fires
    assert fires["forecast 0.8"] < fires["threshold 0.8"] - timedelta(days=2)
    assert abs(fires["threshold 0.8"] - crossed_at) <= timedelta(hours=12)
    assert "forecast 1" not in fires  # no forecast asked at 100 %


# -- seasonal anomalies ---------------------------------------------------------------------


def test_a_seasonal_anomaly_catches_a_doubled_quiet_hour_the_flat_mean_misses(
    tmp_path: Path,
) -> None:
    """06:00-07:00 UTC doubled on the last day: against the same hour of the 4 previous
    weeks it is 2x; against the flat mean of the week it is under the mean's 2x."""
    hour = END_TS - 18 * HOUR  # 06:00 on the last day
    doubled = lambda at: 2.0 if at == hour else 1.0  # noqa: E731
    rules = rules_of(
        "  - {name: flat, cost_source: estimate, anomaly: {window: 1h, baseline: 7d, factor: 2}}\n"
        "  - {name: seasonal, cost_source: estimate,"
        " anomaly: {window: 1h, seasonal: true, factor: 1.5}}\n"
    )
    at = datetime.fromtimestamp(hour + HOUR, UTC)
    _, data = collected(tmp_path, rules, doubled, steps=[at, at - timedelta(days=1)])
    now = {f.budget.name: f for f in evaluate(rules, data, at)}
    assert now["seasonal"].anomaly and not now["flat"].anomaly
    day_before = {f.budget.name: f for f in evaluate(rules, data, at - timedelta(days=1))}
    assert not day_before["seasonal"].anomaly  # the same hour, not doubled: quiet


# -- backtest --stats -----------------------------------------------------------------------


def test_backtest_stats_counts_fires_and_times_injected_runaways(tmp_path: Path) -> None:
    now = NOW - NOW % 86400
    with SimulatorServer(build_api(now=now, days=12, costs_delay_hours=0)) as sim:
        rules = tmp_path / "rules.yaml"
        rules.write_text(
            "version: 1\nbudgets:\n"
            "  - {name: org, limit: 20000, period: month, match: {endpoint: completions},"
            " burn_rate: default}\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("BUDGETGUARD_")} | {
            "OPENAI_ADMIN_KEY": ADMIN_KEY,
            "BUDGETGUARD_OPENAI_BASE_URL": sim.base_url,
            "BUDGETGUARD_DATABASE_URL": f"sqlite:///{tmp_path / 'bt.db'}",
            "BUDGETGUARD_NOW": datetime.fromtimestamp(now, UTC).isoformat(),
        }
        first = datetime.fromtimestamp(now - 3 * 86400, UTC).isoformat()
        last = datetime.fromtimestamp(now - 86400, UTC).isoformat()
        args = ["backtest", "-r", str(rules), "--from", first, "--to", last, "--step", "30m"]
        done = subprocess.run(
            [BUDGETGUARD, *args, "--stats", "--inject", "3x,50x"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    bad = CliRunner().invoke(app, [*args, "--inject", "0.5x"], env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "fire episodes over 2 days (30m steps), per 30 days:" in out
    assert "burn_rate 1h/15m x14.4  critical" in out
    lines = [line.split() for line in out.splitlines() if line.strip().startswith("org ")]
    runaways = {parts[1]: parts for parts in lines if parts[1].endswith("x")}
    assert runaways["50x"][2] == "40/40"  # every start paged
    assert bad.exit_code == 2 and "--inject" in bad.output and "Traceback" not in bad.output


def test_the_planner_fetches_the_minutes_each_pair_reads() -> None:
    """At 10:07, the 15m and 30m windows read the last minutes and the 6h and 24h windows
    start at :07, cutting their hours: every one of those hours is in the minute query."""
    rules = load_rules_text(
        "version: 1\nbudgets:\n"
        "  - {name: m, limit: 100, period: month, cost_source: estimate, burn_rate: default}\n"
    )
    at = datetime(2026, 11, 20, 10, 7, tzinfo=UTC)
    (minutes,) = [
        q for q in plan_queries(rules, at) if q.endpoint == "completions" and q.width == "1m"
    ]
    stamp = int(at.timestamp())
    wanted = [stamp - 15 * 60, stamp - 30 * 60, stamp - 2 * HOUR, stamp - 6 * HOUR, stamp - 86400]
    for moment in wanted:
        assert any(lo <= moment and moment + 60 <= hi for lo, hi in minutes.spans), moment
    assert minutes.spans[-1][1] >= stamp


def test_a_mistaken_pair_is_told_in_the_files_words_where_it_is_written() -> None:
    """burn_rate is a word or a list: its mistakes name neither pydantic's branches nor its
    type names, and a misspelt key gets a suggestion at the key."""
    with pytest.raises(RulesError) as caught:
        load_rules_text(
            "version: 1\nbudgets:\n"
            "  - {name: b, limit: 10, period: day, burn_rate: [{long: 1h, short: 15m, factr: 3}]}\n"
            "  - {name: c, limit: 10, period: day, burn_rate: sometimes}\n"
        )
    assert [f"{e.line}:{e.column}: {e.message}" for e in caught.value.errors] == [
        "3:51: missing required key 'factor'",
        "3:74: unknown key 'factr' — did you mean 'factor'?",
        "4:50: burn_rate: expected 'default' or 'off', or a list",
    ]
