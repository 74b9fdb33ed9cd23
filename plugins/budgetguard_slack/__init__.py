"""Slack: an incoming webhook, or a bot token and a channel through ``chat.postMessage``.

Block Kit with a plain-text fallback: a header with the severity's emoji, the figures as
fields, a link to OpenAI's usage dashboard, and the severity's colour as the attachment bar.
Names from the data are escaped for mrkdwn (``budgetguard.notify.escape.slack``); texts are
cut to Slack's limits. slack-sdk's
own retry handlers are off (they sleep inside ``send`` for as long as a 429's
``Retry-After`` says, stalling every other delivery): a 429 or a 5xx is a ``DeliveryError``
carrying the ``Retry-After``, and the outbox schedules the next attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from budgetguard.notify import (
    Alert,
    DeliveryError,
    Digest,
    Message,
    NotifierSettings,
    NotifierType,
    check_status,
    digest_chart_text,
    escape_slack,
    hookimpl,
    http_url,
    money,
    plain_text,
    secret_problem,
    signed_percent,
)

__all__ = ["SlackNotifier", "SlackSettings", "alert_blocks", "digest_blocks", "escape"]

#: Text from the data (budget, project, model names) made inert for mrkdwn.
escape = escape_slack


class SlackSettings(NotifierSettings):
    """An incoming-webhook URL, or a bot token and a channel for chat.postMessage."""

    model_config = ConfigDict(  # the rules of ``_one_way``, for the JSON Schema
        json_schema_extra={
            "oneOf": [
                {"required": ["webhook_url"], "not": {"required": ["token"]}},
                {"required": ["token", "channel"], "not": {"required": ["webhook_url"]}},
            ]
        }
    )
    type: Literal["slack"] = "slack"
    webhook_url: SecretStr | None = None
    token: SecretStr | None = None
    channel: str | None = None
    api_url: str | None = Field(default=None, description="Slack API base override.")
    username: str | None = None

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            http_url(value.get_secret_value())
        return value

    @field_validator("api_url")
    @classmethod
    def _api(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @model_validator(mode="after")
    def _one_way(self) -> SlackSettings:
        if (self.webhook_url is None) == (self.token is None):
            raise ValueError("give either webhook_url, or token and channel")
        if self.token is not None and not self.channel:
            raise ValueError("a token needs a channel")
        return self


# slack-sdk logs request URLs (a webhook URL is a secret) and more at DEBUG: its own logger
# is kept silent; what matters reaches the outbox as a DeliveryError.
_SDK_LOG = logging.getLogger("budgetguard.notify.slack_sdk")
_SDK_LOG.addHandler(logging.NullHandler())
_SDK_LOG.propagate = False
_SDK_LOG.setLevel(logging.CRITICAL + 10)

_EMOJI = {
    "critical": ":rotating_light:",
    "warning": ":warning:",
    "ok": ":white_check_mark:",
    "unknown": ":grey_question:",
}
_COLOUR = {"critical": "#d92d20", "warning": "#f79009", "ok": "#12b76a", "unknown": "#98a2b3"}
_FIELD_LIMIT = 2000  # characters per field; 10 fields per section; 3000 per text
_TEXT_LIMIT = 3000
# Slack answers these with 4xx/200 bodies that no retry will fix.
_PERMANENT = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "no_service",
    "invalid_token",
    "no_team",
    "team_disabled",
    "missing_scope",
}


_TIMEOUT = 15  # seconds per request; the outbox's deadline bounds the whole send


def _retry_after(headers: Any) -> str | None:
    """The ``Retry-After`` of a slack-sdk response (its header names keep their case)."""
    for name, value in dict(headers or {}).items():
        if str(name).lower() == "retry-after":
            return str(value[0] if isinstance(value, list) and value else value)
    return None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str, fields: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": _cut(text, _TEXT_LIMIT)},
    }
    if fields:
        block["fields"] = [
            {"type": "mrkdwn", "text": _cut(f"*{escape(name)}*\n{escape(value)}", _FIELD_LIMIT)}
            for name, value in fields
        ][:10]
    return block


def _header(text: str) -> dict[str, Any]:
    return {
        "type": "header",
        "text": {"type": "plain_text", "emoji": True, "text": _cut(plain_text(text), 150)},
    }


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text, _TEXT_LIMIT)}]}


_ABOUT = ("Description", "Labels", "Runbook")  # the budget's own words: below the figures


def alert_blocks(alert: Alert) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, attachments with blocks) for one alert: the figures as fields (10 at
    most per section, so in sections of 10), the budget's description and labels below, and
    links to its runbook and OpenAI's usage page."""
    text = escape(alert.summary)
    rows = [(n, v) for n, v in alert.fields if n not in ("Severity", *_ABOUT)]
    rows.append(("Kind", alert.kind))
    about = [f"*{n}:* {escape(v)}" for n, v in alert.fields if n in _ABOUT[:2]]
    links = [f"<{alert.link}|OpenAI usage>"]
    if alert.runbook_url:
        links.insert(0, f"<{escape(alert.runbook_url).replace('|', '%7C')}|Runbook>")
    context = " · ".join([*links, f"key `{escape(alert.key)}`", escape(alert.fired_at)])
    blocks = [
        _header(alert.title),
        _section(f"{_EMOJI.get(alert.severity, '')} {text}", rows[:10]),
        *(
            {"type": "section", "fields": _section("-", rows[i : i + 10])["fields"]}
            for i in range(10, len(rows), 10)
        ),
        *([_section("\n".join(about))] if about else []),
        _context(context),
    ]
    colour = _COLOUR["ok"] if alert.kind == "resolved" else _COLOUR.get(alert.severity)
    return text, [{"color": colour or _COLOUR["unknown"], "blocks": blocks}]


def digest_blocks(digest: Digest) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, attachments with blocks) for a digest; at most 50 blocks."""
    text = escape(digest.summary)
    blocks: list[dict[str, Any]] = [
        _header(digest.title),
        _section(
            f"{text}\n`{digest.sparkline}`",
            [
                ("Total", money(digest.total)),
                ("Previous", money(digest.previous_total)),
                ("Change", signed_percent(digest.change)),
            ],
        ),
    ]
    chart = digest_chart_text(digest)
    if chart:  # the email's charts as text: no image hosting needed
        blocks.append(_section("```" + "\n".join(escape(line) for line in chart) + "```"))
    for heading, lines in (
        ("Top projects", digest.top_projects),
        ("Top models", digest.top_models),
    ):
        if lines:
            rows = "\n".join(
                f"• {escape(line.name)}: {money(line.spend)} ({signed_percent(line.change)})"
                for line in lines
            )
            blocks.append(_section(f"*{heading}*\n{rows}"))
    if digest.budgets:
        rows = "\n".join(
            f"{_EMOJI.get(b.severity, '')} {escape(b.label)}: {b.show(b.spend)} of "
            f"{b.show(b.limit)}"
            + (f" (forecast {b.show(b.forecast)})" if b.forecast is not None else "")
            for b in digest.budgets[:40]
        )
        blocks.append(_section(f"*Budgets*\n{rows}"))
    if digest.alerts:
        blocks.append(
            _section("*Alerts*\n" + "\n".join(f"• {escape(a)}" for a in digest.alerts[:30]))
        )
    if digest.notes:
        blocks.append(_context("Notes: " + "; ".join(escape(n) for n in digest.notes)))
    blocks.append(_context(f"<{digest.link}|OpenAI usage> · key `{escape(digest.key)}`"))
    return text, [{"color": "#175cd3", "blocks": blocks[:50]}]


class SlackNotifier:
    def __init__(self, settings: SlackSettings) -> None:
        self.settings = settings

    def __repr__(self) -> str:
        return "SlackNotifier(webhook_url='***', token='***')"

    def send(self, message: Message) -> None:
        if self.settings.webhook_url is not None:
            secret_problem("slack webhook_url", self.settings.webhook_url.get_secret_value())
        if self.settings.token is not None:
            secret_problem("slack token", self.settings.token.get_secret_value())
        if isinstance(message, Alert):
            text, attachments = alert_blocks(message)
        else:
            text, attachments = digest_blocks(message)
        try:
            if self.settings.webhook_url is not None:
                self._webhook(text, attachments)
            else:
                self._post_message(text, attachments)
        except DeliveryError:
            raise
        except Exception as exc:  # slack-sdk raises plain errors for transport failures
            raise DeliveryError(
                f"slack unreachable ({type(exc).__name__})", retryable=True
            ) from None

    def _webhook(self, text: str, attachments: list[dict[str, Any]]) -> None:
        from slack_sdk.webhook import WebhookClient

        assert self.settings.webhook_url is not None
        client = WebhookClient(
            self.settings.webhook_url.get_secret_value(),
            timeout=_TIMEOUT,
            retry_handlers=[],  # never sleep inside send: the outbox retries
            logger=_SDK_LOG,
        )
        response = client.send(text=text, attachments=attachments)
        body = (response.body or "").strip()
        if 200 <= response.status_code < 300:
            return
        if body in _PERMANENT:
            raise DeliveryError(f"slack refused the message: {body}", retryable=False)
        check_status(response.status_code, "slack", _retry_after(response.headers))

    def _post_message(self, text: str, attachments: list[dict[str, Any]]) -> None:
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError

        assert self.settings.token is not None and self.settings.channel is not None
        base = (self.settings.api_url or "https://slack.com/api/").rstrip("/") + "/"
        client = WebClient(
            token=self.settings.token.get_secret_value(),
            base_url=base,
            timeout=_TIMEOUT,
            retry_handlers=[],  # never sleep inside send: the outbox retries
            logger=_SDK_LOG,
        )
        try:
            client.chat_postMessage(
                channel=self.settings.channel,
                text=text,
                attachments=attachments,
                username=self.settings.username,
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error", "")) if exc.response is not None else ""
            status = exc.response.status_code if exc.response is not None else 0
            if error in _PERMANENT:
                raise DeliveryError(
                    f"slack refused the message: {error}", retryable=False
                ) from None
            headers = exc.response.headers if exc.response is not None else {}
            check_status(status if status >= 400 else 500, "slack", _retry_after(headers))
            raise DeliveryError(f"slack error: {error or 'unknown'}", retryable=True) from None


@hookimpl
def budgetguard_notifier_types() -> list[NotifierType]:
    return [
        NotifierType("slack", SlackSettings, SlackNotifier, "incoming webhook or chat.postMessage")
    ]
