"""Per-day columnar blocks of usage rows: what evaluation reads instead of the rows.

Reading a million usage rows through a database driver costs seconds and hundreds of MB of
Python tuples, yet evaluation needs only the dimensions budgets match and split by, the bucket
start and the metrics that are not all zero. So each (query, UTC day) also keeps one block:
the day's distinct groups as JSON and, per row, the group's index, the bucket's offset in the
day and every nonzero metric, as little-endian integer arrays compressed with zlib. A block is
rewritten in the same transaction as the rows it sums up, so the two never disagree.

Encoding needs only the standard library (the collector stays light); decoding hands numpy
arrays to the evaluator.
"""

from __future__ import annotations

import json
import sys
import zlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, func, select

from budgetguard.store.schema import (
    USAGE_DIMENSIONS,
    USAGE_METRICS,
    usage_buckets,
    usage_rollups,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ROLLUP_DIMENSIONS", "RollupBlock", "encode_day", "rebuild_all", "refresh"]

#: The dimensions a block keeps per group, in this order (the ones budgets use).
ROLLUP_DIMENSIONS = USAGE_DIMENSIONS[: USAGE_DIMENSIONS.index("size") + 1]
_BATCH = ROLLUP_DIMENSIONS.index("batch")
_DAY = 86400
#: Rows are re-read this many days at a time when blocks are rebuilt (bounds memory).
_READ_DAYS = 7
_LITTLE = sys.byteorder == "little"


#: array typecode -> the numpy dtype of its bytes in a block (always little-endian).
_DTYPES = {"H": "<u2", "i": "<i4", "q": "<i8"}
assert all(array(code).itemsize == int(dtype[-1]) for code, dtype in _DTYPES.items())


def _narrowest(values: Sequence[int]) -> str:
    """The smallest typecode that holds every value exactly."""
    low, high = min(values, default=0), max(values, default=0)
    if low >= 0 and high < 2**16:
        return "H"
    return "i" if low >= -(2**31) and high < 2**31 else "q"


@dataclass(frozen=True, slots=True)
class RollupBlock:
    """One (query, day) block as stored; ``arrays`` decodes it."""

    day_start: int
    row_count: int
    groups: list[tuple[Any, ...]]
    layout: dict[str, Any]
    data: bytes

    @property
    def metrics(self) -> list[str]:
        return [name for name, _ in self.layout["metrics"]]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Per row: the index into ``groups``, the bucket start (int64), and each nonzero
        metric (in the narrowest type that holds it)."""
        import numpy as np

        raw = zlib.decompress(self.data)
        n, offset = self.row_count, 0

        def take(code: str) -> np.ndarray:
            nonlocal offset
            out = np.frombuffer(raw, dtype=_DTYPES[code], count=n, offset=offset)
            offset += out.nbytes
            return out

        gid = take(self.layout["gid"])
        starts = take(self.layout["at"]).astype(np.int64) * self.layout["unit"] + self.day_start
        metrics = {name: take(code) for name, code in self.layout["metrics"]}
        return gid, starts, metrics

    @classmethod
    def from_record(cls, record: Any) -> RollupBlock:
        return cls(
            record.day_start,
            record.row_count,
            [tuple(g) for g in json.loads(record.groups)],
            json.loads(record.layout),
            bytes(record.data),
        )


def _bytes(code: str, values: Sequence[int]) -> bytes:
    packed = array(code, values)
    if not _LITTLE:
        packed.byteswap()
    return packed.tobytes()


def encode_day(day_start: int, rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """The block record of one day's rows: ``(bucket_start, *ROLLUP_DIMENSIONS,
    *USAGE_METRICS)`` each."""
    columns = list(zip(*rows, strict=True))
    n_dims = len(ROLLUP_DIMENSIONS)
    dims = columns[1 : 1 + n_dims]
    dims[_BATCH] = tuple(None if b is None else bool(b) for b in dims[_BATCH])
    index: dict[tuple[Any, ...], int] = {}
    gids = [index.setdefault(g, len(index)) for g in zip(*dims, strict=True)]
    offsets = [s - day_start for s in columns[0]]
    unit = 60 if all(o % 60 == 0 for o in offsets) else 1
    if unit != 1:
        offsets = [o // unit for o in offsets]
    layout: dict[str, Any] = {"gid": _narrowest(gids), "at": _narrowest(offsets), "unit": unit}
    parts = [_bytes(layout["gid"], gids), _bytes(layout["at"], offsets)]
    layout["metrics"] = []
    for name, values in zip(USAGE_METRICS, columns[1 + n_dims :], strict=True):
        if any(values):
            plain = [v or 0 for v in values]
            code = _narrowest(plain)
            layout["metrics"].append([name, code])
            parts.append(_bytes(code, plain))
    return {
        "day_start": day_start,
        "row_count": len(rows),
        "groups": json.dumps([list(g) for g in index], separators=(",", ":")),
        "layout": json.dumps(layout, separators=(",", ":")),
        "data": zlib.compress(b"".join(parts), 1),
    }


def refresh(
    conn: Connection, query_key: str, endpoint: str, width: int, start: int, end: int
) -> None:
    """Rewrite the blocks of every UTC day that ``[start, end)`` touches from the rows."""
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
    wanted = (table.bucket_start, *(table[d] for d in ROLLUP_DIMENSIONS))
    wanted += tuple(table[m] for m in USAGE_METRICS)
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
