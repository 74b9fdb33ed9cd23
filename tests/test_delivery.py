"""Delivery stages on a real store with real receivers: claims and leases, deadlines,
Retry-After, bounded attempts for every failure, independent notifiers, in-run retries."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from budgetguard_slack import SlackNotifier, SlackSettings
from budgetguard_webhook import WebhookNotifier, WebhookSettings

from benchmarks.delivery_race import CountingReceiver, _payload
from budgetguard.alerts import DeliveryPolicy, deliver, deliver_within, problem_lines
from budgetguard.notify import DeliveryError, Message
from budgetguard.store import Store

T0 = datetime(2026, 11, 22, 10, tzinfo=UTC)
AT = int(T0.timestamp())


class Scripted(ThreadingHTTPServer):
    """A receiver that answers from a script: (status, headers, seconds to stall) per
    request, then 200; it counts each key it accepted."""

    daemon_threads = True

    def __init__(self, script: list[tuple[int, dict[str, str], float]] | None = None) -> None:
        self.script = list(script or [])
        self.accepted: list[str] = []
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests += 1
                status, headers, stall = outer.script.pop(0) if outer.script else (200, {}, 0)
                time.sleep(stall)
                if 200 <= status < 300:
                    outer.accepted.append(str(body.get("key") or body.get("text", "")))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return None

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'outbox.db'}")
    yield opened
    opened.close()


def queue(store: Store, notifier: str, *keys: str) -> None:
    store.alerts.outbox.queue([(k, notifier, _payload(k)) for k in keys], AT)


def hook(url: str) -> WebhookNotifier:
    return WebhookNotifier(WebhookSettings(url=url, timeout=5))


def test_a_claim_is_won_once_and_only_its_owner_records(store: Store) -> None:
    queue(store, "hook", "a")
    outbox = store.alerts.outbox
    first = outbox.claim("hook", "owner-1", AT, lease=60)
    assert first is not None and first.idempotency_key == "a"
    assert outbox.claim("hook", "owner-2", AT + 59, lease=60) is None  # leased
    second = outbox.claim("hook", "owner-2", AT + 61, lease=60)  # owner-1 died: lease over
    assert second is not None and second.id == first.id
    assert outbox.delivered(first, "owner-1", AT + 62) is False  # too late: not its row now
    assert outbox.delivered(second, "owner-2", AT + 62) is True
    assert store.alerts.counts() == {"delivered": 1}


def test_a_slack_429_retry_after_120_never_delays_the_webhook(store: Store) -> None:
    slack = Scripted([(429, {"Retry-After": "120"}, 0)] * 20)
    web = CountingReceiver()
    queue(store, "slack", *(f"s{i}" for i in range(17)))
    queue(store, "hook", *(f"h{i}" for i in range(17)))
    notifiers = {
        "slack": SlackNotifier(SlackSettings(webhook_url=slack.url)),  # type: ignore[arg-type]
        "hook": hook(web.url),
    }
    began = time.monotonic()
    report = deliver(store.alerts, notifiers, T0)
    took = time.monotonic() - began
    assert sorted(web.keys) == sorted(f"h{i}" for i in range(17))
    assert took < 30  # slack-sdk's own handler would have slept 120 s per message
    assert slack.requests == 1  # rate limited: the rest of slack's rows wait their turn
    pending = store.alerts.outbox.pending(["slack"])
    assert len(pending) == 17 and report.delivered == 17
    tried = [p for p in pending if p.attempts == 1]
    assert len(tried) == 1 and tried[0].next_attempt_at >= AT + 120
    assert "429" in (tried[0].last_error or "")
    web.shutdown()


def test_a_hung_receiver_hits_the_deadline_while_another_notifier_delivers(
    store: Store,
) -> None:
    hung = Scripted([(200, {}, 30)])
    web = CountingReceiver()
    queue(store, "hung", "x")
    queue(store, "hook", "y")
    policy = DeliveryPolicy(deadline=1.0)
    report = deliver(
        store.alerts, {"hung": hook(hung.url), "hook": hook(web.url)}, T0, policy=policy
    )
    assert dict(web.keys) == {"y": 1}
    assert report.delivered == 1 and report.retrying == 1
    (row,) = store.alerts.outbox.pending(["hung"])
    assert row.attempts == 1 and "no answer within 1s" in (row.last_error or "")
    web.shutdown()


class Raising:
    def __init__(self) -> None:
        self.calls = 0

    def send(self, message: Message) -> None:
        self.calls += 1
        raise KeyError("a plugin bug")


def test_any_exception_counts_as_an_attempt_and_the_cap_holds(store: Store) -> None:
    queue(store, "buggy", "k")
    buggy = Raising()
    policy = DeliveryPolicy(max_attempts=4)
    moment = T0
    for _ in range(10):
        deliver(store.alerts, {"buggy": buggy}, moment, policy=policy)
        moment += timedelta(hours=2)
    assert buggy.calls == 4
    assert store.alerts.counts() == {"failed": 1}
    report = deliver(store.alerts, {"buggy": buggy}, moment, policy=policy)
    assert report.delivered == report.failed == 0 and buggy.calls == 4


def test_in_run_retries_deliver_a_passing_503_and_name_what_is_left(store: Store) -> None:
    flaky = Scripted([(503, {}, 0)])  # one 503, then 200
    down = Scripted([(503, {}, 0)] * 50)
    queue(store, "flaky", "f1")
    queue(store, "down", "d1")
    notifiers = {"flaky": hook(flaky.url), "down": hook(down.url)}
    report = deliver_within(store.alerts, notifiers, T0, bound=3)
    assert flaky.accepted == ["f1"] and report.delivered == 1
    assert report.retrying == 1 and down.requests >= 2  # retried inside the run
    (line,) = problem_lines(report)
    assert line.startswith("notifier 'down': 1 queued, next attempt 2026-11-22T1")
    assert "HTTP 503" in line
    (row,) = store.alerts.outbox.pending(["down"])
    assert row.next_attempt_at >= AT + 30  # left at its normal backoff, not the in-run one


def test_a_permanent_failure_is_reported_once_and_not_retried(store: Store) -> None:
    gone = Scripted([(404, {}, 0)])
    queue(store, "gone", "g1")
    report = deliver_within(store.alerts, {"gone": hook(gone.url)}, T0, bound=3)
    assert report.failed == 1 and gone.requests == 1
    assert problem_lines(report) == ["notifier 'gone': failed for good: webhook answered HTTP 404"]


def test_retry_after_on_a_webhook_sets_the_next_attempt(store: Store) -> None:
    busy = Scripted([(503, {"Retry-After": "300"}, 0)])
    queue(store, "busy", "b1")
    deliver(store.alerts, {"busy": hook(busy.url)}, T0)
    (row,) = store.alerts.outbox.pending(["busy"])
    assert row.next_attempt_at >= AT + 300
    assert (
        deliver(store.alerts, {"busy": hook(busy.url)}, T0 + timedelta(seconds=299)).delivered == 0
    )
    assert (
        deliver(store.alerts, {"busy": hook(busy.url)}, T0 + timedelta(seconds=301)).delivered == 1
    )


def test_a_rate_limited_error_carries_retry_after() -> None:
    from budgetguard.notify import check_status

    with pytest.raises(DeliveryError) as info:
        check_status(429, "x", "7")
    assert info.value.retryable and info.value.retry_after == 7
    with pytest.raises(DeliveryError) as date:
        check_status(503, "x", "Wed, 21 Oct 2015 07:28:00 GMT")  # in the past: now
    assert date.value.retry_after == 0


def test_notify_test_retries_a_temporary_failure_inside_the_run(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    flaky = Scripted([(503, {"Retry-After": "1"}, 0)])
    down = Scripted([(404, {}, 0)])
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nnotifiers:\n"
        f'  flaky: {{type: webhook, url: "{flaky.url}"}}\n'
        f'  gone: {{type: webhook, url: "{down.url}"}}\nbudgets: []\n'
    )
    env = dict(os.environ, BUDGETGUARD_RULES=str(rules), BUDGETGUARD_NOTIFY_RETRY_WITHIN="5")
    env["BUDGETGUARD_DATABASE_URL"] = f"sqlite:///{tmp_path / 'n.db'}"

    def notify_test(name: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "budgetguard", "notify-test", name]
        return subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=60, check=False
        )

    ok = notify_test("flaky")
    assert ok.returncode == 0 and "delivered (after 2 attempts)" in ok.stdout, ok.stderr
    assert flaky.requests == 2
    gone = notify_test("gone")
    assert gone.returncode == 3 and down.requests == 1
    assert "gone: delivery failed (permanent): webhook answered HTTP 404" in gone.stderr
