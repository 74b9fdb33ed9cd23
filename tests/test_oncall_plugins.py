"""The PagerDuty and Teams notifiers and the webhook's Standard Webhooks signing, each sent
to a local loopback receiver that checks the payload against the published format, and each
passing the conformance kit exactly as a third-party plugin would."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema
import pytest
import standardwebhooks
from budgetguard_pagerduty import PagerDutyNotifier, PagerDutySettings
from budgetguard_teams import TeamsNotifier, TeamsSettings
from budgetguard_webhook import WebhookNotifier, WebhookSettings
from pydantic import ValidationError

from budgetguard.alerts import group_events, render, transitions
from budgetguard.evaluate.evaluator import Finding
from budgetguard.evaluate.windows import budget_window
from budgetguard.notify import Alert
from budgetguard.rules import load_rules_text
from budgetguard.testing import assert_conformant

RULES = load_rules_text("""
version: 1
notifiers: {pd: {type: console}}
budgets:
  - name: chatbot-day
    description: Chatbot's daily spend on GPT-4o
    runbook_url: https://wiki.example.com/runbooks/chatbot-spend
    labels: {team: chat, env: prod}
    match: {project: proj_abc}
    each: project
    limit: 1000
    window: 24h
    thresholds: [75%, 90%, 100%]
    notify: [pd]
""")
(BUDGET,) = RULES.budgets
T0 = datetime(2026, 11, 22, 10, tzinfo=UTC)
NAMES = {"proj_abc": "Chatbot"}
ROUTING_KEY = "R0UTINGKEY0123456789abcdef012345"


def _finding(spend: int, now: datetime) -> Finding:
    value = Decimal(spend)
    crossed = tuple(t for t in BUDGET.thresholds if value >= t.ratio * Decimal(1000))
    severity = max((t.severity for t in crossed), key=["warning", "critical"].index, default="ok")
    return Finding(
        BUDGET, {"project": "proj_abc"}, budget_window(BUDGET, now, "UTC"), value,
        BUDGET.limit, None, severity, "costs", True, None, crossed,
    )  # fmt: skip


def alerts() -> tuple[Alert, Alert]:
    """A firing (75, 90 and 100 % crossed at once) and its resolution, as the outbox stores
    them."""
    changed, events = transitions([_finding(1240, T0)], {}, T0)
    (fire,) = group_events(events)
    later = T0 + timedelta(hours=3)
    _, events = transitions([_finding(500, later)], dict(changed), later)
    (resolve,) = group_events(events)
    fired = Alert.from_payload(json.loads(json.dumps(render(fire, NAMES).to_payload())))
    resolved = Alert.from_payload(
        json.loads(json.dumps(render(resolve, NAMES, 1240.0).to_payload()))
    )
    return fired, resolved


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


# PagerDuty Events API v2 (developer.pagerduty.com/docs/events-api-v2/trigger-events/)
PD_EVENT = {
    "type": "object",
    "required": ["routing_key", "event_action"],
    "properties": {
        "routing_key": {"type": "string", "minLength": 32, "maxLength": 32},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": {"type": "string", "maxLength": 255},
        "payload": {
            "type": "object",
            "required": ["summary", "source", "severity"],
            "properties": {
                "summary": {"type": "string", "maxLength": 1024},
                "source": {"type": "string"},
                "severity": {"enum": ["critical", "error", "warning", "info"]},
                "timestamp": {"type": ["string", "null"]},
                "component": {"type": "string"},
                "group": {"type": "string"},
                "class": {"type": "string"},
                "custom_details": {"type": "object"},
            },
            "additionalProperties": False,
        },
        "links": {
            "type": "array",
            "items": {"type": "object", "required": ["href"], "properties": {"href": {}}},
        },
        "images": {"type": "array"},
        "client": {"type": "string"},
        "client_url": {"type": "string"},
    },
    "additionalProperties": False,
    "if": {"properties": {"event_action": {"const": "trigger"}}},
    "then": {"required": ["payload"]},
}


def test_pagerduty_triggers_and_resolves_the_same_incident(receiver: Receiver) -> None:
    fired, resolved = alerts()
    notifier = PagerDutyNotifier(
        PagerDutySettings(routing_key=ROUTING_KEY, api_url=receiver.url + "/v2/enqueue")
    )
    notifier.send(fired)
    notifier.send(resolved)
    bodies = [json.loads(body) for _, body in receiver.received]
    for body in bodies:
        jsonschema.validate(body, PD_EVENT)
    trigger, *resolves = bodies
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == fired.key  # the idempotency key
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["summary"].startswith("CRITICAL chatbot-day [project=Chatbot")
    assert trigger["links"][0]["href"] == "https://wiki.example.com/runbooks/chatbot-spend"
    assert trigger["payload"]["custom_details"]["Labels"] == "env=prod, team=chat"
    assert {r["event_action"] for r in resolves} == {"resolve"}
    assert fired.key in {r["dedup_key"] for r in resolves}  # closes the incident it opened


def test_pagerduty_takes_no_digest(receiver: Receiver) -> None:
    from datetime import date

    from budgetguard.notify import Digest

    digest = Digest("k", "Weekly", "s", "week", date(2026, 11, 16), date(2026, 11, 23), None, None)
    PagerDutyNotifier(PagerDutySettings(routing_key=ROUTING_KEY, api_url=receiver.url)).send(
        digest.with_payload()
    )
    assert receiver.received == []  # a digest is not an incident


def test_pagerduty_and_teams_conform() -> None:
    assert_conformant(
        lambda url: PagerDutyNotifier(PagerDutySettings(routing_key=ROUTING_KEY, api_url=url)),
        secrets=[ROUTING_KEY],
    )
    assert_conformant(
        lambda url: TeamsNotifier(TeamsSettings(webhook_url=url + "/workflows/S1GNATURE")),
        secrets=["S1GNATURE"],
    )


# The shape of an Adaptive Card (adaptivecards.io/schemas/adaptive-card.json) for the elements
# the card uses, and of the message a Teams workflow webhook takes.
_TEXT = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {
        "type": {"const": "TextBlock"},
        "text": {"type": "string"},
        "wrap": {"type": "boolean"},
        "size": {"enum": ["Default", "Small", "Medium", "Large", "ExtraLarge"]},
        "weight": {"enum": ["Default", "Lighter", "Bolder"]},
        "color": {"enum": ["Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"]},
        "isSubtle": {"type": "boolean"},
    },
    "additionalProperties": False,
}
_FACTS = {
    "type": "object",
    "required": ["type", "facts"],
    "properties": {
        "type": {"const": "FactSet"},
        "facts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["title", "value"],
                "properties": {"title": {"type": "string"}, "value": {"type": "string"}},
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}
TEAMS_MESSAGE = {
    "type": "object",
    "required": ["type", "attachments"],
    "properties": {
        "type": {"const": "message"},
        "attachments": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["contentType", "content"],
                "properties": {
                    "contentType": {"const": "application/vnd.microsoft.card.adaptive"},
                    "content": {
                        "type": "object",
                        "required": ["type", "version", "body"],
                        "properties": {
                            "type": {"const": "AdaptiveCard"},
                            "version": {"pattern": r"^1\.[0-6]$"},
                            "body": {"type": "array", "items": {"anyOf": [_TEXT, _FACTS]}},
                            "actions": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["type", "url"],
                                    "properties": {
                                        "type": {"const": "Action.OpenUrl"},
                                        "url": {"type": "string", "format": "uri"},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def test_teams_posts_an_adaptive_card(receiver: Receiver) -> None:
    fired, resolved = alerts()
    notifier = TeamsNotifier(TeamsSettings(webhook_url=receiver.url + "/workflows/abc?sig=x"))
    notifier.send(fired)
    notifier.send(resolved)
    for _, raw in receiver.received:
        jsonschema.validate(json.loads(raw), TEAMS_MESSAGE)
    cards = [json.loads(raw)["attachments"][0]["content"] for _, raw in receiver.received]
    title, summary, facts = cards[0]["body"]
    assert title["text"] == "CRITICAL · chatbot-day [project=Chatbot (proj_abc)]"
    assert "thresholds 100%, 90%, 75% crossed" in summary["text"]
    shown = {f["title"]: f["value"] for f in facts["facts"]}
    assert shown["Description"] == "Chatbot's daily spend on GPT-4o"
    assert [a["title"] for a in cards[0]["actions"]] == ["Runbook", "OpenAI usage"]
    assert "was $1,240.00 (124%) at firing" in cards[1]["body"][1]["text"]


WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_standard_webhooks_signature_verifies_with_the_reference_library(
    receiver: Receiver,
) -> None:
    fired, _ = alerts()
    settings = WebhookSettings(url=receiver.url + "/hook", secret=WHSEC, signing="standard")
    WebhookNotifier(settings).send(fired)
    ((headers, body),) = receiver.received
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["webhook-id"] == fired.key
    assert lower["webhook-signature"].startswith("v1,")
    assert "x-budgetguard-signature" not in lower
    payload = standardwebhooks.Webhook(WHSEC).verify(body, lower)
    assert payload["key"] == fired.key and payload["thresholds"][0]["at"] == "100%"
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(WHSEC).verify(body + b" ", lower)


def test_standard_signing_needs_a_whsec_secret() -> None:
    for secret in (None, "plain-secret", "whsec_not*base64"):
        with pytest.raises(ValidationError, match="whsec_"):
            WebhookSettings(url="https://example.com/h", secret=secret, signing="standard")


def test_pagerduty_resolves_what_resolved_beside_a_firing() -> None:
    rules = load_rules_text("""
version: 1
notifiers: {pd: {type: console}}
budgets:
  - {name: month, limit: 100, period: month, forecast: true, thresholds: [100%], notify: [pd]}
""")
    (budget,) = rules.budgets
    (hundred,) = budget.thresholds

    def at(spend: int, forecast: int | None, now: datetime) -> Finding:
        value = Decimal(spend)
        return Finding(
            budget, {}, budget_window(budget, now, "UTC"), value, budget.limit,
            None if forecast is None else Decimal(forecast),
            "critical" if value >= 100 else "ok", "costs", True, None,
            (hundred,) if value >= 100 else (), (hundred,) if (forecast or 0) >= 100 else (),
        )  # fmt: skip

    states, events = transitions([at(120, None, T0)], {}, T0)
    (fired,) = events
    later = T0 + timedelta(hours=1)
    _, events = transitions([at(90, 130, later)], dict(states), later)
    (note,) = group_events(events)  # the forecast fires as the threshold resolves: one message
    alert = Alert.from_payload(json.loads(json.dumps(render(note).to_payload())))
    assert alert.kind == "forecast"
    bodies = events_of(alert)
    assert [b["event_action"] for b in bodies] == ["trigger", "resolve"]
    assert bodies[1]["dedup_key"] == fired.key  # closes the threshold's incident
    for body in bodies:
        jsonschema.validate(body, PD_EVENT)


def events_of(alert: Alert) -> list[dict[str, Any]]:
    from budgetguard_pagerduty import events

    return events(alert, ROUTING_KEY)
