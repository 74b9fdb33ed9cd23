"""Real processes: deliverers racing on SQLite and PostgreSQL, replicas opening one empty
store together, kill -9 mid-delivery, and ``budgetguard run`` stopping on SIGTERM while the
API or a receiver hangs. Reduced counts here; ``python -m benchmarks.delivery_race`` runs
the full ones."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.delivery_race import kill_trials, race
from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.store import SCHEMA_VERSION, Store
from tests.conftest import NOW, needs_postgres
from tests.conftest import start_run as start_service_process
from tests.test_delivery import Scripted


def test_four_deliverers_on_one_sqlite_store_deliver_every_key_once(tmp_path: Path) -> None:
    result = race(f"sqlite:///{tmp_path / 'race.db'}", processes=4, rounds=6, keys=5)
    assert (result.crashed, result.duplicates, result.lost) == (0, 0, 0), result.line()
    assert result.deliveries == 30


@needs_postgres
def test_four_deliverers_on_one_postgres_store_deliver_every_key_once(pg_url: str) -> None:
    result = race(pg_url, processes=4, rounds=6, keys=5)
    assert (result.crashed, result.duplicates, result.lost) == (0, 0, 0), result.line()
    assert result.deliveries == 30


OPEN = """
import sys, time
from budgetguard.store import Store
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
Store.open(sys.argv[1]).close()
print("opened", flush=True)
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_replicas_started_together_on_an_empty_store_all_start(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'empty.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    start = time.time() + 3  # after every interpreter has imported: they open at once
    replicas = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, url, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outcomes = [p.communicate(timeout=120) for p in replicas]
    assert [p.returncode for p in replicas] == [0] * 6, [err[-300:] for _, err in outcomes]
    store = Store.open(url)
    try:
        from sqlalchemy import text

        with store.engine.connect() as conn:
            versions = conn.execute(text("SELECT version FROM bg_schema_version")).all()
        assert versions == [(SCHEMA_VERSION,)]
    finally:
        store.close()


def test_kill_9_mid_delivery_loses_nothing_sqlite(tmp_path: Path) -> None:
    result = kill_trials(lambda i: f"sqlite:///{tmp_path / f'kill{i}.db'}", trials=3, keys=8)
    assert result.lost == 0, result.line()
    assert result.duplicates_not_in_flight == 0, result.line()


@needs_postgres
def test_kill_9_mid_delivery_loses_nothing_postgres(pg_url: str) -> None:
    result = kill_trials(lambda i: pg_url, trials=2, keys=8)
    assert result.lost == 0, result.line()
    assert result.duplicates_not_in_flight == 0, result.line()


# -- SIGTERM ---------------------------------------------------------------------------------

RULES = """
version: 1
schedule: {{interval: 1m}}
notifiers:
  hook: {{type: webhook, url: "{url}"}}
budgets:
  - {{name: org-week, limit: 100, period: week, notify: [hook]}}
  - {{name: per-project, limit: 1, window: 7d, each: project, notify: [hook]}}
"""


def start_run(tmp_path: Path, base_url: str, hook_url: str) -> tuple[Any, int]:
    process, port, _ = start_service_process(tmp_path, base_url, RULES.format(url=hook_url))
    return process, port


def stop_seconds(process: Any) -> float:
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    return time.monotonic() - began


def test_sigterm_during_a_hung_collect_stops_within_10s(tmp_path: Path) -> None:
    with SimulatorServer(build_api(now=NOW, days=10, latency_ms=600_000)) as sim:
        process, _ = start_run(tmp_path, sim.base_url, "http://127.0.0.1:9/hook")
        time.sleep(1.5)  # the first tick is waiting on the API
        took = stop_seconds(process)
    assert took < 10, took


def test_sigterm_during_a_hung_receiver_stops_within_10s_and_loses_nothing(
    tmp_path: Path,
) -> None:
    hung = Scripted([(200, {}, 600)] * 100)
    with SimulatorServer(build_api(now=NOW, days=10)) as sim:
        process, _ = start_run(tmp_path, sim.base_url, hung.url)
        deadline = time.monotonic() + 60
        while hung.requests == 0:  # a delivery is hanging on the receiver
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        took = stop_seconds(process)
    assert took < 10, took
    store = Store.open(f"sqlite:///{tmp_path / 'run.db'}")
    try:
        counts = store.alerts.counts()
    finally:
        store.close()
    assert counts.get("pending", 0) >= 1 and not counts.get("failed")  # queued, not lost
    hung.shutdown()


@needs_postgres
def test_advisory_lock_keys_are_per_database_and_namespace(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import create_engine

    from budgetguard.store import normalise_url
    from budgetguard.store.locks import LOCK_NAMESPACE_ENV, lock_key
    from tests.conftest import POSTGRES_URL

    def key(url: str, purpose: str = "leader") -> int:
        engine = create_engine(normalise_url(url))
        try:
            with engine.connect() as conn:
                return lock_key(conn, purpose)
        finally:
            engine.dispose()

    ours, shared = key(pg_url), key(POSTGRES_URL)
    assert ours != shared and ours == key(pg_url)  # stable per store, apart from others
    assert key(pg_url, "schema") != ours
    monkeypatch.setenv(LOCK_NAMESPACE_ENV, "team-b")
    assert key(pg_url) != ours


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_queueing_says_how_many_rows_were_new(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """What `digest --send` and the logs report: PostgreSQL's rowcount of an
    ON CONFLICT DO NOTHING insert is not a count (-1), so the new rows are counted."""
    url = (
        f"sqlite:///{tmp_path / 'queue.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    store = Store.open(url)
    try:
        outbox = store.alerts.outbox
        assert outbox.queue([("k1", "hook", "{}"), ("k2", "hook", "{}")], 1) == 2
        assert outbox.queue([("k1", "hook", "{}"), ("k1", "mail", "{}")], 2) == 1
        assert outbox.queue([("k2", "hook", "{}")], 3) == 0
    finally:
        store.close()
