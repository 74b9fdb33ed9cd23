"""Coverage: which intervals of time each query's stored data holds.

A sync mark alone (first and last instant covered) cannot tell a gap between two collections
from data: a store filled on Nov 10 and again from Nov 21 would look whole from Nov 10 on. So
each query keeps disjoint intervals, merged as collections add them, and never past the real
clock (a ``--now`` in the future must not mark the future as collected).
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, Engine, delete, select

from budgetguard.store.schema import coverage_intervals as coverage
from budgetguard.store.schema import sync_marks
from budgetguard.store.spans import Interval, cut_out, holes, merge

__all__ = ["Interval", "add", "holes", "intervals", "load_all", "merge", "seed_from_marks"]


def intervals(conn: Connection, query_key: str) -> list[Interval]:
    rows = conn.execute(
        select(coverage.c.start, coverage.c.end)
        .where(coverage.c.query_key == query_key)
        .order_by(coverage.c.start)
    )
    return [(int(a), int(b)) for a, b in rows]


def load_all(engine: Engine) -> dict[str, list[Interval]]:
    """Every query's intervals, by query key."""
    found: dict[str, list[Interval]] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(coverage.c.query_key, coverage.c.start, coverage.c.end).order_by(
                coverage.c.query_key, coverage.c.start
            )
        )
        for key, a, b in rows:
            found.setdefault(key, []).append((int(a), int(b)))
    return found


def add(
    conn: Connection,
    query_key: str,
    start: int,
    end: int,
    clock: float | None = None,
    *,
    width: int | None = None,
) -> list[Interval]:
    """Record ``[start, end)`` as held (capped at the real clock); returns the new intervals.
    Runs in the caller's transaction, beside the rows it covers. With the bucket ``width``
    of usage: a range that ends inside a bucket replaced that bucket by the API's cut one,
    so the rest of the bucket is no longer held, whatever an earlier collection covered
    (the next collection reads the bucket again, whole)."""
    end = min(end, int(time.time() if clock is None else clock))
    spans = merge([*intervals(conn, query_key), (start, end)])
    if width is not None and end % width:
        spans = cut_out(spans, end, end - end % width + width)
    conn.execute(delete(coverage).where(coverage.c.query_key == query_key))
    if spans:
        conn.execute(
            coverage.insert(), [{"query_key": query_key, "start": a, "end": b} for a, b in spans]
        )
    return spans


def seed_from_marks(conn: Connection, clock: float | None = None) -> None:
    """Migration to schema 3: each sync mark's span becomes one interval, capped at the clock
    (a mark moved into the future by an old ``--now`` is pulled back to now)."""
    now = int(time.time() if clock is None else clock)
    marks = conn.execute(
        select(sync_marks.c.query_key, sync_marks.c.covered_start, sync_marks.c.covered_end)
    ).all()
    for key, start, end in marks:
        if start is None or end is None:
            continue
        if end > now:
            conn.execute(
                sync_marks.update().where(sync_marks.c.query_key == key).values(covered_end=now)
            )
        add(conn, key, int(start), int(end), now)
