"""Alert lifecycle (fire once per period or crossing, resolve, repeat, no_data) and the outbox
(one transaction with the transition, delivered once, retried with the same key)."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from budgetguard_console import ConsoleNotifier, ConsoleSettings
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetguard.alerts import AlertState, deliver, group_events, load_states, queue, transitions
from budgetguard.evaluate.evaluator import Finding
from budgetguard.evaluate.windows import budget_window
from budgetguard.notify import Alert, DeliveryError
from budgetguard.rules import Budget, load_rules_text
from budgetguard.store import Store
from budgetguard.store.alerts import AlertStore

RULES = load_rules_text("""
version: 1
notifiers: {out: {type: console}, hook: {type: console}}
budgets:
  - {name: month, limit: 100, period: month, notify: [out]}
  - {name: day24, limit: 100, window: 24h, repeat: 6h, notify: [out, hook]}
""")
MONTH, ROLLING = RULES.budgets
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def finding(budget: Budget, spend: float | None, now: datetime) -> Finding:
    value = None if spend is None else Decimal(str(spend))
    crossed = (
        ()
        if value is None
        else tuple(t for t in budget.thresholds if value >= t.ratio * (budget.limit or 0))
    )
    severity = (
        "unknown"
        if value is None
        else max((t.severity for t in crossed), key=["warning", "critical"].index, default="ok")
    )
    return Finding(
        budget,
        {},
        budget_window(budget, now, "UTC"),
        value,
        budget.limit,
        None,
        severity,
        "costs",
        value is not None,
        None if value is not None else "stale",
        crossed,
    )


def run(
    budget: Budget,
    spends: list[float | None],
    step: timedelta,
    states: dict[str, AlertState] | None = None,
) -> list[tuple[datetime, Any]]:
    states = {} if states is None else states
    log = []
    now = T0
    for spend in spends:
        changed, events = transitions([finding(budget, spend, now)], states, now)
        states.update(changed)
        log += [(now, e) for e in events]
        now += step
    return log


def test_a_calendar_threshold_fires_once_per_period() -> None:
    log = run(MONTH, [50, 85, 90, 70, 95, 120, 130], timedelta(days=1))
    fired = [(e.kind, e.threshold.key if e.threshold else "", e.event) for _, e in log]
    assert fired == [
        ("threshold", "0.8", "fire"),
        ("threshold", "0.8", "resolve"),
        ("threshold", "1", "fire"),
    ]  # 0.8 does not fire again this month


def test_a_new_period_fires_again() -> None:
    log = run(MONTH, [90] * 40, timedelta(days=1))
    fires = [t for t, e in log if e.event == "fire"]
    assert fires == [T0, datetime(2026, 12, 1, tzinfo=UTC)]


def test_rolling_fires_per_crossing_and_repeats() -> None:
    log = run(ROLLING, [50, 90, 90, 90, 90, 50, 90], timedelta(hours=2))
    events = [(t - T0, e.event) for t, e in log if e.threshold and e.threshold.key == "0.8"]
    assert events == [
        (timedelta(hours=2), "fire"),
        (timedelta(hours=8), "remind"),
        (timedelta(hours=10), "resolve"),
        (timedelta(hours=12), "fire"),
    ]
    assert all(e.notify == ("out", "hook") for _, e in log)


def test_no_data_fires_and_resolves_and_leaves_thresholds_alone() -> None:
    log = run(ROLLING, [90, None, None, 90, 10], timedelta(hours=1))
    kinds = [(e.kind, e.event) for _, e in log]
    assert kinds == [
        ("threshold", "fire"),
        ("no_data", "fire"),
        ("no_data", "resolve"),
        ("threshold", "resolve"),
    ]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(0, 200)), min_size=1, max_size=60),
    st.sampled_from([timedelta(hours=7), timedelta(days=1), timedelta(days=3)]),
)
def test_lifecycle_properties(spends: list[int | None], step: timedelta) -> None:
    log = run(MONTH, [None if s is None else float(s) for s in spends], step)
    fires: dict[tuple[str, str, str], int] = {}
    open_episodes: dict[str, int] = {}  # key -> month it fired in
    for now, event in log:
        key = event.kind + (event.threshold.key if event.threshold else "")
        month = now.year * 12 + now.month
        if event.event == "fire":
            if key in open_episodes:  # only a new period starts a new episode while firing
                assert event.kind != "no_data" and open_episodes[key] != month
            open_episodes[key] = month
            if event.kind != "no_data":
                period = (key, str(now.year), str(now.month))
                fires[period] = fires.get(period, 0) + 1
                assert fires[period] == 1, "two firings of one threshold in a period"
        elif event.event == "resolve":
            assert open_episodes.pop(key, None) is not None, "resolved an episode not open"
    keys = [e.key for _, e in log]
    assert len(keys) == len(set(keys)), "idempotency keys must be unique per event"


class Flaky:
    def __init__(self, failures: int, retryable: bool = True) -> None:
        self.failures, self.retryable, self.sent = failures, retryable, []

    def send(self, alert: Alert) -> None:
        if self.failures:
            self.failures -= 1
            raise DeliveryError("receiver down", retryable=self.retryable)
        self.sent.append(alert.payload)


def store_at(tmp_path: Path) -> AlertStore:
    tmp_path.mkdir(parents=True, exist_ok=True)  # the store never creates its directory
    return AlertStore(Store.open(f"sqlite:///{tmp_path / 'alerts.db'}").engine)


def test_a_crash_between_transition_and_delivery_delivers_once_later(tmp_path: Path) -> None:
    alerts = store_at(tmp_path)
    now = T0
    changed, events = transitions([finding(ROLLING, 150, now)], load_states(alerts), now)
    # two thresholds crossed at once: one notification per notifier, not one per threshold
    assert queue(alerts, changed, group_events(events), now) == 2
    # ... the process dies here, before delivering. A new process evaluates again:
    changed2, events2 = transitions([finding(ROLLING, 150, now)], load_states(alerts), now)
    assert not changed2 and not events2  # the state was saved with the outbox rows
    out, hook = Flaky(0), Flaky(0)
    report = deliver(alerts, {"out": out, "hook": hook}, now)
    assert report.delivered == 2
    assert deliver(alerts, {"out": out, "hook": hook}, now).delivered == 0
    (sent,) = out.sent
    top = next(e for e in events if e.threshold is not None and e.threshold.key == "1")
    assert sent["key"] == top.key  # the key of the highest threshold that fired
    assert sent["severity"] == "critical"
    assert [t["at"] for t in sent["thresholds"]] == ["100%", "80%"]
    assert sent["message"].endswith("thresholds 100%, 80% crossed")


def test_queueing_the_same_event_twice_keeps_one_row(tmp_path: Path) -> None:
    alerts = store_at(tmp_path)
    changed, events = transitions([finding(MONTH, 150, T0)], {}, T0)
    notes = group_events(events)
    queue(alerts, changed, notes, T0)
    queue(alerts, changed, notes, T0)  # e.g. two replicas racing with the same state
    assert len(alerts.keys()) == len(notes) == 1


def test_temporary_failures_retry_with_backoff_permanent_ones_fail(tmp_path: Path) -> None:
    alerts = store_at(tmp_path)
    changed, events = transitions([finding(MONTH, 150, T0)], {}, T0)
    queue(alerts, changed, group_events(events), T0)
    flaky = Flaky(failures=2)
    assert deliver(alerts, {"out": flaky}, T0).retrying == 1  # 80% and 100%: one message
    assert deliver(alerts, {"out": flaky}, T0).delivered == 0  # not due yet
    later = T0 + timedelta(minutes=1)
    assert deliver(alerts, {"out": flaky}, later).retrying == 1
    deliver(alerts, {"out": flaky}, T0 + timedelta(hours=1))
    assert len(flaky.sent) == 1
    assert {p["key"] for p in flaky.sent} <= {e.key for e in events}

    other = store_at(tmp_path / "x")
    changed, events = transitions([finding(MONTH, 150, T0)], {}, T0)
    queue(other, changed, group_events(events), T0)
    assert deliver(other, {"out": Flaky(5, retryable=False)}, T0).failed == 1
    assert other.counts() == {"failed": 1}


def test_console_sender_writes_one_line() -> None:
    stream = io.StringIO()
    alert = Alert.from_payload({"message": "CRITICAL month: $150.00 of $100.00 (150%)"})
    ConsoleNotifier(ConsoleSettings(), stream).send(alert)
    assert stream.getvalue() == "[budgetguard] CRITICAL month: $150.00 of $100.00 (150%)\n"


def test_decide_is_pure_and_gives_a_reason_for_every_combination() -> None:
    """Every (state, holds, period, repeat) combination: one action and its reason."""
    import itertools

    from budgetguard.alerts import decide

    base = AlertState("id", "b", (), "threshold", "80%")
    at = 10_000
    seen: dict[tuple[object, ...], str] = {}
    for firing, holds, period, kept, repeat, due in itertools.product(
        (False, True), (False, True), (None, "P2"), (None, "P1", "P2"), (None, 3600), (False, True)
    ):
        state = replace(
            base,
            state="firing" if firing else "ok",
            period_key=kept,
            since=at - 7200,
            last_sent_at=at - (3600 if due else 60),
            episode=3,
        )
        delta = None if repeat is None else timedelta(seconds=repeat)
        decision = decide(state, holds, at, period=period, repeat=delta)
        again = decide(state, holds, at, period=period, repeat=delta)
        assert decision == again and decision.reason  # pure, and always says why
        if decision.action == "none":
            assert decision.state is state
        elif decision.action == "fire":
            assert holds and decision.state.episode == 4 and decision.state.state == "firing"
            assert not firing or (period is not None and kept != period)
        elif decision.action == "remind":
            assert holds and firing and delta is not None and due
            assert decision.state.last_sent_at == at and decision.sequence == 2
        else:
            assert decision.action == "resolve" and firing and not holds
            assert decision.state.state == "ok"
        if holds and not firing and period is not None and kept == period:
            assert decision.action == "none" and "already fired in this period" in decision.reason
        seen[(firing, holds, period, kept, repeat, due)] = decision.action
    assert set(seen.values()) == {"fire", "remind", "resolve", "none"}


def test_one_typed_alert_from_lifecycle_to_plugin_round_trips_its_payload() -> None:
    from budgetguard.notify import Alert

    alert = Alert(
        key="k1",
        summary="WARNING b: $80.00 of $100.00 (80%)",
        severity="warning",
        kind="threshold",
        budget="b",
        group={"project": "p"},
        spend=Decimal("80.5"),
        limit=Decimal("100"),
        threshold=Decimal("0.8"),
        window="this month",
        source="costs",
        fired_at="2026-11-22T10:00:00Z",
    )
    body = alert.to_payload()
    assert body == {
        "type": "budgetguard.alert",
        "budget": "b",
        "group": {"project": "p"},
        "kind": "threshold",
        "severity": "warning",
        "threshold": 0.8,
        "spend": 80.5,
        "limit": 100.0,
        "key": "k1",
        "window": "this month",
        "forecast": None,
        "source": "costs",
        "message": "WARNING b: $80.00 of $100.00 (80%)",
        "fired_at": "2026-11-22T10:00:00Z",
    }
    again = Alert.from_payload(body)
    assert again.to_payload() == body
    assert (again.spend, again.threshold, again.summary) == (
        alert.spend,
        alert.threshold,
        alert.summary,
    )
