"""Interval arithmetic of coverage (``[start, end)`` in Unix seconds), without SQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["Interval", "cut_out", "holes", "merge"]

Interval = tuple[int, int]


def merge(spans: Iterable[Interval]) -> list[Interval]:
    """Sorted, disjoint intervals; overlapping or touching ones joined, empty ones dropped."""
    out: list[Interval] = []
    for lo, hi in sorted(s for s in spans if s[1] > s[0]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def holes(spans: Sequence[Interval], start: int, end: int) -> list[Interval]:
    """The parts of ``[start, end)`` that ``spans`` (sorted, disjoint) do not cover."""
    missing: list[Interval] = []
    at = start
    for lo, hi in spans:
        if hi <= at:
            continue
        if lo >= end:
            break
        if lo > at:
            missing.append((at, min(lo, end)))
        at = max(at, hi)
        if at >= end:
            break
    if at < end:
        missing.append((at, end))
    return missing


def cut_out(spans: list[Interval], lo: int, hi: int) -> list[Interval]:
    """``spans`` without ``[lo, hi)``."""
    out: list[Interval] = []
    for a, b in spans:
        out += [(x, y) for x, y in ((a, min(b, lo)), (max(a, hi), b)) if x < y]
    return out
