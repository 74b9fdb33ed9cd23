"""Coverage as intervals: a gap between collections is a hole (unknown, then filled), and
nothing is ever covered past the real clock, whatever ``--now`` says."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from budgetguard.cli import app
from budgetguard.collect import Collector
from budgetguard.providers.openai import AdminClient
from budgetguard.rules import load_rules_text
from budgetguard.rules.needs import plan_queries
from budgetguard.simulator import SimulatedAPI, SimulatorServer
from budgetguard.simulator.org import Organisation
from budgetguard.store import Store
from budgetguard.store.coverage import holes, merge
from tests.conftest import ADMIN_KEY, NOW

RULES = """
version: 1
budgets:
  - {name: month-costs, limit: 100000, period: month, cost_source: costs}
  - {name: week-costs, limit: 1000, period: week, cost_source: costs}
"""
LATER = datetime.fromtimestamp(NOW, UTC)  # Sunday 2026-11-22T10:17:31Z
EARLIER = LATER - timedelta(days=12)  # Tuesday 2026-11-10


def test_merge_and_holes() -> None:
    assert merge([(5, 9), (0, 3), (3, 4), (8, 12), (20, 20)]) == [(0, 4), (5, 12)]
    spans = [(0, 4), (5, 12), (15, 20)]
    assert holes(spans, 0, 20) == [(4, 5), (12, 15)]
    assert holes(spans, 2, 30) == [(4, 5), (12, 15), (20, 30)]
    assert holes(spans, 6, 11) == []
    assert holes([], 3, 7) == [(3, 7)]


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(int(EARLIER.timestamp()))


@pytest.fixture
def sim(clock: Clock) -> Any:
    org = Organisation.create(7, NOW, 40)
    with SimulatorServer(SimulatedAPI(org, clock=clock)) as server:
        yield server


def cli(sim: SimulatorServer, rules: Path, db: Path, now: datetime, *args: str) -> Any:
    env = {
        "OPENAI_ADMIN_KEY": ADMIN_KEY,
        "BUDGETGUARD_OPENAI_BASE_URL": sim.base_url,
        "BUDGETGUARD_NOW": now.isoformat(),
    }
    command = [args[0], "-r", str(rules), "--db", f"sqlite:///{db}", *args[1:]]
    return CliRunner().invoke(app, command, env=env)


def week_costs(sim: SimulatorServer, rules: Path, db: Path) -> dict[str, Any]:
    result = cli(sim, rules, db, LATER, "check", "--offline", "--format", "json")
    report = json.loads(result.stdout)
    return next(b for b in report["budgets"] if b["name"] == "week-costs")


def test_a_gap_between_collections_is_unknown_then_filled_whatever_since_says(
    sim: SimulatorServer, clock: Clock, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    truth_db, gap_db, filled_db = tmp_path / "truth.db", tmp_path / "gap.db", tmp_path / "fill.db"
    for db in (gap_db, filled_db):
        assert cli(sim, rules, db, EARLIER, "collect").exit_code == 0
    clock.now = NOW
    assert cli(sim, rules, truth_db, LATER, "collect").exit_code == 0
    truth = week_costs(sim, rules, truth_db)
    assert truth["severity"] in ("ok", "warning", "critical") and truth["spend"] > 0

    # what the old collector did with --since 1d: only the last day, leaving Nov 10-21 out
    async def since_only() -> None:
        queries = plan_queries(load_rules_text(RULES), LATER, since=LATER - timedelta(days=1))
        async with AdminClient(ADMIN_KEY, sim.base_url) as client:
            await Collector(client, Store.open(f"sqlite:///{gap_db}")).collect(queries, LATER)

    asyncio.run(since_only())
    gap = week_costs(sim, rules, gap_db)
    assert gap["severity"] == "unknown" and gap["spend"] is None
    assert gap["data"]["note"].startswith("costs: no data for 2026-11-16T00:00:00Z to 2026-11-21")

    # the collector of today fills the hole on its next run, whatever --since said
    assert cli(sim, rules, gap_db, LATER, "collect", "--since", "1d").exit_code == 0
    assert cli(sim, rules, filled_db, LATER, "collect", "--since", "1d").exit_code == 0
    for db in (gap_db, filled_db):
        assert week_costs(sim, rules, db) == truth


def test_coverage_never_passes_the_real_clock(
    sim: SimulatorServer, clock: Clock, tmp_path: Path
) -> None:
    clock.now = int(time.time())  # the API answers up to today
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    db = tmp_path / "spend.db"
    future = cli(sim, rules, db, datetime(2100, 1, 1, tzinfo=UTC), "collect")
    assert future.exit_code == 2 and "later than the clock" in future.stderr
    assert "check --offline" not in future.stderr  # one line: what and how
    offline = cli(sim, rules, db, datetime(2100, 1, 1, tzinfo=UTC), "check", "--offline")
    assert offline.exit_code == 3  # offline evaluates what is stored: nothing for 2100

    # the collector itself caps too, whatever instant it is handed
    async def collect_2100() -> None:
        queries = plan_queries(load_rules_text(RULES), EARLIER)
        async with AdminClient(ADMIN_KEY, sim.base_url) as client:
            store = Store.open(f"sqlite:///{db}")
            await Collector(client, store).collect(queries, datetime(2100, 1, 1, tzinfo=UTC))
            store.close()

    before = time.time()
    asyncio.run(collect_2100())
    store = Store.open(f"sqlite:///{db}")
    spans = store.coverage()
    assert spans and all(end <= time.time() for s in spans.values() for _, end in s)
    assert all(end >= before - 1 for s in spans.values() for _, end in s)
    store.close()


def test_an_old_store_marked_into_the_future_is_pulled_back(tmp_path: Path) -> None:
    """Schema 3's migration seeds coverage from the sync marks, capped at the clock: a mark an
    old ``collect --now 2100`` moved to 2100 no longer hides that nothing was fetched."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store.open(url)
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO bg_sync_marks (query_key, endpoint, bucket_width, covered_start, "
                "covered_end) VALUES ('costs:1d:project_id,line_item', 'costs', 86400, "
                f"{NOW - 86400}, 4102444800)"
            )
        )
        conn.execute(text("DELETE FROM bg_coverage"))
        conn.execute(text("UPDATE bg_schema_version SET version = 2"))
    store.close()
    store = Store.open(url)
    try:
        ((start, end),) = store.coverage()["costs:1d:project_id,line_item"]
        assert start == NOW - 86400 and end <= time.time()
        mark = store.sync_mark("costs:1d:project_id,line_item")
        assert mark is not None and mark.covered_end == end
    finally:
        store.close()


def test_attribution_needs_its_usage_whole(tmp_path: Path) -> None:
    """ "Image models" costs name no model: a dall-e-3 budget on costs attributes them by the
    images usage. With the images endpoint down, that figure is unknown, never $0 ok."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nbudgets:\n"
        "  - {name: dalle, limit: 100000, period: month, cost_source: costs,"
        " match: {model: dall-e-3}}\n"
        "  - {name: everything, limit: 100000, period: month, cost_source: costs}\n"
    )
    db = tmp_path / "spend.db"
    with SimulatorServer(SimulatedAPI(Organisation.create(7, NOW, 40), clock=lambda: NOW)) as sim:
        sim.faults.down.add("images")
        result = cli(sim, rules, db, LATER, "check", "--format", "json")
        assert result.exit_code == 3, result.stdout
        budgets = {b["name"]: b for b in json.loads(result.stdout)["budgets"]}
        assert budgets["dalle"]["severity"] == "unknown" and budgets["dalle"]["spend"] is None
        assert "images" in budgets["dalle"]["data"]["note"]
        assert budgets["everything"]["severity"] == "ok"  # it needs no attribution
        sim.faults.down.clear()
        healed = cli(sim, rules, db, LATER, "check", "--format", "json")
        dalle = next(b for b in json.loads(healed.stdout)["budgets"] if b["name"] == "dalle")
        assert healed.exit_code == 0 and dalle["severity"] == "ok" and dalle["spend"] > 100


def test_a_bucket_cut_at_a_past_now_is_covered_to_the_cut_and_read_whole_again(
    tmp_path: Path,
) -> None:
    """A collection at a ``--now`` 20 h back on a complete store: the API cuts the hour
    bucket at that instant, and the store keeps it so. Its coverage ends at the cut (the
    rest of the hour is a hole, unknown, never a smaller figure), and the next collection
    reads the hour whole again: the figure is the one before, to the digit."""
    from budgetguard.evaluate.data import SpendData
    from budgetguard.evaluate.evaluator import evaluate
    from budgetguard.evaluate.pricing import Pricer

    rules = load_rules_text(
        "version: 1\nbudgets:\n  - {name: w36h, limit: 100000, window: 36h, "
        "cost_source: estimate, match: {endpoint: completions}}\n"
    )
    past = (LATER - timedelta(hours=20)).replace(minute=17, second=31)
    cut = int(past.timestamp())
    org = Organisation.create(7, NOW, 4)
    store = Store.open(f"sqlite:///{tmp_path / 'cut.db'}")

    def figure() -> Any:
        plan = plan_queries(rules, LATER)
        data = SpendData.load(store, plan, Pricer(rules.pricing.models))
        (found,) = evaluate(rules, data, LATER, clock=lambda: NOW)
        return found

    async def collect(at: datetime) -> None:
        async with AdminClient(ADMIN_KEY, sim.base_url, clock=lambda: NOW) as client:
            await Collector(client, store).collect(plan_queries(rules, at), at)

    with SimulatorServer(SimulatedAPI(org, clock=lambda: NOW)) as sim:
        asyncio.run(collect(LATER))
        whole = figure()
        assert whole.spend is not None and whole.spend > 0
        asyncio.run(collect(past))  # the API's last bucket ends at 10:17:31 (cut)
        (hourly,) = [k for k in store.coverage() if k.startswith("completions:1h")]
        assert holes(store.coverage()[hourly], cut - 3600, NOW) == [(cut, cut - cut % 3600 + 3600)]
        hole = figure()
        assert hole.spend is None and hole.severity == "unknown", hole
        assert "no data for" in (hole.note or "")
        asyncio.run(collect(LATER))  # a plain collection reads the hour again, whole
        assert figure().spend == whole.spend
    store.close()
