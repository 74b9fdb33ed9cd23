"""The store's per-day usage blocks in SQL: replacing a range's, and building them from the
row table of a store older than version 7 (the encoding is ``store.blocks``)."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, and_, delete, func, inspect, literal, select

from budgetguard.store.blocks import (
    ROLLUP_DIMENSIONS,
    RollupBlock,
    encode_arrays,
    encode_day,
    merge,
    rows_of,
)
from budgetguard.store.schema import USAGE_METRICS, usage_buckets, usage_rollups

__all__ = [
    "ROLLUP_DIMENSIONS",
    "RollupBlock",
    "encode_arrays",
    "encode_day",
    "merge",
    "rebuild_all",
    "refresh",
    "replace",
    "rows_of",
]

_DAY = 86400
_FAR = 2**62
#: Rows are re-read this many days at a time when blocks are rebuilt (bounds memory).
_READ_DAYS = 7
#: Blocks are inserted this many at a time.
_INSERT_BATCH = 8


def replace(
    conn: Connection,
    query_key: str,
    endpoint: str,
    width: int,
    start: int,
    end: int,
    blocks: Mapping[int, RollupBlock | dict[str, Any]],
) -> None:
    """Make the stored blocks of the days ``[start, end)`` touches hold ``blocks``' rows for
    that range; a day it covers only in part keeps its rows outside the range. Rows of
    ``blocks`` outside the range (a bucket the clock had only just reached) are not stored:
    nothing covers them. A block may be given as its record (``encode_arrays``): a day the
    range covers whole is then stored as it is, never decoded, and records are inserted a
    few at a time (a backfill's days are not all re-encoded and held at once)."""
    first = start - start % _DAY
    last = -(-end // _DAY) * _DAY
    table = usage_rollups.c
    in_days = and_(table.query_key == query_key, table.day_start >= first, table.day_start < last)
    edges = {d for d in (first, last - _DAY) if d < start or d + _DAY > end}
    kept = {
        block.day_start: block
        for block in (
            RollupBlock.from_record(r)
            for r in conn.execute(
                select(table.day_start, table.row_count, table.groups, table.layout, table.data)
                .where(in_days)
                .where(table.day_start.in_(sorted(edges)))
            )
        )
    }
    conn.execute(delete(usage_rollups).where(in_days))
    records: list[dict[str, Any]] = []
    for day in sorted(set(blocks) | set(kept)):
        if not first <= day < last:
            continue
        given = blocks.get(day)
        if isinstance(given, dict) and day not in edges and day not in kept:
            record: dict[str, Any] | None = given if given["row_count"] else None
        else:
            new = RollupBlock.of(given) if isinstance(given, dict) else given
            if new is not None and day in edges:
                new = _inside(day, new, start, end)
            record = merge(day, kept.get(day), start, end, new)
        if record is not None:
            records.append(
                {"query_key": query_key, "endpoint": endpoint, "bucket_width": width, **record}
            )
        if len(records) >= _INSERT_BATCH:
            conn.execute(usage_rollups.insert(), records)
            records = []
    if records:
        conn.execute(usage_rollups.insert(), records)


def _inside(day: int, block: RollupBlock, start: int, end: int) -> RollupBlock | None:
    """``block`` without its rows outside ``[start, end)``."""
    record = merge(day, block, end, _FAR, None)
    if record is not None:
        record = merge(day, RollupBlock.of(record), -_FAR, start, None)
    return None if record is None else RollupBlock.of(record)


def refresh(
    conn: Connection, query_key: str, endpoint: str, width: int, start: int, end: int
) -> None:
    """Rewrite the blocks of every UTC day that ``[start, end)`` touches from the rows of a
    store older than version 7 (which kept a row table)."""
    first = start - start % _DAY
    last = -(-end // _DAY) * _DAY
    rollups = usage_rollups.c
    conn.execute(
        delete(usage_rollups).where(
            and_(
                rollups.query_key == query_key, rollups.day_start >= first, rollups.day_start < last
            )
        )
    )
    table = usage_buckets.c
    # an old store may lack the newer metric columns (added by a later step): 0 there
    have = {c["name"] for c in inspect(conn).get_columns(usage_buckets.name)}
    wanted: tuple[Any, ...] = (table.bucket_start, *(table[d] for d in ROLLUP_DIMENSIONS))
    wanted += tuple(table[m] if m in have else literal(0) for m in USAGE_METRICS)
    for lo in range(first, last, _READ_DAYS * _DAY):
        hi = min(last, lo + _READ_DAYS * _DAY)
        rows = conn.execute(
            select(*wanted)
            .where(
                table.query_key == query_key,
                table.bucket_width == width,
                table.bucket_start >= lo,
                table.bucket_start < hi,
            )
            .order_by(table.bucket_start)
        ).all()
        records = [
            {
                "query_key": query_key,
                "endpoint": endpoint,
                "bucket_width": width,
                **encode_day(day, list(day_rows)),
            }
            for day, day_rows in groupby(rows, key=lambda r: r[0] - r[0] % _DAY)
        ]
        if records:
            conn.execute(usage_rollups.insert(), records)


def rebuild_all(conn: Connection) -> None:
    """Blocks for every query's rows (the migration that adds them to an older store)."""
    table = usage_buckets.c
    found = conn.execute(
        select(
            table.query_key,
            table.endpoint,
            table.bucket_width,
            func.min(table.bucket_start),
            func.max(table.bucket_start),
        ).group_by(table.query_key, table.endpoint, table.bucket_width)
    ).all()
    for key, endpoint, width, lo, hi in found:
        refresh(conn, key, endpoint, width, lo, hi + 1)
