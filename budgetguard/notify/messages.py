"""What a notifier is handed (public plugin API): an ``Alert`` or a ``Digest``.

Both are plain frozen dataclasses built by the core; a plugin reads them and renders its own
format. ``payload`` is the contract's JSON body of the message (what the webhook sends), so a
plugin that forwards JSON needs no formatting of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from budgetguard.notify.alert_text import alert_fields, alert_summary, group_text

__all__ = [
    "USAGE_DASHBOARD",
    "Alert",
    "Digest",
    "DigestBudget",
    "DigestBurnup",
    "DigestLine",
    "Message",
    "message_from_payload",
    "money",
    "signed_percent",
]

USAGE_DASHBOARD = "https://platform.openai.com/usage"


def money(value: Decimal | float | None, places: int = 2) -> str:
    """USD as people read it: ``$5,210.00`` (``—`` when unknown)."""
    return "—" if value is None else f"${value:,.{places}f}"


def signed_percent(value: Decimal | None) -> str:
    """A change as people read it: ``+12%``, ``-3%`` (``—`` when unknown)."""
    return "—" if value is None else f"{value:+.0%}"


def _ratio(part: Decimal | None, whole: Decimal | None) -> Decimal | None:
    return None if part is None or not whole else part / whole


def _change(now: Decimal | None, before: Decimal | None) -> Decimal | None:
    return None if now is None or not before else (now - before) / before


@dataclass(frozen=True)
class Alert:
    """One alert event: fired, reminded, resolved, no data, or a test message.

    ``key`` is the idempotency key: the same on every retry and every replica, so a receiver
    can drop a duplicate. ``title`` is a short heading (``CRITICAL · org-month``); ``summary``
    the one-line text (``CRITICAL org-month: $5,210.00 of $5,000.00 (104%)``); ``fields`` the
    figures in order. Money is USD as ``Decimal``; ``None`` means not known.
    """

    key: str
    summary: str
    severity: str  # ok | warning | critical | unknown
    kind: str  # threshold | forecast | anomaly | no_data | resolved | test
    budget: str
    group: Mapping[str, str] = field(default_factory=dict)
    spend: Decimal | None = None
    limit: Decimal | None = None
    forecast: Decimal | None = None
    threshold: Decimal | None = None
    window: str = ""
    source: str = ""
    fired_at: str = ""
    link: str = USAGE_DASHBOARD
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The budget name with its group, e.g. ``per-project [project=Chatbot (proj_a)]``."""
        group = group_text(self.group, self.names)
        return self.budget + (f" [{group}]" if group else "")

    @property
    def headline(self) -> str:
        """The word a subject or heading starts with: ``CRITICAL``, ``RESOLVED``, ``NO DATA``."""
        return {"resolved": "RESOLVED", "no_data": "NO DATA", "test": "TEST"}.get(
            self.kind, self.severity.upper()
        )

    @property
    def title(self) -> str:
        return f"{self.headline} · {self.label}"

    @property
    def ratio(self) -> Decimal | None:
        return _ratio(self.spend, self.limit)

    @property
    def names(self) -> dict[str, str]:
        """id -> display name of the projects, users and keys the alert names."""
        return {str(k): str(v) for k, v in dict(self.payload.get("names") or {}).items()}

    @property
    def runbook_url(self) -> str | None:
        url = self.payload.get("runbook_url")
        return str(url) if url else None

    @property
    def fields(self) -> list[tuple[str, str]]:
        """(label, value) pairs, the same in every renderer: budget, group, window, spend and
        %, limit, forecast, thresholds, since, severity, source, then description, labels and
        runbook where the budget has them — money in USD, ``—`` where not known."""
        facts = {
            "budget": self.budget,
            "group": dict(self.group),
            "spend": self.spend,
            "limit": self.limit,
            "forecast": self.forecast,
            "window": self.window,
            "severity": self.severity,
            "source": self.source,
            "fired_at": self.fired_at,
            "kind": self.kind,
            **self.payload,
        }
        return alert_fields(facts)

    def to_payload(self) -> dict[str, Any]:
        """The contract's JSON body of this alert (what the outbox stores and a webhook
        gets); the keys of ``payload`` win, so ``from_payload`` and back is exact."""

        def num(value: Decimal | None) -> float | None:
            return None if value is None else float(value)

        body: dict[str, Any] = {
            "type": "budgetguard.alert",
            "budget": self.budget,
            "group": dict(self.group),
            "kind": self.kind,
            "severity": self.severity,
            "threshold": num(self.threshold),
            "spend": num(self.spend),
            "limit": num(self.limit),
            "key": self.key,
            "window": self.window,
            "forecast": num(self.forecast),
            "source": self.source,
            "message": self.summary,
            "fired_at": self.fired_at,
        }
        return {**body, **self.payload}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Alert:
        """The message of a contract alert body (as the outbox stores it)."""
        budget = str(payload.get("budget") or "")
        group = {str(k): str(v) for k, v in dict(payload.get("group") or {}).items()}
        return cls(
            key=str(payload.get("key") or ""),
            summary=str(payload.get("message") or alert_summary(payload)),
            severity=str(payload.get("severity") or "unknown"),
            kind=str(payload.get("kind") or ""),
            budget=budget,
            group=group,
            spend=_decimal(payload.get("spend")),
            limit=_decimal(payload.get("limit")),
            forecast=_decimal(payload.get("forecast")),
            threshold=_decimal(payload.get("threshold")),
            window=str(payload.get("window") or ""),
            source=str(payload.get("source") or ""),
            fired_at=str(payload.get("fired_at") or ""),
            payload=dict(payload),
        )


@dataclass(frozen=True)
class DigestLine:
    """One row of a digest's top list: a project or model, its spend and the change."""

    name: str
    spend: Decimal
    previous: Decimal

    @property
    def change(self) -> Decimal | None:
        return _change(self.spend, self.previous)


@dataclass(frozen=True)
class DigestBudget:
    """A budget's standing at the end of the digest's period."""

    budget: str
    group: Mapping[str, str]
    spend: Decimal | None
    limit: Decimal | None
    forecast: Decimal | None
    severity: str
    window: str
    source: str
    metric: str = "cost"
    names: Mapping[str, str] = field(default_factory=dict)  # id -> display name

    @property
    def label(self) -> str:
        group = group_text(self.group, self.names)
        return self.budget + (f" [{group}]" if group else "")

    def show(self, value: Decimal | None) -> str:
        """``value`` as USD for a cost budget, else as a count of its metric."""
        if self.metric == "cost" or value is None:
            return money(value)
        return f"{value:,.0f} {self.metric.replace('_', ' ')}"

    @property
    def ratio(self) -> Decimal | None:
        return _ratio(self.spend, self.limit)


@dataclass(frozen=True)
class DigestBurnup:
    """One budget's burn-up over its current period (the digest's top budgets): cumulative
    spend at the end of each local day so far, against its limit and the pace."""

    label: str
    limit: Decimal
    spend: Decimal
    start: date
    end: date  # exclusive: the period's end
    points: tuple[tuple[date, Decimal], ...]  # (local day, cumulative spend at its end)
    severity: str = "ok"

    @property
    def pace(self) -> Decimal:
        """What spending the limit evenly would have spent by the last point."""
        if not self.points:
            return Decimal(0)
        days = Decimal((self.end - self.start).days or 1)
        done = Decimal((self.points[-1][0] - self.start).days + 1)
        return self.limit * min(done / days, Decimal(1))

    def payload(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "limit": float(self.limit),
            "spend": float(self.spend),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "points": [[d.isoformat(), float(v)] for d, v in self.points],
            "severity": self.severity,
        }

    @classmethod
    def from_payload(cls, body: Mapping[str, Any]) -> DigestBurnup:
        return cls(
            str(body["label"]),
            _decimal(body["limit"]) or Decimal(0),
            _decimal(body["spend"]) or Decimal(0),
            date.fromisoformat(body["start"]),
            date.fromisoformat(body["end"]),
            tuple((date.fromisoformat(d), _decimal(v) or Decimal(0)) for d, v in body["points"]),
            str(body.get("severity") or "ok"),
        )


@dataclass(frozen=True)
class Digest:
    """A periodic summary: the period's spend against the one before, the daily series, top
    projects and models, every budget's standing, the alerts of the period and data notes."""

    key: str
    title: str
    summary: str
    period: str
    start: date
    end: date  # exclusive
    total: Decimal | None
    previous_total: Decimal | None
    daily: tuple[tuple[date, Decimal | None], ...] = ()
    top_projects: tuple[DigestLine, ...] = ()
    top_models: tuple[DigestLine, ...] = ()
    budgets: tuple[DigestBudget, ...] = ()
    alerts: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    link: str = USAGE_DASHBOARD
    payload: Mapping[str, Any] = field(default_factory=dict)
    burnup: tuple[DigestBurnup, ...] = ()  # the top budgets' current periods

    @property
    def change(self) -> Decimal | None:
        return _change(self.total, self.previous_total)

    @property
    def sparkline(self) -> str:
        """The daily spend as block characters (``·`` for a day without data)."""
        values = [v for _, v in self.daily if v is not None]
        top = max(values, default=Decimal(0))
        bars = "▁▂▃▄▅▆▇█"
        out = []
        for _, value in self.daily:
            if value is None:
                out.append("·")
            else:
                out.append(bars[int(value / top * 7) if top else 0])
        return "".join(out)

    def with_payload(self) -> Digest:
        """This digest with ``payload`` set to its contract JSON body (``budgetguard.digest``)."""

        def num(value: Decimal | None) -> float | None:
            return None if value is None else float(value)

        def lines(items: tuple[DigestLine, ...]) -> list[dict[str, Any]]:
            return [
                {"name": i.name, "spend": num(i.spend), "previous": num(i.previous)} for i in items
            ]

        body = {
            "type": "budgetguard.digest",
            "key": self.key,
            "title": self.title,
            "message": self.summary,
            "period": self.period,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "total": num(self.total),
            "previous_total": num(self.previous_total),
            "daily": [{"day": d.isoformat(), "spend": num(v)} for d, v in self.daily],
            "top_projects": lines(self.top_projects),
            "top_models": lines(self.top_models),
            "budgets": [
                {
                    "budget": b.budget,
                    "group": dict(b.group),
                    "spend": num(b.spend),
                    "limit": num(b.limit),
                    "forecast": num(b.forecast),
                    "severity": b.severity,
                    "window": b.window,
                    "source": b.source,
                    "names": dict(b.names),
                }
                for b in self.budgets
            ],
            "alerts": list(self.alerts),
            "notes": list(self.notes),
            "burnup": [b.payload() for b in self.burnup],
        }
        return replace(self, payload=body)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Digest:
        """The digest of its JSON body (as the outbox stores it)."""

        def lines(items: Any) -> tuple[DigestLine, ...]:
            return tuple(
                DigestLine(
                    str(i["name"]),
                    _decimal(i["spend"]) or Decimal(0),
                    _decimal(i["previous"]) or Decimal(0),
                )
                for i in items or ()
            )

        return cls(
            key=str(payload["key"]),
            title=str(payload.get("title") or ""),
            summary=str(payload.get("message") or ""),
            period=str(payload.get("period") or ""),
            start=date.fromisoformat(payload["start"]),
            end=date.fromisoformat(payload["end"]),
            total=_decimal(payload.get("total")),
            previous_total=_decimal(payload.get("previous_total")),
            daily=tuple(
                (date.fromisoformat(d["day"]), _decimal(d["spend"]))
                for d in payload.get("daily") or ()
            ),
            top_projects=lines(payload.get("top_projects")),
            top_models=lines(payload.get("top_models")),
            budgets=tuple(
                DigestBudget(
                    str(b["budget"]),
                    dict(b.get("group") or {}),
                    _decimal(b["spend"]),
                    _decimal(b["limit"]),
                    _decimal(b.get("forecast")),
                    str(b["severity"]),
                    str(b.get("window") or ""),
                    str(b.get("source") or ""),
                    names=dict(b.get("names") or {}),
                )
                for b in payload.get("budgets") or ()
            ),
            alerts=tuple(str(a) for a in payload.get("alerts") or ()),
            notes=tuple(str(n) for n in payload.get("notes") or ()),
            payload=dict(payload),
            burnup=tuple(DigestBurnup.from_payload(b) for b in payload.get("burnup") or ()),
        )


def message_from_payload(payload: Mapping[str, Any]) -> Message:
    """An ``Alert`` or a ``Digest`` from the JSON body the outbox stored."""
    if payload.get("type") == "budgetguard.digest":
        return Digest.from_payload(payload)
    return Alert.from_payload(payload)


#: Everything a notifier's ``send`` may be handed.
Message = Alert | Digest


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))
