"""The stages wired end to end, once, for the CLI and the service alike:
collect -> store -> evaluate -> alerts (lifecycle, outbox) -> notify, and the digest.

Each function does one step on an open ``Store`` and raises plain exceptions; the callers
decide how to report (exit codes in the CLI, health and metrics in the service).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from budgetguard.alerts import (
    AlertEvent,
    AlertState,
    DeliveryReport,
    Held,
    Silence,
    apply_silences,
    carried,
    deliver,
    deliver_within,
    group_events,
    load_states,
    queue,
    transitions,
)
from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.evaluator import Finding, evaluate
from budgetguard.notify import Digest, Notifier
from budgetguard.offline import (
    alert_snapshot,
    display_names,
    evaluate_store,
    named_expectations,
    named_rules,
    report_alerts,
    spend_data,
)
from budgetguard.rules import Rules
from budgetguard.rules.needs import plan_queries
from budgetguard.rules.periods import last_complete_period
from budgetguard.store import Store
from budgetguard.store.directory import DirectoryStore
from budgetguard.store.silences import SilenceStore, replace_holds

if TYPE_CHECKING:
    import threading

    from budgetguard.actions import ActionRun, Controls, Runner
    from budgetguard.collect import CollectReport
    from budgetguard.progress import PageProgress
    from budgetguard.providers.openai import AdminClient
    from budgetguard.rules.needs import PlannedQuery
    from budgetguard.settings import Settings

log = logging.getLogger("budgetguard.pipeline")
#: the least time the names refresh gets of what the collection left (seconds)
NAMES_SHARE_MIN = 5.0

__all__ = [
    "act",
    "action_runner",
    "active_silences",
    "alert_snapshot",
    "collect",
    "deliver_due",
    "display_names",
    "evaluate_store",
    "make_digest",
    "named_expectations",
    "named_rules",
    "notify",
    "refresh_names",
    "replay",
    "report_alerts",
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
    replayed: Sequence[datetime] = (),
) -> CollectReport:
    """Fetch what the rules need and the store lacks (the caller checked the key is set):
    from ``since`` when given, and every hole in what the budgets need whatever ``since`` is;
    within ``settings.collect_deadline`` seconds, the names refresh included (after the
    collection, in what is left of it, at most a quarter of the deadline or 5 s; skipped
    when the key was refused or nothing came). With ``replayed`` instants (a backtest's
    steps), also what those instants read: the minutes of the hours they cut, which a replay
    splits by, and the hours of the days they reach back to."""
    from budgetguard.collect import Collector, widen

    past = settings.fixed_past(end) and not replayed
    queries = plan_queries(rules, end, replayed=replayed, past=past)
    if since is not None and not replayed:
        queries = widen(plan_queries(rules, end, since=since, past=past), queries)
    deadline = settings.collect_deadline

    async def run() -> CollectReport:
        until = time.monotonic() + deadline
        async with _admin_client(settings) as client:
            collector = Collector(
                client, store, deadline=deadline, concurrency=settings.max_in_flight
            )
            report = await collector.collect(queries, end, progress=progress)
            if past and not report.failed:
                report.requests += await _through_day(client, store, queries, end, until)
            # a refused key or a dead API: the command's one line already says so
            if not report.auth_failed and not report.all_failed and not replayed:
                # names are for people: a slow directory costs at most a quarter of it
                within = min(until - time.monotonic(), max(NAMES_SHARE_MIN, deadline / 4))
                await _refresh_names(client, store, end, within)
            return report

    return asyncio.run(run())


async def _through_day(
    client: AdminClient, store: Store, queries: Sequence[PlannedQuery], end: datetime, until: float
) -> int:
    """After a collection at a ``--now`` in the past: the rest of its UTC day, whose costs
    straddle ``--now`` and are split by the day's usage (and whose cut buckets are read
    whole). Best effort, usage first: an API whose present is that ``--now`` (a simulator
    with a fixed clock) has nothing after it, and then its costs day ends there too, so the
    costs are read on only when the usage was. Only holes: a steady series of checks at
    --now instants asks nothing more once the day is held. Returns the requests made."""
    from budgetguard.collect import Collector

    stamp = int(end.timestamp())
    through = datetime.fromtimestamp(stamp - stamp % 86400 + 86400, UTC)
    requests = 0
    for part in (
        [q for q in queries if q.endpoint != "costs"],
        [q for q in queries if q.endpoint == "costs"],
    ):
        left = until - time.monotonic()
        if not part or left <= 0:
            break
        # only what is not held yet: the collection at --now re-read its tail already
        collector = Collector(
            client,
            store,
            deadline=left,
            best_effort=True,
            reread_costs=timedelta(0),
            reread_usage=timedelta(0),
        )
        report = await collector.collect(part, end, through=through)
        requests += report.requests
        if report.failed:
            break
    return requests


def _admin_client(settings: Settings) -> AdminClient:
    """The client of one collection (the provider's reader): each request and its retries
    bounded by the deadline."""
    from budgetguard.providers.openai import OPENAI, RetryPolicy

    assert settings.openai_admin_key is not None
    deadline = settings.collect_deadline
    return OPENAI.reader(
        settings.openai_admin_key,
        settings.openai_base_url,
        request_deadline=min(60.0, deadline / 2),
        retry=RetryPolicy(deadline=min(180.0, deadline * 0.75)),  # give up saying why
        max_connections=max(16, settings.max_in_flight),
    )


def refresh_names(settings: Settings, store: Store, now: datetime) -> bool:
    """``_refresh_names`` on its own, within ``settings.collect_deadline``."""

    async def run() -> bool:
        async with _admin_client(settings) as client:
            return await _refresh_names(client, store, now, settings.collect_deadline)

    return asyncio.run(run())


async def _refresh_names(client: AdminClient, store: Store, now: datetime, within: float) -> bool:
    """Refresh the directory's names when a day old or when the store holds an id it does
    not name, within ``within`` seconds (what is left of the collection's deadline). A
    failure is logged at INFO, never fatal nor a warning (names are for people). True if
    refreshed."""
    from budgetguard.providers.openai import AdminAPIError
    from budgetguard.providers.openai.directory import DirectoryClient

    names = DirectoryStore(store.engine)
    at = int(now.timestamp())
    last = names.refreshed_at()
    # a day old, or an id the names lack (a new project, user or key): at most once an hour
    if last is not None and at - last < 86400 and (at - last < 3600 or not names.unknown_ids()):
        return False
    if within <= 0:
        log.info("names not refreshed: the collection used up its deadline")
        return False
    try:
        async with asyncio.timeout(within), DirectoryClient(client=client) as directory:
            found = (await directory.directory()).by_kind()
    except TimeoutError:
        log.info("names not refreshed: not finished within the collection deadline")
        return False
    except AdminAPIError as exc:
        log.info("names not refreshed: %s", exc)
        return False
    for kind, entries in found.items():
        names.refresh(kind, entries, at)  # adds and renames; an entry not listed is kept
    return True


def replay(
    rules: Rules, data: SpendData, first: datetime, last: datetime, step: timedelta
) -> Iterator[tuple[datetime, list[AlertEvent]]]:
    """Evaluation every ``step`` from ``first`` to ``last`` with a fresh in-memory alert
    state: each instant and the alert events it would have caused (backtest, demo; keyed for
    no installation: nothing of a replay is delivered)."""
    states: dict[str, AlertState] = {}
    moment = first
    while moment <= last:
        changed, events = transitions(
            evaluate(rules, data, moment), states, moment, installation=""
        )
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
    alerts, silenced = store.alerts, SilenceStore(store.engine)
    installation = store.installation_id()
    states = load_states(alerts)
    changed, events = transitions(findings, states, now, installation=installation)
    names = display_names(store)
    held = {i: Held.stored(i, key, event) for i, (key, event) in silenced.holds().items()}
    outcome = apply_silences(
        events,
        findings,
        {**states, **changed},
        active_silences(silenced, now),
        held,
        now,
        names,
        installation=installation,
    )
    owed = {i: (h.key, h.event) for i, h in outcome.held.items()}
    notifications = group_events(outcome.send)
    ends: dict[str, int] = {}
    for mark in store.sync_marks():
        if mark.covered_end is not None:
            ends[mark.endpoint] = max(ends.get(mark.endpoint, 0), mark.covered_end)
    queue(
        alerts,
        carried(changed, states, notifications),
        notifications,
        now,
        names=names,
        data_end=ends.get,
        also=lambda conn: replace_holds(conn, owed),
    )
    return deliver_due(store, notifiers, now, on_outcome, within=within, stop=stop)


def active_silences(silences: SilenceStore, now: datetime) -> list[Silence]:
    """The silences running at ``now`` (for the alert stages, ``/status`` and ``check``)."""
    return [Silence(*row) for row in silences.all(active_at=now)]


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


def make_digest(
    store: Store, rules: Rules, now: datetime, period: str | None = None, *, past: bool = False
) -> Digest:
    from budgetguard.digest import build_digest, digest_period, digest_rules

    chosen = digest_period(rules, period)
    rules = named_rules(store, digest_rules(rules, chosen))
    data = spend_data(store, rules, now, past=past)
    findings = evaluate(rules, data, now, past=past)
    _, start, end = last_complete_period(chosen, now, rules.timezone)
    messages = store.alerts.outbox.messages_between(int(start.timestamp()), int(end.timestamp()))
    names = display_names(store)
    return build_digest(
        rules,
        data,
        findings,
        messages,
        now,
        period=chosen,
        names=names,
        installation=store.installation_id(),
    )


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
    """Queue the digest for ``names`` (its key makes a second queueing a no-op; so does the
    key a store before version 9 gave it, without the installation id), then deliver what
    is due. Returns how many were queued, and the delivery report."""
    from budgetguard.digest import digest_key

    payload = json.dumps(digest.payload)
    before = store.alerts.notifiers_queued(digest_key(digest.period, digest.start, ""))
    rows = [(digest.key, name, payload) for name in names if name not in before]
    queued = store.alerts.outbox.queue(rows, int(now.timestamp()))
    return queued, deliver_due(store, notifiers, now, on_outcome, within=within, stop=stop)


def act(
    settings: Settings,
    store: Store,
    rules: Rules,
    findings: Sequence[Finding],
    now: datetime,
    *,
    controls: Controls | None = None,
    collect_month: bool = False,
) -> tuple[ActionRun, list[str]]:
    """The action stage, after the alerts: plan the actions the crossed thresholds name
    (once per budget, group, threshold and period: replicas and retries add nothing), then
    move every action on (dry-run unless ``enforce: true`` and ``BUDGETGUARD_ACTIONS=on``).
    With ``collect_month``, first collect what the plan reads (the UTC month's spend of the
    projects a spend limit acts on). The pass's report, and what was not planned and why."""
    from budgetguard.actions import facts_of, month_rules, plan_actions, triggers

    if not rules.actions:
        return action_runner(settings, store, rules, now, controls=controls).run(), []
    found = triggers(findings)
    month = month_rules(rules, found)
    month_findings: list[Finding] = []
    if month is not None:
        if collect_month and settings.openai_admin_key is not None:
            collect(settings, store, month, now)
        named = named_rules(store, month)
        month_findings = evaluate(named, spend_data(store, named, now), now)
    planned = plan_actions(rules, found, facts_of(month_findings, store.installation_id()))
    runner = action_runner(settings, store, rules, now, controls=controls)
    store.actions.plan(planned.new, int(now.timestamp()), runner.who, runner.notes)
    return runner.run(), planned.skipped


def action_runner(
    settings: Settings,
    store: Store,
    rules: Rules,
    now: datetime,
    *,
    controls: Controls | None = None,
    who: str | None = None,
) -> Runner:
    """The action state machine of ``store``, writing with the action key (its own, else the
    admin key) through OpenAI's controls; approval links when a public URL and a secret are
    set."""
    from budgetguard.actions import Gate, Runner, approve_url, step_notes
    from budgetguard.actions.openai_controls import OpenAIControls

    installation = store.installation_id()
    secret, base = settings.action_link_secret, settings.public_url

    def link(row: object) -> str | None:
        if secret is None or not base:
            return None
        from budgetguard.store.actions import ActionRow

        assert isinstance(row, ActionRow)
        at = int(now.timestamp())
        return approve_url(
            base, secret.get_secret_value(), installation, row.id, row.action_key, at
        )

    key = settings.action_key
    if controls is None and key is not None:
        controls = OpenAIControls(key, settings.openai_base_url)
    notes = step_notes(rules, installation, link, enabled=settings.actions_write)
    gate = Gate(settings.actions_write)
    return Runner(store.actions, rules, controls, gate, notes, now, who, settings.action_lease)
