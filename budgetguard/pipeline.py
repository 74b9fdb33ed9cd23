"""The stages wired end to end, once, for the CLI and the service alike:
collect -> store -> evaluate -> alerts (lifecycle, outbox) -> notify, and the digest.

Each function does one step on an open ``Store`` and raises plain exceptions; the callers
decide how to report (exit codes in the CLI, health and metrics in the service).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from budgetguard.alerts import (
    AlertEvent,
    AlertState,
    DeliveryReport,
    deliver,
    deliver_within,
    load_states,
    queue,
    transitions,
)
from budgetguard.collect import Pricer, plan_queries
from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.evaluator import Finding, evaluate
from budgetguard.evaluate.windows import needed_from
from budgetguard.notify import Digest, Notifier
from budgetguard.rules import Rules
from budgetguard.rules.periods import last_complete_period
from budgetguard.store import Store

if TYPE_CHECKING:
    import threading

    from budgetguard.collect import CollectReport
    from budgetguard.progress import PageProgress
    from budgetguard.settings import Settings

__all__ = [
    "collect",
    "deliver_due",
    "evaluate_store",
    "make_digest",
    "notify",
    "replay",
    "send_digest",
    "spend_data",
]


def collect(
    settings: Settings,
    store: Store,
    rules: Rules,
    end: datetime,
    *,
    since: datetime | None = None,
    progress: PageProgress | None = None,
) -> CollectReport:
    """Fetch what the rules need and the store lacks (the caller checked the key is set)."""
    from budgetguard.collect import Collector
    from budgetguard.openai_admin import AdminClient

    assert settings.openai_admin_key is not None
    queries = plan_queries(rules, end, since=since)

    async def run() -> CollectReport:
        async with AdminClient(settings.openai_admin_key, settings.openai_base_url) as client:
            return await Collector(client, store).collect(queries, end, progress=progress)

    return asyncio.run(run())


def spend_data(
    store: Store, rules: Rules, now: datetime, *, since: datetime | None = None
) -> SpendData:
    """The plan's data, priced; only from ``since`` on when given (see ``needed_from``)."""
    start = None if since is None else int(since.timestamp())
    return SpendData.load(
        store, plan_queries(rules, now), Pricer(rules.pricing.models), start=start
    )


def evaluate_store(
    store: Store,
    rules: Rules,
    now: datetime,
    expectations: Sequence[tuple[dict[str, str], Decimal]] = (),
) -> list[Finding]:
    data = spend_data(store, rules, now, since=needed_from(rules, now))
    return evaluate(rules, data, now, expectations)


def replay(
    rules: Rules, data: SpendData, first: datetime, last: datetime, step: timedelta
) -> Iterator[tuple[datetime, list[AlertEvent]]]:
    """Evaluation every ``step`` from ``first`` to ``last`` with a fresh in-memory alert
    state: each instant and the alert events it would have caused (backtest, demo)."""
    states: dict[str, AlertState] = {}
    moment = first
    while moment <= last:
        changed, events = transitions(evaluate(rules, data, moment), states, moment)
        states.update(changed)
        yield moment, events
        moment += step


def notify(
    store: Store,
    findings: Sequence[Finding],
    now: datetime,
    notifiers: Mapping[str, Notifier],
    on_outcome: Callable[[str, str], None] | None = None,
    *,
    within: float | None = None,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Alert transitions and their notifications in one transaction, then delivery of every
    due notification (earlier retries included)."""
    changed, events = transitions(findings, load_states(store.alerts), now)
    queue(store.alerts, changed, events, now)
    return deliver_due(store, notifiers, now, on_outcome, within=within, stop=stop)


def deliver_due(
    store: Store,
    notifiers: Mapping[str, Notifier],
    now: datetime,
    on_outcome: Callable[[str, str], None] | None = None,
    *,
    within: float | None = None,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Deliver every notification whose time has come (new ones and retries): one pass (the
    service), or retrying temporary failures for up to ``within`` seconds (a command)."""
    if within is not None:
        return deliver_within(store.alerts, notifiers, now, within, on_outcome)
    return deliver(store.alerts, notifiers, now, on_outcome, stop=stop)


def make_digest(store: Store, rules: Rules, now: datetime, period: str | None = None) -> Digest:
    from budgetguard.digest import build_digest, digest_period

    chosen = digest_period(rules, period)
    data = spend_data(store, rules, now)
    findings = evaluate(rules, data, now)
    _, start, end = last_complete_period(chosen, now, rules.timezone)
    messages = store.alerts.outbox.messages_between(int(start.timestamp()), int(end.timestamp()))
    return build_digest(rules, data, findings, messages, now, period=chosen)


def send_digest(
    store: Store,
    digest: Digest,
    names: Sequence[str],
    now: datetime,
    notifiers: Mapping[str, Notifier],
    on_outcome: Callable[[str, str], None] | None = None,
    *,
    within: float | None = None,
    stop: threading.Event | None = None,
) -> tuple[int, DeliveryReport]:
    """Queue the digest for ``names`` (its key makes a second queueing a no-op), then
    deliver what is due. Returns how many were queued, and the delivery report."""
    payload = json.dumps(digest.payload)
    rows = [(digest.key, name, payload) for name in names]
    queued = store.alerts.outbox.queue(rows, int(now.timestamp()))
    return queued, deliver_due(store, notifiers, now, on_outcome, within=within, stop=stop)
