"""How a notifier says a delivery failed, and whether and when the outbox should try again."""

from __future__ import annotations

import math

__all__ = ["DeliveryError", "parse_retry_after"]

#: The longest ``Retry-After`` honoured (a day): a larger or absurd value is capped.
MAX_RETRY_AFTER = 86400.0


class DeliveryError(Exception):
    """A failed delivery; ``retryable`` says whether the outbox should try again, and
    ``retry_after`` (seconds) when at the earliest — a receiver's ``Retry-After``. The outbox
    never sleeps on it: it becomes the row's next attempt.

    The message must never contain a secret (URLs of webhooks and Slack hooks are secrets)."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date); None if absent
    or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        import time
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))
