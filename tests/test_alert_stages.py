"""The pure alert stages between the lifecycle and the outbox: grouping and silences.

Hypothesis drives random sequences of findings and silences through
transitions -> apply_silences -> group_events, as the pipeline does, and checks what on-call
would see: never two notifications for one (budget, group) and notifier in one evaluation;
nothing sent while silenced; everything still firing sent when its silence ends; every episode
resolved at most once, and only when its fire was sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from budgetguard.alerts import (
    AlertEvent,
    AlertState,
    Held,
    Silence,
    alert_labels,
    apply_silences,
    group_events,
    mark_silenced,
    parse_matcher,
    transitions,
)
from budgetguard.alerts.silences import SilenceOutcome
from budgetguard.evaluate.evaluator import Finding
from budgetguard.evaluate.windows import budget_window
from budgetguard.rules import Budget, load_rules_text
from budgetguard.rules.model import Threshold, alert_identity

RULES = load_rules_text("""
version: 1
notifiers: {finops: {type: console}, pager: {type: console}, audit: {type: console}}
budgets:
  - name: api-day
    limit: 100
    window: 24h
    repeat: 6h
    thresholds: [75%, 90%, {at: 100%, severity: critical}]
    notify: [finops, {name: pager, on: [fire]}, {name: audit, on: [resolve]}]
  - name: batch-month
    limit: 100
    period: month
    forecast: true
    thresholds: [80%, 100%]
    notify: [finops, pager]
""")
DAY, MONTH = RULES.budgets
T0 = datetime(2026, 11, 1, tzinfo=UTC)
GROUPS = ({}, {"project": "proj_a"}, {"project": "proj_b"})
NAMES = {"proj_a": "Chatbot", "proj_b": "Search"}


def finding(budget: Budget, group: dict[str, str], spend: int | None, now: datetime) -> Finding:
    value = None if spend is None else Decimal(spend)
    limit = budget.limit or Decimal(1)
    crossed = (
        () if value is None else tuple(t for t in budget.thresholds if value >= t.ratio * limit)
    )
    forecast = None if value is None or not budget.forecast else value * 2
    ahead = (
        ()
        if forecast is None
        else tuple(t for t in budget.thresholds if forecast >= t.ratio * limit)
    )
    severity = (
        "unknown"
        if value is None
        else max((t.severity for t in crossed), key=["warning", "critical"].index, default="ok")
    )
    return Finding(
        budget, dict(group), budget_window(budget, now, "UTC"), value, budget.limit, forecast,
        severity, "costs", value is not None, None if value is not None else "costs: stale",
        crossed, ahead,
    )  # fmt: skip


def severity_of(kind: str, threshold: Threshold | None) -> str:
    if kind == "no_data":
        return "unknown"
    return threshold.severity if kind == "threshold" and threshold is not None else "warning"


def identity(event: AlertEvent) -> str:
    tkey = event.threshold.key if event.threshold is not None else ""
    return alert_identity(event.finding.budget.name, event.finding.group, event.kind, tkey)


def test_three_thresholds_crossed_at_once_are_one_notification_per_notifier() -> None:
    changed, events = transitions([finding(DAY, {}, 130, T0)], {}, T0)
    assert len(events) == 3
    notes = group_events(events)
    # finops and pager take fires; audit subscribes to resolutions only
    assert sorted(n.notifier for n in notes) == ["finops", "pager"]
    for note in notes:
        assert note.severity == "critical"
        top = next(e for e in events if e.threshold is not None and e.threshold.key == "1")
        assert note.key == top.key
        assert [e.threshold.key for e in note.events if e.threshold] == ["1", "0.9", "0.75"]
    states = dict(changed)
    later = T0 + timedelta(hours=1)
    changed, events = transitions([finding(DAY, {}, 10, later)], states, later)
    notes = group_events(events)
    assert sorted(n.notifier for n in notes) == ["audit", "finops"]  # pager: fire only
    top = next(e for e in events if e.threshold is not None and e.threshold.key == "1")
    assert {n.key for n in notes} == {top.key}  # the highest that resolved
    assert {n.severity for n in notes} == {"ok"}


def test_a_silence_holds_a_fire_and_releases_it_when_it_ends() -> None:
    silence = Silence(
        "s1", (("budget", "api-*"), ("project", "Chat*")), T0, T0 + timedelta(hours=2)
    )
    states: dict[str, AlertState] = {}
    held: dict[str, Held] = {}
    sent: list[tuple[datetime, str]] = []
    for hour, spend in enumerate([95, 95, 95, 95]):
        now = T0 + timedelta(hours=hour)
        findings = [finding(DAY, {"project": "proj_a"}, spend, now)]
        changed, events = transitions(findings, states, now)
        states.update(changed)
        out = apply_silences(events, findings, states, [silence], held, now, NAMES)
        held = out.held
        sent += [(now, n.notifier) for n in group_events(out.send)]
        if hour < 2:
            assert (not out.send and out.silenced) or not events
    assert sent == [(T0 + timedelta(hours=2), "finops"), (T0 + timedelta(hours=2), "pager")]
    report = mark_silenced(
        [{"budget": "api-day", "group": {"project": "proj_a"}, "severity": "warning",
          "kind": "threshold"}], [silence], T0, NAMES,
    )  # fmt: skip
    assert report[0]["silenced"] is True


def _through_a_silence(
    silence: Silence, spends: Iterable[tuple[int, int]]
) -> tuple[list[tuple[int, SilenceOutcome]], dict[str, Held]]:
    """The DAY budget evaluated at each (hour, spend) under ``silence``: each hour's silence
    outcome, and what is owed at the end."""
    states: dict[str, AlertState] = {}
    held: dict[str, Held] = {}
    outs = []
    for hour, spend in spends:
        now = T0 + timedelta(hours=hour)
        findings = [finding(DAY, {}, spend, now)]
        changed, events = transitions(findings, states, now)
        states.update(changed)
        out = apply_silences(events, findings, states, [silence], held, now)
        held = out.held
        outs.append((hour, out))
    return outs, held


def test_a_resolution_held_by_a_silence_is_sent_when_it_ends() -> None:
    """Fired and told; silenced; resolved while silenced; the silence ends: the resolution
    goes out then, once, naming the fire it closes. If it fires again before the silence
    ends, the new fire is what is sent, and no resolution."""
    silence = Silence(
        "s", (("budget", "api-day"),), T0 + timedelta(hours=1), T0 + timedelta(hours=5)
    )
    for spends, expected in (
        ((95, 95, 10, 10, 10, 10, 10), [(0, "fire"), (5, "resolve")]),
        ((95, 95, 10, 95, 95, 95, 95), [(0, "fire"), (5, "fire")]),
    ):
        sent: list[tuple[int, str, str]] = []
        fire_key = ""
        outs, held = _through_a_silence(silence, enumerate(spends))
        for hour, out in outs:
            for note in group_events(out.send):
                sent.append((hour, note.lead.event, note.notifier))
                if note.lead.event == "fire":
                    fire_key = fire_key or note.lead.key
                else:  # the resolution closes the fire that was sent
                    assert note.lead.fire_key == fire_key
        assert sorted({(h, e) for h, e, _ in sent}) == expected, spends
        assert len(sent) == len(set(sent))  # once per notifier
        assert not held


def test_matchers_say_what_is_wrong() -> None:
    assert parse_matcher("project=Chat*") == ("project", "Chat*")
    for bad in ("project", "colour=red", "budget="):
        try:
            parse_matcher(bad)
        except ValueError as exc:
            assert bad in str(exc)
        else:
            raise AssertionError(bad)
    labels = alert_labels("b", {"project": "proj_a"}, "warning", ("threshold",), NAMES)
    assert labels["project"] == ("proj_a", "Chatbot")


MATCHERS = st.sampled_from(
    [
        (("budget", "api-*"),),
        (("budget", "*"),),
        (("severity", "critical"),),
        (("kind", "no_data"),),
        (("project", "Chatbot"),),
        (("budget", "batch-month"), ("kind", "forecast")),
    ]
)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.integers(0, 160)), min_size=6, max_size=6),
        min_size=1,
        max_size=25,
    ),
    st.lists(st.tuples(st.integers(0, 24), st.integers(1, 10), MATCHERS), max_size=4),
    st.sampled_from([timedelta(hours=5), timedelta(days=1), timedelta(days=4)]),
)
def test_grouping_and_silences_properties(
    spends: list[list[int | None]],
    raw_silences: list[tuple[int, int, tuple[tuple[str, str], ...]]],
    step: timedelta,
) -> None:
    silences = [
        Silence(f"s{i}", m, T0 + step * a, T0 + step * (a + n))
        for i, (a, n, m) in enumerate(raw_silences)
    ]
    states: dict[str, AlertState] = {}
    held: dict[str, Held] = {}
    told: dict[str, int] = {}  # identity -> the episode whose fire (or remind) was sent
    resolved: set[tuple[str, int]] = set()
    for i, row in enumerate(spends):
        now = T0 + step * i
        findings = [
            finding(budget, group, row[j * 3 + k], now)
            for j, budget in enumerate((DAY, MONTH))
            for k, group in enumerate(GROUPS)
        ]
        changed, events = transitions(findings, states, now)
        states.update(changed)
        out = apply_silences(events, findings, states, silences, held, now, NAMES)
        held = out.held
        notes = group_events(out.send)
        scopes = [
            (n.lead.finding.budget.name, tuple(n.lead.finding.group.items()), n.notifier)
            for n in notes
        ]
        assert len(scopes) == len(set(scopes)), "two notifications for one (budget, group)"
        active = [s for s in silences if s.active(now)]
        for note in notes:
            for event in note.events:
                f = event.finding
                sev = (
                    event.threshold.severity
                    if event.kind == "threshold" and event.threshold
                    else ("unknown" if event.kind == "no_data" else "warning")
                )
                labels = alert_labels(
                    f.budget.name, f.group, sev, (event.kind, event.contract_kind), NAMES
                )
                assert not any(s.matches(labels) for s in active), "sent while silenced"
        for event in out.send:
            ident = identity(event)
            episode = states[ident].episode
            if event.event == "resolve":
                assert told.get(ident) == episode, "resolved an episode nobody was told of"
                assert (ident, episode) not in resolved, "an episode resolved twice"
                resolved.add((ident, episode))
            else:
                told[ident] = episode
        # whatever fires and was never told is silenced right now (a threshold under no data
        # is not known to fire: it waits for the data)
        for f in findings:
            for state in states.values():
                if state.budget != f.budget.name or dict(state.group) != f.group:
                    continue
                if f.severity == "unknown" and state.kind != "no_data":
                    continue
                if state.state == "firing" and told.get(state.identity) != state.episode:
                    threshold = next(
                        (t for t in f.budget.thresholds if t.key == state.threshold), None
                    )
                    sev = severity_of(state.kind, threshold)
                    labels = alert_labels(f.budget.name, f.group, sev, (state.kind,), NAMES)
                    assert any(s.matches(labels) for s in active), "still firing, never sent"
                # and whatever was told it fires, and no longer does, is told it resolved,
                # unless a silence holds that back right now
                told_episode = told.get(state.identity) == state.episode
                if state.state != "firing" and told_episode:
                    if (state.identity, state.episode) in resolved:
                        continue
                    threshold = next(
                        (t for t in f.budget.thresholds if t.key == state.threshold), None
                    )
                    sev = severity_of(state.kind, threshold)
                    kinds = (state.kind, "resolved")
                    labels = alert_labels(f.budget.name, f.group, sev, kinds, NAMES)
                    assert any(s.matches(labels) for s in active), "resolved, never told"


def test_a_resolution_after_a_silence_is_sent_when_the_firing_was() -> None:
    """Fired and told, then silenced (its reminders held), then resolved after the silence:
    the resolution goes out, once."""
    silence = Silence(
        "s", (("budget", "api-day"),), T0 + timedelta(hours=1), T0 + timedelta(hours=8)
    )
    log: list[tuple[int, str]] = []
    outs, _ = _through_a_silence(silence, ((0, 95), (7, 95), (9, 10), (10, 10)))
    for hour, out in outs:
        log += [(hour, e.event) for e in out.send]
        if hour == 7:
            assert [e.event for e in out.silenced] == ["remind", "remind"]
    assert log == [(0, "fire"), (0, "fire"), (9, "resolve"), (9, "resolve")]
