"""The ``pagerduty`` notifier: PagerDuty Events API v2, built as any third-party plugin is
(an entry point, and only ``budgetguard.notify``).

A firing sends ``trigger``, a resolution ``resolve``; ``dedup_key`` is the idempotency key of
the firing, so a retry, a reminder and the resolution all land on the incident it opened (a
resolution that groups several thresholds resolves each of their firings). Severities map to
PagerDuty's ``critical``, ``warning`` and ``info``. Plain httpx: one POST per event needs no
client library, and the core's classifier of HTTP answers applies unchanged.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from budgetguard.notify import (
    Alert,
    Message,
    NotifierSettings,
    NotifierType,
    hookimpl,
    http_url,
    post,
    secret_problem,
)

__all__ = ["EVENTS_URL", "PagerDutyNotifier", "PagerDutySettings", "events"]

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_SEVERITY = {"critical": "critical", "warning": "warning", "unknown": "warning"}


class PagerDutySettings(NotifierSettings):
    """An Events API v2 integration: its ``routing_key`` (a secret)."""

    type: Literal["pagerduty"] = "pagerduty"
    routing_key: SecretStr
    api_url: str = EVENTS_URL
    source: str = "budgetguard"
    timeout: float = Field(default=10.0, gt=0, le=120)

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)


def _fire_keys(alert: Alert, resolved_only: bool = False) -> list[str]:
    """The firings a resolution closes: each grouped threshold's, else its own key (with
    ``resolved_only``: those of the thresholds a firing groups with their resolutions)."""
    keys = [
        str(t["fire_key"])
        for t in alert.payload.get("thresholds") or ()
        if t.get("fire_key") and (not resolved_only or t.get("event") == "resolve")
    ]
    return list(dict.fromkeys(keys)) or ([] if resolved_only else [alert.key])


def events(alert: Alert, routing_key: str, source: str = "budgetguard") -> list[dict[str, Any]]:
    """The Events v2 bodies for ``alert``: one ``trigger`` (and a ``resolve`` for each
    threshold that resolved in the same evaluation), or a ``resolve`` per firing; a test
    (``notify-test``) triggers and then resolves its incident, so none is left open."""

    def resolve(key: str) -> dict[str, Any]:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}

    if alert.kind == "resolved":
        return [resolve(key) for key in _fire_keys(alert)]
    trigger = _trigger(alert, routing_key, source)
    if alert.kind == "test":
        return [trigger, resolve(trigger["dedup_key"])]
    return [trigger, *(resolve(key) for key in _fire_keys(alert, resolved_only=True))]


def _trigger(alert: Alert, routing_key: str, source: str) -> dict[str, Any]:
    links = [{"href": alert.link, "text": "OpenAI usage"}]
    if alert.runbook_url:
        links.insert(0, {"href": alert.runbook_url, "text": "Runbook"})
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": str(alert.payload.get("fire_key") or alert.key),
        "payload": {
            "summary": alert.summary[:1024],
            "source": source,
            "severity": _SEVERITY.get(alert.severity, "info"),
            "timestamp": alert.fired_at or None,
            "component": alert.budget,
            "group": alert.label,
            "class": alert.kind,
            "custom_details": dict(alert.fields),
        },
        "links": links,
        "client": "budgetguard",
        "client_url": alert.link,
    }


class PagerDutyNotifier:
    def __init__(self, settings: PagerDutySettings, transport: Any = None) -> None:
        self.settings = settings
        self._transport = transport

    def __repr__(self) -> str:
        return "PagerDutyNotifier(routing_key='***')"

    def send(self, message: Message) -> None:
        if not isinstance(message, Alert):
            return  # a digest is not an incident: PagerDuty takes alerts only
        key = self.settings.routing_key.get_secret_value()
        secret_problem("pagerduty routing_key", key)  # a pasted NBSP: refused, never sent
        for body in events(message, key, self.settings.source):
            post(
                "pagerduty",
                self.settings.api_url,
                json.dumps(body).encode(),
                {"Content-Type": "application/json", "User-Agent": "budgetguard"},
                self.settings.timeout,
                self._transport,
            )


@hookimpl
def budgetguard_notifier_types() -> list[NotifierType]:
    return [
        NotifierType("pagerduty", PagerDutySettings, PagerDutyNotifier, "PagerDuty Events API v2")
    ]
