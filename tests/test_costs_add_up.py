"""Costs that do not add up are not ``ok``: a currency other than USD makes the figure unknown,
negative amounts are credits (named, never subtracted), costs far from the usage estimate of
the same settled days are a warning with a note and an alert, and settled days are read
again so a bad answer heals. Real `check` processes against the simulator's costs endpoint
answering wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.store import Store
from tests.conftest import ADMIN_KEY, NOW

BUDGETGUARD = str(Path(sys.executable).with_name("budgetguard"))
DAY = 86400
RULES = """
version: 1
budgets:
  - {name: month, limit: 100000000, period: month}
  - {name: week, limit: 100000000, period: week}
  - {name: day, limit: 100000000, period: day}
  - {name: per-project, limit: 100000000, period: month, match: {project: "*"}, each: project}
  - {name: strict, limit: 100000000, period: month, mismatch_factor: 1.5}
"""
Page = dict[str, Any]


def check(tmp_path: Path, sim: SimulatorServer, now: int = NOW, *flags: str) -> Any:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    env = dict(
        os.environ,
        OPENAI_ADMIN_KEY=ADMIN_KEY,
        BUDGETGUARD_OPENAI_BASE_URL=sim.base_url,
        BUDGETGUARD_NOW=datetime.fromtimestamp(now, UTC).isoformat(),
    )
    command = [BUDGETGUARD, "check", "-r", str(rules), "--db", f"sqlite:///{tmp_path / 'c.db'}"]
    done = subprocess.run(
        [*command, "-f", "json", "--fail-on", "never", *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def rewrite_results(change: Callable[[dict[str, Any]], None]) -> Callable[[Page], Page]:
    def rewrite(page: Page) -> Page:
        for bucket in page["data"]:
            for result in bucket["results"]:
                change(result)
        return page

    return rewrite


def _at(stamp: int) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


def budget(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(b for b in report["budgets"] if b["name"] == name)


@pytest.fixture
def sim() -> Any:
    with SimulatorServer(build_api(now=NOW, days=40, seed=11)) as server:
        yield server


def test_costs_in_another_currency_make_the_figure_unknown(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    def euro(result: dict[str, Any]) -> None:
        result["amount"]["currency"] = "eur"

    sim.faults.script("rewrite", times=100, endpoint="costs", rewrite=rewrite_results(euro))
    code, report, _ = check(tmp_path, sim)
    for name in ("month", "week", "per-project"):
        found = budget(report, name)
        assert found["severity"] == "unknown" and found["spend"] is None, found
        assert "costs in EUR" in found["data"]["note"]
    assert code == 3
    store = Store.open(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        from budgetguard import pipeline
        from budgetguard.rules import load_rules

        made = pipeline.make_digest(store, load_rules(tmp_path / "rules.yaml"), _at(NOW))
    finally:
        store.close()
    assert made.total is None or any(v is None for _, v in made.daily)  # never a silent drop
    assert any("costs in EUR" in n for n in made.notes), made.notes


def test_negative_amounts_are_credits_named_and_never_subtracted(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    (tmp_path / "clean").mkdir()
    _, clean, _ = check(tmp_path / "clean", sim)
    month = budget(clean, "month")["spend"]

    def credit(page: Page) -> Page:
        first = page["data"][0]["results"][0]
        amount = {"value": -179750, "currency": "usd"}
        page["data"][0]["results"].append({**first, "line_item": "credit", "amount": amount})
        return page

    sim.faults.script("rewrite", times=100, endpoint="costs", rewrite=credit)
    code, report, _ = check(tmp_path, sim)
    found = budget(report, "month")
    assert found["spend"] == pytest.approx(month, rel=1e-9) and found["spend"] > 0
    assert "$179,750.00 of credits (negative amounts) not subtracted" in found["data"]["note"]
    assert code == 0


def test_costs_ten_times_under_the_estimate_are_a_warning_with_a_note_and_an_alert(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    def tenth(result: dict[str, Any]) -> None:
        result["amount"]["value"] = str(Decimal(str(result["amount"]["value"])) / 10)

    sim.faults.script("rewrite", times=100, endpoint="costs", rewrite=rewrite_results(tenth))
    _code, report, _ = check(tmp_path, sim)
    found = budget(report, "month")
    assert found["severity"] == "warning", found
    assert "costs do not add up" in found["data"]["note"]
    alerts = [a for a in report["alerts"] if a["budget"] == "month"]
    assert [(a["kind"], a["severity"]) for a in alerts] == [("no_data", "warning")]
    assert budget(report, "day")["severity"] == "ok"  # no settled day in today's window


def test_a_bad_settled_answer_heals_when_the_days_are_read_again(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    def tenth(result: dict[str, Any]) -> None:
        result["amount"]["value"] = str(Decimal(str(result["amount"]["value"])) / 10)

    first = NOW - 3 * DAY
    sim.faults.script("rewrite", times=100, endpoint="costs", rewrite=rewrite_results(tenth))
    _, report, _ = check(tmp_path, sim, first)  # a backfill answered 10x too low
    assert budget(report, "strict")["severity"] == "warning"
    sim.faults.clear()  # the API is fixed
    # the next collection re-reads its tail: a settled day there changed, so every day that
    # came in the same bad answer is marked; the one after reads them again
    _, report, _ = check(tmp_path, sim, first + 3600)
    assert budget(report, "strict")["severity"] == "warning"
    assert _changed(tmp_path) > 10
    _, report, _ = check(tmp_path, sim, first + 7200)
    assert budget(report, "strict")["severity"] == "ok", budget(report, "strict")
    # days that changed are read once more (and now read the same); then a steady tick
    # asks one costs request, and a new UTC day re-reads the last 7 days in that request
    # (at a --now before the API's clock, plus one for the rest of that day, read once: its
    # costs straddle --now and are split by its usage)
    check(tmp_path, sim, first + 3 * 3600)
    assert _changed(tmp_path) == 0
    for later, asked in ((first + 4 * 3600, 1), (first + DAY, 2), (first + DAY + 3600, 1)):
        before = sim.api.requests["costs"]
        _, report, _ = check(tmp_path, sim, later)
        assert sim.api.requests["costs"] - before == asked, later
        assert budget(report, "strict")["severity"] == "ok"
    assert _read_upto(tmp_path, first + DAY - 5 * DAY) == first + DAY


def _changed(tmp_path: Path) -> int:
    return int(_one(tmp_path, "SELECT count(*) FROM bg_cost_reads WHERE changed"))


def _read_upto(tmp_path: Path, moment: int) -> int:
    day = moment - moment % DAY
    return int(_one(tmp_path, f"SELECT read_upto FROM bg_cost_reads WHERE day_start = {day}"))


def _one(tmp_path: Path, sql: str) -> Any:
    store = Store.open(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        with store.engine.connect() as conn:
            return conn.exec_driver_sql(sql).scalar_one()
    finally:
        store.close()
