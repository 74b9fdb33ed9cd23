"""The collector against the simulator over real HTTP, into a real SQLite file (and the real
PostgreSQL on 127.0.0.1:5432 when it answers)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from budgetguard.cli import app
from budgetguard.collect import Collector, fetch_ranges
from budgetguard.providers.openai import AdminClient, RetryPolicy
from budgetguard.rules import Rules, load_rules_text
from budgetguard.rules.needs import PlannedQuery, plan_queries
from budgetguard.simulator import SimulatedAPI, SimulatorServer
from budgetguard.simulator.faults import FaultPlan
from budgetguard.simulator.org import Organisation
from budgetguard.store import Store, StoreVersionError
from tests.conftest import ADMIN_KEY, NOW, needs_postgres

RULES = """
version: 1
budgets:
  - {name: org-week, limit: 1000, period: week}
  - {name: chat-day, limit: 100, window: 24h, match: {project: proj_chatbot}}
  - {name: erin, limit: 50, window: 48h, match: {user: user-erin}}
"""
START = datetime.fromtimestamp(NOW, UTC)


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def sim(clock: Clock) -> Any:
    org = Organisation.create(7, NOW, 30)
    with SimulatorServer(SimulatedAPI(org, clock=clock, faults=FaultPlan())) as server:
        yield server


@pytest.fixture
def rules() -> Rules:
    return load_rules_text(RULES)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store.open(f"sqlite:///{tmp_path / 'spend.db'}")
    yield s
    s.close()


def collect(
    sim: SimulatorServer,
    store: Store,
    queries: list[PlannedQuery],
    now: datetime,
    **client_kwargs: Any,
) -> Any:
    async def run() -> Any:
        client_kwargs.setdefault("clock", sim.api.clock)  # the simulated org's real clock
        async with AdminClient(ADMIN_KEY, sim.base_url, **client_kwargs) as client:
            return await Collector(client, store).collect(queries, now)

    return asyncio.run(run())


def stored_tokens(store: Store, query: PlannedQuery, start: int, end: int) -> int:
    return sum(
        r["input_tokens"]
        for r in store.usage_rows(query_keys=[query.key], bucket_width=3600, start=start, end=end)
    )


def org_tokens(sim: SimulatorServer, start: int, end: int, now: int) -> int:
    org = sim.api.org
    return sum(
        org.total(i, start, end, now).get("input_tokens", 0)
        for i, _ in org.streams_of("completions")
    )


def test_backfill_then_only_new_buckets_then_reread(
    sim: SimulatorServer, store: Store, rules: Rules, clock: Clock
) -> None:
    queries = plan_queries(rules, START)
    completions = next(q for q in queries if q.key.startswith("completions:1h"))
    assert "user_id" in completions.group_by  # a budget matches a user
    report = collect(sim, store, queries, START)
    assert not report.failed
    first = int(completions.start.timestamp())
    assert stored_tokens(store, completions, first, NOW + 1) == org_tokens(sim, first, NOW, NOW)
    mark = store.sync_mark(completions.key)
    assert mark is not None and (mark.covered_start, mark.covered_end) == (first, NOW)
    assert mark.last_error is None

    # A second run at the same time asks once per query, for the re-read span only.
    again = collect(sim, store, queries, START)
    assert again.requests == len([q for q in queries if not q.spans])  # minutes: held
    assert sum(o.buckets for o in again.outcomes) < report.outcomes[0].buckets + 20 * len(queries)

    # Three hours later: the partial hour is now complete and replaced, never doubled.
    clock.now = NOW + 3 * 3600
    later = START + timedelta(hours=3)
    collect(sim, store, plan_queries(rules, later), later)
    assert stored_tokens(store, completions, first, clock.now + 1) == org_tokens(
        sim, first, clock.now, clock.now
    )


def test_costs_are_stored_exactly_with_parsed_line_items(
    sim: SimulatorServer, store: Store, rules: Rules
) -> None:
    sim.api.string_amounts = True
    collect(sim, store, plan_queries(rules, START), START)
    rows = list(store.cost_rows())
    assert rows and all(isinstance(r["amount"], str) for r in rows)
    gpt4o = [r for r in rows if r["line_item"] == "gpt-4o-2024-08-06, cached input"]
    assert gpt4o and all(
        r["model"] == "gpt-4o-2024-08-06" and r["kind"] == "cached input" for r in gpt4o
    )
    assert {r["product"] for r in rows} >= {None, "batch", "priority", "assistants api"}


class FailAfter(httpx.AsyncBaseTransport):
    """Fails every request to ``path`` (of ``bucket_width`` 1h) after the first ``ok``
    succeeded."""

    def __init__(self, path: str, ok: int) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.path, self.ok, self.seen = path, ok, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        hourly = request.url.params.get("bucket_width") == "1h"
        if request.url.path.endswith(self.path) and hourly:
            self.seen += 1
            if self.seen > self.ok:
                return httpx.Response(500, request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_failure_mid_query_leaves_the_store_as_it_was(
    sim: SimulatorServer, store: Store, rules: Rules, clock: Clock
) -> None:
    queries = plan_queries(rules, START)
    completions = next(q for q in queries if q.key.startswith("completions:1h"))
    collect(sim, store, queries, START)
    before = list(store.usage_rows(query_keys=[completions.key]))
    mark_before = store.sync_mark(completions.key)
    clock.now = NOW + 10 * 86400  # ten days later: a multi-page catch-up for each query
    later = START + timedelta(days=10)
    transport = FailAfter("/usage/completions", ok=1)
    catch_up = plan_queries(rules, later, since=START)  # one range of 242 hours: 2 pages
    report = collect(
        sim, store, catch_up, later, transport=transport, retry=RetryPolicy(max_attempts=1)
    )
    assert transport.seen == 2
    assert [o.query.key for o in report.failed] == [completions.key]
    assert list(store.usage_rows(query_keys=[completions.key])) == before
    mark = store.sync_mark(completions.key)
    assert mark is not None and mark.last_error and "HTTP 500" in mark.last_error
    assert (mark.covered_start, mark.covered_end) == (
        mark_before.covered_start,  # type: ignore[union-attr]
        mark_before.covered_end,
    )  # type: ignore[union-attr]
    embeddings = store.sync_mark(next(q.key for q in catch_up if q.endpoint == "embeddings"))
    assert embeddings is not None and embeddings.covered_end == clock.now


class Gate(httpx.AsyncBaseTransport):
    """Holds each request until ``expected`` are in flight together (or 10 s passed), and
    records the most that were."""

    def __init__(self, expected: int) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.expected, self.in_flight, self.most = expected, 0, 0
        self.all_in = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.in_flight >= self.expected:
            self.all_in.set()
        with contextlib.suppress(TimeoutError):  # fewer came together: ``most`` says so
            await asyncio.wait_for(self.all_in.wait(), 10)
        try:
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_every_query_of_a_backfill_is_in_flight_at_once(
    sim: SimulatorServer, store: Store, rules: Rules
) -> None:
    """The ``max_in_flight`` default lets a whole backfill's queries ask together (the
    critical path is then the longest query, not rounds of eight)."""
    queries = plan_queries(rules, START)
    assert len(queries) > 8
    gate = Gate(len(queries))
    report = collect(sim, store, queries, START, transport=gate)
    assert not report.failed, report.summary()
    assert gate.most == len(queries)


def test_fetch_ranges() -> None:
    q = PlannedQuery("completions", "1h", ("project_id",), datetime(2026, 11, 1, tzinfo=UTC))
    start = int(q.start.timestamp())
    reread = timedelta(hours=2)
    assert fetch_ranges(q, [], start + 7200, reread) == [(start, start + 7200)]
    assert fetch_ranges(q, [(start, start + 36000)], start + 40000, reread) == [
        (start + 28800, start + 40000)
    ]
    assert fetch_ranges(q, [(start + 7200, start + 36000)], start + 36000, reread) == [
        (start, start + 7200),
        (start + 28800, start + 36000),
    ]
    costs = PlannedQuery("costs", "1d", ("project_id",), datetime(2026, 11, 1, tzinfo=UTC))
    assert fetch_ranges(
        costs, [(start, start + 5 * 86400 + 100)], start + 5 * 86400 + 200, timedelta(days=2)
    ) == [(start + 3 * 86400, start + 5 * 86400 + 200)]
    # a hole between two collections is fetched again, widened to whole buckets
    assert fetch_ranges(
        q, [(start, start + 7300), (start + 20000, start + 36000)], start + 36000, reread
    ) == [(start + 7200, start + 21600), (start + 28800, start + 36000)]


def test_a_tick_never_rereads_the_daily_usage_evaluation_does_not_read(store: Store) -> None:
    """Daily usage is read only before the hourly data begins: those days are settled, so
    once stored, a tick plans no request for them (only the hourly and costs tails)."""
    day = 86400
    now = NOW
    hourly_from = now - now % day - 35 * day
    group_by = ("project_id", "model")
    hourly = PlannedQuery("completions", "1h", group_by, datetime.fromtimestamp(hourly_from, UTC))
    daily = PlannedQuery(
        "completions", "1d", group_by, datetime.fromtimestamp(hourly_from - 60 * day, UTC)
    )
    collector = Collector(AdminClient(ADMIN_KEY, "http://127.0.0.1:9/v1"), store)
    first = {o.query.width: o.ranges for o in collector.plan_ranges([hourly, daily], now)}
    assert first["1d"] == [(hourly_from - 60 * day, hourly_from)]  # not up to now
    store.replace_usage(daily.key, "completions", day, *first["1d"][0], [], now)
    store.replace_usage(hourly.key, "completions", 3600, hourly_from, now, [], now)
    later = now + 900
    tick = {o.query.width: o.ranges for o in collector.plan_ranges([hourly, daily], later)}
    assert tick["1d"] == []
    assert len(tick["1h"]) == 1  # the re-read tail and what is new: one request


def test_plan_follows_the_rules() -> None:
    rules = load_rules_text("""
version: 1
budgets:
  - {name: q, limit: 9, period: quarter, cost_source: costs}
  - {name: e, limit: 9, window: 30m, metric: images, match: {endpoint: images}}
  - {name: k, limit: 9, window: 2h, match: {api_key: key_1}, metric: requests, each: model}
  - {name: off, limit: 9, window: 2h, metric: usage_bytes, enabled: false}
""")
    queries = {q.key: q for q in plan_queries(rules, START)}
    assert "costs:1d:project_id,line_item" in queries  # no api key: no budget on costs needs it
    assert queries["costs:1d:project_id,line_item"].start == datetime(2026, 10, 1, tzinfo=UTC)
    assert "images:1m:project_id,model,size,api_key_id" in queries  # a sub-hour window
    assert "completions:1h:project_id,model,batch,service_tier,api_key_id" in queries
    assert not any(q.startswith("vector_stores") for q in queries)  # only a disabled budget


def test_cli_collect_auth_failure_and_an_endpoint_down(
    sim: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"BUDGETGUARD_OPENAI_BASE_URL": sim.base_url, "BUDGETGUARD_NOW": START.isoformat()}
    runner = CliRunner()
    refused = runner.invoke(
        app,
        ["collect", "-r", str(rules_file), "--db", db],
        env={**env, "OPENAI_ADMIN_KEY": "sk-proj-nope"},
    )
    assert refused.exit_code == 3
    assert "sk-admin-" in refused.stderr and "Traceback" not in refused.stderr
    assert "sk-proj-nope" not in refused.stderr + refused.stdout

    sim.faults.down.add("embeddings")
    partial = runner.invoke(
        app,
        ["collect", "-r", str(rules_file), "--db", db],
        env={**env, "OPENAI_ADMIN_KEY": ADMIN_KEY},
    )
    assert partial.exit_code == 3
    assert "embeddings" in partial.stderr and "HTTP 503" in partial.stderr
    assert partial.stdout.startswith("collected ")
    store = Store.open(db)
    marks = {m.endpoint: m for m in store.sync_marks()}
    assert marks["embeddings"].failed and not marks["completions"].failed
    store.close()

    sim.faults.down.clear()
    ok = runner.invoke(
        app,
        ["collect", "-r", str(rules_file), "--db", db, "--since", "2d"],
        env={**env, "OPENAI_ADMIN_KEY": ADMIN_KEY},
    )
    assert ok.exit_code == 0, ok.stderr
    assert "queries" in ok.stdout and "requests" in ok.stdout


def test_cli_collect_without_a_key_says_how_to_get_one(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)
    result = CliRunner().invoke(
        app,
        ["collect", "-r", str(rules_file), "--db", f"sqlite:///{tmp_path / 'x.db'}"],
        env={"OPENAI_ADMIN_KEY": "", "BUDGETGUARD_OPENAI_ADMIN_KEY": ""},
    )
    assert result.exit_code == 3
    assert "admin-keys" in result.stderr


def test_sqlite_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "spend.db"
    path.parent.mkdir()  # an explicit path's directory is never created: a typo would grow one
    store = Store.open(f"sqlite:///{path}")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        # SQLite gives its side files the database file's mode, whatever the umask
        for side in ("-wal", "-shm"):
            assert stat.S_IMODE(os.stat(f"{path}{side}").st_mode) == 0o600
    store.close()


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'spend.db'}"
    store = Store.open(url)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE bg_schema_version SET version = 999"))
    store.close()
    with pytest.raises(StoreVersionError, match="newer"):
        Store.open(url)


@pytest.mark.postgres
@needs_postgres
def test_the_same_collection_on_postgresql(sim: SimulatorServer, rules: Rules, pg_url: str) -> None:
    store = Store.open(pg_url)  # a database of its own: the server is shared
    try:
        queries = plan_queries(rules, START)
        report = collect(sim, store, queries, START)
        assert not report.failed
        completions = next(q for q in queries if q.key.startswith("completions:1h"))
        first = int(completions.start.timestamp())
        assert stored_tokens(store, completions, first, NOW + 1) == org_tokens(sim, first, NOW, NOW)
        again = collect(sim, store, queries, START)
        assert again.requests == len([q for q in queries if not q.spans])  # minutes: held
    finally:
        store.close()


def test_the_progress_bar_runs_on_a_terminal_and_is_silent_elsewhere(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from budgetguard.progress import PageProgress

    with PageProgress(enabled=True) as progress:
        progress("completions:1h:project_id", 0, 3)
        progress("completions:1h:project_id", 3, 3)
    with PageProgress(enabled=False) as quiet:
        quiet("costs:1d:project_id", 1, 1)
    assert "costs" not in capsys.readouterr().err
