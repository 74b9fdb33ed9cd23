"""One GET of the admin API, bounded in time and in size, every exception classified.

Size: httpx inflates a gzip body whole as it arrives, so a small answer that inflates to
gigabytes (a gzip bomb) took a check to 6.4 GB. The client asks only for the encodings it can
inflate in bounded steps (gzip, deflate), reads the raw bytes and inflates them here, never
past the cap, whatever the ratio; a body over the cap is an error, never a truncated page.

Exceptions: whatever the transport, a decoder or an encoder raises becomes a ``Retryable``
(timeouts, connections, a corrupt stream) or an ``AdminAPIError`` naming only its type. None
escapes as it is: an encoding error's repr holds the header it could not encode, the key in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from budgetguard.providers.openai.errors import (
    AdminAPIError,
    ResponseFormatError,
    UnavailableError,
)

__all__ = [
    "ACCEPT_ENCODING",
    "MAX_BODY",
    "Answer",
    "BodyTooLarge",
    "Retryable",
    "UnknownEncoding",
    "api_message",
    "classified",
    "get_once",
    "read_capped",
    "stream_capped",
]

#: The largest body read (decompressed and on the wire): a page of the largest answer the
#: API gives (180 cost days by line item, 1,440 minute buckets by model) is a few MB.
MAX_BODY = 64 * 1024 * 1024
#: JSON pages compress 10-50x; past this ratio (and a few MB) a body is a compression bomb,
#: refused at once rather than inflated up to the cap by every concurrent query.
MAX_RATIO = 200
_RATIO_FLOOR = 4 * 1024 * 1024
ACCEPT_ENCODING = "gzip, deflate"
_STEP = 1 << 20


class BodyTooLarge(Exception):
    """The body is larger than the cap (on the wire or inflated), or inflates like a bomb."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _too_large(cap: int) -> BodyTooLarge:
    return BodyTooLarge(f"is larger than {cap // 2**20} MB (on the wire or decompressed)")


class UnknownEncoding(Exception):
    """A ``Content-Encoding`` that was not asked for."""


class Retryable(Exception):
    """A temporary failure of one request: the caller retries it within its budget."""

    def __init__(self, reason: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status


@dataclass(frozen=True)
class Answer:
    """What one GET answered: the status and the body (read within the cap)."""

    status: int
    content: bytes
    retry_after: str | None
    reason: str


def _inflater(encoding: str) -> Any:
    """A decompressor for ``encoding`` (None: identity)."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if name == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip header, auto-detected
    raise UnknownEncoding(name)


async def read_capped(raw: AsyncIterator[bytes], encoding: str, cap: int = MAX_BODY) -> bytes:
    """The body of ``raw`` (the undecoded chunks), inflated per ``encoding``; raises
    ``BodyTooLarge`` past ``cap`` bytes on the wire or inflated, or inflating like a bomb
    (``zlib.error`` for a corrupt stream, ``UnknownEncoding`` for an encoding it cannot
    inflate)."""
    inflate = _inflater(encoding)
    wire = 0
    out = bytearray()
    async for chunk in raw:
        wire += len(chunk)
        if wire > cap:
            raise _too_large(cap)
        if inflate is None:
            out += chunk
            continue
        data = chunk
        while True:  # inflate in bounded steps: a bomb never gets past the cap
            piece = inflate.decompress(data, _STEP)
            out += piece
            if len(out) > cap:
                raise _too_large(cap)
            if len(out) > _RATIO_FLOOR and len(out) > MAX_RATIO * wire:
                raise BodyTooLarge(f"inflates more than {MAX_RATIO}x: a compression bomb")
            data = inflate.unconsumed_tail
            if not data and len(piece) < _STEP:
                break
    if inflate is not None:
        out += inflate.flush()
        if len(out) > cap:
            raise _too_large(cap)
    return bytes(out)


async def stream_capped(
    raw: AsyncIterator[bytes], encoding: str, feed: Callable[[bytes], None]
) -> None:
    """``raw`` inflated per ``encoding`` into ``feed`` in pieces of at most 1 MB, never
    held whole: the consumer bounds what it keeps. A body inflating like a bomb is refused
    as ``read_capped`` refuses it."""
    inflate = _inflater(encoding)
    wire = inflated = 0
    async for chunk in raw:
        wire += len(chunk)
        if inflate is None:
            feed(chunk)
            continue
        data = chunk
        while True:
            piece = inflate.decompress(data, _STEP)
            inflated += len(piece)
            if inflated > _RATIO_FLOOR and inflated > MAX_RATIO * wire:
                raise BodyTooLarge(f"inflates more than {MAX_RATIO}x: a compression bomb")
            feed(piece)
            data = inflate.unconsumed_tail
            if not data and len(piece) < _STEP:
                break
    if inflate is not None:
        feed(inflate.flush())


async def _get(
    http: httpx.AsyncClient,
    path: str,
    params: Any,
    headers: dict[str, str],
    cap: int,
    feed: Callable[[bytes], None] | None = None,
) -> Answer:
    async with http.stream("GET", path, params=params, headers=headers) as response:
        streamed = feed is not None and response.status_code == 200
        if response.is_stream_consumed:  # built whole (a test's transport): already read
            content = response.content
            if streamed and feed is not None:
                feed(content)
                content = b""
            elif len(content) > cap:
                raise _too_large(cap)
        elif streamed and feed is not None:
            encoding = response.headers.get("Content-Encoding", "")
            await stream_capped(response.aiter_raw(), encoding, feed)
            content = b""
        else:
            encoding = response.headers.get("Content-Encoding", "")
            content = await read_capped(response.aiter_raw(), encoding, cap)
        return Answer(
            response.status_code,
            content,
            response.headers.get("Retry-After"),
            response.reason_phrase,
        )


async def get_once(
    http: httpx.AsyncClient,
    path: str,
    params: Any,
    headers: dict[str, str],
    name: str,
    deadline: float,
    cap: int = MAX_BODY,
    feed: Callable[[bytes], None] | None = None,
) -> Answer:
    """One GET, connect to last byte within ``deadline`` seconds (httpx's timeouts are per
    read: a body trickled a byte at a time would never time out without it), its body
    within ``cap``, or a 200's body handed to ``feed`` as it arrives (never held: the
    answer's content is then empty; what ``feed`` raises as ``AdminAPIError`` or
    ``Retryable`` goes through). Temporary failures raise ``Retryable``, the rest
    ``AdminAPIError``."""
    try:
        async with asyncio.timeout(deadline):
            return await _get(http, path, params, headers, cap, feed)
    except (AdminAPIError, Retryable):
        raise
    except (httpx.TimeoutException, TimeoutError):
        raise Retryable(f"no whole answer within {deadline:g}s") from None
    except httpx.TransportError as exc:
        raise Retryable(f"connection failed: {type(exc).__name__}") from None
    except zlib.error:
        raise Retryable("a compressed body that does not decompress") from None
    except BodyTooLarge as exc:
        raise ResponseFormatError(f"{name}: the answer {exc.why}; refused", endpoint=name) from None
    except UnknownEncoding:
        raise ResponseFormatError(
            f"{name}: the answer uses a content encoding that was not asked for", endpoint=name
        ) from None
    except Exception as exc:  # never str() or repr(): it may quote the request's headers
        raise UnavailableError(
            f"{name}: the request failed ({type(exc).__name__})", endpoint=name
        ) from None


def api_message(content: bytes) -> str:
    """The API's own error message from an error body, on one line (the caller scrubs it)."""
    try:
        message = str(json.loads(content)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = content[:300].decode("utf-8", "replace")
    return " ".join(message.split())[:300]


@contextlib.contextmanager
def classified(name: str) -> Iterator[None]:
    """Any exception of reading a page as a ``ResponseFormatError`` naming only its type (a
    parser's own message may quote the body)."""
    try:
        yield
    except AdminAPIError:
        raise
    except Exception as exc:
        raise ResponseFormatError(
            f"{name}: the response could not be read ({type(exc).__name__})", endpoint=name
        ) from None
