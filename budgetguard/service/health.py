"""What the service's ``/livez`` and ``/healthz`` answer, from what its jobs recorded.

``/livez`` is for a liveness probe: the process and its scheduler are alive, no job has
been stuck for longer than any job may take, and worker processes can start and load their
jobs (``BROKEN_WORKERS_FATAL`` in a row that cannot is a broken deployment: a restart may
cure it — memory, file descriptors, a half-upgraded install — and a restart loop is what
orchestrators page on). An OpenAI outage never restarts the guard.
``/healthz`` is for readiness and for alerting on the guard itself: it is 200 only when the
guard can be trusted right now (the last tick succeeded, no query has failed for longer than
``max_staleness``, no budget is ``unknown``, and the rules on disk loaded at the last reload),
else 503 with every reason.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from budgetguard.rules import Rules
from budgetguard.rules.needs import endpoints_of
from budgetguard.store import SyncMark

if TYPE_CHECKING:
    from budgetguard.evaluate.evaluator import Finding

__all__ = [
    "BROKEN_WORKERS_FATAL",
    "FIXED_NOW_GRACE",
    "JOB_STUCK_AFTER",
    "HealthState",
    "Staleness",
    "failing_queries",
    "max_staleness",
    "unknown_budgets",
]

#: How far a fixed ``now`` may lag the clock before ``/healthz`` says the guard looks at
#: the past (seconds).
FIXED_NOW_GRACE = 300.0
#: A job running longer than this is stuck (collect's deadline is 120 s, a delivery pass's
#: about 90 s): the liveness probe fails and the orchestrator restarts the process.
JOB_STUCK_AFTER = 900.0
#: This many jobs in a row whose worker could not start or load its job fail ``/livez``.
BROKEN_WORKERS_FATAL = 3


@dataclass(frozen=True)
class Staleness:
    """How long each endpoint's queries may fail: the shortest ``max_staleness`` of the
    budgets that read the endpoint; ``other`` for the rest (queries every budget's costs
    split relies on: the shortest of all)."""

    by_endpoint: Mapping[str, timedelta]
    other: timedelta

    def of(self, endpoint: str) -> timedelta:
        return self.by_endpoint.get(endpoint, self.other)


def max_staleness(rules: Rules) -> Staleness:
    """Each endpoint's limit, from the enabled budgets (6h when there are none)."""
    budgets = [b for b in rules.budgets if b.enabled]
    by_endpoint: dict[str, timedelta] = {}
    for budget in budgets:
        for endpoint in endpoints_of(budget):
            limit = budget.staleness_delta
            by_endpoint[endpoint] = min(by_endpoint.get(endpoint, limit), limit)
    other = min((b.staleness_delta for b in budgets), default=timedelta(hours=6))
    return Staleness(by_endpoint, other)


def failing_queries(marks: list[SyncMark], now: int, limits: Staleness) -> list[str]:
    """The queries whose last attempt failed and that have not succeeded for as long as
    their endpoint's budgets allow."""
    out = []
    for mark in marks:
        if not mark.failed:
            continue
        since = mark.last_success_at
        limit = limits.of(mark.endpoint)
        if since is None or now - since > limit.total_seconds():
            hours = "never" if since is None else f"for {(now - since) / 3600:.1f}h"
            out.append(
                f"query {mark.query_key} failing, no success {hours} (max_staleness "
                f"{limit.total_seconds() / 3600:g}h): {mark.last_error}"
            )
    return out


def unknown_budgets(findings: list[Finding]) -> list[str]:
    from budgetguard.evaluate.evaluator import group_label  # the jobs' side: loaded there

    out = []
    for f in findings:
        if f.severity == "unknown":
            label = f.budget.name + (f" [{group_label(f.group)}]" if f.group else "")
            out.append(f"budget {label} is unknown: {f.note or 'no data'}")
    return out


@dataclass
class HealthState:
    """What the jobs record for the endpoints (written by one job at a time)."""

    interval: float
    started: float = field(default_factory=time.time)
    last_success: float | None = None
    last_error: str | None = None
    reload_error: str | None = None
    problems: list[str] = field(default_factory=list)  # of the last successful tick
    job_started: float | None = None  # monotonic start of the job running now
    #: a fixed ``BUDGETGUARD_NOW``/``--now`` (Unix seconds): every tick evaluates that instant
    fixed_now: float | None = None
    job_errors: dict[str, str] = field(default_factory=dict)  # digest, retry: last failure
    broken_workers: int = 0  # jobs in a row whose worker could not start or load its job
    broken_reason: str | None = None  # the last of them, why

    def ready(self, now: float | None = None) -> tuple[int, dict[str, object]]:
        now = time.time() if now is None else now
        reasons: list[str] = []
        if self.reload_error is not None:
            reasons.append(
                f"the rules on disk did not load at the last reload: {self.reload_error}"
            )
        if self.last_error is not None:
            reasons.append(self.last_error)
        if self.fixed_now is not None and now - self.fixed_now > FIXED_NOW_GRACE:
            at = datetime.fromtimestamp(self.fixed_now, UTC).isoformat().replace("+00:00", "Z")
            reasons.append(
                f"BUDGETGUARD_NOW (or --now) fixes the time at {at}, "
                f"{(now - self.fixed_now) / 86400:.1f} days before the clock: every tick "
                "evaluates that past instant, not now (unset it to guard the present)"
            )
        reasons += [e for e in self.job_errors.values() if e != self.last_error]
        if self.last_success is None:
            if self.last_error is None:
                reasons.append("starting: the first tick has not finished")
        else:
            age = now - self.last_success
            if age > 2 * self.interval + 60:
                reasons.append(
                    f"last successful tick {age:.0f}s ago (interval {self.interval:.0f}s)"
                )
            reasons += self.problems
        body: dict[str, object] = {"status": "unhealthy" if reasons else "ok", "reasons": reasons}
        return (503 if reasons else 200), body

    def alive(self, scheduler_alive: bool) -> tuple[int, dict[str, object]]:
        reasons = [] if scheduler_alive else ["the scheduler is not running"]
        if self.broken_workers >= BROKEN_WORKERS_FATAL:
            reasons.append(
                f"the worker processes of {self.broken_workers} jobs in a row could not "
                f"start or load their job; the last: {self.broken_reason}"
            )
        if self.job_started is not None:
            running = time.monotonic() - self.job_started
            if running > JOB_STUCK_AFTER:
                reasons.append(f"a job has been running for {running:.0f}s: stuck")
        body: dict[str, object] = {"status": "dead" if reasons else "alive", "reasons": reasons}
        return (503 if reasons else 200), body
