"""Slack delivery against a local server speaking the incoming webhook and chat.postMessage."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from budgetguard_slack import SlackNotifier as SlackSender
from budgetguard_slack import SlackSettings, alert_blocks, escape

from budgetguard.notify import Alert, DeliveryError

TOKEN = "xoxb-secret-token-123"
HOOK_PATH = "/services/T000/B000/SECRETPART"
PAYLOAD = {
    "type": "budgetguard.alert",
    "budget": "chat<bot>&co",
    "group": {"project": "p_1"},
    "kind": "threshold",
    "severity": "critical",
    "threshold": 1.0,
    "spend": 5210.0,
    "limit": 5000.0,
    "key": "k-9",
    "fired_at": "2026-11-22T10:00:00Z",
    "message": "CRITICAL chat<bot>&co: $5,210.00 of $5,000.00 (104%)",
}
ALERT = Alert.from_payload(PAYLOAD)


class FakeSlack(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[dict[str, Any]] = []
        self.answers: list[tuple[int, str, dict[str, str]]] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeSlack

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "json" in (self.headers.get("Content-Type") or ""):
            body = json.loads(raw)
        else:
            body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        self.server.received.append(
            {"path": self.path, "headers": dict(self.headers), "body": body}
        )
        if self.server.answers:
            status, text, headers = self.server.answers.pop(0)
        elif self.path.startswith("/services/"):
            status, text, headers = 200, "ok", {}
        else:
            auth = self.headers.get("Authorization", "")
            ok = auth == f"Bearer {TOKEN}"
            status, headers = 200, {"Content-Type": "application/json"}
            text = json.dumps(
                {"ok": True, "ts": "1.2"} if ok else {"ok": False, "error": "invalid_auth"}
            )
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(text.encode())))
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    server = FakeSlack()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def webhook(slack: FakeSlack) -> SlackSender:
    return SlackSender(SlackSettings.model_validate({"webhook_url": slack.base + HOOK_PATH}))


def bot(slack: FakeSlack, token: str = TOKEN) -> SlackSender:
    return SlackSender(
        SlackSettings.model_validate(
            {"token": token, "channel": "#finops", "api_url": slack.base + "/api"}
        )
    )


def test_incoming_webhook_gets_blocks_and_a_fallback(slack: FakeSlack) -> None:
    webhook(slack).send(ALERT)
    (got,) = slack.received
    assert got["path"] == HOOK_PATH
    body = got["body"]
    assert body["text"].startswith("CRITICAL chat&lt;bot&gt;&amp;co")
    (attachment,) = body["attachments"]
    assert attachment["color"] == "#d92d20"
    kinds = [b["type"] for b in attachment["blocks"]]
    assert kinds == ["header", "section", "context"]
    section = attachment["blocks"][1]
    assert section["text"]["text"].startswith(":rotating_light:")
    assert "<bot>" not in json.dumps(section)  # escaped for mrkdwn
    assert any("$5,210.00" in f["text"] for f in section["fields"])
    assert "platform.openai.com/usage" in attachment["blocks"][2]["elements"][0]["text"]


def test_chat_post_message_with_a_bot_token(slack: FakeSlack) -> None:
    bot(slack).send(ALERT)
    (got,) = slack.received
    assert got["path"] == "/api/chat.postMessage"
    assert got["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert got["body"]["channel"] == "#finops"


def test_a_revoked_token_is_permanent(slack: FakeSlack) -> None:
    with pytest.raises(DeliveryError) as info:
        bot(slack, token="xoxb-wrong").send(ALERT)
    assert not info.value.retryable and "invalid_auth" in str(info.value)


def test_429_never_sleeps_in_send_its_retry_after_goes_to_the_outbox(slack: FakeSlack) -> None:
    slack.answers.append((429, "rate_limited", {"Retry-After": "120"}))
    with pytest.raises(DeliveryError) as info:
        webhook(slack).send(ALERT)  # at once: slack-sdk's sleeping retry handlers are off
    assert info.value.retryable and info.value.retry_after == 120
    assert len(slack.received) == 1
    slack.answers.append(
        (
            429,
            '{"ok": false, "error": "ratelimited"}',
            {"Retry-After": "30", "Content-Type": "application/json"},
        )
    )
    with pytest.raises(DeliveryError) as bot_info:
        bot(slack).send(ALERT)
    assert bot_info.value.retryable and bot_info.value.retry_after == 30


def test_5xx_is_retried_and_a_dead_hook_is_permanent(slack: FakeSlack) -> None:
    slack.answers.extend([(500, "oops", {}), (503, "oops", {})])
    for _ in range(2):  # one answer each: no retry inside send
        with pytest.raises(DeliveryError) as info:
            webhook(slack).send(ALERT)
        assert info.value.retryable
    slack.answers.append((404, "no_service", {}))
    with pytest.raises(DeliveryError) as gone:
        webhook(slack).send(ALERT)
    assert not gone.value.retryable


def test_unreachable_slack_is_retryable() -> None:
    sender = SlackSender(
        SlackSettings.model_validate({"webhook_url": "http://127.0.0.1:9" + HOOK_PATH})
    )
    with pytest.raises(DeliveryError) as info:
        sender.send(ALERT)
    assert info.value.retryable


def test_limits_and_escaping() -> None:
    long = dict(PAYLOAD, message="x" * 5000, budget="b" * 300)
    _, (attachment,) = alert_blocks(Alert.from_payload(long))
    section = attachment["blocks"][1]
    assert len(section["text"]["text"]) <= 3000
    assert len(attachment["blocks"][0]["text"]["text"]) <= 150
    assert len(section["fields"]) <= 10
    assert escape("<@U123> & <!channel>") == "&lt;@U123&gt; &amp; &lt;!channel&gt;"


def test_no_secret_leaks(slack: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    slack.answers.append((404, "no_service", {}))
    sender = webhook(slack)
    with pytest.raises(DeliveryError) as info:
        sender.send(ALERT)
    with pytest.raises(DeliveryError) as auth:
        bot(slack, token="xoxb-wrong-secret").send(ALERT)
    texts = [str(info.value), str(auth.value), repr(sender), repr(sender.settings), caplog.text]
    for text in texts:
        assert "SECRETPART" not in text and TOKEN not in text and "xoxb-wrong" not in text
