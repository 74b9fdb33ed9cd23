"""One classifier of HTTP answers for every notifier that speaks HTTP (the contract's rule),
and the one POST that every such notifier makes through it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from budgetguard.notify.errors import DeliveryError, parse_retry_after

__all__ = ["check_status", "post", "secret_problem"]


def secret_problem(what: str, value: str, *, spaces: bool = False) -> None:
    """Refuse, for good, a secret (a URL, a token, a password) that cannot be sent as it is:
    a pasted no-break space, zero-width space or curly quote. The error names the character,
    never the value (an encoding error's repr would hold it whole)."""
    from budgetguard.header_safe import header_problem

    problem = header_problem(value, spaces=spaces)
    if problem is not None:
        raise DeliveryError(f"{what}: {problem}", retryable=False)


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


def post(
    what: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    transport: Any = None,
) -> None:
    """POST ``body`` with a deadline and classify the outcome: a timeout or a connection
    failure is temporary, the answer goes through ``check_status``. Errors name ``what``,
    never the URL (a webhook URL is a secret)."""
    import httpx  # here, not at import: loading the plugins (to check rules) stays light

    secret_problem(f"{what} URL", url)
    for name, value in headers.items():
        secret_problem(f"{what} header {name}", value, spaces=True)
    try:
        with httpx.Client(timeout=timeout, transport=transport) as http:
            response = http.post(url, content=body, headers=dict(headers))
    except httpx.TimeoutException:
        raise DeliveryError(f"{what} timed out", retryable=True) from None
    except httpx.TransportError as exc:
        raise DeliveryError(f"{what} unreachable ({type(exc).__name__})", retryable=True) from None
    except Exception as exc:  # named by its type only: its text may quote the request
        raise DeliveryError(f"{what} failed ({type(exc).__name__})", retryable=True) from None
    check_status(response.status_code, what, response.headers.get("Retry-After"))
