"""Whole-query checks of the pages of one query: a query counts only when its buckets are
contiguous, aligned to their width, inside the asked range, none twice, each result of the
endpoint's ``object``, and together cover the range asked (up to the API's current bucket).

The API cuts a usage query at its ends (the reference notes, from OpenAI's cookbook output):
the first bucket may start at ``start_time`` and the last end at the asked ``end_time`` or at
the moment of the request, mid-bucket. Those are whole answers: the cut bucket counts for
what it covers, and coverage stops at the cut. A bucket cut anywhere else (one that another
bucket follows, a page that says ``has_more`` after it), or a cut costs bucket (costs are
whole UTC days at both ends), is malformed.

Missing data must never read as zero spend, so anything else fails the query: the caller
stores nothing of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from budgetguard.providers.openai.endpoints import WIDTH_SECONDS
from budgetguard.providers.openai.errors import PaginationError, ResponseFormatError
from budgetguard.providers.openai.models import Page
from budgetguard.providers.openai.query import Query

__all__ = ["PageCheck", "max_pages"]

_DAY = 86400


def max_pages(query: Query, now: int) -> int:
    """The most pages ``query`` can take: one per bucket up to ``now`` (every page but the
    last must advance by a bucket at least), plus one. More is a server that never ends."""
    width = WIDTH_SECONDS[query.bucket_width]
    end = now + width if query.end_time is None else min(query.end_time, now + width)
    start = query.start_time - query.start_time % width
    buckets = max(1, -(-(end - start) // width))
    return buckets + 1


@dataclass
class PageCheck:
    """Follows the pages of one query; ``check`` each page in order, then ``finish``.

    ``clock`` is the real clock (never ``--now``): the range asked is covered up to the API's
    current bucket, and coverage is never claimed past it.
    """

    query: Query
    clock: Callable[[], float] = time.time
    _next: int = field(init=False)
    _last_end: int | None = field(init=False, default=None)
    _first: int = field(init=False, default=0)
    #: where the query's last bucket was cut (mid-bucket), if it was
    _cut: int | None = field(init=False, default=None)
    #: set by ``finish``: the range the pages cover
    covered: tuple[int, int] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        q = self.query
        first = q.start_time
        if q.endpoint.is_costs:  # costs buckets start at UTC midnight
            first -= first % _DAY
        self._next = first
        self.width = WIDTH_SECONDS[q.bucket_width]

    def _fail(self, what: str) -> ResponseFormatError:
        name = self.query.endpoint.name
        return ResponseFormatError(
            f"{name}: the API returned an incomplete or malformed page ({what}); "
            "nothing of this query was stored",
            endpoint=name,
        )

    def check(self, page: Page) -> None:
        """Raise ``ResponseFormatError`` naming what is wrong with ``page``."""
        expected_object = self.query.endpoint.result_object
        for bucket in page.data:
            for result in bucket.results:
                if result.object != expected_object:
                    raise self._fail(f"a result is {result.object!r}, not {expected_object!r}")
            identities = {_identity(r) for r in bucket.results}
            if len(identities) < len(bucket.results):  # counted twice, it would double spend
                raise self._fail(f"bucket {bucket.start_time} has two results alike")
        self.check_bounds(page.has_more, [(b.start_time, b.end_time) for b in page.data])

    def check_bounds(self, has_more: bool, bounds: Sequence[tuple[int, int]]) -> None:
        """``check`` for a page already parsed to its buckets' ``(start, end)`` (whose
        results were checked against the endpoint's ``object`` while parsing)."""
        q, width = self.query, self.width
        if has_more and not bounds:
            raise PaginationError(
                f"{q.endpoint.name}: a page with no buckets says has_more: its cursor does "
                "not advance",
                endpoint=q.endpoint.name,
            )
        horizon = self.clock() + width
        for start, end in bounds:
            if self._cut is not None:
                raise self._fail(f"bucket {start} follows a bucket cut at {self._cut}")
            if start != self._next:
                if self._last_end is not None and start < self._next:
                    raise self._fail(f"bucket {start} repeats or overlaps an earlier bucket")
                raise self._fail(f"bucket starts at {start}, expected {self._next}")
            boundary = (start // width + 1) * width
            if end != boundary:
                if not self._may_cut(start, end, horizon):
                    raise self._fail(
                        f"bucket [{start}, {end}) is not aligned to its width {q.bucket_width}"
                    )
                self._cut = end
            if q.end_time is not None and start >= q.end_time:
                raise self._fail(f"bucket {start} lies outside the asked range")
            if start > horizon:
                raise self._fail(f"bucket {start} lies in the future")
            if self._last_end is None:
                self._first = start
            self._next, self._last_end = end, end
        if has_more and self._cut is not None:
            raise self._fail(f"a bucket cut at {self._cut} is not the query's last")

    def _may_cut(self, start: int, end: int, horizon: float) -> bool:
        """A usage bucket may end mid-width only at the query's end: at the asked
        ``end_time``, or at the moment of the request (never past our clock's horizon)."""
        q = self.query
        if q.endpoint.is_costs or not start < end:
            return False
        if q.end_time is not None:
            return end == q.end_time or (end < q.end_time and end <= horizon)
        return end <= horizon

    def finish(self) -> tuple[int, int]:
        """The range the query's pages cover, ``[start, end)``, capped at the real clock;
        raises when they stop short of the range asked (or of the API's current bucket)."""
        q = self.query
        now = int(self.clock())
        asked_end = now if q.end_time is None else min(q.end_time, now)
        # the API's current bucket may be missing at its boundary; the one before may not
        due = max(q.start_time, asked_end - asked_end % self.width)
        reached = self._last_end if self._last_end is not None else q.start_time
        if reached < due:
            raise self._fail(
                f"the buckets stop at {reached}, short of {due}"
                if self._last_end is not None
                else "no buckets for the asked range"
            )
        first = q.start_time if self._last_end is None else self._first
        self.covered = (first, min(reached, asked_end))
        return self.covered


def _identity(result: object) -> tuple[object, ...]:
    """What tells two results of one bucket apart: every field but the figures."""
    fields = getattr(result, "model_dump", None)
    values = fields() if fields is not None else {}
    figures = {"amount", "quantity"} | {
        k for k, v in values.items() if isinstance(v, int) and not isinstance(v, bool)
    }
    return tuple(sorted((k, str(v)) for k, v in values.items() if k not in figures))
