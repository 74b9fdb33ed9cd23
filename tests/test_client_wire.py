"""Exact wire behaviour of the client, against respx: encoding, retries, errors, secrets."""

from __future__ import annotations

import logging
import random
from typing import Any

import httpx
import pytest
import respx

from budgetguard.providers.openai import (
    AdminClient,
    AuthError,
    BadRequestError,
    PaginationError,
    Query,
    ResponseFormatError,
    RetryPolicy,
    UnavailableError,
)

BASE = "https://api.test/v1"
KEY = "sk-admin-SECRET-abc123"
COMPLETIONS = f"{BASE}/organization/usage/completions"
pytestmark = pytest.mark.anyio


def page(
    data: list[dict[str, Any]] | None = None, has_more: bool = False, next_page: str | None = None
) -> dict[str, Any]:
    return {"object": "page", "data": data or [], "has_more": has_more, "next_page": next_page}


def bucket(start: int) -> dict[str, Any]:
    return {
        "object": "bucket",
        "start_time": start,
        "end_time": start + 3600,
        "results": [
            {
                "object": "organization.usage.completions.result",
                "input_tokens": 1,
                "output_tokens": 2,
                "num_model_requests": 3,
            }
        ],
    }


class Sleeps:
    """A sleep that records instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_client(sleeps: Sleeps | None = None, **kwargs: Any) -> AdminClient:
    return AdminClient(KEY, BASE, sleep=sleeps or Sleeps(), rng=random.Random(1), **kwargs)


T0 = 1_699_999_200  # on an hour


def q(**kwargs: Any) -> Query:
    kwargs.setdefault("start_time", T0)
    kwargs.setdefault("end_time", T0 + 3600)
    kwargs.setdefault("bucket_width", "1h")
    return Query.build("completions", **kwargs)


@respx.mock
async def test_query_encoding_on_the_wire() -> None:
    route = respx.get(COMPLETIONS).mock(return_value=httpx.Response(200, json=page([bucket(T0)])))
    async with make_client() as client:
        await client.fetch(
            q(
                bucket_width="1h",
                group_by=["project_id", "model"],
                models=["gpt-4o", "gpt-4o-mini"],
                batch=True,
            )
        )
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.url.query.decode() == (
        "start_time=1699999200&end_time=1700002800&bucket_width=1h&limit=168&group_by=project_id&group_by=model"
        "&batch=true&models=gpt-4o&models=gpt-4o-mini"
    )


@respx.mock
async def test_pages_are_followed_until_has_more_is_false() -> None:
    route = respx.get(COMPLETIONS).mock(
        side_effect=[
            httpx.Response(200, json=page([bucket(T0)], True, "p2")),
            httpx.Response(200, json=page([bucket(T0 + 3600)], True, "p3")),
            httpx.Response(200, json=page([bucket(T0 + 7200)], False, None)),
        ]
    )
    async with make_client() as client:
        buckets = await client.fetch(q(bucket_width="1h", end_time=T0 + 3 * 3600))
        assert [b.start_time - T0 for b in buckets] == [0, 3600, 7200]
        assert client.stats.requests == 3
    assert [c.request.url.params.get("page") for c in route.calls] == [None, "p2", "p3"]


@respx.mock
async def test_a_repeated_cursor_stops_with_an_error() -> None:
    respx.get(COMPLETIONS).mock(
        side_effect=[
            httpx.Response(200, json=page([bucket(T0)], True, "same")),
            httpx.Response(200, json=page([bucket(T0)], True, "same")),
        ]
    )
    async with make_client() as client:
        with pytest.raises(PaginationError, match="repeated a page cursor"):
            await client.fetch(q())


@respx.mock
async def test_has_more_without_cursor_is_an_error() -> None:
    respx.get(COMPLETIONS).mock(return_value=httpx.Response(200, json=page([], True, None)))
    async with make_client() as client:
        with pytest.raises(PaginationError, match="no next_page"):
            await client.fetch(q())


@respx.mock
async def test_retry_after_is_honoured_without_sleeping() -> None:
    respx.get(COMPLETIONS).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"message": "slow"}}),
            httpx.Response(200, json=page([bucket(T0)])),
        ]
    )
    sleeps = Sleeps()
    async with make_client(sleeps) as client:
        assert len(await client.fetch(q())) == 1
        assert client.stats.retries == 1
    assert sleeps.calls == [7.0]


@respx.mock
async def test_5xx_timeouts_connection_errors_and_garbage_are_retried_with_backoff() -> None:
    request = httpx.Request("GET", COMPLETIONS)
    respx.get(COMPLETIONS).mock(
        side_effect=[
            httpx.Response(500),
            httpx.ReadTimeout("slow", request=request),
            httpx.ConnectError("refused", request=request),
            httpx.Response(200, content=b'{"object": "pa'),
            httpx.Response(503),
            httpx.Response(200, json=page([bucket(T0)])),
        ]
    )
    sleeps = Sleeps()
    async with make_client(
        sleeps, retry=RetryPolicy(max_attempts=6, base_delay=1, max_delay=100)
    ) as client:
        assert len(await client.fetch(q())) == 1
    assert len(sleeps.calls) == 5
    # full jitter within [half, all] of 1, 2, 4, 8, 16 seconds: growing, bounded
    for n, wait in enumerate(sleeps.calls):
        assert 2**n * 0.5 <= wait <= 2**n


@respx.mock
async def test_retries_are_bounded_by_attempts() -> None:
    route = respx.get(COMPLETIONS).mock(return_value=httpx.Response(502))
    async with make_client(retry=RetryPolicy(max_attempts=3)) as client:
        with pytest.raises(UnavailableError, match=r"HTTP 502\) after 3 attempts"):
            await client.fetch(q())
    assert route.call_count == 3


@respx.mock
async def test_retries_are_bounded_by_the_deadline() -> None:
    respx.get(COMPLETIONS).mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}))
    sleeps = Sleeps()
    async with make_client(sleeps, retry=RetryPolicy(deadline=60)) as client:
        with pytest.raises(UnavailableError, match="HTTP 429"):
            await client.fetch(q())
    assert sleeps.calls == []  # waiting an hour would break the deadline: give up at once


@pytest.mark.parametrize("status", [401, 403])
@respx.mock
async def test_auth_errors_explain_admin_keys(status: int) -> None:
    respx.get(COMPLETIONS).mock(
        return_value=httpx.Response(
            status,
            json={
                "error": {
                    "message": "Missing scopes: api.usage.read",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
        )
    )
    async with make_client() as client:
        with pytest.raises(AuthError) as info:
            await client.fetch(q())
    text = str(info.value)
    assert "sk-admin-" in text and "api.usage.read" in text and "project keys" in text
    assert KEY not in text


@respx.mock
async def test_400_carries_the_apis_own_message() -> None:
    respx.get(COMPLETIONS).mock(
        return_value=httpx.Response(
            400,
            json={
                "error": {
                    "message": "Invalid value for 'group_by': 'x'.",
                    "type": "invalid_request_error",
                    "param": "group_by",
                    "code": None,
                }
            },
        )
    )
    async with make_client() as client:
        with pytest.raises(BadRequestError, match="Invalid value for 'group_by'"):
            await client.fetch(q())


@respx.mock
async def test_a_response_of_the_wrong_shape_is_a_format_error() -> None:
    respx.get(COMPLETIONS).mock(return_value=httpx.Response(200, json={"object": "list"}))
    async with make_client() as client:
        with pytest.raises(ResponseFormatError, match="not a page"):
            await client.fetch(q())


@respx.mock
async def test_the_key_never_leaks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    respx.get(COMPLETIONS).mock(
        side_effect=[
            httpx.Response(500, text=f"upstream echoed Bearer {KEY}"),
            httpx.Response(400, json={"error": {"message": f"bad key {KEY}"}}),
        ]
    )
    client = make_client()
    assert KEY not in repr(client)
    with pytest.raises(BadRequestError) as info:
        await client.fetch(q())
    await client.aclose()
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)
    assert KEY not in caplog.text


async def test_no_key_is_refused_up_front() -> None:
    with pytest.raises(AuthError, match="OPENAI_ADMIN_KEY"):
        AdminClient(None, BASE)
    with pytest.raises(AuthError):
        AdminClient("", BASE)
