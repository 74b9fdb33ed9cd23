"""The notification outbox: queue keyed rows, claim them atomically, record the outcome.

A claim takes one due row of one notifier and leases it to an owner token: the row's next
attempt moves past the lease, and only the owner may record its outcome. On PostgreSQL the
claim is ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``; on SQLite the same
statement inside ``BEGIN IMMEDIATE`` (the write lock taken before reading). Either way two
deliverers — two replicas, or ``run`` and a cron ``check --notify`` — never both win a row.
Rows are claimed one at a time, and a send is bounded by its deadline, so a lease (longer
than the deadline) never runs out while its owner is still sending; one that does run out
(the owner died) lets the next deliverer send again, under the same idempotency key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, and_, func, select, update

from budgetguard.store.dialects import upsert_insert
from budgetguard.store.schema import outbox

__all__ = ["Outbox", "OutboxRow", "PendingRow", "RecentRow", "insert_rows", "new_owner"]


@dataclass(frozen=True)
class OutboxRow:
    id: int
    idempotency_key: str
    notifier: str
    payload: str
    attempts: int


@dataclass(frozen=True)
class PendingRow:
    """A row still to deliver, as the CLI reports it."""

    notifier: str
    attempts: int
    next_attempt_at: int
    last_error: str | None


@dataclass(frozen=True)
class RecentRow:
    """A notification as the status page's timeline shows it."""

    idempotency_key: str
    notifier: str
    payload: str
    status: str
    attempts: int
    created_at: int
    delivered_at: int | None
    next_attempt_at: int
    last_error: str | None


def new_owner() -> str:
    """An owner token: unique per deliverer (process and pass)."""
    return uuid.uuid4().hex


def insert_rows(conn: Connection, rows: Iterable[tuple[str, str, str]], now: int) -> int:
    """Queue ``(key, notifier, payload)`` rows in ``conn``'s transaction; a key already
    queued for that notifier is skipped, also when another process queues it concurrently.
    Returns how many were new."""
    queued = 0
    for key, notifier, payload in rows:
        statement = (
            upsert_insert(conn)(outbox)
            .values(
                idempotency_key=key,
                notifier=notifier,
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key", "notifier"])
            .returning(outbox.c.id)  # a row back when it was new (PostgreSQL's rowcount: -1)
        )
        queued += len(conn.execute(statement).all())
    return queued


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def queue(self, rows: Iterable[tuple[str, str, str]], now: int) -> int:
        with self.engine.begin() as conn:
            return insert_rows(conn, rows, now)

    def due_notifiers(self, now: int) -> list[str]:
        """The notifiers with a row due now (each is then delivered on its own)."""
        query = (
            select(outbox.c.notifier)
            .where(and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now))
            .distinct()
        )
        with self.engine.connect() as conn:
            return sorted(str(r[0]) for r in conn.execute(query))

    def claim(self, notifier: str, owner: str, now: int, lease: int) -> OutboxRow | None:
        """Lease the oldest due row of ``notifier`` to ``owner`` until ``now + lease``."""
        due = (
            select(outbox.c.id)
            .where(
                and_(
                    outbox.c.status == "pending",
                    outbox.c.notifier == notifier,
                    outbox.c.next_attempt_at <= now,
                )
            )
            .order_by(outbox.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        statement = (
            update(outbox)
            .where(outbox.c.id.in_(due.scalar_subquery()))
            .values(claimed_by=owner, next_attempt_at=now + lease)
            .returning(
                outbox.c.id,
                outbox.c.idempotency_key,
                outbox.c.notifier,
                outbox.c.payload,
                outbox.c.attempts,
            )
        )
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            found = conn.execute(statement).mappings().first()
            row = None if found is None else OutboxRow(**found)
            conn.commit()
            return row

    def delivered(self, row: OutboxRow, owner: str, now: int) -> bool:
        return self._record(
            row,
            owner,
            status="delivered",
            attempts=row.attempts + 1,
            delivered_at=now,
            last_error=None,
        )

    def retry(self, row: OutboxRow, owner: str, at: int, error: str) -> bool:
        return self._record(
            row, owner, attempts=row.attempts + 1, next_attempt_at=at, last_error=error
        )

    def failed(self, row: OutboxRow, owner: str, error: str) -> bool:
        return self._record(
            row, owner, status="failed", attempts=row.attempts + 1, last_error=error
        )

    def release(self, row: OutboxRow, owner: str, now: int) -> bool:
        """Give a claimed row back unsent (a clean stop): due at once, no attempt counted."""
        return self._record(row, owner, next_attempt_at=now)

    def delivered_late(self, row: OutboxRow, now: int) -> bool:
        """A send abandoned at its deadline got through after all: delivered, unless another
        deliverer has claimed the row since (its own outcome then counts)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(outbox)
                .where(
                    and_(
                        outbox.c.id == row.id,
                        outbox.c.status == "pending",
                        outbox.c.claimed_by.is_(None),
                    )
                )
                .values(status="delivered", delivered_at=now, last_error=None)
            )
            return bool(done.rowcount)

    def _record(self, row: OutboxRow, owner: str, **values: object) -> bool:
        """Record an outcome if ``owner`` still holds the lease (False: it had run out and
        another deliverer took the row; its outcome is the one that counts)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(outbox)
                .where(and_(outbox.c.id == row.id, outbox.c.claimed_by == owner))
                .values(claimed_by=None, **values)
            )
            return bool(done.rowcount)

    def pending(self, notifiers: Iterable[str]) -> list[PendingRow]:
        """The rows still pending for ``notifiers``, soonest first."""
        query = (
            select(
                outbox.c.notifier,
                outbox.c.attempts,
                outbox.c.next_attempt_at,
                outbox.c.last_error,
            )
            .where(and_(outbox.c.status == "pending", outbox.c.notifier.in_(list(notifiers))))
            .order_by(outbox.c.next_attempt_at)
        )
        with self.engine.connect() as conn:
            return [PendingRow(**r) for r in conn.execute(query).mappings()]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
            return {status: int(n) for status, n in rows}

    def messages_between(self, start: int, end: int) -> list[str]:
        """The one-line messages of the alerts queued in ``[start, end)``, once per key."""
        query = (
            select(outbox.c.idempotency_key, outbox.c.payload)
            .where(and_(outbox.c.created_at >= start, outbox.c.created_at < end))
            .order_by(outbox.c.id)
        )
        seen: dict[str, str] = {}
        with self.engine.connect() as conn:
            for key, payload in conn.execute(query):
                body = json.loads(payload)
                if key not in seen and body.get("type") == "budgetguard.alert":
                    seen[key] = str(body.get("message") or key)
        return list(seen.values())

    def recent(self, since: int, limit: int = 500) -> list[RecentRow]:
        """The newest ``limit`` notifications queued since ``since``, oldest first."""
        query = (
            select(*(outbox.c[name] for name in RecentRow.__dataclass_fields__))
            .where(outbox.c.created_at >= since)
            .order_by(outbox.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [RecentRow(**r) for r in conn.execute(query).mappings()][::-1]

    def keys(self) -> list[tuple[str, str, str]]:
        """(key, notifier, status) of every notification, for tests and audits."""
        query = select(outbox.c.idempotency_key, outbox.c.notifier, outbox.c.status)
        with self.engine.connect() as conn:
            return [(r[0], r[1], r[2]) for r in conn.execute(query.order_by(outbox.c.id))]
