"""A page's ``data`` elements, split off a body as it streams in (numpy, no parse).

A usage page's ``limit`` counts buckets, not results: at 12,000 groups one hourly page of
168 buckets is ~700 MB of JSON, and holding it (then its decoded results) made the
collector's memory grow with the organisation. The splitter finds where each element of the
page's ``data`` array ends as bytes arrive, so each bucket can be decoded and dropped while
the rest is still on the wire; what lies outside ``data`` (``object``, ``has_more``,
``next_page``) is kept as the page's *envelope*, with ``data`` emptied, for a small decode.

It reads structure only: quotes (minus escaped ones), brackets, braces and commas, found
with one table lookup per byte and handled sparsely, with the string/escape/depth state
carried from chunk to chunk. Whether an element is well-formed JSON is for its decoder to
say; a body that ends inside a value is ``Incomplete``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["BucketSplitter", "Incomplete", "Oversized"]

_QUOTE, _BACKSLASH, _OPEN, _CLOSE, _COMMA = 1, 2, 3, 4, 5
_DATA_KEY = re.compile(rb'"data"\s*:\s*\[\Z')


class Incomplete(ValueError):
    """The body ended inside a value (a truncated or garbled body: retried)."""


class Oversized(ValueError):
    """One element, or what lies outside ``data``, is larger than the cap."""


def _classes() -> np.ndarray:
    import numpy as np

    table = np.zeros(256, dtype=np.uint8)
    table[ord('"')] = _QUOTE
    table[ord("\\")] = _BACKSLASH
    table[[ord("{"), ord("[")]] = _OPEN
    table[[ord("}"), ord("]")]] = _CLOSE
    table[ord(",")] = _COMMA
    return table


class BucketSplitter:
    """``feed`` chunks of a page's body; each call returns the ``data`` elements it
    completed (bytes, in order); ``finish`` returns the envelope (the page with ``data``
    emptied). ``cap`` bounds what is held at once: one element, or the envelope."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._table = _classes()
        self._buf = bytearray()  # bytes not yet emitted: from the current element's start
        self._envelope = bytearray()
        self._in_string = False
        self._backslashes = 0  # the run of backslashes that ended the last chunk
        self._depth = 0
        self._in_data = False
        self._element = 0  # where the current element starts in ``_buf``
        self._elements = 0  # emitted so far
        self._done = False

    def feed(self, chunk: bytes) -> list[bytes]:
        import numpy as np

        if not chunk:
            return []
        base = len(self._buf)
        self._buf += chunk
        view = np.frombuffer(chunk, dtype=np.uint8)
        classes = self._table[view]
        where = np.flatnonzero(classes)
        kinds = classes[where]
        out: list[bytes] = []
        if len(where):
            quotes = kinds == _QUOTE
            if self._backslashes or (kinds == _BACKSLASH).any():
                quotes &= ~self._escaped(view, where)
            # a structural character is outside every string when the quotes before it are
            # even (counting the string this chunk began inside)
            outside = (np.cumsum(quotes) + self._in_string) % 2 == 0
            structural = outside & (kinds >= _OPEN)
            delta = np.where(kinds == _OPEN, 1, np.where(kinds == _CLOSE, -1, 0))[structural]
            places = where[structural]
            kinds_s = kinds[structural]
            after = self._depth + np.cumsum(delta)
            before = after - delta
            # the few events that matter: containers of the page's own keys opening and
            # closing, and commas between the elements of one of them
            events = np.flatnonzero(
                ((kinds_s == _OPEN) & (before <= 1))
                | ((kinds_s == _CLOSE) & (after <= 1))
                | ((kinds_s == _COMMA) & (before == 2))
            )
            for e in events.tolist():
                self._event(int(kinds_s[e]), base + int(places[e]), int(before[e]), out)
            if len(after):
                self._depth = int(after[-1])
            self._in_string = bool((int(np.count_nonzero(quotes)) + self._in_string) % 2)
        self._backslashes = self._trailing_backslashes(chunk)
        if not self._in_data:  # nothing pending: it all belongs to the envelope
            self._envelope += self._buf[self._element :]
            self._buf.clear()
            self._element = 0
            if len(self._envelope) > self.cap:
                raise Oversized("the page outside its data")
        else:
            if self._element:
                del self._buf[: self._element]
                self._element = 0
            if len(self._buf) > self.cap:
                raise Oversized("one bucket")
        return out

    def _event(self, kind: int, at: int, before: int, out: list[bytes]) -> None:
        if self._done:
            raise Incomplete("bytes after the page's end")
        if kind == _OPEN:
            if before == 1 and not self._in_data:
                head = self._envelope + self._buf[self._element : at + 1]
                if _DATA_KEY.search(head[-64:]):
                    self._envelope = head
                    self._in_data = True
                    self._element = at + 1
            return
        if kind == _COMMA:
            if self._in_data:
                out.append(self._take(at))
                self._elements += 1
            return
        # a close: of the data array (to depth 1), or of the page (to depth 0)
        if before == 2 and self._in_data:
            element = self._take(at)
            if element or self._elements:  # ``[]`` has none; ``[a,]`` ends in an empty one
                out.append(element)
                self._elements += 1
            self._in_data = False
            self._element = at
        elif before == 1:
            self._done = True

    def _take(self, at: int) -> bytes:
        element = bytes(self._buf[self._element : at]).strip()
        self._element = at + 1
        return element

    def _escaped(self, view: np.ndarray, where: np.ndarray) -> np.ndarray:
        """Per structural position, whether an odd run of backslashes precedes it (the
        run may reach back into the previous chunk)."""
        import numpy as np

        is_bs = view == ord("\\")
        index = np.arange(len(view))
        last_other = np.maximum.accumulate(np.where(is_bs, -1, index))
        # backslashes immediately before position p: p - 1 - last_other[p - 1]
        prev = np.concatenate(([-1], last_other[:-1]))
        run = index - 1 - prev
        run = np.where(prev == -1, index + self._backslashes, run)
        escaped: np.ndarray = (run[where] % 2) == 1
        return escaped

    def _trailing_backslashes(self, chunk: bytes) -> int:
        stripped = len(chunk) - len(chunk.rstrip(b"\\"))
        if stripped == len(chunk):
            return self._backslashes + stripped
        return stripped

    def finish(self) -> bytes:
        """The envelope: the page as sent with ``data`` emptied (``Incomplete`` when the
        body ended inside a value)."""
        if self._in_data or self._in_string or self._depth != 0 or not self._done:
            raise Incomplete("the body ends inside a value")
        return bytes(self._envelope + self._buf)
