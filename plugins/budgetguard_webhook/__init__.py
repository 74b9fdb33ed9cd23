"""The ``webhook`` notifier: a JSON POST with the idempotency key, a timestamp and an HMAC
signature.

Headers: ``X-BudgetGuard-Key`` (idempotency key), ``X-BudgetGuard-Timestamp`` (Unix seconds)
and, with a secret, ``X-BudgetGuard-Signature: sha256=<hex HMAC-SHA256(secret,
"<timestamp>.<raw body>")>``. A receiver recomputes the HMAC over the raw body it received.

With ``signing: standard`` it signs as Standard Webhooks (standardwebhooks.com) instead:
``webhook-id`` (the idempotency key), ``webhook-timestamp`` and ``webhook-signature:
v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")>``, the key being the base64 after a
``whsec_`` secret's prefix — so any Standard Webhooks library verifies it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from budgetguard.notify import (
    Message,
    NotifierSettings,
    NotifierType,
    hookimpl,
    http_url,
    post,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["WebhookNotifier", "WebhookSettings", "sign", "sign_standard", "verify"]


class WebhookSettings(NotifierSettings):
    """A signed JSON POST to ``url``."""

    model_config = ConfigDict(  # the rule of ``_standard_secret``, for the JSON Schema
        json_schema_extra={
            "if": {"required": ["signing"], "properties": {"signing": {"const": "standard"}}},
            "then": {
                "required": ["secret"],
                "properties": {"secret": {"type": "string", "pattern": "^whsec_[A-Za-z0-9+/]+=*$"}},
            },
        }
    )
    type: Literal["webhook"] = "webhook"
    url: str = Field(repr=False)  # URLs often carry tokens: never shown
    secret: SecretStr | None = None
    signing: Literal["budgetguard", "standard"] = "budgetguard"
    timeout: float = Field(default=10.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @model_validator(mode="after")
    def _standard_secret(self) -> WebhookSettings:
        if self.signing == "standard":
            secret = self.secret.get_secret_value() if self.secret else ""
            try:
                base64.b64decode(secret.removeprefix("whsec_"), validate=True)
            except (binascii.Error, ValueError):
                secret = ""
            if not secret.startswith("whsec_") or len(secret) <= 6:
                raise ValueError("signing: standard needs a secret of the form whsec_<base64>")
        return self


class _RedactPosts(logging.Filter):
    """httpx logs every request's URL; a POST's URL is a notifier's (a secret): host only."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 2 and args[0] == "POST":
            url = args[1]
            host = getattr(url, "host", None) or "…"  # an httpx.URL
            record.args = (args[0], f"{getattr(url, 'scheme', 'https')}://{host}/…", *args[2:])
        return True


logging.getLogger("httpx").addFilter(_RedactPosts())


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def sign_standard(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks ``webhook-signature`` of a body (``v1,<base64>``)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does: check the signature, and that the timestamp is recent."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, stamp, body), signature)


class WebhookNotifier:
    def __init__(
        self,
        settings: WebhookSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._transport = transport
        self._clock = clock

    def __repr__(self) -> str:
        return "WebhookNotifier(url='***', secret='***')"

    def send(self, message: Message) -> None:
        body = json.dumps(message.payload, separators=(",", ":"), sort_keys=True).encode()
        stamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "budgetguard",
            "X-BudgetGuard-Key": message.key,
            "X-BudgetGuard-Timestamp": str(stamp),
        }
        if self.settings.secret is not None and self.settings.signing == "standard":
            headers["webhook-id"] = message.key
            headers["webhook-timestamp"] = str(stamp)
            headers["webhook-signature"] = sign_standard(
                self.settings.secret.get_secret_value(), message.key, stamp, body
            )
        elif self.settings.secret is not None:
            headers["X-BudgetGuard-Signature"] = sign(
                self.settings.secret.get_secret_value(), stamp, body
            )
        post("webhook", self.settings.url, body, headers, self.settings.timeout, self._transport)


@hookimpl
def budgetguard_notifier_types() -> list[NotifierType]:
    return [
        NotifierType(
            "webhook",
            WebhookSettings,
            WebhookNotifier,
            "signed JSON POST (HMAC-SHA256, or Standard Webhooks)",
        )
    ]
