"""When each costs day was last read, and whether its figures changed: so settled days heal.

The collector re-reads the last two days of costs on every run; a settled day is never asked
again, so a bad answer (a scale error, a day missing a project) stayed in the store after the
API was fixed. Each costs day read records a digest of its rows and the instant it was read
as of (the collection's end, on the same axis as ``--now``). The last 7 days are read again
once a UTC day; a settled day whose figures changed when read again marks every day that came
in the same answer as it (the same read instant) as changed too; and a changed day, whatever
its age, is read again at the next collection until it reads the same twice. So a bad answer
heals within two collections of the day it is noticed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    PrimaryKeyConstraint,
    String,
    Table,
    and_,
    delete,
    or_,
    select,
)

from budgetguard.store.schema import metadata

__all__ = ["REREAD_DAYS", "cost_reads", "days_due", "record"]

_DAY = 86400
#: Settled days younger than this are re-read once a day.
REREAD_DAYS = 7

cost_reads = Table(
    "bg_cost_reads",
    metadata,
    Column("query_key", String(200), nullable=False),
    Column("day_start", BigInteger, nullable=False),
    Column("read_upto", BigInteger, nullable=False),  # the collection's end when read
    Column("digest", String(64), nullable=False),
    Column("changed", Boolean, nullable=False),  # its figures changed when last read
    PrimaryKeyConstraint("query_key", "day_start", name="pk_cost_reads"),
)


def _digest(rows: Iterable[Mapping[str, Any]]) -> str:
    lines = sorted(json.dumps([str(v) for _, v in sorted(r.items())]) for r in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def record(
    conn: Connection,
    query_key: str,
    start: int,
    end: int,
    rows: Iterable[Mapping[str, Any]],
    read_upto: int,
) -> None:
    """In the caller's transaction: the whole UTC days of ``[start, end)`` were read as of
    ``read_upto`` with ``rows`` (the stored records); note which days changed, and mark the
    days that came in the same answer as a settled day that changed."""
    by_day: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_day.setdefault(int(row["day_start"]), []).append(row)
    first = -(-start // _DAY) * _DAY
    days = range(first, end - end % _DAY, _DAY)  # whole days only: today is still open
    if not days:
        return
    c = cost_reads.c
    mine = and_(c.query_key == query_key, c.day_start >= days[0], c.day_start <= days[-1])
    before = {
        int(d): (str(h), int(u))
        for d, h, u in conn.execute(select(c.day_start, c.digest, c.read_upto).where(mine))
    }
    digests = {day: _digest(by_day.get(day, ())) for day in days}
    changed = {d for d, h in digests.items() if d in before and before[d][0] != h}
    conn.execute(delete(cost_reads).where(mine))
    conn.execute(
        cost_reads.insert(),
        [
            {
                "query_key": query_key,
                "day_start": day,
                "read_upto": read_upto,
                "digest": digests[day],
                "changed": day in changed,
            }
            for day in days
        ],
    )
    settled = read_upto - read_upto % _DAY - _DAY  # yesterday may still change: no evidence
    suspects = {before[d][1] for d in changed if d < settled}
    if suspects:  # the same answer brought the other days: read them again too
        conn.execute(
            cost_reads.update()
            .where(c.query_key == query_key, c.read_upto.in_(sorted(suspects)))
            .where(or_(c.day_start < days[0], c.day_start > days[-1]))
            .values(changed=True)
        )


def days_due(engine: Engine, query_key: str, end: int, settled: int) -> list[int]:
    """The costs days before ``settled`` to read again at a collection ending at ``end``:
    each of the last ``REREAD_DAYS`` days not read yet this UTC day, and every day marked
    changed (any age)."""
    today = end - end % _DAY
    recent = today - REREAD_DAYS * _DAY
    c = cost_reads.c
    query = select(c.day_start, c.read_upto, c.changed).where(
        and_(c.query_key == query_key, c.day_start < settled),
        or_(c.day_start >= recent, c.changed.is_(True)),
    )
    with engine.connect() as conn:
        known = {int(d): (int(r), bool(x)) for d, r, x in conn.execute(query)}
    due = [d for d, (upto, changed) in known.items() if changed or upto < today]
    due += [d for d in range(recent, settled, _DAY) if d not in known]  # never recorded
    return sorted(set(due))
