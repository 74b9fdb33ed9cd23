"""``budgetguard run``: the scheduled service, its HTTP endpoints and its signals.

Jobs (APScheduler 3, UTC, coalesced, one instance each): a tick every ``schedule.interval``
(collect -> evaluate -> alerts -> deliver), the digest on ``digest.schedule`` (cron in the
rules' timezone), and outbox retries every minute. Only the leader (see ``store/leader.py``)
runs them. HTTP: ``/healthz``, ``/metrics`` (Prometheus) and ``/status`` (the last report).
SIGHUP reloads the rules (a bad file keeps the old ones); SIGTERM/SIGINT let the running job
finish, then stop.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from budgetguard import pipeline
from budgetguard.evaluate.evaluator import Finding
from budgetguard.notify.alert_text import group_text
from budgetguard.notify.manager import Plugins, default_plugins
from budgetguard.report import to_json
from budgetguard.rules import Rules, RulesError, load_rules
from budgetguard.rules.vocabulary import parse_duration
from budgetguard.settings import Settings
from budgetguard.store import Store
from budgetguard.store.alerts import AlertStore
from budgetguard.store.leader import Leadership

__all__ = ["Service"]

log = logging.getLogger("budgetguard.service")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["budget", "group", "group_name"]  # group_name: with display names
        self.spend = Gauge(
            "budgetguard_spend",
            "Spend in the budget's window (USD or units)",
            labels,
            registry=self.registry,
        )
        self.limit = Gauge(
            "budgetguard_limit", "The budget's limit", labels, registry=self.registry
        )
        self.ratio = Gauge("budgetguard_ratio", "Spend / limit", labels, registry=self.registry)
        self.collected = Gauge(
            "budgetguard_last_collect_timestamp_seconds",
            "When each endpoint's data was last collected successfully",
            ["endpoint"],
            registry=self.registry,
        )
        self.notifications = Counter(
            "budgetguard_notifications",
            "Delivery attempts by outcome",
            ["notifier", "outcome"],
            registry=self.registry,
        )
        self.tick_seconds = Gauge(
            "budgetguard_tick_duration_seconds", "Duration of the last tick", registry=self.registry
        )
        self.tick_ok = Gauge(
            "budgetguard_last_successful_tick_timestamp_seconds",
            "When the last tick succeeded",
            registry=self.registry,
        )
        self.leader = Gauge(
            "budgetguard_leader", "1 when this replica runs the jobs", registry=self.registry
        )

    def findings(self, findings: list[Finding], names: Mapping[str, str] | None = None) -> None:
        self.spend.clear()
        self.limit.clear()
        self.ratio.clear()
        for f in findings:
            group = ",".join(f"{k}={v}" for k, v in f.group.items())
            shown = group_text(f.group, names or {})
            if f.spend is not None:
                self.spend.labels(f.budget.name, group, shown).set(float(f.spend))
            if f.limit is not None:
                self.limit.labels(f.budget.name, group, shown).set(float(f.limit))
            if f.ratio is not None:
                self.ratio.labels(f.budget.name, group, shown).set(float(f.ratio))


class Service:
    """The state of one ``run`` process; each job is a method the scheduler calls."""

    def __init__(
        self,
        settings: Settings,
        rules: Rules,
        *,
        plugins: Plugins | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.plugins = plugins or default_plugins()
        self.store = Store.open(settings.database_url)
        self.leadership = Leadership(self.store.engine)
        self.metrics = Metrics()
        self.clock = clock or settings.clock
        self.job_lock = threading.Lock()  # one job at a time: they share the store
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.reload_error: str | None = None
        self.status: dict[str, Any] = {"status": "starting"}
        self.started = time.time()
        self.scheduler: Any = None
        self.http: ThreadingHTTPServer | None = None
        self._stop = threading.Event()

    @property
    def interval(self) -> float:
        return parse_duration(self.rules.schedule.interval).total_seconds()

    # -- jobs ----------------------------------------------------------------------------------

    def _count(self, notifier: str, outcome: str) -> None:
        self.metrics.notifications.labels(notifier, outcome).inc()

    def _leader(self) -> bool | None:
        """True: run the job; False: another replica leads; None: the store is unreachable."""
        try:
            leader = self.leadership.acquire()
        except Exception as exc:
            self.last_error = f"cannot reach the store for the leader lock: {type(exc).__name__}"
            log.error("%s", self.last_error)
            return None
        self.metrics.leader.set(1 if leader else 0)
        return leader

    def tick(self) -> None:
        """Collect what is new, evaluate, record alert transitions, deliver."""
        leader = self._leader()
        if leader is None:
            return  # unhealthy: /healthz turns 503 after two intervals
        if not leader:
            self.last_success = time.time()  # a standby is healthy while it can ask
            self.last_error = None
            return
        started = time.monotonic()
        with self.job_lock:
            rules, now = self.rules, self.clock()
            try:
                problems: list[str] = []
                if self.settings.openai_admin_key is not None:
                    report = pipeline.collect(self.settings, self.store, rules, now)
                    problems = [f"{o.query.key}: {o.error}" for o in report.failed]
                    if report.all_failed:
                        raise RuntimeError(f"no data collected: {problems[0]}")
                else:
                    problems.append("no admin key: evaluating stored data only")
                latest: dict[str, int] = {}
                for mark in self.store.sync_marks():
                    if mark.last_success_at is not None:
                        latest[mark.endpoint] = max(
                            latest.get(mark.endpoint, 0), mark.last_success_at
                        )
                for endpoint, stamp in latest.items():
                    self.metrics.collected.labels(endpoint).set(stamp)
                findings = pipeline.evaluate_store(self.store, rules, now)
                notifiers = self.plugins.notifiers(rules.notifiers)
                delivery = pipeline.notify(self.store, findings, now, notifiers, self._count)
            except Exception as exc:
                self.last_error = f"tick failed: {exc}"
                log.error("%s", self.last_error)
                return
            finally:
                self.metrics.tick_seconds.set(time.monotonic() - started)
            names = pipeline.display_names(self.store)
            self.metrics.findings(findings, names)
            alerts, silences = pipeline.report_alerts(self.store, findings, now)
            body = to_json(findings, alerts, now, names=names)
            body["silences"] = silences  # the active ones, listed even when there are none
            body["collect_problems"] = problems
            body["notifications"] = {
                "delivered": delivery.delivered,
                "retrying": delivery.retrying,
                "failed": delivery.failed,
                "outbox": AlertStore(self.store.engine).counts(),
            }
            self.status = body
            self.last_success = time.time()
            self.last_error = None
            self.metrics.tick_ok.set(self.last_success)
            log.info(
                "tick: %d findings, %d delivered, %d to retry, %d failed",
                len(findings),
                delivery.delivered,
                delivery.retrying,
                delivery.failed,
            )

    def send_digest(self) -> None:
        if self.rules.digest is None or not self._leader():
            return
        with self.job_lock:
            now = self.clock()
            try:
                digest = pipeline.make_digest(self.store, self.rules, now)
                notifiers = self.plugins.notifiers(self.rules.notifiers)
                queued, _ = pipeline.send_digest(
                    self.store, digest, self.rules.digest.notify, now, notifiers, self._count
                )
                log.info("digest %s: %d queued", digest.key, queued)
            except Exception as exc:
                log.error("digest failed: %s", exc)

    def retry_outbox(self) -> None:
        if not self._leader():
            return
        with self.job_lock:
            notifiers = self.plugins.notifiers(self.rules.notifiers)
            try:
                pipeline.deliver_due(self.store, notifiers, self.clock(), self._count)
            except Exception as exc:
                log.error("outbox retry failed: %s", exc)

    # -- health --------------------------------------------------------------------------------

    def health(self) -> tuple[int, str]:
        """200 while the last tick succeeded within two intervals; 503 and why otherwise."""
        now = time.time()
        if self.last_success is None:
            if now - self.started < 2 * self.interval and self.last_error is None:
                return 200, "starting: the first tick has not finished"
            return 503, self.last_error or "no tick has succeeded yet"
        age = now - self.last_success
        if age > 2 * self.interval:
            reason = f"last successful tick {age:.0f}s ago (interval {self.interval:.0f}s)"
            return 503, reason + (f"; {self.last_error}" if self.last_error else "")
        return 200, "ok" + (
            f" (rules reload failed: {self.reload_error})" if self.reload_error else ""
        )

    # -- reload and lifecycle ------------------------------------------------------------------

    def reload(self, env: dict[str, str] | None = None) -> bool:
        """Load the rules file again; a bad file keeps the old rules (and says why)."""
        try:
            rules = load_rules(self.settings.rules, env=env)
        except RulesError as exc:
            self.reload_error = f"{len(exc.errors)} error(s), first: {exc.errors[0]}"
            log.error("rules reload failed, keeping the old rules: %s", self.reload_error)
            return False
        with self.job_lock:
            self.rules = rules
        self.reload_error = None
        if self.scheduler is not None:
            self._schedule()
        log.info("rules reloaded from %s", self.settings.rules)
        return True

    def _schedule(self) -> None:
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        interval = self.interval
        grace = max(30, int(interval))
        self.scheduler.add_job(
            self.tick,
            IntervalTrigger(seconds=interval, timezone=UTC),
            id="tick",
            replace_existing=True,
            misfire_grace_time=grace,
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.add_job(
            self.retry_outbox,
            IntervalTrigger(seconds=60, timezone=UTC),
            id="outbox",
            replace_existing=True,
            misfire_grace_time=60,
        )
        if self.rules.digest is not None:
            trigger = CronTrigger.from_crontab(
                self.rules.digest.schedule, timezone=self.rules.timezone
            )
            self.scheduler.add_job(
                self.send_digest,
                trigger,
                id="digest",
                replace_existing=True,
                misfire_grace_time=3600,
            )
        elif self.scheduler.get_job("digest") is not None:
            self.scheduler.remove_job("digest")

    def start(self, port: int | None = None, host: str = "0.0.0.0") -> None:  # noqa: S104
        from apscheduler.schedulers.background import BackgroundScheduler

        self.http = ThreadingHTTPServer(
            (host, self.settings.http_port if port is None else port), _handler(self)
        )
        threading.Thread(target=self.http.serve_forever, name="http", daemon=True).start()
        self.scheduler = BackgroundScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1}
        )
        self._schedule()
        self.scheduler.start()

    def stop(self) -> None:
        """Let the running job finish, then stop the scheduler and the HTTP server."""
        if self.scheduler is not None:
            if self.scheduler.running:
                self.scheduler.shutdown(wait=True)
            self.scheduler = None
        with self.job_lock:  # a job still inside waits for us here
            pass
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
            self.http = None
        self.leadership.release()
        self.store.close()
        self._stop.set()

    def wait(self) -> None:
        while not self._stop.wait(0.5):
            pass


def _handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                status, reason = service.health()
                self._send(status, (reason + "\n").encode(), "text/plain; charset=utf-8")
            elif path == "/metrics":
                self._send(200, generate_latest(service.metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/status":
                body = json.dumps(service.status, indent=2, default=str).encode()
                self._send(200, body, "application/json")
            else:
                self._send(404, b"not found: try /healthz, /metrics or /status\n", "text/plain")

    return Handler
