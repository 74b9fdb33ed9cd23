"""Buckets x an interval: which buckets of a series count for ``[start, end)``, and how much
of each bucket that straddles a bound.

A bucket counts whole when all of its data lies inside the interval. One that straddles a
bound counts the part inside: from a finer series of the same endpoint where the store holds
one that agrees with it (minutes under an hour, hours under a day), else in proportion to
time (``Piece.by_time``: the note says so). A minute is the API's finest bucket: one that a
bound cuts is split by time, and that is no approximation worth a note. A bucket's data
ends where it was fetched, so the current bucket counts whole up to now, and in a replay the
bucket open at the instant replayed counts the part before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from budgetguard.rules.needs import GAUGES

if TYPE_CHECKING:
    from budgetguard.evaluate.data import SpendData, _Series

__all__ = ["Piece", "pieces"]

_MINUTE = 60


@dataclass(frozen=True)
class Piece:
    """The buckets of ``series`` starting in ``[lo, hi)``, counted whole (``share`` None), or
    one bucket of which ``share`` lies inside the interval."""

    series: _Series
    lo: int
    hi: int
    share: Decimal | None = None
    #: the share is by time in a bucket coarser than a minute (no finer data held it)
    by_time: bool = False

    def scale(self, amount: Decimal) -> Decimal:
        return amount if self.share is None else amount * self.share


def pieces(data: SpendData, endpoint: str, start: int, end: int) -> list[Piece]:
    """The pieces of ``endpoint``'s finest stored data that make up ``[start, end)``."""
    out: list[Piece] = []
    for series, lo, hi in data.usage_parts(endpoint, start, end):
        out.extend(_cut(data, endpoint, series, lo, hi))
    return out


def _cut(data: SpendData, endpoint: str, series: _Series, lo: int, hi: int) -> Iterator[Piece]:
    if lo >= hi:
        return
    width = series.query.width_seconds
    gauge = endpoint in GAUGES
    fetched = series.covered[1] if series.covered is not None else hi
    first, last = lo - lo % width, (hi - 1) - (hi - 1) % width
    whole_lo, whole_hi = first, last + width
    for bucket in dict.fromkeys((first, last)):
        inside_lo, inside_hi = max(bucket, lo), min(bucket + width, hi)
        # a bucket holds its data up to its fetch; a gauge's level is billed by time
        extent = min(bucket + width, fetched) if bucket < fetched and not gauge else bucket + width
        if inside_lo <= bucket and inside_hi >= extent:
            continue  # all of the bucket's data is inside
        if bucket == first:
            whole_lo = first + width
        if bucket == last:
            whole_hi = last
        finer = data.finer(endpoint, series, bucket, inside_lo, inside_hi)
        if finer is not None:
            yield from _cut(data, endpoint, finer, inside_lo, inside_hi)
            continue
        part = min(inside_hi, extent) - inside_lo
        if part > 0:
            share = Decimal(part) / Decimal(extent - bucket)
            # a gauge (bytes stored) accrues by time: its share by time is exact
            yield Piece(series, bucket, bucket + width, share, width > _MINUTE and not gauge)
    if whole_lo < whole_hi:
        yield Piece(series, whole_lo, whole_hi)
