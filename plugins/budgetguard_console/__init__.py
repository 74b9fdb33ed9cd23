"""The ``console`` notifier: one line per message on stdout (or any text stream).

It writes to whatever ``sys.stdout`` is when it sends: a command whose report on stdout is
machine-readable (``check --format json|markdown|github``) points that at stderr meanwhile.
"""

from __future__ import annotations

import sys
from typing import Literal, TextIO

from budgetguard.notify import (
    Alert,
    Message,
    NotifierSettings,
    NotifierType,
    hookimpl,
    plain_text,
)

__all__ = ["ConsoleNotifier", "ConsoleSettings"]


class ConsoleSettings(NotifierSettings):
    """Prints one line per alert on stdout."""

    type: Literal["console"] = "console"


class ConsoleNotifier:
    def __init__(self, settings: ConsoleSettings, stream: TextIO | None = None) -> None:
        self.settings = settings
        self.stream = stream

    def send(self, message: Message) -> None:
        out = self.stream or sys.stdout
        if isinstance(message, Alert):  # names made inert for a terminal or a CI log
            out.write(f"[budgetguard] {plain_text(message.summary)}\n")
        else:
            out.write(f"[budgetguard] {plain_text(message.title)}: {plain_text(message.summary)}\n")
            for line in message.notes:
                out.write(f"[budgetguard]   note: {plain_text(line)}\n")
        out.flush()


@hookimpl
def budgetguard_notifier_types() -> list[NotifierType]:
    return [
        NotifierType("console", ConsoleSettings, ConsoleNotifier, "one line per alert on stdout")
    ]
