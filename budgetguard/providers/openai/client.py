"""Async client of the OpenAI admin usage and costs API.

One pooled ``httpx.AsyncClient`` serves every query, so the collector can run endpoint queries
concurrently while each query pages sequentially (the cursor of page n+1 comes from page n).
Transient failures (429, 5xx, timeouts, connection errors, a garbled body) are retried with
jittered exponential backoff that honours ``Retry-After``, within a bounded number of attempts
and a total deadline. The admin key is held as a ``SecretStr`` and scrubbed from every message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Sequence,
)
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr, ValidationError

from budgetguard.header_safe import header_problem
from budgetguard.providers.openai.errors import (
    AdminAPIError,
    AuthError,
    BadRequestError,
    PaginationError,
    ResponseFormatError,
    UnavailableError,
)
from budgetguard.providers.openai.models import Bucket, Page
from budgetguard.providers.openai.pages import PageCheck, max_pages
from budgetguard.providers.openai.query import Query
from budgetguard.providers.openai.request import (
    ACCEPT_ENCODING,
    MAX_BODY,
    Answer,
    Retryable,
    api_message,
    classified,
    get_once,
)
from budgetguard.providers.openai.retry import RetryPolicy, parse_retry_after
from budgetguard.providers.openai.row_stream import RowSink, RowStream, Unparsed, envelope
from budgetguard.providers.openai.splitter import Oversized

__all__ = ["AUTH_HELP", "AdminClient", "ClientStats"]

log = logging.getLogger("budgetguard.providers.openai")

AUTH_HELP = (
    "the OpenAI usage API needs an organization admin key (sk-admin-...) with the "
    "api.usage.read scope; project keys (sk-proj-...) cannot read usage. Create one at "
    "https://platform.openai.com/settings/organization/admin-keys and set OPENAI_ADMIN_KEY"
)

_RETRY_STATUSES = frozenset({408, 409, 425, 429})
#: Bytes of pages read but not yet parsed a client may hold (``row_stream.Unparsed``).
UNPARSED_BYTES = 64 * 1024 * 1024
_T = TypeVar("_T")
_S = TypeVar("_S", bound=RowSink)


@dataclass
class ClientStats:
    """Counters of what the client did, for summaries and benchmarks."""

    requests: int = 0
    retries: int = 0
    pages: int = 0
    buckets: int = 0


@dataclass(frozen=True)
class _Raw:
    body: bytes
    has_more: bool
    next_page: str | None
    #: a streamed page (``row_pages``): its reader (rows parsed or left for ``drain``),
    #: and the sink its rows go to
    streamed: tuple[RowStream, Any] | None = None


#: what ``row_pages`` streams a page into: a fresh sink per attempt, and its reader
_Streaming = tuple[Callable[[], Any], Callable[[Any], RowStream]]


class AdminClient:
    """Reads usage and costs; use as ``async with AdminClient(key) as client``."""

    def __init__(
        self,
        api_key: SecretStr | str | None,
        base_url: str = "https://api.openai.com/v1",
        *,
        timeout: float = 30.0,
        request_deadline: float = 60.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 24,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        max_body: int = MAX_BODY,
    ) -> None:
        if api_key is None or not (
            api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        ):
            raise AuthError(f"no admin key: {AUTH_HELP}")
        self._key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        #: what makes the key unsendable (a pasted NBSP, curly quotes), said without it
        self._key_problem = header_problem(self._key.get_secret_value())
        self.max_body = max_body
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.stats = ClientStats()
        #: the last transient failure per endpoint, to say why a query did not finish in time
        self.last_failure: dict[str, str] = {}
        self._sleep = sleep
        self._rng = rng or random.Random()
        #: connect to last byte of one request: httpx's timeouts are per read, so a body
        #: trickled a byte at a time would never time out without it
        self.request_deadline = request_deadline
        self.clock = clock
        #: bytes of streamed pages split but not yet parsed, across all queries
        self._unparsed = Unparsed(UNPARSED_BYTES)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            headers={
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,  # what read_capped inflates, bounded
                "User-Agent": "budgetguard",
            },
        )

    def __repr__(self) -> str:
        return f"AdminClient(base_url={self.base_url!r}, api_key=SecretStr('**********'))"

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- public API -------------------------------------------------------------------------

    async def pages(self, query: Query, check: PageCheck | None = None) -> AsyncIterator[Page]:
        """Every page of ``query``, following ``next_page`` until ``has_more`` is false.

        Each page is checked (``PageCheck``) before it is yielded, and the last one against
        the whole range; after the last page, ``check.covered`` is the range they cover.

        Pipelined: a reader task sends the request for page n+1 as soon as page n's cursor is
        read, and page n is parsed here meanwhile, so parsing stays off the critical path.
        """
        check = check or PageCheck(query, self.clock)
        async with contextlib.aclosing(self._raw_pages(query)) as raws:
            async for raw in raws:
                with classified(query.endpoint.name):
                    page = self._parse_page(query, raw)
                    check.check(page)
                    self._checked(check, raw, len(page.data))
                yield page

    async def row_pages(
        self,
        query: Query,
        check: PageCheck,
        dims: Sequence[str],
        metrics: Sequence[str],
        sink: Callable[[], _S],
    ) -> AsyncIterator[_S]:
        """``pages`` of a usage query as columns, streamed: each page's body is read as it
        arrives (``row_stream``), a few buckets at a time, into a fresh ``sink()`` (a new
        one for each attempt: a retried page never adds its rows twice), yielded once the
        page is whole and checked. No model per result, the same checks; memory is a batch
        of buckets and what the sinks keep, whatever a page's size."""
        name = query.endpoint.name

        def stream(into: _S) -> RowStream:
            return RowStream(
                name,
                query.endpoint.result_object,
                dims,
                metrics,
                into,
                self.max_body,
                unparsed=self._unparsed,
            )

        async with contextlib.aclosing(self._raw_pages(query, (sink, stream))) as raws:
            async for raw in raws:
                assert raw.streamed is not None
                rows, into = raw.streamed
                try:  # the next page's request has left: parse what was left for now
                    with classified(name):
                        rows.drain()
                        check.check_bounds(raw.has_more, rows.bounds)
                        self._checked(check, raw, len(rows.bounds))
                finally:
                    rows.discard()
                yield into

    def _checked(self, check: PageCheck, raw: _Raw, buckets: int) -> None:
        if not raw.has_more:
            check.finish()
        self.stats.pages += 1
        self.stats.buckets += buckets

    async def _raw_pages(
        self, query: Query, streaming: _Streaming | None = None
    ) -> AsyncGenerator[_Raw, None]:
        """The raw bodies of ``query``'s pages (or, ``streaming``, the sinks their rows
        went to), read ahead by one reader task."""
        query.validate()
        # one page read ahead: the next request leaves while this page is parsed (a
        # streamed page: what is left of it, within the client's unparsed budget)
        bodies: asyncio.Queue[_Raw | AdminAPIError] = asyncio.Queue(maxsize=1)
        reader = asyncio.ensure_future(self._read_pages(query, bodies, streaming))
        try:
            while True:
                item = await bodies.get()
                if isinstance(item, AdminAPIError):
                    raise item
                await asyncio.sleep(0)  # let ready readers send their next request first
                yield item
                if not item.has_more:
                    return
        finally:
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
            elif not reader.cancelled() and reader.exception() is not None:
                log.debug("page reader ended in %s", type(reader.exception()).__name__)
            while not bodies.empty():  # a page read ahead and never taken
                left = bodies.get_nowait()
                if isinstance(left, _Raw) and left.streamed is not None:
                    left.streamed[0].discard()

    async def _read_pages(
        self,
        query: Query,
        out: asyncio.Queue[_Raw | AdminAPIError],
        streaming: _Streaming | None = None,
    ) -> None:
        name = query.endpoint.name
        seen: set[str] = set()
        cursor: str | None = None
        bound = max_pages(query, int(self.clock()))
        try:
            while True:
                raw = await self._get_raw(query, cursor, streaming)
                if raw.has_more and not raw.next_page:
                    raise PaginationError(
                        f"{name}: the API said has_more but gave no next_page", endpoint=name
                    )
                if raw.has_more and (raw.next_page in seen or raw.next_page == cursor):
                    raise PaginationError(
                        f"{name}: the API repeated a page cursor; stopping to avoid an "
                        "endless loop",
                        endpoint=name,
                    )
                if raw.has_more and len(seen) + 1 >= bound:
                    raise PaginationError(
                        f"{name}: the API gave more than {bound} pages for a range that "
                        f"needs at most {bound}; stopping (its cursor does not advance)",
                        endpoint=name,
                    )
                await out.put(raw)
                if not raw.has_more:
                    return
                cursor = raw.next_page
                seen.add(cursor or "")
        except AdminAPIError as exc:
            await out.put(exc)
        except Exception as exc:  # classified, never quoted: it may hold the request
            failed = f"{name}: the request failed ({type(exc).__name__})"
            await out.put(UnavailableError(failed, endpoint=name))

    async def fetch(self, query: Query) -> list[Bucket]:
        """All buckets of ``query``, in the API's order."""
        buckets: list[Bucket] = []
        async for page in self.pages(query):
            buckets.extend(page.data)
        return buckets

    async def fetch_many(
        self, queries: Sequence[Query], *, concurrency: int = 8
    ) -> list[list[Bucket] | AdminAPIError]:
        """Run ``queries`` concurrently; each slot holds its buckets or the error it ended in.

        One query failing does not cancel the others: callers decide what a failure means.
        """
        gate = asyncio.Semaphore(concurrency)

        async def one(query: Query) -> list[Bucket] | AdminAPIError:
            async with gate:
                try:
                    return await self.fetch(query)
                except AdminAPIError as exc:
                    return exc

        return list(await asyncio.gather(*(one(q) for q in queries)))

    async def query(self, endpoint: str, **kwargs: Any) -> list[Bucket]:
        """Shorthand: ``await client.query("completions", start_time=..., group_by=[...])``."""
        return await self.fetch(Query.build(endpoint, **kwargs))

    # -- one page, with retries ---------------------------------------------------------------

    async def _get_raw(
        self, query: Query, cursor: str | None, streaming: _Streaming | None = None
    ) -> _Raw:
        if streaming is not None:
            return await self._retrying(
                query.endpoint.name, lambda: self._streamed_once(query, cursor, streaming)
            )
        return await self._retrying(query.endpoint.name, lambda: self._page_once(query, cursor))

    async def get_json(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """One JSON object from ``path`` (the directory's lists), with the retries and the
        per-request deadline of a page."""
        return await self._retrying(path, lambda: self._json_once(path, params))

    async def _retrying(self, name: str, once: Callable[[], Awaitable[_T]]) -> _T:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await once()
            except Retryable as failure:
                elapsed = time.monotonic() - started
                wait = self.retry.delay(attempt, failure.retry_after, self._rng)
                if attempt >= self.retry.max_attempts or elapsed + wait > self.retry.deadline:
                    raise UnavailableError(
                        f"{name}: the API is unavailable ({failure.reason}) after {attempt} "
                        f"attempt{'s' if attempt > 1 else ''} in {elapsed:.1f}s",
                        status=failure.status,
                        endpoint=name,
                    ) from None
                self.stats.retries += 1
                self.last_failure[name] = failure.reason
                log.info("%s: %s; retry %d in %.2fs", name, failure.reason, attempt, wait)
                await self._sleep(wait)

    async def _send(
        self, path: str, params: Any, name: str, feed: Callable[[bytes], None] | None = None
    ) -> Answer:
        """One GET (``request.get_once``: bounded in time and size, every exception
        classified); 401/403 and other permanent refusals raise, temporary failures are
        ``Retryable``. A key that cannot go in a header is refused before anything is sent."""
        self.stats.requests += 1
        if self._key_problem is not None:
            raise AuthError(f"the admin key cannot be sent: {self._key_problem}", endpoint=name)
        headers = {"Authorization": f"Bearer {self._key.get_secret_value()}"}
        answer = await get_once(
            self._http, path, params, headers, name, self.request_deadline, self.max_body, feed
        )
        status = answer.status
        log.debug("GET %s -> %d", path, status)
        if status in (401, 403):
            raise AuthError(
                f"the OpenAI API refused the key (HTTP {status}); {AUTH_HELP}",
                status=status,
                endpoint=name,
            )
        if status == 429 or status >= 500 or status in _RETRY_STATUSES:
            retry_after = parse_retry_after(answer.retry_after)
            raise Retryable(f"HTTP {status}", retry_after=retry_after, status=status)
        if status >= 400:
            detail = self._scrub(api_message(answer.content)) or answer.reason
            raise BadRequestError(
                f"{name}: the API refused the query ({status}): {detail}",
                status=status,
                endpoint=name,
            )
        return answer

    async def _json_once(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        response = await self._send(path, params, path)
        try:
            body = json.loads(response.content)
        except ValueError:
            raise Retryable("malformed JSON in the response") from None
        if not isinstance(body, dict):
            raise ResponseFormatError(f"{path}: the response is not a JSON object", endpoint=path)
        return body

    async def _page_once(self, query: Query, cursor: str | None) -> _Raw:
        name = query.endpoint.name
        response = await self._send(query.endpoint.path, query.params(cursor), name)
        try:  # the paging fields only (msgspec skips the rest unread): no parse of the page
            head = envelope(name, response.content)
        except ResponseFormatError as exc:
            exc.status = response.status
            raise
        except ValueError:
            raise Retryable("malformed JSON in the response") from None
        return _Raw(response.content, head.has_more, head.next_page)

    async def _streamed_once(self, query: Query, cursor: str | None, streaming: _Streaming) -> _Raw:
        """One page read as it arrives into a fresh sink (``row_pages``)."""
        name = query.endpoint.name
        new_sink, reader = streaming
        into = new_sink()
        stream = reader(into)

        def feed(chunk: bytes) -> None:
            with _streamed(name, self.max_body):
                stream.feed(chunk)

        try:
            await self._send(query.endpoint.path, query.params(cursor), name, feed)
            with _streamed(name, self.max_body):
                page = stream.finish()
        except BaseException:  # a failed or cancelled attempt: nothing of it is kept
            stream.discard()
            raise
        return _Raw(b"", page.has_more, page.next_page, (stream, into))

    @staticmethod
    def _parse_page(query: Query, raw: _Raw) -> Page:
        """Costs keep the exact decimal text of each amount; usage (all integers) takes
        pydantic's faster JSON path."""
        try:
            if query.endpoint.is_costs:
                return Page.parse(json.loads(raw.body, parse_float=Decimal))
            return Page.parse(raw.body)
        except ValidationError as exc:
            name = query.endpoint.name
            raise ResponseFormatError(
                f"{name}: the response does not match the API's page format: {_first_error(exc)}",
                endpoint=name,
            ) from None

    def _scrub(self, text: str) -> str:
        secret = self._key.get_secret_value()
        return text.replace(secret, "**********") if secret else text


@contextlib.contextmanager
def _streamed(name: str, cap: int) -> Iterator[None]:
    """A streamed page's faults as the whole page's: a body that is not JSON (or ends
    inside a value) is retried, a part over the cap refused, anything else classified."""
    try:
        yield
    except AdminAPIError:
        raise
    except Oversized as exc:
        raise ResponseFormatError(
            f"{name}: the answer holds {exc} larger than {cap // 2**20} MB; refused",
            endpoint=name,
        ) from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, Incomplete
        raise Retryable("malformed JSON in the response") from None
    except Exception as exc:
        raise ResponseFormatError(
            f"{name}: the response could not be read ({type(exc).__name__})", endpoint=name
        ) from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}"
