"""The last delivery gaps: a retry window of 0 is one attempt (not none); a send that gets
through after its deadline is recorded as delivered, not sent again; a clean stop gives its
claimed rows back, so a restart sends them at once rather than after the lease."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from budgetguard.alerts import DeliveryPolicy, deliver, deliver_within
from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.store import Store
from tests.conftest import NOW, start_run
from tests.test_delivery import AT, T0, Scripted, hook, queue

RULES = """
version: 1
schedule: {{interval: 1h}}
notifiers:
  hook: {{type: webhook, url: "{url}"}}
budgets:
  - {{name: org-week, limit: 100, period: week, notify: [hook]}}
  - {{name: per-project, limit: 1, window: 7d, each: project, notify: [hook]}}
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'outbox.db'}")
    yield opened
    opened.close()


def test_a_retry_window_of_0_is_one_attempt_for_every_row(store: Store) -> None:
    receiver = Scripted()
    queue(store, "hook", "k1", "k2", "k3", "k4")
    report = deliver_within(store.alerts, {"hook": hook(receiver.url)}, T0, 0)
    assert sorted(receiver.accepted) == ["k1", "k2", "k3", "k4"]
    assert report.delivered == 4
    failing = Scripted([(503, {}, 0)] * 4)
    queue(store, "other", "k5", "k6")
    report = deliver_within(store.alerts, {"other": hook(failing.url)}, T0, 0)
    assert failing.requests == 2 and report.retrying == 2  # one attempt each, then queued
    receiver.shutdown()
    failing.shutdown()


def test_a_send_that_answers_after_its_deadline_is_delivered_not_sent_again(
    store: Store,
) -> None:
    slow = Scripted([(200, {}, 1.5)])  # answers 200 after 1.5 s, past a 1 s deadline
    queue(store, "hook", "late")
    policy = DeliveryPolicy(deadline=1.0)
    report = deliver(store.alerts, {"hook": hook(slow.url)}, T0, policy=policy)
    assert report.retrying == 1  # the deadline passed: the attempt counts, retried later
    deadline = time.monotonic() + 20
    while store.alerts.counts().get("delivered") != 1:  # its late answer is recorded
        assert time.monotonic() < deadline, store.alerts.counts()
        time.sleep(0.05)
    later = T0.replace(hour=T0.hour + 1)
    deliver(store.alerts, {"hook": hook(slow.url)}, later, policy=policy)
    assert slow.requests == 1 and slow.accepted == ["late"]  # never sent again
    slow.shutdown()


def test_a_late_answer_never_overrides_a_newer_claim(store: Store) -> None:
    queue(store, "hook", "k")
    outbox = store.alerts.outbox
    row = outbox.claim("hook", "first", AT, 90)
    assert row is not None
    assert outbox.retry(row, "first", AT, "no answer within 30s")
    again = outbox.claim("hook", "second", AT + 1, 90)  # another deliverer took it
    assert again is not None
    assert not outbox.delivered_late(row, AT + 2)
    assert outbox.delivered(again, "second", AT + 3)


def test_a_clean_stop_gives_its_rows_back_and_a_restart_sends_them_at_once(
    tmp_path: Path,
) -> None:
    """A receiver that hangs while the service stops: the row is released, not left leased
    for 90 s; the next start delivers it within seconds, under the same key."""
    hung = Scripted([(200, {}, 600)])  # the first send hangs, then it answers
    with SimulatorServer(build_api(now=NOW, days=10)) as sim:
        process, _, _ = start_run(tmp_path, sim.base_url, RULES.format(url=hung.url))
        deadline = time.monotonic() + 60
        while hung.requests == 0:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        store = Store.open(f"sqlite:///{tmp_path / 'run.db'}")
        try:
            leased = [r for r in _rows(store) if r[1] is not None]
            assert not leased, leased  # nothing left claimed by the stopped service
        finally:
            store.close()
        began = time.monotonic()
        process, _, _ = start_run(tmp_path, sim.base_url, RULES.format(url=hung.url))
        try:
            while not hung.accepted:
                assert time.monotonic() - began < 45, "the restart waited out the lease"
                time.sleep(0.1)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    assert time.monotonic() - began < 45
    hung.shutdown()


def _rows(opened: Store) -> list[tuple[str, str | None, str]]:
    with opened.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT idempotency_key, claimed_by, status FROM bg_outbox")
        return [(str(k), c, str(s)) for k, c, s in rows]
