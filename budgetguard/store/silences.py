"""Silences and the notifications they hold back, in the store so every replica sees them.

``bg_silences`` keeps each silence (matchers as JSON, UTC seconds); expiring one sets its end
to now, so the record stays for audits. ``bg_silence_holds`` keeps what a silence held back
and is owed later (alert identity -> key and transition); it is rewritten in the same
transaction as the alert states and the outbox rows (``AlertStore.apply(also=...)``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import BigInteger, Column, Connection, Engine, String, Table, Text, delete, select

from budgetguard.store.reads import SilenceRow, check_silence, silence_row
from budgetguard.store.schema import metadata

__all__ = [
    "SilenceRow",
    "SilenceStore",
    "replace_holds",
    "silence_holds",
    "silences",
]

silences = Table(
    "bg_silences",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("matchers", Text, nullable=False),  # JSON list of [key, glob]
    Column("starts_at", BigInteger, nullable=False),
    Column("ends_at", BigInteger, nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
)

silence_holds = Table(
    "bg_silence_holds",
    metadata,
    Column("identity", String(64), primary_key=True),
    Column("idempotency_key", String(100), nullable=False),
    Column("event", String(10), nullable=False),  # fire | remind | resolve
)


class SilenceStore:
    """Add, list and expire silences; read and rewrite the held notifications."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self,
        matchers: tuple[tuple[str, str], ...],
        starts_at: datetime,
        ends_at: datetime,
        comment: str,
    ) -> str:
        """Store a silence, checked as a read will check it (``ValueError`` says what is
        wrong, and nothing is stored); returns its new id."""
        start, end = int(starts_at.timestamp()), int(ends_at.timestamp())
        check_silence(matchers, start, end, comment)
        silence_id = secrets.token_hex(4)
        with self.engine.begin() as conn:
            conn.execute(
                silences.insert().values(
                    id=silence_id,
                    matchers=json.dumps([list(m) for m in matchers]),
                    starts_at=start,
                    ends_at=end,
                    comment=comment,
                    created_at=start,
                )
            )
        return silence_id

    def all(self, *, active_at: datetime | None = None) -> list[SilenceRow]:
        """Every silence, or those active at ``active_at``, oldest first (a malformed row
        is skipped with a warning)."""
        query = select(
            silences.c.id,
            silences.c.matchers,
            silences.c.starts_at,
            silences.c.ends_at,
            silences.c.comment,
            silences.c.created_at,
        ).order_by(silences.c.created_at, silences.c.id)
        if active_at is not None:
            at = int(active_at.timestamp())
            query = query.where(silences.c.starts_at <= at, silences.c.ends_at > at)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [found for row in rows if (found := silence_row(*row)) is not None]

    def expire(self, silence_id: str, now: datetime) -> bool:
        """End a silence now; False when there is no such silence still running."""
        at = int(now.timestamp())
        with self.engine.begin() as conn:
            done = conn.execute(
                silences.update()
                .where(silences.c.id == silence_id, silences.c.ends_at > at)
                .values(ends_at=at)
            )
            return bool(done.rowcount)

    def holds(self) -> dict[str, tuple[str, str]]:
        """identity -> (key, transition) of every notification a silence held back."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(silence_holds))
            return {str(r.identity): (str(r.idempotency_key), str(r.event)) for r in rows}


def replace_holds(conn: Connection, held: Mapping[str, tuple[str, str]]) -> None:
    """Rewrite the held notifications inside the caller's transaction."""
    conn.execute(delete(silence_holds))
    for identity, (key, event) in held.items():
        conn.execute(
            silence_holds.insert().values(identity=identity, idempotency_key=key, event=event)
        )
