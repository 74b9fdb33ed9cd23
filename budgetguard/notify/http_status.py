"""One classifier of HTTP answers for every notifier that speaks HTTP (the contract's rule)."""

from __future__ import annotations

from budgetguard.notify.errors import DeliveryError, parse_retry_after

__all__ = ["check_status"]


def check_status(status: int, what: str, retry_after: str | None = None) -> None:
    """2xx is delivered; 408, 429 and 5xx are retried (not before the answer's
    ``Retry-After``, when it gives one); any other status is permanent."""
    if 200 <= status < 300:
        return
    retryable = status in (408, 429) or status >= 500
    wait = parse_retry_after(retry_after) if retryable else None
    later = f", retry after {wait:.0f}s" if wait is not None else ""
    raise DeliveryError(
        f"{what} answered HTTP {status}{later}", retryable=retryable, retry_after=wait
    )
