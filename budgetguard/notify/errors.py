"""How a notifier says a delivery failed, and whether the outbox should try again."""

from __future__ import annotations

__all__ = ["DeliveryError"]


class DeliveryError(Exception):
    """A failed delivery; ``retryable`` says whether the outbox should try again.

    The message must never contain a secret (URLs of webhooks and Slack hooks are secrets)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
