"""Signed webhooks against a real HTTP receiver on loopback that verifies the signature."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from budgetguard_webhook import WebhookNotifier as WebhookSender
from budgetguard_webhook import WebhookSettings, sign, verify

from budgetguard.notify import Alert, DeliveryError

SECRET = "whsec-very-secret-value"
PAYLOAD = {
    "type": "budgetguard.alert",
    "budget": "org-month",
    "key": "k-123",
    "kind": "threshold",
    "severity": "critical",
    "spend": 5210.0,
    "limit": 5000.0,
    "message": "CRITICAL org-month: $5,210.00 of $5,000.00 (104%)",
}
ALERT = Alert.from_payload(PAYLOAD)


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[dict[str, Any]] = []
        self.answers: list[int] = []
        self.delay = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.server.delay)
        ok = verify(
            SECRET,
            self.headers.get("X-BudgetGuard-Timestamp", ""),
            body,
            self.headers.get("X-BudgetGuard-Signature", ""),
        )
        self.server.received.append({"headers": dict(self.headers), "body": body, "verified": ok})
        status = self.server.answers.pop(0) if self.server.answers else (200 if ok else 401)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def sender(receiver: Receiver, **settings: Any) -> WebhookSender:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook?token=abc"
    return WebhookSender(
        WebhookSettings.model_validate({"url": url, "secret": SECRET, "timeout": 2, **settings})
    )


def test_a_signed_post_the_receiver_can_verify(receiver: Receiver) -> None:
    sender(receiver).send(ALERT)
    (got,) = receiver.received
    assert got["verified"]
    assert got["headers"]["Content-Type"] == "application/json"
    assert got["headers"]["X-BudgetGuard-Key"] == "k-123"
    assert json.loads(got["body"]) == PAYLOAD
    stamp = int(got["headers"]["X-BudgetGuard-Timestamp"])
    assert abs(stamp - time.time()) < 10
    assert got["headers"]["X-BudgetGuard-Signature"] == sign(SECRET, stamp, got["body"])


def test_a_tampered_or_stale_request_does_not_verify() -> None:
    body = b'{"a":1}'
    good = sign(SECRET, 1000, body)
    assert verify(SECRET, "1000", body, good, now=1000)
    assert not verify(SECRET, "1000", b'{"a":2}', good, now=1000)
    assert not verify("other", "1000", body, good, now=1000)
    assert not verify(SECRET, "1000", body, good, now=1000 + 3600)


def test_without_a_secret_there_is_no_signature(receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    receiver.answers.append(204)
    WebhookSender(WebhookSettings(url=url)).send(ALERT)
    assert "X-BudgetGuard-Signature" not in receiver.received[0]["headers"]


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (500, True),
        (502, True),
        (503, True),
        (429, True),
        (408, True),
        (400, False),
        (401, False),
        (404, False),
        (410, False),
    ],
)
def test_statuses_are_classified(receiver: Receiver, status: int, retryable: bool) -> None:
    receiver.answers.append(status)
    with pytest.raises(DeliveryError) as info:
        sender(receiver).send(ALERT)
    assert info.value.retryable is retryable
    assert str(status) in str(info.value)


def test_timeouts_and_refused_connections_are_retried(receiver: Receiver) -> None:
    receiver.delay = 1.5
    with pytest.raises(DeliveryError) as info:
        sender(receiver, timeout=0.3).send(ALERT)
    assert info.value.retryable
    closed = WebhookSender(WebhookSettings(url="http://127.0.0.1:9/hook", secret=SECRET))
    with pytest.raises(DeliveryError) as refused:
        closed.send(ALERT)
    assert refused.value.retryable


def test_no_secret_in_errors_logs_or_reprs(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = sender(receiver)
    receiver.answers.append(400)
    with pytest.raises(DeliveryError) as info:
        hook.send(ALERT)
    for text in (str(info.value), repr(info.value), repr(hook), repr(hook.settings), caplog.text):
        assert SECRET not in text
        assert "token=abc" not in text


def test_the_outbox_delivers_through_a_configured_webhook(
    receiver: Receiver, tmp_path: Any
) -> None:
    from datetime import UTC, datetime

    from budgetguard.alerts import deliver, group_events, queue, transitions
    from budgetguard.notify.manager import load_plugins
    from budgetguard.rules import load_rules_text
    from budgetguard.store import Store
    from budgetguard.store.alerts import AlertStore
    from tests.test_alerts import finding

    port = receiver.server_address[1]
    rules = load_rules_text(
        f"""
version: 1
notifiers:
  audit: {{type: webhook, url: "http://127.0.0.1:{port}/hook", secret: "${{HOOK_SECRET}}"}}
budgets:
  - {{name: month, limit: 100, period: month, notify: [audit]}}
""",
        env={"HOOK_SECRET": SECRET},
    )
    alerts = AlertStore(Store.open(f"sqlite:///{tmp_path / 'a.db'}").engine)
    now = datetime(2026, 11, 22, tzinfo=UTC)
    changed, events = transitions([finding(rules.budgets[0], 150, now)], {}, now)
    queue(alerts, changed, group_events(events), now)
    report = deliver(alerts, load_plugins().notifiers(rules.notifiers), now)
    assert report.delivered == 1  # the 80% and the 100% thresholds, grouped
    assert all(r["verified"] for r in receiver.received)
    keys = {r["headers"]["X-BudgetGuard-Key"] for r in receiver.received}
    top = next(e for e in events if e.severity == "critical")
    assert keys == {top.key}
    (body,) = [json.loads(r["body"]) for r in receiver.received]
    assert body["type"] == "budgetguard.alert" and body["severity"] == "critical"
    assert [(t["at"], t["severity"]) for t in body["thresholds"]] == [
        ("100%", "critical"),
        ("80%", "warning"),
    ]


def test_notify_test_command(receiver: Receiver, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from budgetguard.cli import app

    port = receiver.server_address[1]
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"""
version: 1
notifiers:
  audit: {{type: webhook, url: "http://127.0.0.1:{port}/hook", secret: "{SECRET}"}}
  dead: {{type: webhook, url: "http://127.0.0.1:9/hook"}}
""")
    runner = CliRunner()
    ok = runner.invoke(app, ["notify-test", "audit", "-r", str(rules)])
    assert ok.exit_code == 0, ok.stderr
    assert "delivered" in ok.stdout
    (got,) = receiver.received
    assert got["verified"] and json.loads(got["body"])["type"] == "budgetguard.test"
    # a closed port: retried inside the run for the bound (1 s here), then reported
    dead = runner.invoke(
        app, ["notify-test", "dead", "-r", str(rules)], env={"BUDGETGUARD_NOTIFY_RETRY_WITHIN": "1"}
    )
    assert dead.exit_code == 3 and "temporary, gave up" in dead.stderr
    typo = runner.invoke(app, ["notify-test", "audti", "-r", str(rules)])
    assert typo.exit_code == 2 and "did you mean 'audit'" in typo.stderr
