"""Alert state and the notification outbox in the store.

``apply`` writes changed alert states and the notifications they cause in one transaction,
so a transition is never recorded without its notifications (nor the reverse). Delivery later
claims pending rows; a crash in between leaves them pending, to be sent with the same key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, and_, func, select, update

from budgetguard.store.schema import alert_state, outbox

__all__ = ["AlertStore", "OutboxRow", "StoredAlert"]


@dataclass(frozen=True)
class StoredAlert:
    identity: str
    budget: str
    group_json: str
    kind: str
    threshold: str
    state: str
    period_key: str | None
    since: int | None
    last_sent_at: int | None
    episode: int


@dataclass(frozen=True)
class OutboxRow:
    id: int
    idempotency_key: str
    notifier: str
    payload: str
    attempts: int


class AlertStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def states(self) -> list[StoredAlert]:
        with self.engine.connect() as conn:
            return [StoredAlert(**row) for row in conn.execute(select(alert_state)).mappings()]

    def apply(
        self,
        states: Iterable[StoredAlert],
        notifications: Iterable[tuple[str, str, str]],
        now: int,
        also: Callable[[Connection], None] | None = None,
    ) -> int:
        """Upsert ``states`` and queue ``(key, notifier, payload)`` rows; one transaction
        (with ``also``, e.g. the silences' held notifications). Returns how many
        notifications were queued (a key already queued is skipped)."""
        queued = 0
        with self.engine.begin() as conn:
            if also is not None:
                also(conn)
            for state in states:
                values = {k: v for k, v in state.__dict__.items() if k != "identity"}
                done = conn.execute(
                    update(alert_state)
                    .where(alert_state.c.identity == state.identity)
                    .values(**values)
                )
                if done.rowcount == 0:
                    conn.execute(alert_state.insert().values(**state.__dict__))
            for key, notifier, payload in notifications:
                exists = conn.execute(
                    select(outbox.c.id).where(
                        and_(outbox.c.idempotency_key == key, outbox.c.notifier == notifier)
                    )
                ).first()
                if exists is not None:
                    continue
                conn.execute(
                    outbox.insert().values(
                        idempotency_key=key,
                        notifier=notifier,
                        payload=payload,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
                queued += 1
        return queued

    def due(self, now: int, limit: int = 100, lease: int = 300) -> list[OutboxRow]:
        """Claim pending notifications whose time has come, oldest first.

        Claimed rows are leased: their next attempt moves ``lease`` seconds ahead in the same
        transaction, and on PostgreSQL the rows are locked with ``FOR UPDATE SKIP LOCKED`` —
        so two deliverers (two replicas, or ``run`` and ``check --notify``) never take the same
        row. A deliverer that dies mid-send leaves the row to be retried after the lease, with
        the same idempotency key."""
        query = (
            select(
                outbox.c.id,
                outbox.c.idempotency_key,
                outbox.c.notifier,
                outbox.c.payload,
                outbox.c.attempts,
            )
            .where(and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now))
            .order_by(outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as conn:
            rows = [OutboxRow(**row) for row in conn.execute(query).mappings()]
            if rows:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_([r.id for r in rows]))
                    .values(next_attempt_at=now + lease)
                )
            return rows

    def delivered(self, row_id: int, now: int) -> None:
        self._set(row_id, status="delivered", delivered_at=now, last_error=None)

    def retry(self, row_id: int, attempts: int, at: int, error: str) -> None:
        self._set(row_id, attempts=attempts, next_attempt_at=at, last_error=error)

    def failed(self, row_id: int, attempts: int, error: str) -> None:
        self._set(row_id, status="failed", attempts=attempts, last_error=error)

    def _set(self, row_id: int, **values: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(outbox).where(outbox.c.id == row_id).values(**values))

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

    def payload_value(self, key: str, field: str) -> object:
        """``field`` of the body queued under ``key`` (any notifier), or None."""
        query = select(outbox.c.payload).where(outbox.c.idempotency_key == key).limit(1)
        with self.engine.connect() as conn:
            payload = conn.execute(query).scalar()
        return None if payload is None else json.loads(payload).get(field)

    def keys(self) -> list[tuple[str, str, str]]:
        """(key, notifier, status) of every notification, for tests and audits."""
        query = select(outbox.c.idempotency_key, outbox.c.notifier, outbox.c.status)
        with self.engine.connect() as conn:
            return [(r[0], r[1], r[2]) for r in conn.execute(query.order_by(outbox.c.id))]
