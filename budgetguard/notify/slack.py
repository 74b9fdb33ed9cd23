"""Slack: an incoming webhook, or a bot token and a channel through ``chat.postMessage``.

Block Kit with a plain-text fallback: a header with the severity's emoji, the figures as
fields, a link to OpenAI's usage dashboard, and the severity's colour as the attachment bar.
Names from the data are escaped for mrkdwn; texts are cut to Slack's limits. slack-sdk's own
handlers retry a 429 (after ``Retry-After``) and a 5xx once; past that the outbox retries.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from budgetguard.notify.errors import DeliveryError
from budgetguard.notify.http_status import check_status
from budgetguard.rules.notifiers import SlackSettings

__all__ = ["SlackSender", "alert_blocks", "escape"]

# slack-sdk logs request URLs (a webhook URL is a secret) and more at DEBUG: its own logger
# is kept silent; what matters reaches the outbox as a DeliveryError.
_SDK_LOG = logging.getLogger("budgetguard.notify.slack_sdk")
_SDK_LOG.addHandler(logging.NullHandler())
_SDK_LOG.propagate = False
_SDK_LOG.setLevel(logging.CRITICAL + 10)

USAGE_DASHBOARD = "https://platform.openai.com/usage"
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


def escape(text: str) -> str:
    """Text from the data (budget, project, model names) made inert for mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _money(value: Any) -> str:
    return "—" if value is None else f"${value:,.2f}"


def alert_blocks(payload: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, attachments with blocks) for one alert payload."""
    severity = str(payload.get("severity") or "unknown")
    message = escape(str(payload.get("message") or "budgetguard alert"))
    group = ", ".join(f"{k}={v}" for k, v in dict(payload.get("group") or {}).items())
    spend, limit = payload.get("spend"), payload.get("limit")
    ratio = f"{spend / limit:.0%}" if isinstance(spend, int | float) and limit else "—"
    fields = [
        ("Budget", escape(str(payload.get("budget", "")))),
        ("Group", escape(group) or "—"),
        ("Kind", escape(str(payload.get("kind", "")))),
        ("Severity", severity),
        ("Spend", _money(spend)),
        ("Limit", _money(limit)),
        ("Of limit", ratio),
    ]
    key = escape(str(payload.get("key", "")))
    fired = escape(str(payload.get("fired_at", "")))
    context = f"<{USAGE_DASHBOARD}|OpenAI usage> · key `{key}` · {fired}"
    blocks = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "emoji": True,
                "text": _cut(f"{severity.upper()} · {payload.get('budget')}", 150),
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut(f"{_EMOJI.get(severity, '')} {message}", _TEXT_LIMIT),
            },
            "fields": [
                {"type": "mrkdwn", "text": _cut(f"*{name}*\n{value}", _FIELD_LIMIT)}
                for name, value in fields
            ][:10],
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": context,
                }
            ],
        },
    ]
    return message, [{"color": _COLOUR.get(severity, _COLOUR["unknown"]), "blocks": blocks}]


class SlackSender:
    def __init__(self, settings: SlackSettings) -> None:
        self.settings = settings

    def __repr__(self) -> str:
        return "SlackSender(webhook_url='***', token='***')"

    def _handlers(self) -> list[Any]:
        from slack_sdk.http_retry.builtin_handlers import (
            RateLimitErrorRetryHandler,
            ServerErrorRetryHandler,
        )

        return [
            RateLimitErrorRetryHandler(max_retry_count=1),
            ServerErrorRetryHandler(max_retry_count=1),
        ]

    def send(self, payload: Mapping[str, Any]) -> None:
        text, attachments = alert_blocks(payload)
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
            timeout=15,
            retry_handlers=self._handlers(),
            logger=_SDK_LOG,
        )
        response = client.send(text=text, attachments=attachments)
        body = (response.body or "").strip()
        if 200 <= response.status_code < 300:
            return
        if body in _PERMANENT:
            raise DeliveryError(f"slack refused the message: {body}", retryable=False)
        check_status(response.status_code, "slack")

    def _post_message(self, text: str, attachments: list[dict[str, Any]]) -> None:
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError

        assert self.settings.token is not None and self.settings.channel is not None
        base = (self.settings.api_url or "https://slack.com/api/").rstrip("/") + "/"
        client = WebClient(
            token=self.settings.token.get_secret_value(),
            base_url=base,
            timeout=15,
            retry_handlers=self._handlers(),
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
            check_status(status if status >= 400 else 500, "slack")
            raise DeliveryError(f"slack error: {error or 'unknown'}", retryable=True) from None
