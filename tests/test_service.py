"""The service (ticks, health, metrics, status, reload, signals), the digest against the
simulator's figures, the demo end to end, HA on PostgreSQL, and the shipped artefacts."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from budgetguard import pipeline
from budgetguard.collect import Collector
from budgetguard.notify import Digest
from budgetguard.notify.manager import load_plugins
from budgetguard.providers.openai import AdminClient
from budgetguard.rules import load_rules
from budgetguard.rules.needs import plan_queries
from budgetguard.rules.periods import last_complete_period
from budgetguard.service import Service
from budgetguard.settings import Settings
from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.store import Store
from budgetguard.store.alerts import AlertStore
from budgetguard.store.schema import outbox
from budgetguard.store.silences import SilenceStore
from tests.conftest import ADMIN_KEY, NOW, Receiver, needs_postgres, start_run

ROOT = Path(__file__).resolve().parents[1]
DAY = 86400
NOW_DT = datetime.fromtimestamp(NOW, UTC)


RULES = """
version: 1
schedule: {{interval: 1m}}
notifiers:
  hook: {{type: webhook, url: "{url}"}}
digest: {{schedule: "0 9 * * mon", period: week, notify: [hook], top: 3}}
budgets:
  - {{name: org-week, limit: 100, period: week, notify: [hook]}}
  - {{name: per-project, limit: 1000000, window: 7d, each: project, notify: [hook]}}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("service")
    receiver = Receiver()
    rules_file = tmp / "rules.yaml"
    rules_file.write_text(RULES.format(url=receiver.url))
    rules = load_rules(rules_file)
    with SimulatorServer(build_api(now=NOW, days=40)) as sim:
        settings = Settings(
            openai_admin_key=ADMIN_KEY,
            openai_base_url=sim.base_url,
            database_url=f"sqlite:///{tmp / 'spend.db'}",
            rules=rules_file,
            now=NOW_DT,
        )
        store = Store.open(settings.database_url)

        async def run() -> None:
            async with AdminClient(ADMIN_KEY, sim.base_url) as client:
                await Collector(client, store).collect(plan_queries(rules, NOW_DT), NOW_DT)

        asyncio.run(run())
        yield {
            "sim": sim,
            "store": store,
            "rules": rules,
            "settings": settings,
            "receiver": receiver,
            "tmp": tmp,
        }
        store.close()
    receiver.shutdown()


# -- the digest ------------------------------------------------------------------------------


def test_the_digest_figures_equal_the_simulators_invoice(world: dict[str, Any]) -> None:
    store, rules, sim = world["store"], world["rules"], world["sim"]
    digest = pipeline.make_digest(store, rules, NOW_DT)
    before, start, end = last_complete_period("week", NOW_DT, "UTC")
    assert digest.start == start.date() and digest.end == end.date()
    assert start.weekday() == 0 and (end - start) == timedelta(days=7)
    org, api = sim.api.org, sim.api

    def invoice(lo: datetime, hi: datetime) -> dict[int, Decimal]:
        out: dict[int, Decimal] = {}
        for day in range(int(lo.timestamp()), int(hi.timestamp()), DAY):
            out[day] = sum(
                (
                    Decimal(str(line.amount))
                    for index, _ in enumerate(org.streams)
                    for line in org.cost_lines(
                        index, day, min(day + DAY, NOW - api.costs_delay), NOW
                    )
                ),
                Decimal(0),
            )
        return out

    week, previous = invoice(start, end), invoice(before, start)
    assert [v for _, v in digest.daily] == pytest.approx([week[d] for d in sorted(week)])
    assert float(digest.total or 0) == pytest.approx(float(sum(week.values())), rel=1e-9)
    assert float(digest.previous_total or 0) == pytest.approx(
        float(sum(previous.values())), rel=1e-9
    )
    assert len(digest.sparkline) == 7 and "·" not in digest.sparkline
    assert len(digest.top_projects) == 3 and len(digest.top_models) == 3
    spends = [line.spend for line in digest.top_projects]
    assert spends == sorted(spends, reverse=True)
    assert {b.budget for b in digest.budgets} == {"org-week", "per-project"}
    assert digest.key == f"digest-week-{start.date().isoformat()}-{store.installation_id()}"
    assert not [n for n in digest.notes if "missing" in n]


def test_the_digest_payload_round_trips_and_renders_everywhere(world: dict[str, Any]) -> None:
    from budgetguard_email import render_digest, subject
    from budgetguard_slack import digest_blocks

    digest = pipeline.make_digest(world["store"], world["rules"], NOW_DT)
    again = Digest.from_payload(json.loads(json.dumps(digest.payload)))
    assert again.key == digest.key and [d for d, _ in again.daily] == [d for d, _ in digest.daily]
    assert [float(v or 0) for _, v in again.daily] == pytest.approx(
        [float(v or 0) for _, v in digest.daily]
    )  # money travels as JSON numbers, as the contract says
    assert again.total == pytest.approx(digest.total)
    assert digest.payload["type"] == "budgetguard.digest"
    text, html = render_digest(digest)
    assert digest.top_projects[0].name in text and "<table" in html
    assert subject(digest).startswith("[budgetguard] Weekly spend digest")
    fallback, (attachment,) = digest_blocks(digest)
    assert fallback and len(attachment["blocks"]) <= 50
    from budgetguard_teams import card

    facts = next(b for b in card(again)["body"] if b["type"] == "FactSet")["facts"]
    assert facts[0]["title"] == "Total" and len(facts) > len(digest.budgets)


def test_the_digest_draws_the_week_and_the_top_budgets_burn_up_everywhere(
    world: dict[str, Any],
) -> None:
    """The same figures as images (email) and as text rows (Slack, Teams): the week's days,
    and the burn-up of the budget highest against its limit, ending at its reported spend."""
    from io import BytesIO

    from budgetguard_slack import digest_blocks
    from budgetguard_teams import card
    from PIL import Image

    from budgetguard.notify import digest_chart_text, digest_charts

    digest = pipeline.make_digest(world["store"], world["rules"], NOW_DT)
    findings = pipeline.evaluate_store(world["store"], world["rules"], NOW_DT)
    (burn,) = digest.burnup  # org-week: the one cost budget with a calendar period
    week = next(f for f in findings if f.budget.name == "org-week")
    assert burn.label == "org-week" and burn.limit == 100
    assert burn.points[-1][1] == pytest.approx(week.spend) and burn.spend == week.spend
    assert burn.points[0][0].isoformat() == "2026-11-16"  # Monday, local days
    charts = digest_charts(Digest.from_payload(json.loads(json.dumps(digest.payload))))
    assert [c.name for c in charts] == ["daily", "burnup-1"]
    for chart in charts:
        with Image.open(BytesIO(chart.png())) as png:
            assert png.size == (chart.figure.width, chart.figure.height)
    rows = digest_chart_text(digest)
    assert rows[0] == "Daily spend" and len(rows) == 1 + len(digest.daily) + 1
    assert rows[-1].startswith("org-week: ") and "of $100.00" in rows[-1]
    _, (attachment,) = digest_blocks(digest)
    code = [b for b in attachment["blocks"] if "```" in b.get("text", {}).get("text", "")]
    assert len(code) == 1 and "Daily spend" in code[0]["text"]["text"]
    mono = [b for b in card(digest)["body"] if b.get("fontType") == "Monospace"]
    assert len(mono) == 1 and "org-week" in mono[0]["text"]


def test_a_digest_with_missing_days_says_so_and_never_shows_zero(tmp_path: Path) -> None:
    rules = load_rules(ROOT / "rules.example.yaml", env={})
    store = Store.open(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        digest = pipeline.make_digest(store, rules, NOW_DT)
    finally:
        store.close()
    assert digest.total is None and all(v is None for _, v in digest.daily)
    assert any("no costs have been collected" in n for n in digest.notes)
    assert "$0" not in digest.summary


def test_a_note_shared_by_the_groups_of_a_budget_is_listed_once() -> None:
    """Every group of an ``each`` budget carries the budget's note; the digest says it once."""
    from budgetguard.digest import build_digest
    from budgetguard.evaluate import Finding, SpendData, budget_window
    from budgetguard.rules import load_rules_text

    rules = load_rules_text(
        "version: 1\nbudgets:\n  - {name: p, limit: 10, period: day, each: project}\n"
    )
    (budget,) = rules.budgets
    window = budget_window(budget, NOW_DT, rules.timezone)
    findings = [
        Finding(
            budget,
            {"project": name},
            window,
            Decimal(1),
            budget.limit,
            None,
            "ok",
            "estimate",
            False,
            "no price for model mystery-9",
        )
        for name in ("a", "b", "c")
    ]
    digest = build_digest(rules, SpendData({}), findings, [], NOW_DT)
    assert [n for n in digest.notes if "mystery-9" in n] == ["p: no price for model mystery-9"]


def test_the_digest_is_sent_once_per_period(world: dict[str, Any]) -> None:
    store, rules, receiver = world["store"], world["rules"], world["receiver"]
    digest = pipeline.make_digest(store, rules, NOW_DT)
    notifiers = load_plugins().notifiers(rules.notifiers)
    before = len(receiver.bodies)
    queued, _ = pipeline.send_digest(store, digest, ["hook"], NOW_DT, notifiers)
    assert queued == 1
    queued, _ = pipeline.send_digest(store, digest, ["hook"], NOW_DT, notifiers)  # a replica
    assert queued == 0
    sent = [b for b in receiver.bodies[before:] if b["type"] == "budgetguard.digest"]
    assert [b["key"] for b in sent] == [digest.key]


def test_digest_send_retries_a_passing_failure_inside_the_run(
    world: dict[str, Any], tmp_path: Path
) -> None:
    from budgetguard_webhook import WebhookNotifier, WebhookSettings

    from tests.test_delivery import Scripted

    flaky = Scripted([(502, {}, 0)])  # one 502, then 200
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    try:
        digest = pipeline.make_digest(world["store"], world["rules"], NOW_DT)
        notifiers = {"hook": WebhookNotifier(WebhookSettings(url=flaky.url))}
        queued, report = pipeline.send_digest(store, digest, ["hook"], NOW_DT, notifiers, within=5)
        assert (queued, report.delivered, report.retrying) == (1, 1, 0)
        assert flaky.requests == 2 and flaky.accepted == [digest.key]
    finally:
        store.close()


# -- the service -----------------------------------------------------------------------------


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def only_the_fixed_now(answer: tuple[int, Any]) -> bool:
    """``/healthz`` (its text, or ``Service.health()``) of a service healthy in all but its
    fixed ``BUDGETGUARD_NOW`` in the past (what these tests run at): 503, that one reason."""
    code, body = answer
    reasons = (json.loads(body) if isinstance(body, str) else body)["reasons"]
    return code == 503 and len(reasons) == 1 and "fixes the time at" in reasons[0]


def new_service(world: dict[str, Any], tmp_path: Path, rules_text: str | None = None) -> Service:
    """A service on its own store in ``tmp_path``, with the world's rules or ``rules_text``
    (written to ``tmp_path/rules.yaml``), its clock fixed at NOW."""
    update: dict[str, Any] = {"database_url": f"sqlite:///{tmp_path / 'service.db'}"}
    rules = world["rules"]
    if rules_text is not None:
        rules_file = tmp_path / "rules.yaml"
        rules_file.write_text(rules_text)
        update["rules"] = rules_file
        rules = load_rules(rules_file)
    settings = world["settings"].model_copy(update=update)
    return Service(settings, rules, clock=lambda: NOW_DT)


def wait_for_first_tick(service: Service) -> None:
    deadline = time.monotonic() + 180  # a worker's first tick: minutes on a loaded machine
    while service.last_success is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the scheduler runs the first tick at once


def test_a_tick_collects_evaluates_alerts_and_serves_health_metrics_status(
    world: dict[str, Any], tmp_path: Path
) -> None:
    service = new_service(world, tmp_path)
    store = Store.open(service.settings.database_url)
    hour = timedelta(hours=1)
    drill = SilenceStore(store.engine).add(
        (("budget", "nothing-*"),), NOW_DT - hour, NOW_DT + hour, "a drill"
    )
    store.close()
    service.start(port=0)
    try:
        base = f"http://127.0.0.1:{service.http.server_address[1]}"  # type: ignore[union-attr]
        wait_for_first_tick(service)
        assert service.last_success is not None, service.last_error
        assert only_the_fixed_now(get(f"{base}/healthz"))
        assert get(f"{base}/livez")[0] == 200
        status, metrics = get(f"{base}/metrics")
        assert status == 200
        assert re.search(
            r'budgetguard_spend\{budget="org-week",group="",group_name=""\} \d', metrics
        )
        assert 'budgetguard_limit{budget="org-week",group="",group_name=""} 100.0' in metrics
        # the directory's names beside the ids (the simulator serves them)
        assert re.search(
            r'budgetguard_ratio\{budget="per-project",group="project=proj_chatbot",'
            r'group_name="project=Support chatbot \(proj_chatbot\)"\}',
            metrics,
        )
        assert re.search(r'budgetguard_last_collect_timestamp_seconds\{endpoint="costs"\}', metrics)
        assert 'budgetguard_notifications_total{notifier="hook",outcome="delivered"}' in metrics
        assert "budgetguard_tick_duration_seconds" in metrics
        body = json.loads(get(f"{base}/status")[1])
        assert body["status"] == "critical"  # org-week is far over its 100
        assert body["notifications"]["outbox"].get("delivered", 0) >= 1
        assert [(x["id"], x["comment"]) for x in body["silences"]] == [(drill, "a drill")]
        assert body["alerts"] and not any(a["silenced"] for a in body["alerts"])
        assert get(f"{base}/nope")[0] == 404
        jobs = {job.id: job for job in service.scheduler.get_jobs()}
        assert set(jobs) == {"tick", "outbox", "digest"}
        assert jobs["tick"].coalesce and jobs["tick"].max_instances == 1
        assert str(jobs["digest"].trigger).startswith("cron[")

        with time_machine.travel(time.time() + 3 * 60, tick=False):
            code, body = service.health()
        assert code == 503 and "last successful tick" in str(body["reasons"])
    finally:
        service.stop()
    # the tick's alerts went out once each, with their keys
    outbox = AlertStore(Store.open(service.settings.database_url).engine)
    rows = outbox.keys()
    sent = [(row[0], row[1]) for row in rows]
    assert sent and len(sent) == len(set(sent))


def test_reload_keeps_the_old_rules_when_the_file_is_bad(
    world: dict[str, Any], tmp_path: Path
) -> None:
    service = new_service(world, tmp_path, (world["tmp"] / "rules.yaml").read_text())
    rules_file = tmp_path / "rules.yaml"
    try:
        rules_file.write_text("version: 1\nbudgets:\n  - {name: x, limit: -5, window: 1h}\n")
        assert service.reload() is False
        assert [b.name for b in service.rules.budgets] == ["org-week", "per-project"]
        assert "rules.yaml:3:" in (service.reload_error or "")
        rules_file.write_text("version: 1\nbudgets:\n  - {name: x, limit: 5, window: 1h}\n")
        assert service.reload() is True and [b.name for b in service.rules.budgets] == ["x"]
    finally:
        service.stop()


def test_sighup_with_a_bad_file_and_sigterm_during_a_tick(tmp_path: Path) -> None:
    receiver = Receiver()
    with SimulatorServer(build_api(now=NOW, days=40, latency_ms=150)) as sim:
        process, port, rules_file = start_run(
            tmp_path, sim.base_url, RULES.format(url=receiver.url)
        )
        try:
            time.sleep(0.5)  # inside the first tick: the slow simulator keeps it busy
            process.send_signal(signal.SIGTERM)
            began = time.monotonic()
            assert process.wait(timeout=30) == 0
            assert time.monotonic() - began < 10
        finally:
            if process.poll() is None:
                process.kill()
        # nothing half-done: every queued notification is delivered or still queued
        store = Store.open(f"sqlite:///{tmp_path / 'run.db'}")
        assert store.alerts.counts().get("failed", 0) == 0
        store.close()

        process, port, rules_file = start_run(
            tmp_path, sim.base_url, RULES.format(url=receiver.url)
        )
        try:
            deadline = time.monotonic() + 180
            while not only_the_fixed_now(get(f"http://127.0.0.1:{port}/healthz")):
                assert time.monotonic() < deadline, get(f"http://127.0.0.1:{port}/healthz")
                time.sleep(0.1)
            rules_file.write_text("version: 1\nbudgets: [{name: x, limt: 5}]\n")
            process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 60
            while "did not load" not in get(f"http://127.0.0.1:{port}/healthz")[1]:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            code, reason = get(f"http://127.0.0.1:{port}/healthz")
            assert code == 503
            assert "did not load at the last reload" in reason
            assert "did you mean 'limit'" in reason
            assert get(f"http://127.0.0.1:{port}/livez")[0] == 200  # alive: no restart
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
    keys = [body["key"] for body in receiver.bodies]
    assert len(keys) == len(set(keys))  # the restart sent what was left, once
    receiver.shutdown()


# -- the demo --------------------------------------------------------------------------------


def test_the_demo_runs_end_to_end_with_no_key_and_shows_alerts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "BUDGETGUARD"))}
    env = {k: v for k, v in env.items() if k not in ("SLACK_WEBHOOK_URL", "SMTP_HOST")}
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "budgetguard", "demo", "--now", "2026-11-22T21:00:00Z", "--db", db],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for heading in ("1. Collect", "2. Check", "3. Alerts", "4. Backtest", "5. Digest", "Next"):
        assert heading in out
    assert "[budgetguard] WARNING" in out or "[budgetguard] CRITICAL" in out
    assert "would have fired" in out and "spend digest" in out
    assert "not sent: set SMTP_HOST" in out  # example notifiers only when configured
    # the kept store: what was not sent stays queued, never recorded as delivered
    store = Store.open(db)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(select(outbox.c.notifier, outbox.c.status)).all()
    finally:
        store.close()
    by_notifier: dict[str, set[str]] = {}
    for notifier, status in rows:
        by_notifier.setdefault(notifier, set()).add(status)
    assert by_notifier.get("oncall") == {"pending"}, by_notifier
    assert "delivered" in by_notifier.get("stdout", set()), by_notifier


# -- HA on PostgreSQL --------------------------------------------------------------------------


@pytest.mark.postgres
@needs_postgres
def test_one_leader_at_a_time_and_takeover_when_it_dies(pg_url: str) -> None:
    from budgetguard.store.leader import Leadership

    a, b = Store.open(pg_url), Store.open(pg_url)
    first, second = Leadership(a.engine), Leadership(b.engine)
    try:
        assert first.acquire() is True
        assert second.acquire() is False
        assert first.acquire() is True  # still the holder
        first._conn.invalidate()  # type: ignore[union-attr]  # the holder's connection dies
        # the server lets go of the lock once it has noticed the disconnect (not instantly);
        # a standby competes again on every tick, so it takes over within moments
        deadline = time.monotonic() + 60
        while not second.acquire():
            assert time.monotonic() < deadline, "the standby never took over"
            time.sleep(0.05)
        assert first.acquire() is False
    finally:
        first.release()
        second.release()
        a.close()
        b.close()


@pytest.mark.postgres
@needs_postgres
def test_two_deliverers_never_claim_the_same_outbox_row(pg_url: str) -> None:
    stores = [Store.open(pg_url), Store.open(pg_url)]
    try:
        rows = [(f"ha-{i}", "hook", "{}") for i in range(200)]
        stores[0].alerts.apply([], rows, 1000)
        claimed: list[list[str]] = [[], []]

        def claim(index: int) -> None:
            outbox = stores[index].alerts.outbox
            while (got := outbox.claim("hook", f"owner-{index}", 2000, 60)) is not None:
                claimed[index].append(got.idempotency_key)

        threads = [threading.Thread(target=claim, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not set(claimed[0]) & set(claimed[1])
        assert sorted(claimed[0] + claimed[1]) == sorted(k for k, _, _ in rows)
    finally:
        for s in stores:
            s.close()


# -- what can be checked of the image here --------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if built.returncode != 0:
        pytest.skip(f"cannot build the wheel here: {built.stderr[-300:]}")
    (path,) = out.glob("budgetguard_openai-*.whl")
    return path


def test_the_wheel_holds_the_package_plugins_example_and_entry_points(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for module in (
        "budgetguard_console",
        "budgetguard_webhook",
        "budgetguard_slack",
        "budgetguard_email",
    ):
        assert f"{module}/__init__.py" in names
    assert "budgetguard/rules.example.yaml" in names and "budgetguard/py.typed" in names
    assert not [n for n in names if n.startswith("tests/")]
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "budgetguard = budgetguard.__main__:main" in text
    for name in ("console", "webhook", "slack", "email"):
        assert f"{name} = budgetguard_{name}" in text


def test_the_dockerfile_healthcheck_works_against_a_running_service(
    world: dict[str, Any], tmp_path: Path
) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER \w+", dockerfile, re.M), "the image must not run as root"
    assert re.search(r'^CMD \["budgetguard", "run"\]', dockerfile, re.M)
    assert re.search(r"^VOLUME \[\"/data\"\]", dockerfile, re.M)
    (command,) = re.findall(r"^HEALTHCHECK .*? CMD (.+)$", dockerfile, re.M)
    service = new_service(world, tmp_path)
    service.state.fixed_now = None  # healthy but for its frozen clock: the check sees 200
    service.start(port=0)
    try:
        port = service.http.server_address[1]  # type: ignore[union-attr]
        env = dict(os.environ, BUDGETGUARD_HTTP_PORT=str(port))
        argv = json.loads(command)  # exec form, as hadolint asks
        assert "/livez" in command and "/healthz" not in command  # liveness, not readiness
        wait_for_first_tick(service)
        service.last_success = time.time() - 3600  # not ready (stale): still alive
        healthy = subprocess.run(argv, env=env, capture_output=True, timeout=30, check=False)
        assert healthy.returncode == 0, healthy.stderr
        service.state.broken_workers = 3  # workers that cannot start: restart it
        unhealthy = subprocess.run(argv, env=env, capture_output=True, timeout=30, check=False)
        assert unhealthy.returncode != 0
    finally:
        service.stop()


def test_the_digest_job_fires_on_its_cron_in_the_rules_timezone(
    world: dict[str, Any], tmp_path: Path
) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    service = new_service(
        world,
        tmp_path,
        "version: 1\ntimezone: Europe/Paris\nschedule: {interval: 15m}\n"
        "digest: {schedule: '0 9 * * mon'}\nbudgets: [{name: b, limit: 5, window: 1h}]\n",
    )
    service.scheduler = BackgroundScheduler(timezone=UTC)  # not started: nothing sleeps
    try:
        # Sunday 2026-03-29 is the day Paris moves to summer time (UTC+2)
        with time_machine.travel(datetime(2026, 3, 28, 12, tzinfo=UTC), tick=False):
            service._schedule()
            jobs = {job.id: job for job in service.scheduler.get_jobs()}
            now = datetime.now(UTC)
            digest = jobs["digest"].trigger.get_next_fire_time(None, now)
            tick = jobs["tick"].trigger.get_next_fire_time(None, now)
        assert digest.astimezone(UTC) == datetime(2026, 3, 30, 7, tzinfo=UTC)  # 09:00 CEST
        assert tick.astimezone(UTC) - now <= timedelta(minutes=15)
        assert jobs["tick"].misfire_grace_time == 900
    finally:
        service.stop()


@pytest.mark.parametrize(
    "command",
    [
        "validate",
        "collect",
        "check",
        "backtest",
        "digest",
        "run",
        "notify-test",
        "plugins",
        "schema",
        "simulate",
        "demo",
        "controls plan",
        "controls apply",
        "doctor",
    ],
)
def test_every_command_takes_the_contracts_common_options(command: str) -> None:
    from typer.testing import CliRunner

    from budgetguard.cli import app

    result = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in ("--rules", "-r", "--db", "--now", "--verbose", "-v"):
        assert re.search(rf"(^|[\s,]){re.escape(flag)}[\s,]", result.stdout), (command, flag)


def test_a_replica_that_cannot_reach_the_store_turns_unhealthy(
    world: dict[str, Any], tmp_path: Path
) -> None:
    service = new_service(world, tmp_path)

    def unreachable() -> bool:
        raise ConnectionError("connection refused")

    service.leadership.acquire = unreachable  # type: ignore[method-assign]
    try:
        service.tick()
        assert service.last_success is None
        with time_machine.travel(time.time() + 3 * 60, tick=False):
            code, body = service.health()
        assert code == 503 and "leader lock" in str(body["reasons"])
    finally:
        service.stop()


def test_scheduler_ticks_on_the_interval_and_coalesces_missed_runs(
    world: dict[str, Any], tmp_path: Path
) -> None:
    """Virtual time: the clock is moved, the scheduler woken; nothing sleeps for minutes."""
    service = new_service(world, tmp_path, "version: 1\nschedule: {interval: 15m}\nbudgets: []\n")
    ticks: list[datetime] = []
    service.tick = lambda: ticks.append(datetime.now(UTC))  # type: ignore[method-assign]

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(ticks) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    with time_machine.travel(datetime(2026, 11, 20, 12, tzinfo=UTC), tick=True) as clock:
        service.start(port=0)
        try:
            wait_for(1)  # the first tick runs at once
            assert len(ticks) == 1
            clock.shift(timedelta(minutes=15))
            service.scheduler.wakeup()
            wait_for(2)
            assert len(ticks) == 2
            clock.shift(timedelta(minutes=50))  # three runs missed while suspended
            service.scheduler.wakeup()
            wait_for(3)
            time.sleep(0.3)
            assert len(ticks) == 3  # coalesced into one
            assert ticks[1] - ticks[0] >= timedelta(minutes=15)
        finally:
            service.stop()


# -- health in each state --------------------------------------------------------------------


def test_healthz_is_503_with_reasons_when_budgets_are_unknown_and_livez_stays_200(
    world: dict[str, Any], tmp_path: Path
) -> None:
    service = new_service(world, tmp_path)  # an empty store of its own
    service.settings = service.settings.model_copy(update={"openai_admin_key": None})
    service.start(port=0)
    try:
        base = f"http://127.0.0.1:{service.http.server_address[1]}"  # type: ignore[union-attr]
        wait_for_first_tick(service)
        code, text = get(f"{base}/healthz")
        body = json.loads(text)
        assert code == 503 and body["status"] == "unhealthy"
        assert any(r.startswith("budget org-week is unknown") for r in body["reasons"]), body
        assert get(f"{base}/livez") == (200, '{"status": "alive", "reasons": []}\n')
    finally:
        service.stop()
    code, body = service.liveness()
    assert code == 503 and "scheduler is not running" in str(body["reasons"])


def test_healthz_names_a_query_failing_past_max_staleness(world: dict[str, Any]) -> None:
    from budgetguard.service.health import HealthState, Staleness, failing_queries
    from budgetguard.store import SyncMark

    hour = 3600
    fresh = SyncMark("costs:1d", "costs", 86400, 0, 10, NOW, NOW - hour, "HTTP 500")
    stale = SyncMark("usage:1h", "completions", 3600, 0, 10, NOW, NOW - 7 * hour, "HTTP 500")
    never = SyncMark("usage:1m", "completions", 60, None, None, NOW, None, "timed out")
    fine = SyncMark("images:1h", "images", 3600, 0, 10, NOW, NOW, None)
    tolerant = SyncMark("moderations:1h", "moderations", 3600, 0, 10, NOW, NOW - 7 * hour, "x")
    limits = Staleness({"moderations": timedelta(hours=24)}, timedelta(hours=6))
    found = failing_queries([fresh, stale, never, fine, tolerant], NOW, limits)
    assert len(found) == 2
    assert found[0].startswith("query usage:1h failing, no success for 7.0h (max_staleness 6h)")
    assert "never" in found[1]
    state = HealthState(interval=60, last_success=time.time(), problems=found)
    code, body = state.ready()
    assert code == 503 and body["reasons"] == found
    assert HealthState(interval=60, last_success=time.time()).ready() == (
        200,
        {"status": "ok", "reasons": []},
    )
    starting = HealthState(interval=60).ready()
    assert starting[0] == 503 and "first tick" in str(starting[1]["reasons"])
    failed = HealthState(interval=60, last_success=time.time(), last_error="tick failed: x")
    assert failed.ready()[0] == 503


def test_each_endpoint_may_fail_as_long_as_the_budgets_that_read_it_allow() -> None:
    """A 1h ``max_staleness`` on a costs budget does not make a completions query that a
    24h budget reads unhealthy after 2 h; usage every budget's costs split relies on takes
    the shortest limit of all."""
    from budgetguard.rules import load_rules_text
    from budgetguard.service.health import max_staleness

    rules = load_rules_text(
        "version: 1\nbudgets:\n"
        "  - {name: spend, limit: 10, period: month, cost_source: costs, max_staleness: 1h}\n"
        "  - {name: tokens, limit: 5, window: 24h, metric: input_tokens, max_staleness: 24h,\n"
        "     match: {endpoint: completions}}\n"
        "  - {name: off, limit: 5, window: 24h, max_staleness: 10m, enabled: false}\n",
        env={},
    )
    limits = max_staleness(rules)
    assert limits.of("costs") == timedelta(hours=1)
    assert limits.of("completions") == timedelta(hours=24)
    assert limits.of("images") == timedelta(hours=1)
    assert max_staleness(load_rules_text("version: 1\nbudgets: []\n", env={})).of(
        "costs"
    ) == timedelta(hours=6)


def test_a_failed_query_no_budget_plans_any_more_does_not_make_healthz_503(
    world: dict[str, Any], tmp_path: Path
) -> None:
    """A budget disabled (or removed, or regrouped) because its endpoint kept failing must
    not leave the guard unhealthy for ever: only the planned queries' failures count."""
    service = new_service(world, tmp_path)
    try:
        service.tick()
        assert only_the_fixed_now(service.health()), service.health()
        gone = "images:1h:project_id,model"  # no budget of the world's rules reads images
        assert gone not in {q.key for q in plan_queries(world["rules"], NOW_DT)}
        service.store.mark_failure(gone, "images", 3600, "HTTP 500", NOW - 8 * 3600)
        service.tick()
        assert only_the_fixed_now(service.health()), service.health()
    finally:
        service.store.close()


def test_a_reload_that_crashes_the_loader_turns_healthz_503(
    world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import budgetguard.service.core as service_module

    service = new_service(world, tmp_path, (world["tmp"] / "rules.yaml").read_text())
    try:
        service.tick()
        assert only_the_fixed_now(service.health()), service.health()

        def crash(*args: Any, **kwargs: Any) -> Any:
            raise RecursionError("maximum recursion depth exceeded")

        monkeypatch.setattr(service_module, "load_rules", crash)
        assert service.reload() is False
        code, body = service.health()
        assert code == 503
        assert "did not load at the last reload" in str(body["reasons"])
        assert "RecursionError" in str(body["reasons"])
        assert [b.name for b in service.rules.budgets] == ["org-week", "per-project"]
        monkeypatch.undo()
        assert service.reload() is True and only_the_fixed_now(service.health())
    finally:
        service.stop()


def test_check_notify_retries_in_the_run_and_names_each_failing_notifier(
    world: dict[str, Any], tmp_path: Path
) -> None:
    import shutil

    from tests.test_delivery import Scripted

    down = Scripted([(503, {}, 0)] * 1000)
    flaky = Scripted([(503, {}, 0)])  # one 503, then 200: delivered inside the run
    shutil.copy(world["tmp"] / "spend.db", tmp_path / "spend.db")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nnotifiers:\n"
        f'  down: {{type: webhook, url: "{down.url}"}}\n'
        f'  flaky: {{type: webhook, url: "{flaky.url}"}}\n'
        "budgets:\n  - {name: org-week, limit: 100, period: week, notify: [down, flaky]}\n"
    )
    env = dict(
        os.environ,
        BUDGETGUARD_DATABASE_URL=f"sqlite:///{tmp_path / 'spend.db'}",
        BUDGETGUARD_RULES=str(rules),
        BUDGETGUARD_NOW=NOW_DT.isoformat(),
        BUDGETGUARD_NOTIFY_RETRY_WITHIN="3",
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "budgetguard",
            "check",
            "--offline",
            "--notify",
            "--fail-on",
            "never",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 3), done.stderr  # 3: offline, the latest hours are unknown
    assert flaky.requests == 2 and len(flaky.accepted) == 1
    assert down.requests >= 2
    assert "notifications: 1 delivered, 1 to retry, 0 failed" in done.stderr
    (line,) = [s for s in done.stderr.splitlines() if "notifier '" in s]
    assert re.search(r"notifier 'down': 1 queued, next attempt 2026-11-2\dT[\d:]+Z: ", line)
    assert "webhook answered HTTP 503" in line
