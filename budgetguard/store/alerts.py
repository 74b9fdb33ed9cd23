"""Alert state, written with the notifications it causes.

``apply`` upserts changed alert states and queues the notifications they cause in one
transaction, so a transition is never recorded without its notifications (nor the reverse).
Both writes are upserts, so two processes recording the same transitions at once both
succeed and queue each key once. The outbox itself (claims, leases, outcomes) is
``store/outbox.py``; ``AlertStore.outbox`` is it, on the same engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict

from sqlalchemy import Connection, Engine, select

from budgetguard.store.columns import StoredAlert
from budgetguard.store.dialects import upsert_insert
from budgetguard.store.outbox import Outbox, OutboxRow, insert_rows
from budgetguard.store.schema import alert_state, outbox

__all__ = ["AlertStore", "OutboxRow", "StoredAlert"]


class AlertStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.outbox = Outbox(engine)

    def states(self) -> list[StoredAlert]:
        with self.engine.connect() as conn:
            return [StoredAlert(**row) for row in conn.execute(select(alert_state)).mappings()]

    def notifiers_queued(self, key: str) -> set[str]:
        """The notifiers a notification with ``key`` was queued for."""
        query = select(outbox.c.notifier).where(outbox.c.idempotency_key == key)
        with self.engine.connect() as conn:
            return {str(n) for n in conn.execute(query).scalars()}

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
        with self.engine.begin() as conn:
            if also is not None:
                also(conn)
            insert = upsert_insert(conn)
            for state in states:
                values = asdict(state)
                statement = insert(alert_state).values(**values)
                conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["identity"],
                        set_={k: v for k, v in values.items() if k != "identity"},
                    )
                )
            return insert_rows(conn, notifications, now)

    def counts(self) -> dict[str, int]:
        return self.outbox.counts()

    def messages_between(self, start: int, end: int) -> list[str]:
        return self.outbox.messages_between(start, end)

    def payload_value(self, key: str, field: str) -> object:
        """``field`` of the body queued under ``key`` (any notifier), or None."""
        query = select(outbox.c.payload).where(outbox.c.idempotency_key == key).limit(1)
        with self.engine.connect() as conn:
            payload = conn.execute(query).scalar()
        return None if payload is None else json.loads(payload).get(field)

    def keys(self) -> list[tuple[str, str, str]]:
        return self.outbox.keys()
