"""One classifier of HTTP answers for every notifier that speaks HTTP (the contract's rule)."""

from __future__ import annotations

from budgetguard.notify.errors import DeliveryError

__all__ = ["check_status"]


def check_status(status: int, what: str) -> None:
    """2xx is delivered; 408, 429 and 5xx are retried; any other status is permanent."""
    if 200 <= status < 300:
        return
    retryable = status in (408, 429) or status >= 500
    raise DeliveryError(f"{what} answered HTTP {status}", retryable=retryable)
