"""The admin API client against what a hostile world sends it: a key pasted with a character
that cannot go in a header, a transport that raises anything at all, a gzip bomb, encodings
it did not ask for. Each ends as a classified error, at once, and nothing prints the key."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from budgetguard.header_safe import header_problem
from budgetguard.providers.openai import (
    AdminAPIError,
    AdminClient,
    AuthError,
    Query,
    ResponseFormatError,
)
from budgetguard.providers.openai.directory import DirectoryClient
from budgetguard.providers.openai.request import BodyTooLarge, read_capped
from budgetguard.simulator import SimulatorServer, build_api
from tests.conftest import NOW

BUDGETGUARD = str(Path(sys.executable).with_name("budgetguard"))
#: Copy-paste accidents: a trailing no-break space, a zero-width space, curly quotes.
BAD_KEYS = [
    "sk-admin-canary0123456789\u00a0",
    "sk-admin-canary\u200b0123456789",
    "\u201csk-admin-canary0123456789\u201d",
]
COSTS = Query.build("costs", start_time=NOW - 3 * 86400, end_time=NOW)


def test_header_problem_names_the_character_never_the_value() -> None:
    assert header_problem("sk-admin-abc") is None
    for key in BAD_KEYS:
        problem = header_problem(key)
        assert problem is not None and "canary" not in problem and "U+" in problem
    assert "NO-BREAK SPACE" in (header_problem(BAD_KEYS[0]) or "")
    assert "at its end" in (header_problem(BAD_KEYS[0]) or "")
    assert "LEFT DOUBLE QUOTATION MARK" in (header_problem(BAD_KEYS[2]) or "")


@pytest.mark.parametrize("key", BAD_KEYS)
def test_a_key_that_cannot_go_in_a_header_is_refused_before_any_request(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    asked: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(500)

    async def run() -> None:
        transport = httpx.MockTransport(handler)
        async with AdminClient(key, transport=transport, clock=lambda: NOW) as client:
            with pytest.raises(AuthError) as caught:
                await client.fetch(COSTS)
            assert "canary" not in str(caught.value) and "cannot be sent" in str(caught.value)
            failures = await client.fetch_many([COSTS, COSTS])
            assert all(isinstance(f, AuthError) for f in failures)
            async with DirectoryClient(client=client) as directory:
                with pytest.raises(AuthError):
                    await directory.directory()

    caplog.set_level(logging.DEBUG)
    began = time.monotonic()
    asyncio.run(run())
    assert time.monotonic() - began < 5
    assert not asked
    assert "canary" not in caplog.text


class _Leaky(Exception):
    """An exception whose text and repr hold the request's header, as an encoding error's do."""


@pytest.mark.parametrize(
    "raised",
    [
        UnicodeEncodeError("ascii", "Bearer sk-admin-canary\u00a0", 22, 23, "no"),
        _Leaky("Authorization: Bearer sk-admin-canary"),
        RuntimeError("sk-admin-canary"),
        ValueError("sk-admin-canary"),
        httpx.DecodingError("sk-admin-canary"),
        httpx.RemoteProtocolError("sk-admin-canary"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_any_exception_of_the_transport_is_classified_and_quoted_nowhere(
    raised: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    async def run() -> AdminAPIError | list[Any]:
        transport = httpx.MockTransport(handler)
        async with AdminClient(
            "sk-admin-canary", transport=transport, clock=lambda: NOW, sleep=_no_sleep
        ) as client:
            results = await client.fetch_many([COSTS])
            return results[0]

    caplog.set_level(logging.DEBUG)
    outcome = asyncio.run(asyncio.wait_for(run(), 20))
    assert isinstance(outcome, AdminAPIError)
    assert "canary" not in str(outcome) and type(raised).__name__ in str(outcome)
    assert "canary" not in caplog.text
    assert "never retrieved" not in caplog.text


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


class _Raw(ThreadingHTTPServer):
    """Answers every GET with one fixed body and headers (a bomb, an odd encoding)."""

    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        outer = self
        self.body, self.headers = body, headers

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                for name, value in outer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(outer.body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@pytest.fixture(scope="module")
def bomb() -> Iterator[_Raw]:
    """2 GB of zeros, gzipped to ~2 MB: what drove a check to 6.4 GB."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1 << 24)
    body = b"".join(squeeze.compress(block) for _ in range(128)) + squeeze.flush()
    server = _Raw(body, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    yield server
    server.shutdown()


def test_a_gzip_bomb_is_refused_within_the_cap(bomb: _Raw) -> None:
    async def run() -> None:
        async with AdminClient("sk-admin-x", bomb.base_url, clock=lambda: NOW) as client:
            with pytest.raises(ResponseFormatError, match="compression bomb"):
                await client.fetch(COSTS)

    asyncio.run(run())


def test_check_against_a_gzip_bomb_exits_3_in_bounded_memory(bomb: _Raw, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nbudgets:\n  - {name: m, limit: 10, period: month}\n")
    env = dict(
        os.environ,
        OPENAI_ADMIN_KEY="sk-admin-x",
        BUDGETGUARD_OPENAI_BASE_URL=bomb.base_url,
        BUDGETGUARD_DATABASE_URL=f"sqlite:///{tmp_path / 'bomb.db'}",
    )
    began = time.monotonic()
    process = subprocess.Popen(
        [BUDGETGUARD, "check", "-r", str(rules)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(process.pid, 0)
    stderr = process.stderr.read() if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    peak_mb = usage.ru_maxrss / 1024
    assert process.returncode == 3, stderr
    assert "compression bomb" in stderr and "Traceback" not in stderr
    # 238 MB measured alone (105 MB for the same check against 2 MB of junk), up to 442 MB
    # beside the whole suite; the bomb inflates to 2 GB, and took a check to 6.4 GB before
    assert peak_mb < 800, f"peak RSS {peak_mb:.0f} MB"
    assert time.monotonic() - began < 60


def test_deflate_and_gzip_bodies_read_and_other_encodings_are_refused() -> None:
    body = b'{"object": "page", "data": [], "has_more": false, "next_page": null}'

    async def read(content: bytes, encoding: str) -> bytes:
        async def chunks() -> Any:
            for i in range(0, len(content), 7):
                yield content[i : i + 7]

        return await read_capped(chunks(), encoding)

    assert asyncio.run(read(gzip.compress(body), "gzip")) == body
    assert asyncio.run(read(zlib.compress(body), "deflate")) == body
    assert asyncio.run(read(body, "")) == body
    with pytest.raises(BodyTooLarge):
        asyncio.run(_capped(body, 10))
    odd = _Raw(body, {"Content-Encoding": "br"})
    try:

        async def run() -> None:
            async with AdminClient("sk-admin-x", odd.base_url, clock=lambda: NOW) as client:
                with pytest.raises(ResponseFormatError, match="content encoding"):
                    await client.fetch(COSTS)

        asyncio.run(run())
    finally:
        odd.shutdown()


async def _capped(content: bytes, cap: int) -> bytes:
    async def chunks() -> Any:
        yield content

    return await read_capped(chunks(), "", cap)


def test_the_simulator_still_reads_whole_with_the_capped_reader() -> None:
    with SimulatorServer(build_api(now=NOW, days=5)) as sim:

        async def run() -> int:
            async with AdminClient("sk-admin-x", sim.base_url, clock=lambda: NOW) as client:
                return len(await client.fetch(COSTS))

        assert asyncio.run(run()) == 4  # three whole days and the one in progress
