"""The ``teams`` notifier: a Microsoft Teams workflow webhook ("Post to a channel when a
webhook request is received") and an Adaptive Card, built as any third-party plugin is.

The card carries the same content as every other renderer: the heading, the one-line
summary, the facts (``Alert.fields``) and buttons to the runbook and OpenAI's usage page. The
webhook URL holds its own signature, so it is a secret: never logged or shown. Text from the
data is escaped for the cards' Markdown (``budgetguard.notify.escape.teams``).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from budgetguard.notify import (
    Alert,
    Digest,
    Message,
    NotifierSettings,
    NotifierType,
    digest_chart_text,
    escape_teams,
    hookimpl,
    http_url,
    money,
    post,
    signed_percent,
)

__all__ = ["TeamsNotifier", "TeamsSettings", "card", "message_body"]

_COLOUR = {"critical": "Attention", "warning": "Warning", "unknown": "Accent", "ok": "Good"}


class TeamsSettings(NotifierSettings):
    """A Teams workflow's webhook URL (a secret)."""

    type: Literal["teams"] = "teams"
    webhook_url: SecretStr
    timeout: float = Field(default=10.0, gt=0, le=120)

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        http_url(value.get_secret_value())
        return value


def _text(text: str, **style: Any) -> dict[str, Any]:
    """A TextBlock of ``text`` (from the data: its Markdown made inert, line by line)."""
    inert = "\n".join(escape_teams(line) for line in text.split("\n"))
    return {"type": "TextBlock", "text": inert, "wrap": True, **style}


def _facts(rows: list[tuple[str, str]]) -> dict[str, Any]:
    facts = [{"title": escape_teams(k), "value": escape_teams(v)} for k, v in rows]
    return {"type": "FactSet", "facts": facts}


def card(message: Message) -> dict[str, Any]:
    """The Adaptive Card (schema 1.4) of an alert or a digest."""
    actions = [{"type": "Action.OpenUrl", "title": "OpenAI usage", "url": message.link}]
    if isinstance(message, Alert):
        colour = "Good" if message.kind == "resolved" else _COLOUR.get(message.severity, "Default")
        body = [
            _text(message.title, size="Large", weight="Bolder", color=colour),
            _text(message.summary),
            _facts(message.fields),
        ]
        if message.runbook_url:
            actions.insert(
                0, {"type": "Action.OpenUrl", "title": "Runbook", "url": message.runbook_url}
            )
    else:
        body = [
            _text(message.title, size="Large", weight="Bolder"),
            _text(message.summary),
            *(
                [_text("\n\n".join(chart), fontType="Monospace", size="Small")]
                if (chart := digest_chart_text(message))
                else []
            ),
            _facts(_digest_rows(message)),
            *(_text(f"Note: {n}", isSubtle=True) for n in message.notes),
        ]
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": actions,
        "msteams": {"width": "Full"},
    }


def _digest_rows(digest: Digest) -> list[tuple[str, str]]:
    rows = [("Total", f"{money(digest.total)} ({signed_percent(digest.change)})")]
    rows += [(f"Project {p.name}", money(p.spend)) for p in digest.top_projects]
    rows += [
        (b.label, f"{b.show(b.spend)} of {b.show(b.limit)} · {b.severity}") for b in digest.budgets
    ]
    return rows


def message_body(message: Message) -> dict[str, Any]:
    """What the workflow webhook receives: a message with the card as its one attachment."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card(message),
            }
        ],
    }


class TeamsNotifier:
    def __init__(self, settings: TeamsSettings, transport: Any = None) -> None:
        self.settings = settings
        self._transport = transport

    def __repr__(self) -> str:
        return "TeamsNotifier(webhook_url='***')"

    def send(self, message: Message) -> None:
        post(
            "teams",
            self.settings.webhook_url.get_secret_value(),
            json.dumps(message_body(message)).encode(),
            {"Content-Type": "application/json", "User-Agent": "budgetguard"},
            self.settings.timeout,
            self._transport,
        )


@hookimpl
def budgetguard_notifier_types() -> list[NotifierType]:
    return [NotifierType("teams", TeamsSettings, TeamsNotifier, "Microsoft Teams workflow webhook")]
