"""Per-day columnar blocks of usage rows: the store's usage, as evaluation reads it.

Reading a million usage rows through a database driver costs seconds and hundreds of MB of
Python tuples, yet evaluation needs only the dimensions budgets match and split by, the bucket
start and the metrics that are not all zero. So each (query, UTC day) keeps one block: the
day's distinct groups as JSON and, per row, the group's index, the bucket's offset in the day
and every nonzero metric, as little-endian integer arrays compressed with zlib (about 1/40 of
the rows they replace). Since schema version 7 the blocks are the only copy of usage: the
collector encodes the rows of each page as they arrive, and a re-read part of a day is merged
into that day's block array by array (``merge``), never from re-read rows.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from budgetguard.store.columns import USAGE_DIMENSIONS, USAGE_METRICS

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "ROLLUP_DIMENSIONS",
    "RollupBlock",
    "encode_arrays",
    "encode_day",
    "merge",
    "rows_of",
]

ROLLUP_DIMENSIONS = USAGE_DIMENSIONS[: USAGE_DIMENSIONS.index("size") + 1]
_BATCH = ROLLUP_DIMENSIONS.index("batch")
_DAY = 86400
#: typecode -> the numpy dtype of its values in a block (always little-endian).
_DTYPES = {"H": "<u2", "i": "<i4", "q": "<i8"}


def _narrowest(values: np.ndarray) -> str:
    """The smallest typecode that holds every value exactly."""
    low, high = (int(values.min()), int(values.max())) if len(values) else (0, 0)
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

    def dtypes(self) -> dict[str, np.dtype[Any]]:
        """Each stored metric's type (little-endian, the narrowest that holds it)."""
        import numpy as np

        return {name: np.dtype(_DTYPES[code]) for name, code in self.layout["metrics"]}

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
    def of(cls, record: dict[str, Any]) -> RollupBlock:
        """The block of a record as ``encode_day`` and ``merge`` make it."""
        return cls(
            record["day_start"],
            record["row_count"],
            [tuple(g) for g in json.loads(record["groups"])],
            json.loads(record["layout"]),
            record["data"],
        )

    @classmethod
    def from_record(
        cls, record: Any, seen: dict[str, list[tuple[Any, ...]]] | None = None
    ) -> RollupBlock:
        """The block of a stored row; blocks read together share ``seen`` so that days with
        the same groups (the usual case) parse them once and share one list."""
        groups = None if seen is None else seen.get(record.groups)
        if groups is None:
            groups = [tuple(g) for g in json.loads(record.groups)]
            if seen is not None:
                seen.clear()  # the previous day's only: bounded
                seen[record.groups] = groups
        return cls(
            record.day_start,
            record.row_count,
            groups,
            json.loads(record.layout),
            bytes(record.data),
        )


def encode_arrays(
    day_start: int,
    groups: Sequence[tuple[Any, ...]],
    gid: np.ndarray,
    starts: np.ndarray,
    metrics: dict[str, np.ndarray],
) -> dict[str, Any]:
    """The block record of one day's rows, given as arrays (rows by bucket start); groups
    no row names are dropped."""
    import numpy as np

    used, gid = np.unique(gid, return_inverse=True)
    if len(used) < len(groups):
        groups = [groups[i] for i in used.tolist()]
    offsets = starts.astype(np.int64) - day_start
    unit = 60 if not np.any(offsets % 60) else 1
    if unit != 1:
        offsets //= unit
    layout: dict[str, Any] = {"gid": _narrowest(gid), "at": _narrowest(offsets), "unit": unit}
    parts = [_bytes(layout["gid"], gid), _bytes(layout["at"], offsets)]
    layout["metrics"] = []
    for name in USAGE_METRICS:
        values = metrics.get(name)
        if values is not None and np.any(values):
            code = _narrowest(values)
            layout["metrics"].append([name, code])
            parts.append(_bytes(code, values))
    return {
        "day_start": day_start,
        "row_count": len(gid),
        "groups": json.dumps([list(g) for g in groups], separators=(",", ":")),
        "layout": json.dumps(layout, separators=(",", ":")),
        "data": zlib.compress(b"".join(parts), 1),
    }


def _bytes(code: str, values: np.ndarray) -> bytes:
    return bytes(values.astype(_DTYPES[code], copy=False).tobytes())


def encode_day(day_start: int, rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """The block record of one day's rows: ``(bucket_start, *ROLLUP_DIMENSIONS,
    *USAGE_METRICS)`` each, by bucket start (a metric may be None: 0)."""
    import numpy as np

    columns = list(zip(*rows, strict=True))
    n_dims = len(ROLLUP_DIMENSIONS)
    dims = columns[1 : 1 + n_dims]
    dims[_BATCH] = tuple(None if b is None else bool(b) for b in dims[_BATCH])
    index: dict[tuple[Any, ...], int] = {}
    gids = [index.setdefault(g, len(index)) for g in zip(*dims, strict=True)]
    metrics = {
        name: np.array([v or 0 for v in values], dtype=np.int64)
        for name, values in zip(USAGE_METRICS, columns[1 + n_dims :], strict=True)
        if any(values)
    }
    return encode_arrays(
        day_start,
        list(index),
        np.array(gids, dtype=np.int64),
        np.array(columns[0], dtype=np.int64),
        metrics,
    )


def merge(
    day_start: int, old: RollupBlock | None, lo: int, hi: int, new: RollupBlock | None
) -> dict[str, Any] | None:
    """The record of day ``day_start`` whose buckets in ``[lo, hi)`` are replaced by ``new``'s
    rows: ``old``'s other rows and ``new``'s, by bucket start; None when no row is left.

    Array work only (the rows in hand were encoded once): a tick that re-reads two hours
    never decodes a day into Python rows."""
    import numpy as np

    parts: list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []
    index: dict[tuple[Any, ...], int] = {}
    for block, drop in ((old, (lo, hi)), (new, None)):
        if block is None or not block.row_count:
            continue
        gid, starts, metrics = block.arrays()
        remap = np.array([index.setdefault(g, len(index)) for g in block.groups], dtype=np.int64)
        if drop is not None:
            keep = (starts < drop[0]) | (starts >= drop[1])
            gid, starts = gid[keep], starts[keep]
            metrics = {m: v[keep] for m, v in metrics.items()}
        parts.append((remap[gid], starts, metrics))
    if not parts or not sum(len(p[1]) for p in parts):
        return None
    gid = np.concatenate([p[0] for p in parts])
    starts = np.concatenate([p[1] for p in parts])
    names = {m for p in parts for m in p[2]}
    metrics = {
        m: np.concatenate([p[2][m] if m in p[2] else np.zeros(len(p[1]), np.int64) for p in parts])
        for m in names
    }
    order = np.argsort(starts, kind="stable")
    return encode_arrays(
        day_start,
        list(index),
        gid[order],
        starts[order],
        {m: v[order] for m, v in metrics.items()},
    )


def rows_of(
    block: RollupBlock, columns: Sequence[str], start: int | None, end: int | None
) -> list[tuple[Any, ...]]:
    """The block's rows in ``[start, end)`` as tuples of ``columns`` (``bucket_start``, block
    dimensions and metrics; an absent metric is 0)."""
    import numpy as np

    gid, starts, metrics = block.arrays()
    keep = np.ones(len(starts), dtype=bool)
    if start is not None:
        keep &= starts >= start
    if end is not None:
        keep &= starts < end
    order = np.flatnonzero(keep)[np.argsort(starts[keep], kind="stable")]
    dims = {d: i for i, d in enumerate(ROLLUP_DIMENSIONS)}
    zero = [0] * len(order)
    picks: list[Sequence[Any]] = []
    for name in columns:
        if name == "bucket_start":
            picks.append(starts[order].tolist())
        elif name in dims:
            at = dims[name]
            picks.append([block.groups[g][at] for g in gid[order].tolist()])
        else:
            picks.append(metrics[name][order].tolist() if name in metrics else zero)
    return list(zip(*picks, strict=True))
