"""Delivery of the outbox, in small stages: claim -> send with a deadline -> record.

Each notifier is delivered by its own worker, so a slow, hung or rate-limited receiver never
delays another. A worker claims one row at a time (``store/outbox.py``: atomic, leased to an
owner token), sends it in a thread it waits for no longer than the deadline, and records the
outcome. Every failure counts as an attempt — a ``DeliveryError``, a deadline passed, or any
exception a plugin raises — and after ``max_attempts`` the row fails for good. A receiver's
``Retry-After`` becomes the row's next attempt (nothing sleeps on it), and that notifier's
worker stops for this pass: its other rows would only be refused too.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from budgetguard.notify import DeliveryError, Message, Notifier
from budgetguard.notify.messages import message_from_payload
from budgetguard.store.alerts import AlertStore
from budgetguard.store.outbox import OutboxRow, PendingRow, new_owner

__all__ = [
    "DEFAULT_POLICY",
    "Abandoned",
    "DeliveryPolicy",
    "DeliveryReport",
    "deliver",
    "deliver_within",
    "problem_lines",
    "send_with_deadline",
    "send_within",
]

log = logging.getLogger("budgetguard.delivery")
Outcome = Callable[[str, str], None]


@dataclass(frozen=True)
class DeliveryPolicy:
    """How long a send may take, how often and how soon a row is tried again."""

    deadline: float = 30.0  # seconds one send may take
    max_attempts: int = 10
    base_delay: int = 30  # seconds before the second attempt; doubling after
    max_delay: int = 3600
    pass_budget: float = 60.0  # a worker claims no new row after this long
    #: In-run retries (the CLI): until this Unix second, retry after 1, 2, 4, 8 s instead.
    quick_until: int | None = None

    @property
    def lease(self) -> int:
        """A claim's lease: longer than any send may take."""
        return int(self.deadline * 2) + 30

    def next_attempt(self, at: int, attempts: int, retry_after: float | None) -> int:
        wait = math.ceil(retry_after) if retry_after is not None else 0
        step = 1 << min(attempts - 1, 20)
        if self.quick_until is not None:
            quick = at + max(wait, min(8, step))
            if quick <= self.quick_until:
                return quick
        return at + max(wait, min(self.max_delay, self.base_delay * step))


DEFAULT_POLICY = DeliveryPolicy()


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    #: notifier -> the last error it gave
    errors: dict[str, str] = field(default_factory=dict)
    #: notifiers with a notification that failed for good
    gave_up: set[str] = field(default_factory=set)
    #: the rows left pending at the end (``deliver_within`` fills it in)
    pending: list[PendingRow] = field(default_factory=list)

    def add(self, other: DeliveryReport) -> None:
        self.delivered += other.delivered
        self.retrying += other.retrying
        self.failed += other.failed
        self.errors.update(other.errors)
        self.gave_up |= other.gave_up


class Abandoned(Exception):
    """The process is stopping: a send still running is left to its lease (not recorded)."""


def send_with_deadline(
    notifier: Notifier,
    message: Message,
    deadline: float,
    stop: threading.Event | None = None,
    late: Callable[[BaseException | None], None] | None = None,
) -> None:
    """Send ``message`` through ``notifier``; raise ``DeliveryError`` for any failure,
    including no answer within ``deadline`` (the send is then abandoned: its thread is a
    daemon, and an outbox row's lease outlives it), or ``Abandoned`` once ``stop`` is set.
    A send abandoned either way that still ends later tells ``late`` how (None: it got
    through), so a receiver that answered after the deadline is not sent it again."""
    failure: list[BaseException] = []
    lock = threading.Lock()
    waiting = [True]

    def run() -> None:
        outcome: BaseException | None = None
        try:
            notifier.send(message)
        except BaseException as exc:  # every failure is an attempt
            outcome = exc
        with lock:
            if waiting[0]:
                failure.extend([outcome] if outcome is not None else [])
                return
        if late is not None:
            late(outcome)

    def give_up() -> bool:
        """True when the send is still running (now abandoned), False if it just ended."""
        with lock:
            waiting[0] = not worker.is_alive()
            return not waiting[0]

    worker = threading.Thread(target=run, name="send", daemon=True)
    worker.start()
    until = time.monotonic() + deadline
    while worker.is_alive() and time.monotonic() < until:
        if stop is not None and stop.is_set() and give_up():
            raise Abandoned
        worker.join(min(0.1, max(0.0, until - time.monotonic())))
    if worker.is_alive() and give_up():
        # a slow receiver: wait at least as long again before trying it again
        raise DeliveryError(
            f"no answer within {deadline:.0f}s", retryable=True, retry_after=deadline
        )
    worker.join()
    if not failure:
        return
    exc = failure[0]
    if isinstance(exc, DeliveryError):
        raise exc
    raise DeliveryError(f"the notifier raised {type(exc).__name__}", retryable=True) from None


class _Worker:
    """One notifier's share of a delivery pass."""

    def __init__(
        self,
        alerts: AlertStore,
        name: str,
        notifier: Notifier | None,
        at: int,
        policy: DeliveryPolicy,
        stop: threading.Event,
        on_outcome: Outcome | None,
    ) -> None:
        self.outbox = alerts.outbox
        self.name, self.notifier, self.at = name, notifier, at
        self.policy, self.stop, self.on_outcome = policy, stop, on_outcome
        self.owner = new_owner()
        self.report = DeliveryReport()
        self.began = time.monotonic()

    def _now(self) -> int:
        """The pass's clock: its start (which may be a fixed ``--now``) plus time spent."""
        return self.at + int(time.monotonic() - self.began)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if time.monotonic() - self.began > self.policy.pass_budget:
                    return
                now = self._now()
                row = self.outbox.claim(self.name, self.owner, now, self.policy.lease)
                if row is None:
                    return
                if not self._deliver(row):
                    return
        except Exception as exc:  # the store failed: the rows stay leased, then due again
            log.error("delivery to %s stopped: %s", self.name, type(exc).__name__)
            self.report.errors[self.name] = f"store error ({type(exc).__name__})"

    def _deliver(self, row: OutboxRow) -> bool:
        """Send and record one row; False when this notifier should wait (Retry-After)."""
        try:
            if self.notifier is None:
                raise DeliveryError(
                    f"no notifier named '{self.name}' in the rules", retryable=False
                )
            try:
                message = message_from_payload(json.loads(row.payload))
            except Exception:
                raise DeliveryError("the queued payload cannot be read", retryable=False) from None
            send_with_deadline(
                self.notifier, message, self.policy.deadline, self.stop, self._late(row)
            )
        except Abandoned:  # stopping: the row is released, so a restart sends it at once
            self.outbox.release(row, self.owner, self._now())
            return False
        except DeliveryError as exc:
            return self._failed(row, exc, self._now())
        if self.outbox.delivered(row, self.owner, self._now()):
            self._count("delivered")
        return True

    def _late(self, row: OutboxRow) -> Callable[[BaseException | None], None]:
        """What to do when an abandoned send of ``row`` ends after all: if it got through,
        record it delivered (unless another deliverer has claimed it meanwhile)."""

        def ended(failure: BaseException | None) -> None:
            if failure is not None:
                return  # recorded already as the failed attempt it was
            try:
                if self.outbox.delivered_late(row, self._now()):
                    self._count("delivered")
            except Exception as exc:  # the store: the row is sent again, under its key
                log.warning(
                    "a late delivery to %s was not recorded: %s", self.name, type(exc).__name__
                )

        return ended

    def _failed(self, row: OutboxRow, exc: DeliveryError, now: int) -> bool:
        attempts = row.attempts + 1
        self.report.errors[self.name] = str(exc)
        if exc.retryable and attempts < self.policy.max_attempts:
            at = self.policy.next_attempt(now, attempts, exc.retry_after)
            if self.outbox.retry(row, self.owner, at, str(exc)):
                self._count("retrying")
            return exc.retry_after is None
        why = str(exc) if not exc.retryable else f"gave up after {attempts} attempts: {exc}"
        self.report.errors[self.name] = why
        self.report.gave_up.add(self.name)
        if self.outbox.failed(row, self.owner, why):
            self._count("failed")
            log.warning("notification to %s failed for good: %s", self.name, why)
        return True

    def _count(self, outcome: str) -> None:
        setattr(self.report, outcome, getattr(self.report, outcome) + 1)
        if self.on_outcome is not None:
            self.on_outcome(self.name, outcome)


def deliver(
    store: AlertStore,
    notifiers: Mapping[str, Notifier],
    now: datetime,
    on_outcome: Outcome | None = None,
    *,
    policy: DeliveryPolicy = DEFAULT_POLICY,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """One delivery pass: every notifier with due rows gets a worker; returns when all are
    done (each bounded by ``policy.pass_budget`` plus one deadline) or ``stop`` is set.
    ``on_outcome`` hears (notifier, "delivered" | "retrying" | "failed"), for metrics."""
    at = int(now.timestamp())
    stop = stop or threading.Event()
    workers = [
        _Worker(store, name, notifiers.get(name), at, policy, stop, on_outcome)
        for name in store.outbox.due_notifiers(at)
    ]
    threads = [
        threading.Thread(target=w.run, name=f"deliver-{w.name}", daemon=True) for w in workers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = DeliveryReport()
    for worker in workers:
        report.add(worker.report)
    return report


def deliver_within(
    store: AlertStore,
    notifiers: Mapping[str, Notifier],
    now: datetime,
    bound: float,
    on_outcome: Outcome | None = None,
    *,
    policy: DeliveryPolicy = DEFAULT_POLICY,
) -> DeliveryReport:
    """Delivery for a command that ends (``check --notify``, ``digest --send``,
    ``notify-test``): temporary failures are tried again inside the run, after 1, 2, 4, 8 s
    (or a sooner ``Retry-After``), for up to ``bound`` seconds; what still fails then is left
    queued at its normal backoff; ``pending`` lists it."""
    began = time.monotonic()
    at = int(now.timestamp())
    end = at + int(bound)
    # the first pass tries every due row once, whatever the bound (0 is one attempt, not
    # none); later passes only retry within what is left of it
    quick = replace(policy, quick_until=end)
    total = DeliveryReport()
    while True:
        elapsed = time.monotonic() - began
        moment = datetime.fromtimestamp(at + int(elapsed), now.tzinfo)
        total.add(deliver(store, notifiers, moment, on_outcome, policy=quick))
        quick = replace(quick, pass_budget=min(policy.pass_budget, max(0.0, bound - elapsed)))
        pending = store.outbox.pending(notifiers)
        soonest = min((p.next_attempt_at for p in pending), default=None)
        now_at = at + (time.monotonic() - began)
        if soonest is None or soonest > end or now_at >= end:
            break
        time.sleep(min(end - now_at, max(0.2, soonest - now_at)))
    left = {p.notifier for p in pending}
    total.retrying = len(pending)
    total.errors = {n: e for n, e in total.errors.items() if n in left or n in total.gave_up}
    total.pending = pending
    return total


def send_within(
    notifier: Notifier, message: Message, bound: float, policy: DeliveryPolicy = DEFAULT_POLICY
) -> int:
    """Send one message without the outbox (``notify-test``), retrying temporary failures
    after 1, 2, 4, 8 s (or the receiver's ``Retry-After``) for up to ``bound`` seconds.
    Returns the attempts made; raises the last ``DeliveryError`` when it never got through."""
    began = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        try:
            send_with_deadline(notifier, message, policy.deadline)
            return attempts
        except DeliveryError as exc:
            wait = max(exc.retry_after or 0.0, min(8.0, 2.0 ** (attempts - 1)))
            left = bound - (time.monotonic() - began)
            if not exc.retryable or attempts >= policy.max_attempts or wait > left:
                raise
            time.sleep(wait)


def problem_lines(report: DeliveryReport) -> list[str]:
    """One line per notifier that failed: which, why, and when it is tried again."""
    lines = []
    soonest: dict[str, int] = {}
    left: dict[str, int] = {}
    errors = dict(report.errors)
    for row in report.pending:
        soonest.setdefault(row.notifier, row.next_attempt_at)
        left[row.notifier] = left.get(row.notifier, 0) + 1
        errors.setdefault(row.notifier, row.last_error or "not tried yet")
    for name in sorted(errors):
        why = errors[name]
        if name in soonest:
            when = datetime.fromtimestamp(soonest[name], UTC).isoformat().replace("+00:00", "Z")
            lines.append(f"notifier '{name}': {left[name]} queued, next attempt {when}: {why}")
        else:
            lines.append(f"notifier '{name}': failed for good: {why}")
    return lines
