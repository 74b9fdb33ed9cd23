"""Silences: matchers that hold back notifications for a while, and what is owed after.

Pure, after Alertmanager's silencer. A silenced alert still changes state; only its
notification is held. A fire (or reminder) held while silenced is remembered by its alert
identity with its key; when no silence matches it any more and it still fires, it is sent
then, with the key it would have had. A resolution is owed the same way when the fire was
sent: when no silence matches any more and the alert has not fired again, the resolution is
sent (so the incident its fire opened is closed); if it fires again first, the new fire is
what is owed. A resolution of an alert whose fire was never sent is dropped: nobody was told
it fired.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from budgetguard.alerts.lifecycle import (
    AlertEvent,
    AlertState,
    Trigger,
    conditions,
    fire_key,
    routes,
)
from budgetguard.evaluate.evaluator import Finding
from budgetguard.rules.model import Budget, alert_identity
from budgetguard.store.columns import MATCHER_KEYS

__all__ = [
    "MATCHER_KEYS",
    "Held",
    "Silence",
    "SilenceOutcome",
    "alert_labels",
    "apply_silences",
    "mark_silenced",
    "matches_everything",
    "parse_matcher",
    "pinned_labels",
    "silence_json",
]

#: The group keys (the rest of MATCHER_KEYS is budget, severity and kind).
GROUP_KEYS = ("project", "model", "user", "api_key", "line_item")
#: key -> what an alert must have for a matcher on it: each requirement a tuple of
#: alternatives (a pattern, the id it spells, its display name), every one to be matched
Pinned = Mapping[str, tuple[tuple[str, ...], ...]]


def parse_matcher(text: str) -> tuple[str, str]:
    """``KEY=GLOB`` -> (key, glob); ``ValueError`` says what is wrong."""
    key, sep, glob = text.partition("=")
    key = key.strip()
    if not sep or not glob:
        raise ValueError(f"matcher {text!r}: write KEY=GLOB, e.g. budget=chatbot-*")
    if key not in MATCHER_KEYS:
        raise ValueError(f"matcher {text!r}: KEY is one of {', '.join(MATCHER_KEYS)}")
    return key, glob


@dataclass(frozen=True)
class Silence:
    """``matchers`` all match an alert from ``starts_at`` until ``ends_at`` (exclusive)."""

    id: str
    matchers: tuple[tuple[str, str], ...]
    starts_at: datetime
    ends_at: datetime
    comment: str = ""
    created_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, Iterable[str]], pinned: Pinned | None = None) -> bool:
        """Every matcher's glob matches one of the label's values (an id or a name), or,
        for a group key the budget does not split by but pins in its ``match``
        (``pinned``), covers every value it is pinned to (a pattern, or its id's name)."""
        return all(
            any(fnmatch.fnmatchcase(value, glob) for value in labels.get(key, ()))
            or _covers(glob, (pinned or {}).get(key))
            for key, glob in self.matchers
        )


def _covers(glob: str, requirements: tuple[tuple[str, ...], ...] | None) -> bool:
    return bool(requirements) and all(
        any(fnmatch.fnmatchcase(alternative, glob) for alternative in alternatives)
        for alternatives in requirements or ()
    )


def matches_everything(matchers: Iterable[tuple[str, str]]) -> bool:
    """Matchers every alert meets: only ``budget``, ``severity`` or ``kind`` globs of ``*``."""
    return all(k in ("budget", "severity", "kind") and set(g) == {"*"} for k, g in matchers)


def pinned_labels(budget: Budget, names: Mapping[str, str] | None = None) -> Pinned:
    """What a budget without ``each`` on a group key pins that key to in its ``match``:
    per pattern, the pattern itself, the id it spells (a glob that matches one name exactly)
    and that id's display name, so ``project=Support*`` silences a budget on
    ``project: proj_chatbot`` named "Support chatbot"."""
    known = names or {}
    out: dict[str, tuple[tuple[str, ...], ...]] = {}
    for key, patterns in budget.match.items():
        if key not in GROUP_KEYS or key in budget.each:
            continue
        requirements = []
        for pattern in patterns:
            spelt = _spelt(pattern)
            alternatives = [pattern, *([spelt] if spelt else [])]
            if spelt and spelt in known:
                alternatives.append(known[spelt])
            requirements.append(tuple(dict.fromkeys(alternatives)))
        out[key] = tuple(requirements)
    return out


def _spelt(pattern: str) -> str | None:
    """The one text a glob matches (``proj_a``, ``[*]odd``), or None for a real glob."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char in "*?":
            return None
        if char == "[":
            end = pattern.find("]", i + 2)
            if end != i + 2:  # not a one-character class such as [*]
                return None
            out.append(pattern[i + 1])
            i = end + 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class Held:
    """A notification owed: the alert fired (or was due a reminder, or resolved after a fire
    that was sent) while silenced."""

    identity: str
    key: str
    event: Literal["fire", "remind", "resolve"]

    @classmethod
    def stored(cls, identity: str, key: str, event: str) -> Held:
        """A hold as the store keeps it (``event`` as text)."""
        if event == "fire":
            return cls(identity, key, "fire")
        return cls(identity, key, "resolve" if event == "resolve" else "remind")


@dataclass(frozen=True)
class SilenceOutcome:
    send: list[AlertEvent]  # what may be notified now (released ones included)
    silenced: list[AlertEvent]  # what a silence held back or dropped
    held: dict[str, Held] = field(default_factory=dict)  # all owed after this evaluation


def _severity(kind: str, threshold: Trigger | None) -> str:
    if kind == "no_data":
        return "unknown"
    if kind in ("threshold", "burn_rate") and threshold is not None:
        return threshold.severity
    return "warning"


def alert_labels(
    budget: str,
    group: Mapping[str, str],
    severity: str,
    kinds: Iterable[str],
    names: Mapping[str, str] | None = None,
) -> dict[str, tuple[str, ...]]:
    """What matchers see: ids, and display names where ``names`` (id -> name) has them."""
    labels: dict[str, tuple[str, ...]] = {
        "budget": (budget,),
        "severity": (severity,),
        "kind": tuple(kinds),
    }
    for key, value in group.items():
        name = (names or {}).get(value)
        labels[key] = (value, name) if name else (value,)
    return labels


def _identity(event: AlertEvent) -> str:
    if event.identity:
        return event.identity
    tkey = event.threshold.key if event.threshold is not None else ""
    return alert_identity(event.finding.budget.name, event.finding.group, event.kind, tkey)


def _silenced(
    event: AlertEvent, active: Sequence[Silence], names: Mapping[str, str] | None
) -> bool:
    f = event.finding
    kinds = (event.kind, event.contract_kind)
    labels = alert_labels(
        f.budget.name, f.group, _severity(event.kind, event.threshold), kinds, names
    )
    pinned = pinned_labels(f.budget, names)
    return any(s.matches(labels, pinned) for s in active)


def apply_silences(
    events: Sequence[AlertEvent],
    findings: Sequence[Finding],
    states: Mapping[str, AlertState],
    silences: Sequence[Silence],
    held: Mapping[str, Held],
    now: datetime,
    names: Mapping[str, str] | None = None,
    *,
    installation: str = "",
) -> SilenceOutcome:
    """Split ``events`` into sent and silenced, and release what is owed and no longer
    silenced. ``states`` are the alert states after this evaluation's transitions;
    ``installation`` keys what is released (as ``transitions`` does)."""
    active = [s for s in silences if s.active(now)]
    owed = dict(held)
    send: list[AlertEvent] = []
    silenced: list[AlertEvent] = []
    for event in events:
        identity = _identity(event)
        debt = owed.get(identity)
        if event.event == "resolve" and debt is not None and debt.event == "fire":
            del owed[identity]  # it fired unseen: its resolution would confuse
            silenced.append(event)
        elif _silenced(event, active, names):
            silenced.append(event)
            if event.event == "resolve":  # its fire was sent (or only a reminder is owed)
                owed[identity] = Held(identity, event.key, "resolve")
            elif debt is None or debt.event == "resolve":  # a fire again: that is owed now
                owed[identity] = Held(identity, event.key, event.event)
        else:
            owed.pop(identity, None)
            send.append(event)
    send.extend(_released(findings, states, owed, active, now, names, installation))
    return SilenceOutcome(send, silenced, owed)


def _released(
    findings: Sequence[Finding],
    states: Mapping[str, AlertState],
    owed: dict[str, Held],
    active: Sequence[Silence],
    now: datetime,
    names: Mapping[str, str] | None,
    installation: str,
) -> list[AlertEvent]:
    """Owed notifications whose alert still fires and no silence matches any more."""
    out: list[AlertEvent] = []
    if not owed:
        return out
    budgets = {f.budget.name for f in findings}
    for identity in list(owed):  # a budget gone from the rules owes nothing
        state = states.get(identity)
        if state is None or state.budget not in budgets:
            del owed[identity]
    for finding in findings:
        for kind, threshold, holds, severity in conditions(finding):
            tkey = threshold.key if threshold is not None else ""
            identity = alert_identity(finding.budget.name, finding.group, kind, tkey)
            debt = owed.get(identity)
            state = states.get(identity)
            if debt is None or state is None:
                continue
            if debt.event == "resolve":
                if state.state == "firing":
                    del owed[identity]  # firing again: its incident is open, as it should be
                    continue
                resolved = AlertEvent(
                    "resolve", kind, "ok", finding, threshold, debt.key, now,
                    routes(finding, threshold), None, fire_key(installation, state), identity,
                )  # fmt: skip
                if not _silenced(resolved, active, names):
                    del owed[identity]
                    out.append(resolved)
                continue
            if not holds or state.state != "firing":
                del owed[identity]  # no longer firing: nothing to tell
                continue
            event = AlertEvent(
                debt.event, kind, severity, finding, threshold, debt.key, now,
                routes(finding, threshold), state.since,
                debt.key if debt.event == "fire" else fire_key(installation, state), identity,
            )  # fmt: skip
            if not _silenced(event, active, names):
                del owed[identity]
                out.append(event)
    return out


def mark_silenced(
    alerts: Sequence[dict[str, object]],
    silences: Sequence[Silence],
    now: datetime,
    names: Mapping[str, str] | None = None,
    budgets: Mapping[str, Budget] | None = None,
) -> list[dict[str, object]]:
    """The report's alerts, each with ``"silenced": true|false`` (what a silence matches now;
    ``budgets`` by name, for what a budget without ``each`` pins)."""
    active = [s for s in silences if s.active(now)]
    out = []
    for alert in alerts:
        raw = alert.get("group")
        group = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        labels = alert_labels(
            str(alert["budget"]), group, str(alert["severity"]), (str(alert["kind"]),), names
        )
        budget = (budgets or {}).get(str(alert["budget"]))
        pinned = pinned_labels(budget, names) if budget is not None else None
        out.append({**alert, "silenced": any(s.matches(labels, pinned) for s in active)})
    return out


def silence_json(silence: Silence) -> dict[str, object]:
    """A silence as the report and ``/status`` list it."""
    return {
        "id": silence.id,
        "matchers": [f"{k}={g}" for k, g in silence.matchers],
        "starts_at": silence.starts_at.isoformat().replace("+00:00", "Z"),
        "ends_at": silence.ends_at.isoformat().replace("+00:00", "Z"),
        "comment": silence.comment,
    }
