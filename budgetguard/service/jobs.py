"""The service's three jobs (tick, digest, outbox retry) as plain functions of their inputs.

Each runs in a worker process of its own (``service/worker.py``), which gives the job's
memory back to the system when it ends, and returns an outcome (``service/outcomes.py``)
that the service applies to its metrics, health and ``/status``. A job never raises: what
went wrong is the outcome's ``error``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from budgetguard import pipeline
from budgetguard.evaluate.evaluator import Finding
from budgetguard.notify.alert_text import group_text
from budgetguard.notify.manager import default_plugins
from budgetguard.offline import evaluate_with_data
from budgetguard.report import to_json
from budgetguard.rules import Rules
from budgetguard.rules.needs import plan_queries
from budgetguard.service.health import failing_queries, max_staleness, unknown_budgets
from budgetguard.service.outcomes import Gauge, JobOutcome, Progress, TickOutcome
from budgetguard.service.page_data import page_data
from budgetguard.service.phase import delivering
from budgetguard.settings import Settings
from budgetguard.store import Store
from budgetguard.watch import is_watch, watch_findings, watched_rules

__all__ = ["JOBS", "digest", "gauges", "retry", "tick"]

log = logging.getLogger("budgetguard.service")


def gauges(findings: Sequence[Finding], names: Mapping[str, str]) -> list[Gauge]:
    def number(value: Any) -> float | None:
        return None if value is None else float(value)

    return [
        Gauge(
            f.budget.name,
            ",".join(f"{k}={v}" for k, v in f.group.items()),
            group_text(f.group, names),
            number(f.spend),
            number(f.limit),
            number(f.ratio),
        )
        for f in findings
    ]


def tick(
    settings: Settings,
    rules: Rules,
    now: datetime,
    stop: threading.Event,
    progress: Progress,
) -> TickOutcome:
    """Collect what is new, evaluate, record alert transitions, deliver."""
    outcome = TickOutcome()
    with _guarded(outcome, "tick", settings) as opened:
        _tick(outcome, settings, opened, rules, now, stop, progress)
    return outcome


def _tick(
    outcome: TickOutcome,
    settings: Settings,
    store: Store,
    rules: Rules,
    now: datetime,
    stop: threading.Event,
    progress: Progress,
) -> None:
    problems: list[str] = []
    user_rules, rules = rules, watched_rules(rules)  # with the watch's budgets, if asked
    if settings.openai_admin_key is not None:
        report = pipeline.collect(settings, store, rules, now)
        problems = [f"{o.query.key}: {o.error}" for o in report.failed]
        if report.all_failed:
            raise RuntimeError(f"no data collected: {problems[0]}")
    else:
        problems.append("no admin key: evaluating stored data only")
    marks = store.sync_marks()  # what the collection left: read once
    latest: dict[str, int] = {}
    for mark in marks:
        if mark.last_success_at is not None:
            latest[mark.endpoint] = max(latest.get(mark.endpoint, 0), mark.last_success_at)
    for endpoint, stamp in latest.items():
        progress.collected(endpoint, stamp)
    named, data, evaluated = evaluate_with_data(store, rules, now)
    findings = [f for f in evaluated if not is_watch(f.budget)]
    named = named.model_copy(update={"budgets": tuple(b for b in named.budgets if not is_watch(b))})
    watching, watch_problems = watch_findings(settings, user_rules, evaluated, now)
    problems += watch_problems
    # a query no budget plans any more (disabled, removed, regrouped) is no reason to
    # distrust the guard, however long ago it last failed
    planned = {q.key for q in plan_queries(user_rules, now)}
    stale = failing_queries(
        [m for m in marks if m.query_key in planned], int(now.timestamp()), max_staleness(rules)
    )
    notifiers = default_plugins().notifiers(rules.notifiers)
    prior = pipeline.alert_snapshot(store)  # what this tick resolves, once notified
    with delivering():
        delivery = pipeline.notify(
            store, [*findings, *watching], now, notifiers, progress.attempt, stop=stop
        )
    acted = _act(settings, store, rules, findings, now)
    if acted:
        with delivering():
            pipeline.deliver_due(store, notifiers, now, progress.attempt, stop=stop)
    names = pipeline.display_names(store)
    outcome.gauges = gauges(findings, names)
    alerts, silences = pipeline.report_alerts(store, [*findings, *watching], now, prior)
    body = to_json([*findings, *watching], alerts, now, names=names)
    body["silences"] = silences  # the active ones, listed even when there are none
    body["collect_problems"] = problems
    body["notifications"] = {
        "delivered": delivery.delivered,
        "retrying": delivery.retrying,
        "failed": delivery.failed,
        "outbox": store.alerts.counts(),
    }
    body["actions"] = _open_actions(store)
    body.update(page_data(store, named, data, findings, now, marks, planned))
    outcome.status = body
    outcome.problems = stale + unknown_budgets(list(findings))
    log.info(
        "tick: %d findings, %d delivered, %d to retry, %d failed",
        len(findings),
        delivery.delivered,
        delivery.retrying,
        delivery.failed,
    )


def _act(
    settings: Settings, store: Store, rules: Rules, findings: Sequence[Finding], now: datetime
) -> bool:
    """The action stage after the alerts (a failure of it is logged, never the tick's end:
    the alerts are delivered all the same). True when it ran."""
    if not rules.actions and not store.actions.all(("applied", "applying", "reverting")):
        return False
    try:
        ran, skipped = pipeline.act(
            settings,
            store,
            rules,
            findings,
            now,
            collect_month=settings.openai_admin_key is not None,
        )
    except Exception as exc:
        log.error("actions failed: %s", exc)
        return False
    for line in [*ran.moved, *ran.held, *skipped]:
        log.info("actions: %s", line)
    return True


def _open_actions(store: Store) -> list[dict[str, Any]]:
    """The actions not finished yet, for ``/status`` (the full story: ``actions log``)."""
    open_states = ("planned", "pending_approval", "applying", "applied", "reverting")
    return [
        {
            "id": row.id,
            "state": row.state,
            "action": row.action_name,
            "type": row.type,
            "budget": row.budget,
            "group": row.group,
            "target": row.target,
            "enforce": row.enforce,
            "revert_at": row.revert_at,
        }
        for row in store.actions.all(open_states)
    ]


def digest(
    settings: Settings,
    rules: Rules,
    now: datetime,
    stop: threading.Event,
    progress: Progress,
) -> JobOutcome:
    """Build the digest of the last complete period, queue it (once: its key) and deliver."""
    outcome = JobOutcome()
    if rules.digest is None:
        return outcome
    with _guarded(outcome, "digest", settings) as opened:
        made = pipeline.make_digest(opened, rules, now)
        notifiers = default_plugins().notifiers(rules.notifiers)
        with delivering():
            queued, _ = pipeline.send_digest(
                opened, made, rules.digest.notify, now, notifiers, progress.attempt, stop=stop
            )
        log.info("digest %s: %d queued", made.key, queued)
    return outcome


def retry(
    settings: Settings,
    rules: Rules,
    now: datetime,
    stop: threading.Event,
    progress: Progress,
) -> JobOutcome:
    """Deliver what is due in the outbox (retries between ticks)."""
    outcome = JobOutcome()
    with _guarded(outcome, "outbox retry", settings) as opened:
        notifiers = default_plugins().notifiers(rules.notifiers)
        with delivering():
            pipeline.deliver_due(opened, notifiers, now, progress.attempt, stop=stop)
    return outcome


#: The jobs by name, as the worker is told which one to run.
JOBS = {"tick": tick, "digest": digest, "retry": retry}


@contextlib.contextmanager
def _guarded(outcome: JobOutcome, job: str, settings: Settings) -> Iterator[Store]:
    """The store, opened for the job and closed after it; whatever the job raises is its
    outcome's error (logged), never the caller's exception."""
    try:
        opened = Store.open(settings.database_url)
        try:
            yield opened
        finally:
            opened.close()
    except Exception as exc:
        outcome.error = f"{job} failed: {exc}"
        log.error("%s", outcome.error)
