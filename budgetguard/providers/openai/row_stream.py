"""A usage page read as it streams in: a few buckets at a time into the caller's sink.

The splitter hands over each bucket of ``data`` as its bytes complete; buckets are gathered
up to about ``batch`` bytes and read by ``rows.parse_rows`` (the same readers, the same
checks, the same messages, bucket indexes counted from the page's start) into a ``RowPage``
that goes straight to the caller's sink and is dropped. So what a page holds at once is one
batch, whatever its number of buckets or groups. The paging fields are read last, from the
envelope (the page with ``data`` emptied), by a small msgspec struct: no parse of the whole
page to read ``has_more``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import msgspec

from budgetguard.providers.openai.errors import ResponseFormatError
from budgetguard.providers.openai.rows import RowPage, parse_rows, read_dicts
from budgetguard.providers.openai.splitter import BucketSplitter

__all__ = [
    "BATCH_BYTES",
    "Envelope",
    "RowSink",
    "RowStream",
    "StreamedPage",
    "Unparsed",
    "envelope",
]

#: Buckets are read this many bytes at a time (about 12,000 results).
BATCH_BYTES = 4 * 1024 * 1024


class RowSink(Protocol):
    """Where a streamed page's rows go, a batch at a time, in order."""

    def add(self, rows: RowPage) -> None: ...


class Envelope(msgspec.Struct, gc=False):
    """A page's paging fields (``data`` checked to be a list, not read)."""

    object: Literal["page"]
    has_more: bool
    data: list[Any] = msgspec.field(default_factory=list)
    next_page: str | None = None


_ENVELOPE = msgspec.json.Decoder(Envelope)


def envelope(name: str, body: bytes) -> Envelope:
    """``body``'s paging fields; ``ResponseFormatError`` when it is not a page (a body that
    is not JSON raises ``ValueError``, which callers retry)."""
    try:
        return _ENVELOPE.decode(body)
    except msgspec.ValidationError as exc:
        raise ResponseFormatError(
            f"{name}: the response is not a page of the API: {exc}", endpoint=name
        ) from None
    except msgspec.DecodeError:
        pass
    page = json.loads(body)  # JSON only ``json`` reads (NaN, a BOM); else its error, retried
    has_more, cursor = page.get("has_more"), page.get("next_page")
    if (
        page.get("object") != "page"
        or type(has_more) is not bool
        or not (cursor is None or isinstance(cursor, str))
        or not isinstance(page.get("data", []), list)
    ):
        raise ResponseFormatError(
            f"{name}: the response is not a page of the API: object, data, has_more or "
            "next_page missing or of the wrong type",
            endpoint=name,
        )
    return Envelope("page", has_more, [], cursor)


@dataclass(frozen=True)
class StreamedPage:
    """What a streamed page said besides its rows (which go to the sink)."""

    has_more: bool
    next_page: str | None


class Unparsed:
    """The bytes of buckets read but not yet parsed that a client may hold, across all its
    queries: while they fit, a page is only split as it arrives and parsed once its
    request has been answered, so the next page's request leaves first (parsing is off the
    critical path, as when pages were read whole); past them, buckets are parsed as they
    arrive (memory stays bounded whatever the pages' sizes and the queries in flight)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> bool:
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give(self, size: int) -> None:
        self.held -= size


class RowStream:
    """``feed`` a usage page's body as it arrives; ``finish`` when it has all arrived."""

    def __init__(
        self,
        name: str,
        expected_object: str,
        dims: Sequence[str],
        metrics: Sequence[str],
        sink: RowSink,
        cap: int,
        batch: int = BATCH_BYTES,
        unparsed: Unparsed | None = None,
    ) -> None:
        self.name, self.expected_object = name, expected_object
        self.dims, self.metrics = tuple(dims), tuple(metrics)
        self.sink = sink
        self.batch = batch
        self._splitter = BucketSplitter(cap)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._first = 0  # the page index of the first pending bucket
        #: each bucket's (start, end), in order, as far as the page is parsed (``drain``)
        self.bounds: list[tuple[int, int]] = []
        self._unparsed = unparsed
        #: batches split off but left unparsed (``Unparsed``): (body, buckets, first)
        self._later: list[tuple[bytes, int, int]] = []

    def feed(self, chunk: bytes) -> None:
        for element in self._splitter.feed(chunk):
            self._pending.append(element)
            self._pending_bytes += len(element)
            if self._pending_bytes >= self.batch:
                self._read()

    def _read(self) -> None:
        if not self._pending:
            return
        body = b'{"object":"page","data":[' + b",".join(self._pending) + b"]}"
        count = len(self._pending)
        self._pending, self._pending_bytes = [], 0
        first, self._first = self._first, self._first + count
        if self._unparsed is not None and self._unparsed.take(len(body)):
            self._later.append((body, count, first))
            return
        self.drain()  # in order: what was left for later first
        self._parse(body, first)

    def _parse(self, body: bytes, first: int) -> None:
        rows = parse_rows(self.name, self.expected_object, body, self.dims, self.metrics, first)
        self.bounds += rows.bounds
        self.sink.add(rows)

    def drain(self) -> None:
        """Parse what was left for later, in order (raises as ``parse_rows`` does)."""
        try:
            while self._later:
                body, _, first = self._later[0]
                self._parse(body, first)
                self._later.pop(0)
                if self._unparsed is not None:
                    self._unparsed.give(len(body))
        finally:
            self.discard()

    def discard(self) -> None:
        """Drop what was left unparsed (a failed attempt, a query given up)."""
        for body, _, _ in self._later:
            if self._unparsed is not None:
                self._unparsed.give(len(body))
        self._later.clear()

    def finish(self) -> StreamedPage:
        """The page's paging fields once its body has arrived (its rows may be left for
        ``drain``); raises as ``parse_rows`` does, and ``splitter.Incomplete`` for a body
        that ended inside a value."""
        raw = self._splitter.finish()
        head = envelope_or_fault(self.name, self.expected_object, raw, self.dims, self.metrics)
        self._read()
        return StreamedPage(head.has_more, head.next_page)


def envelope_or_fault(
    name: str, expected_object: str, raw: bytes, dims: Sequence[str], metrics: Sequence[str]
) -> Envelope:
    """The envelope's paging fields, or the fault the dict reader names in it (``object``
    not a page, ``data`` not a list), as it would for the whole page."""
    try:
        return envelope(name, raw)
    except ResponseFormatError:
        read_dicts(name, expected_object, raw, dims, metrics)
        raise
