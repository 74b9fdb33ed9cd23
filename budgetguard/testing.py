"""A conformance kit for notifier authors: the bar every built-in notifier passes.

``assert_conformant(make, secrets)`` points a notifier at a local HTTP server that answers
200, 429, 500, 503, 400, 401 and 404 in turn, and at a closed port, and checks that:
a 2xx is delivered; 408/429/5xx and connection failures raise ``DeliveryError(retryable=True)``;
a 429's and a 503's ``Retry-After: 120`` comes back as ``retry_after`` at once (a notifier
never sleeps on it: the outbox schedules the next attempt); other 4xx raise
``DeliveryError(retryable=False)``; and no secret appears in an error, a log record (any
logger, DEBUG up) or the notifier's repr. ``make(url)`` builds the notifier with
its endpoint set to ``url``::

    def test_my_notifier_conforms():
        assert_conformant(
            lambda url: TeamsNotifier(TeamsSettings(webhook_url=url + "/T0KEN")),
            secrets=["T0KEN"],
        )
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from budgetguard.notify import Alert, DeliveryError, Notifier

__all__ = ["SAMPLE_ALERT", "assert_conformant"]

SAMPLE_ALERT = Alert(
    key="conformance-key",
    summary="CRITICAL org-month: $5,210.00 of $5,000.00 (104%)",
    severity="critical",
    kind="threshold",
    budget="org-month",
    spend=None,
    limit=None,
)
#: status -> whether a retry may help (None: delivered)
RETRY_AFTER = 120
#: answers whose Retry-After must reach the outbox
_RATE_LIMITED = (429, 503)
_CASES: dict[int, bool | None] = {
    200: None,
    429: True,
    500: True,
    503: True,
    400: False,
    401: False,
    404: False,
}


class _Server(ThreadingHTTPServer):
    status = 200

    def __init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = b"ok" if outer.status < 300 else b"error"
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Retry-After", str(RETRY_AFTER))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET = do_PUT = _answer

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def assert_conformant(
    make: Callable[[str], Notifier], secrets: Iterable[str], message: Any = SAMPLE_ALERT
) -> None:
    """Raise ``AssertionError`` listing every way the notifier falls short."""
    secrets = [s for s in secrets if s]
    problems: list[str] = []
    records = _Records()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    server = _Server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        cases: list[tuple[str, str, bool | None]] = [
            (f"HTTP {status}", base, retry) for status, retry in _CASES.items()
        ]
        cases.append(("connection refused", f"http://127.0.0.1:{_closed_port()}", True))
        for label, url, retry in cases:
            if label.startswith("HTTP "):
                server.status = int(label.split()[1])
            notifier = make(url)
            problems += [f"repr shows a secret: {label}" for s in secrets if s in repr(notifier)]
            began = time.monotonic()
            try:
                notifier.send(message)
            except DeliveryError as exc:
                if retry is None:
                    problems.append(f"{label}: raised {exc!r} for a delivered message")
                elif exc.retryable is not retry:
                    problems.append(f"{label}: retryable={exc.retryable}, expected {retry}")
                if server.status in _RATE_LIMITED and label.startswith("HTTP "):
                    if exc.retry_after != RETRY_AFTER:
                        problems.append(
                            f"{label}: retry_after={exc.retry_after}, expected the answer's "
                            f"Retry-After ({RETRY_AFTER})"
                        )
                    if time.monotonic() - began > 10:
                        problems.append(f"{label}: send waited inside itself on Retry-After")
                problems += [f"{label}: the error shows a secret" for s in secrets if s in str(exc)]
            except Exception as exc:
                problems.append(f"{label}: raised {type(exc).__name__}, not DeliveryError")
            else:
                if retry is not None:
                    problems.append(f"{label}: no DeliveryError for a failed delivery")
        leaked = [line for line in records.lines for s in secrets if s in line]
        problems += [f"a log record shows a secret: {line[:120]}" for line in leaked]
    finally:
        server.shutdown()
        server.server_close()
        root.removeHandler(records)
        root.setLevel(old_level)
    if problems:
        raise AssertionError("notifier does not conform:\n  " + "\n  ".join(problems))
