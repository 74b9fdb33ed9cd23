"""What the outbox calls to deliver one notification, and how it reports failure."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, Protocol, TextIO

from budgetguard.notify.errors import DeliveryError
from budgetguard.rules.model import Notifier
from budgetguard.rules.notifiers import EmailSettings, SlackSettings, WebhookSettings

__all__ = ["ConsoleSender", "Sender", "UnavailableSender", "senders_for"]


class Sender(Protocol):
    def send(self, payload: Mapping[str, Any]) -> None: ...


class ConsoleSender:
    """One line per notification on stdout."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, payload: Mapping[str, Any]) -> None:
        out = self.stream or sys.stdout
        out.write(f"[budgetguard] {payload.get('message') or json.dumps(payload)}\n")
        out.flush()


class UnavailableSender:
    """A notifier type whose plugin is not installed in this build."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def send(self, payload: Mapping[str, Any]) -> None:
        raise DeliveryError(
            f"no '{self.kind}' notifier plugin is available in this build", retryable=False
        )


def senders_for(notifiers: tuple[Notifier, ...]) -> dict[str, Sender]:
    """A sender per configured notifier; types without one in this build fail permanently."""
    from budgetguard.notify.email import EmailSender
    from budgetguard.notify.slack import SlackSender
    from budgetguard.notify.webhook import WebhookSender

    out: dict[str, Sender] = {}
    for notifier in notifiers:
        if notifier.type == "console":
            out[notifier.name] = ConsoleSender()
        elif isinstance(notifier.settings, WebhookSettings):
            out[notifier.name] = WebhookSender(notifier.settings)
        elif isinstance(notifier.settings, SlackSettings):
            out[notifier.name] = SlackSender(notifier.settings)
        elif isinstance(notifier.settings, EmailSettings):
            out[notifier.name] = EmailSender(notifier.settings)
        else:
            out[notifier.name] = UnavailableSender(notifier.type)
    return out
