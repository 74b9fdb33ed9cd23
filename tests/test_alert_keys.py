"""Idempotency keys end to end: the JSON report's alert ``key`` is exactly the key every
receiver gets (the webhook's header, Standard Webhooks' ``webhook-id``, PagerDuty's
``dedup_key``), two stores never share one, and the upgrade that brings the installation id
resends nothing that was delivered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from budgetguard import pipeline
from budgetguard.evaluate import Finding, budget_window
from budgetguard.notify.manager import load_plugins
from budgetguard.rules import load_rules_text
from budgetguard.rules.model import alert_identity
from budgetguard.simulator import SimulatorServer
from budgetguard.store import Store
from budgetguard.store.schema import alert_state, outbox
from tests.conftest import ADMIN_KEY, NOW

NOW_ISO = datetime.fromtimestamp(NOW, UTC).isoformat()
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
RULES = """
version: 1
notifiers:
  hook: {{type: webhook, url: "{url}/hook"}}
  std: {{type: webhook, url: "{url}/std", secret: "{whsec}", signing: standard}}
  pager: {{type: pagerduty, routing_key: R0UTING, api_url: "{url}/pager"}}
defaults: {{notify: [hook, std, pager]}}
budgets:
  - {{name: org-week, limit: 100, period: week}}
  - {{name: per-project, limit: 40, window: 24h, each: project, thresholds: [50%, 100%]}}
  - {{name: quiet, limit: 1000000, window: 24h}}
"""


class Heard(ThreadingHTTPServer):
    """Receives every notifier's POSTs; keeps the key each receiver identifies them by."""

    daemon_threads = True

    def __init__(self) -> None:
        self.keys: dict[str, list[str]] = {"hook": [], "std": [], "pager": []}
        self.bodies: dict[str, list[dict[str, Any]]] = {"hook": [], "std": [], "pager": []}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                where = self.path.strip("/")
                outer.bodies[where].append(body)
                if where == "hook":
                    outer.keys[where].append(self.headers["X-BudgetGuard-Key"])
                elif where == "std":
                    outer.keys[where].append(self.headers["webhook-id"])
                elif body.get("event_action") == "trigger":
                    outer.keys[where].append(body["dedup_key"])
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def heard() -> Iterator[Heard]:
    server = Heard()
    yield server
    server.shutdown()


def bg(tmp_path: Path, base_url: str, *args: str) -> tuple[int, str, str]:
    """The installed console script, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGETGUARD_", "OPENAI"))}
    env |= {
        "OPENAI_ADMIN_KEY": ADMIN_KEY,
        "BUDGETGUARD_OPENAI_BASE_URL": base_url,
        "BUDGETGUARD_NOW": NOW_ISO,
        "BUDGETGUARD_RULES": str(tmp_path / "rules.yaml"),
        "BUDGETGUARD_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
    }
    done = subprocess.run(
        [str(Path(sys.executable).with_name("budgetguard")), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


def _report_keys(tmp_path: Path, base_url: str, *flags: str) -> dict[tuple[str, str, str], str]:
    code, out, err = bg(tmp_path, base_url, "check", "-f", "json", "--fail-on", "never", *flags)
    assert code in (0, 3), err
    return {
        (a["budget"], json.dumps(a["group"]), str(a["threshold"])): a["key"]
        for a in json.loads(out)["alerts"]
    }


def test_the_reports_key_is_the_key_every_receiver_gets_and_stores_never_share_one(
    sim: SimulatorServer, heard: Heard, tmp_path: Path
) -> None:
    stores = [tmp_path / "a", tmp_path / "b"]
    reports = []
    for folder in stores:
        folder.mkdir()
        (folder / "rules.yaml").write_text(RULES.format(url=heard.url, whsec=WHSEC))
        before = _report_keys(folder, sim.base_url)  # collects; sends nothing
        assert not any(heard.keys.values()) or folder != stores[0]
        sent_before = {name: len(keys) for name, keys in heard.keys.items()}
        after = _report_keys(folder, sim.base_url, "--offline", "--notify")
        assert after == before, "the key a report shows is the key then delivered"
        assert len(after) >= 3, after  # org-week 80% and 100%, and per-project groups
        for receiver, keys in heard.keys.items():
            delivered = set(keys[sent_before[receiver] :])
            assert set(after.values()) == delivered, receiver
        # grouped thresholds go out as one notification, under the highest's key
        week = {t: k for (b, _, t), k in after.items() if b == "org-week"}
        assert set(week) == {"0.8", "1.0"} and len(set(week.values())) == 1
        again = _report_keys(folder, sim.base_url, "--offline")  # later: the stored keys
        assert again == after
        reports.append(after)
    assert not set(reports[0].values()) & set(reports[1].values())
    ids = [Store.open(f"sqlite:///{f / 'store.db'}") for f in stores]
    try:
        assert ids[0].installation_id() != ids[1].installation_id()
        assert len(ids[0].installation_id()) == 16
    finally:
        for store in ids:
            store.close()


def _v8(db: str) -> None:
    """Turn a new store into one as version 8 left it: no installation, no ``fire_key``."""
    store = Store.open(db)
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE bg_alert_state DROP COLUMN fire_key"))
        conn.execute(text("DROP TABLE bg_installation"))
        conn.execute(text("UPDATE bg_schema_version SET version = 8"))
    store.close()


def _legacy(identity: str, episode: int, event: str) -> str:
    """A notification's key as version 8 made it (no installation id)."""
    import hashlib

    raw = json.dumps([identity, episode, event, 0])
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def test_the_upgrade_keeps_what_was_delivered_and_resends_nothing(tmp_path: Path) -> None:
    """A version-8 store with an alert firing (its grouped fire delivered under the old key)
    and this week's digest delivered: after the upgrade, a tick that still fires queues
    nothing, the resolution closes the incident the old key opened, the digest is not
    queued again, and new alerts carry the store's new installation id."""
    rules = load_rules_text(
        "version: 1\nnotifiers: {pager: {type: pagerduty, routing_key: R, api_url: "
        '"http://127.0.0.1:9/x"}}\ndefaults: {notify: [pager]}\n'
        "digest: {notify: [pager]}\n"
        "budgets: [{name: org-week, limit: 100, period: week}]\n",
        env={},
    )
    (budget,) = rules.budgets
    db = f"sqlite:///{tmp_path / 'old.db'}"
    _v8(db)
    now = datetime.fromtimestamp(NOW, UTC)
    window = budget_window(budget, now, "UTC")
    ids = {t: alert_identity("org-week", {}, "threshold", t) for t in ("0.8", "1")}
    lead = _legacy(ids["1"], 1, "fire")
    import sqlite3

    conn = sqlite3.connect(str(tmp_path / "old.db"))
    for threshold, identity in ids.items():
        conn.execute(
            "INSERT INTO bg_alert_state VALUES (?, 'org-week', '[]', 'threshold', ?, 'firing', "
            "?, ?, ?, 1)",
            (identity, threshold, window.start.isoformat(), NOW - 3600, NOW - 3600),
        )
    payload = {
        "key": lead,
        "fire_key": lead,
        "spend": 150.0,
        "thresholds": [
            {"event": "fire", "key": lead, "fire_key": lead, "kind": "threshold"},
            {"event": "fire", "key": _legacy(ids["0.8"], 1, "fire"), "kind": "threshold"},
        ],
    }
    conn.execute(
        "INSERT INTO bg_outbox (idempotency_key, notifier, payload, status, attempts, "
        "next_attempt_at, created_at, delivered_at) VALUES (?, 'pager', ?, 'delivered', 1, "
        "?, ?, ?)",
        (lead, json.dumps(payload), NOW - 3600, NOW - 3600, NOW - 3600),
    )
    week_start = (window.start - timedelta(days=7)).date().isoformat()
    conn.execute(
        "INSERT INTO bg_outbox (idempotency_key, notifier, payload, status, attempts, "
        "next_attempt_at, created_at, delivered_at) VALUES (?, 'pager', '{}', 'delivered', 1, "
        "?, ?, ?)",
        (f"digest-week-{week_start}", NOW - 3600, NOW - 3600, NOW - 3600),
    )
    conn.commit()
    conn.close()

    store = Store.open(db)  # the upgrade
    try:
        with store.engine.connect() as c:
            keys = dict(c.execute(select(alert_state.c.threshold, alert_state.c.fire_key)).all())
        assert keys == {"0.8": lead, "1": lead}  # both went out in the lead's notification
        installation = store.installation_id()
        notifiers = load_plugins().notifiers(rules.notifiers)

        def finding(spend: str) -> Finding:
            amount = Decimal(spend)
            crossed = tuple(t for t in budget.thresholds if amount >= t.ratio * 100)
            severity = "critical" if len(crossed) == 2 else "warning" if crossed else "ok"
            return Finding(budget, {}, window, amount, Decimal(100), None, severity, "costs",
                           True, None, crossed)  # fmt: skip

        pipeline.notify(store, [finding("150")], now, notifiers, within=0.1)
        with store.engine.connect() as c:
            rows = c.execute(select(outbox.c.idempotency_key, outbox.c.payload)).all()
        assert len(rows) == 2, "still firing: nothing new, nothing again"
        later = now + timedelta(hours=1)
        pipeline.notify(store, [finding("10")], later, notifiers, within=0.1)
        with store.engine.connect() as c:
            rows = c.execute(select(outbox.c.idempotency_key, outbox.c.payload)).all()
        (resolve,) = [json.loads(p) for k, p in rows if k not in (lead,) and "digest" not in k]
        assert resolve["kind"] == "resolved"
        assert {t["fire_key"] for t in resolve["thresholds"]} == {lead}  # the old incident
        assert installation not in resolve["key"]  # a hash, but a new-form one:
        assert resolve["key"] != _legacy(ids["1"], 1, "resolve")
        digest = pipeline.make_digest(store, rules, now)
        assert digest.key.endswith(installation)
        queued, _ = pipeline.send_digest(store, digest, ["pager"], now, notifiers, within=0.1)
        assert queued == 0, "the week's digest went out before the upgrade"
    finally:
        store.close()


def test_notify_test_to_pagerduty_resolves_the_incident_it_opens(
    heard: Heard, tmp_path: Path
) -> None:
    (tmp_path / "rules.yaml").write_text(RULES.format(url=heard.url, whsec=WHSEC))
    code, out, err = bg(tmp_path, "http://127.0.0.1:9/v1", "notify-test", "pager")
    assert code == 0, err
    assert out.strip() == "pager: test notification delivered"
    trigger, resolve = heard.bodies["pager"]
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] and trigger["dedup_key"].startswith("test-")
    assert trigger["payload"]["severity"] == "info"
