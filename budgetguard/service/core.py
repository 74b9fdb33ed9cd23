"""``budgetguard run``: the scheduled service, its HTTP endpoints and its signals.

Jobs (APScheduler 3, UTC, coalesced, one instance each; ``service/jobs.py``): a tick every
``schedule.interval`` (collect -> evaluate -> alerts -> deliver), the digest on
``digest.schedule`` (cron in the rules' timezone), and outbox retries every minute. Only the
leader (see ``store/leader.py``) runs them, each in a worker process of its own (see
``service/worker.py``), so that the service holds, idle, only what it needs between jobs;
there is no other way to run a job, so the tests run them exactly so. HTTP: ``/livez``,
``/healthz`` (see ``health.py``), ``/metrics`` (Prometheus), ``/status`` (the last report)
and the status page at ``/`` and ``/ui/...`` (``page/``, rendered from that report). SIGHUP
reloads the rules (a bad file keeps the old ones and turns ``/healthz`` 503). SIGTERM/SIGINT
stop within 10 s whatever a job is doing: deliveries in flight are abandoned to their leases
(sent again later, under the same key), and a worker that does not end in time (a hung
collect) is killed — the outbox and the alert state are written in transactions, so nothing
queued is lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from budgetguard.rules import Rules, RulesError, load_rules
from budgetguard.rules.vocabulary import parse_duration
from budgetguard.service.health import JOB_STUCK_AFTER, HealthState
from budgetguard.service.metrics import Metrics
from budgetguard.service.outcomes import JobOutcome, TickOutcome
from budgetguard.service.page import CSP, PATHS, render
from budgetguard.settings import Settings
from budgetguard.store import Store
from budgetguard.store.leader import Leadership

__all__ = ["Service"]

log = logging.getLogger("budgetguard.service")

#: A failed digest is tried again this much later, this many times at most.
DIGEST_RETRY = timedelta(minutes=5)
DIGEST_RETRIES = 12
#: How far back a new leader looks for a digest the previous one may not have sent.
DIGEST_CATCH_UP = timedelta(hours=24)
_MINUTE = timedelta(minutes=1)


class _MetricsProgress:
    """What a job reports as it runs, into the service's metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def attempt(self, notifier: str, outcome: str) -> None:
        self._metrics.notifications.labels(notifier, outcome).inc()

    def collected(self, endpoint: str, stamp: int) -> None:
        self._metrics.collected.labels(endpoint).set(stamp)


class Service:
    """The state of one ``run`` process; each job is a method the scheduler calls."""

    def __init__(
        self,
        settings: Settings,
        rules: Rules,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``clock``: the instant each job evaluates at (default: ``settings.clock``)."""
        self.settings = settings
        self.rules = rules
        self._digest_retries = 0
        self._led: bool | None = False  # whether the last ask found this replica leading
        self.store = Store.open(settings.database_url)
        self.leadership = Leadership(self.store.engine)
        self.metrics = Metrics()
        self.clock = clock or settings.clock
        self.job_lock = threading.Lock()  # one job at a time: they share the store
        self.state = HealthState(self.interval)
        self.state.fixed_now = None if settings.now is None else settings.now.timestamp()
        self.status: dict[str, Any] = {"status": "starting"}
        self.scheduler: Any = None
        self.http: ThreadingHTTPServer | None = None
        self.stopping = threading.Event()  # set on SIGTERM: deliveries stop claiming rows
        self.clean = True  # False when a job was left running at stop
        self._stop = threading.Event()

    @property
    def interval(self) -> float:
        return parse_duration(self.rules.schedule.interval).total_seconds()

    # the health state's fields, as the jobs (and tests) read and write them
    last_success = property(
        lambda self: self.state.last_success,
        lambda self, v: setattr(self.state, "last_success", v),
    )
    last_error = property(
        lambda self: self.state.last_error, lambda self, v: setattr(self.state, "last_error", v)
    )
    reload_error = property(
        lambda self: self.state.reload_error,
        lambda self, v: setattr(self.state, "reload_error", v),
    )

    # -- jobs ----------------------------------------------------------------------------------

    def _leader(self) -> bool | None:
        """True: run the job; False: another replica leads; None: the store is unreachable."""
        try:
            leader = self.leadership.acquire()
        except Exception as exc:
            self.last_error = f"cannot reach the store for the leader lock: {type(exc).__name__}"
            log.error("%s", self.last_error)
            return None
        self.metrics.leader.set(1 if leader else 0)
        if leader and not self._led:
            self._catch_up_digest()  # a digest the previous leader may not have sent
        self._led = leader
        return leader

    def tick(self) -> None:
        """Collect what is new, evaluate, record alert transitions, deliver."""
        leader = self._leader()
        if leader is None:
            self.metrics.job_failures.labels("tick").inc()
            return  # /healthz says why (last_error) until a tick succeeds
        if not leader:
            self.last_success = time.time()  # a standby is healthy while it can ask
            self.last_error = None
            self.state.problems = []
            return
        started = time.monotonic()
        with self.job_lock, self._job():
            if self.stopping.is_set():
                return
            try:
                outcome = self._run("tick")
            finally:
                self.metrics.tick_seconds.set(time.monotonic() - started)
        assert isinstance(outcome, TickOutcome)
        if outcome.error is not None or outcome.status is None:
            self.last_error = outcome.error or "tick failed"
            return
        self.metrics.set_findings(outcome.gauges or [])
        self.status = outcome.status
        self.state.problems = outcome.problems
        self.last_success = time.time()
        self.last_error = None
        self.metrics.tick_ok.set(self.last_success)

    def send_digest(self, at: datetime | None = None) -> None:
        """The digest as of ``at`` (a retry's or a catch-up's: the instant it was due), else
        now; a failure, an unreachable store included, is tried again (``_retry_digest``)."""
        if self.rules.digest is None:
            return
        now = at or self.clock()
        leader = self._leader()
        if leader is False:
            return
        failed = leader is None
        if leader:
            with self.job_lock, self._job():
                if self.stopping.is_set():
                    return
                failed = self._run("digest", now).error is not None
        else:
            self.metrics.job_failures.labels("digest").inc()
        if failed:
            self._retry_digest(now)
        else:
            self._digest_retries = 0

    def _retry_digest(self, now: datetime) -> None:
        """Try a failed digest (the one due at ``now``) again in DIGEST_RETRY, up to
        DIGEST_RETRIES times: its key makes a second queueing a no-op, and a weekly digest
        lost to one bad minute would otherwise wait a week."""
        scheduler = self.scheduler
        if scheduler is None or self.stopping.is_set():
            return
        if self._digest_retries >= DIGEST_RETRIES:
            log.error("digest: gave up after %d retries", self._digest_retries)
            self._digest_retries = 0
            self.state.job_errors.pop("digest", None)  # said; the next digest is another
            return
        from apscheduler.triggers.date import DateTrigger

        self._digest_retries += 1
        at = datetime.now(UTC) + DIGEST_RETRY
        scheduler.add_job(
            self.send_digest,
            DateTrigger(run_date=at),
            args=[now],
            id="digest-retry",
            replace_existing=True,
            misfire_grace_time=int(DIGEST_RETRY.total_seconds()),
        )
        log.warning("digest: retry %d of %d at %s", self._digest_retries, DIGEST_RETRIES, at)

    def _catch_up_digest(self) -> None:
        """On becoming the leader (a start, a restart, a failover): the digest whose cron
        time passed in the last DIGEST_CATCH_UP, as of that time. Had it been sent, its key
        makes this a no-op; if the previous leader died or stopped over it, it goes now.
        Not with a fixed ``--now`` (trials: the cron runs on the wall clock)."""
        digest, scheduler = self.rules.digest, self.scheduler
        if digest is None or scheduler is None or self.settings.now is not None:
            return
        from apscheduler.triggers.date import DateTrigger

        trigger = self._digest_trigger(digest.schedule)
        now = datetime.now(UTC)
        due, moment = None, trigger.get_next_fire_time(None, now - DIGEST_CATCH_UP)
        for _ in range(10_000):  # a cron every minute has 1,440 times a day
            if moment is None or moment > now:
                break
            due, moment = moment, trigger.get_next_fire_time(moment, moment + _MINUTE)
        if due is None:
            return
        scheduler.add_job(
            self.send_digest,
            DateTrigger(run_date=now),
            args=[due.astimezone(UTC)],
            id="digest-catch-up",
            replace_existing=True,
            misfire_grace_time=3600,
        )

    def retry_outbox(self) -> None:
        if not self._leader():
            return
        with self.job_lock, self._job():
            if self.stopping.is_set():
                return
            if not self._due():
                return  # nothing to retry: no worker to start for it
            self._run("retry")

    def _due(self) -> bool:
        """Whether the outbox has a notification due (True when the store cannot say: the
        worker's job then reports why)."""
        try:
            return bool(self.store.alerts.outbox.due_notifiers(int(self.clock().timestamp())))
        except Exception:
            return True

    def _run(self, job: str, now: datetime | None = None) -> JobOutcome:
        """Run ``job`` as of ``now`` (default: the clock) in a worker process; its deliveries
        and collections reach the metrics as they happen, and a failure is counted. A
        worker that cannot start or load its job is a broken deployment, not bad data: said
        in one line at once, and after ``BROKEN_WORKERS_FATAL`` in a row ``/livez`` fails."""
        from budgetguard.service.worker import WorkerError, run_in_worker

        inputs = (self.settings, self.rules, now or self.clock())
        deadline = JOB_STUCK_AFTER - 60  # killed before /livez would call it stuck
        progress = _MetricsProgress(self.metrics)
        try:
            outcome: JobOutcome = run_in_worker(
                job, inputs, deadline=deadline, stop=self.stopping, progress=progress
            )
            self.state.broken_workers = 0
        except WorkerError as exc:
            outcome = TickOutcome(error=f"{job} failed: {exc}")
            if self.stopping.is_set():  # what a stop does: said once, not as a fault
                log.warning("%s stopped with the service: %s", job, exc)
            elif exc.broken:
                self.state.broken_workers += 1
                self.state.broken_reason = outcome.error
                log.critical("%s (%d in a row)", outcome.error, self.state.broken_workers)
            else:
                self.state.broken_workers = 0
                log.error("%s", outcome.error)
        self.metrics.jobs.labels(job).inc()
        if outcome.error is not None and not self.stopping.is_set():
            self.metrics.job_failures.labels(job).inc()
        if job != "tick":  # a tick's error is ``last_error``; the others' are listed apart
            if outcome.error is None:
                self.state.job_errors.pop(job, None)
            elif not self.stopping.is_set():
                self.state.job_errors[job] = outcome.error
        return outcome

    @contextlib.contextmanager
    def _job(self) -> Iterator[None]:
        """Mark a job as running (``/livez`` fails if one never ends)."""
        self.state.job_started = time.monotonic()
        try:
            yield
        finally:
            self.state.job_started = None

    # -- health --------------------------------------------------------------------------------

    def health(self) -> tuple[int, dict[str, object]]:
        """``/healthz``: 200 only when the guard can be trusted now; 503 and every reason."""
        return self.state.ready()

    def liveness(self) -> tuple[int, dict[str, object]]:
        """``/livez``: 200 while the process and its scheduler are alive."""
        scheduler = self.scheduler
        thread = getattr(scheduler, "_thread", None)
        alive = (
            scheduler is not None
            and bool(scheduler.running)
            and (thread is None or thread.is_alive())
            and not self.stopping.is_set()
        )
        return self.state.alive(alive)

    # -- reload and lifecycle ------------------------------------------------------------------

    def reload(self, env: dict[str, str] | None = None) -> bool:
        """Load the rules file again; a bad file keeps the old rules (and says why)."""
        try:
            rules = load_rules(self.settings.rules, env=env)
        except RulesError as exc:
            self.reload_error = f"{len(exc.errors)} error(s), first: {exc.errors[0]}"
            log.error("rules reload failed, keeping the old rules: %s", self.reload_error)
            return False
        except Exception as exc:  # a loader crash must not pass for a good reload
            self.reload_error = f"loading {self.settings.rules} failed: {type(exc).__name__}: {exc}"
            log.error("rules reload failed, keeping the old rules: %s", self.reload_error)
            return False
        with self.job_lock:
            self.rules = rules
            self.state.interval = self.interval
        self.reload_error = None
        if self.scheduler is not None:
            self._schedule()
        log.info("rules reloaded from %s", self.settings.rules)
        return True

    def _digest_trigger(self, schedule: str) -> Any:
        """The digest's cron, in the rules' timezone (the job's, and a catch-up's)."""
        from apscheduler.triggers.cron import CronTrigger

        return CronTrigger.from_crontab(schedule, timezone=self.rules.timezone)

    def _schedule(self) -> None:
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
            self.scheduler.add_job(
                self.send_digest,
                self._digest_trigger(self.rules.digest.schedule),
                id="digest",
                replace_existing=True,
                misfire_grace_time=3600,
            )
        elif self.scheduler.get_job("digest") is not None:
            self.scheduler.remove_job("digest")

    def start(self, port: int | None = None) -> None:
        """Serve HTTP on ``settings.http_host`` and ``port`` (default: the settings'), and
        start the scheduler."""
        from apscheduler.schedulers.background import BackgroundScheduler

        self.http = ThreadingHTTPServer(
            (self.settings.http_host, self.settings.http_port if port is None else port),
            _handler(self),
        )
        threading.Thread(target=self.http.serve_forever, name="http", daemon=True).start()
        self.scheduler = BackgroundScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1}
        )
        self._schedule()
        self.scheduler.start()

    def stop(self, grace: float = 5.0) -> bool:
        """Stop within ``grace`` seconds (and a little): no new job starts, deliveries stop
        claiming and abandon sends in flight, a running job gets ``grace`` to end. Returns
        False when one did not (``clean``): the caller exits the process regardless."""
        self.stopping.set()
        if self.scheduler is not None:
            if self.scheduler.running:
                self.scheduler.shutdown(wait=False)
            self.scheduler = None
        self.clean = self.job_lock.acquire(timeout=grace)
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
            self.http = None
        if self.clean:
            self.job_lock.release()
            with contextlib.suppress(Exception):  # a dead store: the lock died with it
                self.leadership.release()
            self.store.close()
        else:  # the job may hang in the store: exiting closes its connections (and the lock)
            log.warning(
                "a job was still running after %.0fs: left behind (its notifications stay "
                "queued or leased, and are sent later under the same keys)",
                grace,
            )
        self._stop.set()
        return self.clean

    def wait(self) -> None:
        while not self._stop.wait(0.5):
            pass


def _handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self._send_body(body, content_type)

        def _send_body(self, body: bytes, content_type: str) -> None:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _approval(self, method: str) -> bool:
            """An approval link's GET (the form) or POST (the approval); False: not one."""
            from budgetguard.service.approve import APPROVE_CSP, APPROVE_PATH, approve_request

            path, _, query = self.path.partition("?")
            found = APPROVE_PATH.match(path)
            if found is None:
                return False
            # no job lock: the action's claim keeps a tick, a replica and a second click out
            status, page = approve_request(
                method,
                int(found.group(1)),
                query,
                service.settings,
                service.rules,
                service.store,
                service.clock(),
            )
            self.send_response(status)
            self.send_header("Content-Security-Policy", APPROVE_CSP)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-store")
            self._send_body(page.encode(), "text/html; charset=utf-8")
            return True

        def do_POST(self) -> None:
            if not self._approval("POST"):  # the one thing run's port accepts a POST for
                self._send(501, b"unsupported method: the page is read-only\n", "text/plain")

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if self._approval("GET"):
                return
            if path in ("/healthz", "/livez"):
                status, health = service.health() if path == "/healthz" else service.liveness()
                self._send(status, json.dumps(health).encode() + b"\n", "application/json")
            elif path == "/metrics":
                self._send(200, generate_latest(service.metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/status":
                body = json.dumps(service.status, indent=2, default=str).encode()
                self._send(200, body, "application/json")
            elif path in PATHS:
                query = self.path.split("?", 1)[1] if "?" in self.path else ""
                status, html = render(path, query, service.status, service.health())
                self.send_response(status)
                self.send_header("Content-Security-Policy", CSP)
                self.send_header("X-Content-Type-Options", "nosniff")
                self._send_body(html.encode(), "text/html; charset=utf-8")
            else:
                self._send(
                    404, b"not found: try /, /livez, /healthz, /metrics or /status\n", "text/plain"
                )

    return Handler
