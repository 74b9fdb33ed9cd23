"""Evaluating what is stored: the read side of the pipeline, over any store that reads.

``check``, the service, the demo and backtests evaluate through these functions on a
``Store``; a cold `check --offline` without ``--notify`` gives them a ``SQLiteReads``
instead, so that nothing on its path imports SQLAlchemy, the outbox or the notifiers.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from budgetguard.alerts.keys import report_keys
from budgetguard.alerts.lifecycle import AlertState, active_alerts, resolved_alerts, state_of
from budgetguard.alerts.silences import Held, Silence, mark_silenced, silence_json
from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.evaluator import Finding, evaluate
from budgetguard.evaluate.pricing import Pricer
from budgetguard.rules import Rules
from budgetguard.rules.needs import needed_from, plan_queries
from budgetguard.store.reads import Reads

__all__ = [
    "AlertSnapshot",
    "alert_snapshot",
    "display_names",
    "evaluate_store",
    "evaluate_with_data",
    "named_rules",
    "report_alerts",
    "running_silences",
    "spend_data",
]


def spend_data(
    store: Reads,
    rules: Rules,
    now: datetime,
    *,
    since: datetime | None = None,
    replayed: Sequence[datetime] = (),
    past: bool = False,
) -> SpendData:
    """The plan's data, priced; only from ``since`` on when given (see ``needed_from``);
    with the minutes of the hours each ``replayed`` instant cuts (a backtest's steps), and
    of the hour a ``past`` ``now`` (a ``--now``) cuts."""
    start = None if since is None else int(since.timestamp())
    plan = plan_queries(rules, now, replayed=replayed, past=past)
    return SpendData.load(store, plan, Pricer(rules.pricing.models), start=start)


def evaluate_store(
    store: Reads,
    rules: Rules,
    now: datetime,
    expectations: Sequence[tuple[dict[str, str], Decimal]] = (),
    *,
    past: bool = False,
) -> list[Finding]:
    return evaluate_with_data(store, rules, now, expectations, past=past)[2]


def evaluate_with_data(
    store: Reads,
    rules: Rules,
    now: datetime,
    expectations: Sequence[tuple[dict[str, str], Decimal]] = (),
    *,
    past: bool = False,
) -> tuple[Rules, SpendData, list[Finding]]:
    """``evaluate_store``, with the named rules and the data it evaluated (the status page
    draws its series from the same data). ``past``: ``now`` is a ``--now`` earlier than
    the clock, a bound that cuts its hour (``evaluate``)."""
    rules = named_rules(store, rules)
    data = spend_data(store, rules, now, since=needed_from(rules, now), past=past)
    expected = named_expectations(store, expectations)
    return rules, data, evaluate(rules, data, now, expected, past=past)


def named_expectations(
    store: Reads, expectations: Sequence[tuple[dict[str, str], Decimal]]
) -> list[tuple[dict[str, str], Decimal]]:
    """``--expect`` selectors with display names turned into ids, as ``match`` globs are: a
    value that matches no id but the name of exactly one project (user, API key) names it."""
    if not expectations:
        return []
    names = store.names_by_kind()
    out = []
    for selector, amount in expectations:
        chosen = dict(selector)
        for key, value in selector.items():
            known = names.get(key) or {}
            if any(fnmatch.fnmatchcase(i, value) for i in known):
                continue  # ids first
            ids = [i for i, name in known.items() if fnmatch.fnmatchcase(name, value)]
            if len(ids) == 1:
                chosen[key] = ids[0]
        out.append((chosen, amount))
    return out


@dataclass(frozen=True)
class AlertSnapshot:
    """The stored alert states and silence holds before an evaluation's notifications."""

    states: dict[str, AlertState]
    held: dict[str, Held]


def alert_snapshot(store: Reads) -> AlertSnapshot:
    """What the alert stages start from: taken before ``notify`` writes what an evaluation
    changed, so that the report can still show what that evaluation resolved."""
    states = {s.identity: state_of(s) for s in store.alert_states()}
    held = {i: Held.stored(i, key, event) for i, (key, event) in store.silence_holds().items()}
    return AlertSnapshot(states, held)


def report_alerts(
    store: Reads, findings: Sequence[Finding], now: datetime, prior: AlertSnapshot | None = None
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The report's alerts (marked ``silenced``, each with the key its notification carries,
    or will carry if notified now): those that hold, and those this evaluation resolves
    against ``prior`` (the states before its notifications; default: as stored), and the
    silences active at ``now``."""
    running = running_silences(store, now)
    names = display_names(store)
    current = alert_snapshot(store)
    before = None if prior is None else (prior.states, prior.held)
    installation = store.installation_id()
    keys, resolved = report_keys(
        findings, (current.states, current.held), before, running, now, installation, names
    )
    budgets = {f.budget.name: f.budget for f in findings}
    alerts = active_alerts(findings, keys) + resolved_alerts(resolved)
    return mark_silenced(alerts, running, now, names, budgets), [silence_json(s) for s in running]


def running_silences(store: Reads, now: datetime) -> list[Silence]:
    """The silences running at ``now`` (for the alert stages, ``/status`` and ``check``)."""
    return [Silence(*row) for row in store.silences_at(now)]


def named_rules(store: Reads, rules: Rules) -> Rules:
    """``rules`` whose ``match`` globs also match the directory's display names, current
    and former (a renamed entry keeps matching by id)."""
    return rules.with_names(store.names_by_kind(), store.former_names())


def display_names(store: Reads) -> dict[str, str]:
    """id -> display name of the projects, users and API keys the directory lists."""
    return store.names()
