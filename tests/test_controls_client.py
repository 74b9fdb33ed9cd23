"""The controls write client on an injected transport: what it sends, what it answers, how
it fails (classified, never quoting the key)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from budgetguard.providers import ControlError, Reply
from budgetguard.providers.openai import OPENAI, Controls, SpendLimit, cents

KEY = "sk-admin-canary-0123456789"


def run(handler: Any, call: Any) -> Any:
    async def go() -> Any:
        async with OPENAI.controls(
            KEY, "https://api.test/v1", transport=httpx.MockTransport(handler)
        ) as api:
            return await call(api)

    return asyncio.run(go())


def test_cents_round_up_to_the_cent() -> None:
    assert cents(Decimal("10.001")) == 1001
    assert cents(Decimal("120")) == 12000
    assert cents("0.01") == 1


def test_a_limit_not_set_is_none_and_a_set_one_is_typed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(
                404,
                json={
                    "error": {"message": "No spend limit", "type": "x", "param": None, "code": None}
                },
                headers={"x-request-id": "req_1"},
            )
        body = json.loads(request.content)
        return httpx.Response(
            200,
            json={"object": "project.spend_limit", **body, "enforcement": {"status": "inactive"}},
            headers={"x-request-id": "req_2"},
        )

    async def call(api: Controls) -> tuple[Reply[SpendLimit | None], Reply[SpendLimit]]:
        return await api.project_spend_limit("proj_a"), await api.set_project_spend_limit(
            "proj_a", Decimal("120.004")
        )

    before, written = run(handler, call)
    assert before == Reply(None, 404, "req_1")
    assert written.status == 200 and written.request_id == "req_2"
    assert written.value.threshold_cents == 12001 and written.value.amount == Decimal("120.01")
    assert written.value.enforcing is False and written.value.project_id == "proj_a"
    sent = json.loads(seen[1].content)
    assert sent == {"threshold_amount": 12001, "currency": "USD", "interval": "month"}
    assert seen[1].headers["Authorization"] == f"Bearer {KEY}"


def test_an_unknown_project_is_not_found_never_no_limit() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        error = {"message": "No such project", "type": "x", "param": "project_id", "code": None}
        return httpx.Response(404, json={"error": error})

    with pytest.raises(ControlError) as caught:
        run(handler, lambda api: api.project_spend_limit("proj_zz"))
    assert caught.value.kind == "not_found" and not caught.value.retryable


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (401, "auth", False),
        (403, "auth", False),
        (400, "invalid", False),
        (429, "unavailable", True),
        (503, "unavailable", True),
    ],
)
def test_failures_are_classified_and_never_quote_the_key(
    status: int, kind: str, retryable: bool
) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        error = {"message": f"bad key {KEY}", "type": "x", "param": None, "code": "some_code"}
        return httpx.Response(status, json={"error": error}, headers={"x-request-id": "req_9"})

    with pytest.raises(ControlError) as caught:
        run(handler, lambda api: api.set_org_spend_limit(Decimal(5)))
    error = caught.value
    assert (error.kind, error.retryable, error.status) == (kind, retryable, status)
    assert error.request_id == "req_9" and error.code == "some_code"
    assert KEY not in str(error) and KEY not in repr(error)
    assert calls == 1  # a write is sent once


def test_reads_retry_temporary_failures() -> None:
    answers = [httpx.Response(503), httpx.Response(200, json={
        "file_search": {"enabled": True}, "web_search": {"enabled": False},
        "image_generation": {"enabled": True}, "mcp": {"enabled": True},
        "code_interpreter": {"enabled": True},
    })]  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    async def call(api: Controls) -> Any:
        api._sleep = _no_sleep  # type: ignore[method-assign]
        return await api.hosted_tools("proj_a")

    reply = run(handler, call)
    assert reply.value.enabled["web_search"] is False and reply.status == 200


async def _no_sleep(_: float) -> None:
    return None


def test_rate_limits_follow_the_cursor_and_refuse_one_that_repeats() -> None:
    def row(n: int) -> dict[str, Any]:
        return {"object": "project.rate_limit", "id": f"rl_{n}", "model": f"m{n}",
                "max_requests_per_1_minute": 10, "max_tokens_per_1_minute": 100}  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        if after is None:
            return httpx.Response(
                200, json={"object": "list", "data": [row(1)], "last_id": "rl_1", "has_more": True}
            )
        return httpx.Response(
            200, json={"object": "list", "data": [row(2)], "last_id": "rl_2", "has_more": False}
        )

    reply = run(handler, lambda api: api.rate_limits("proj_a"))
    assert [r.model for r in reply.value] == ["m1", "m2"]
    assert reply.value[0].limits == {
        "max_requests_per_1_minute": 10,
        "max_tokens_per_1_minute": 100,
    }

    def looping(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"object": "list", "data": [row(1)], "last_id": "rl_1", "has_more": True}
        )

    with pytest.raises(ControlError) as caught:
        run(looping, lambda api: api.rate_limits("proj_a"))
    assert caught.value.kind == "format"


def test_bad_values_are_refused_before_sending() -> None:
    def handler(request: httpx.Request) -> httpx.Response:  # pragma: no cover - never reached
        raise AssertionError("sent")

    for call in (
        lambda api: api.set_project_spend_limit("proj_a", Decimal(0)),
        lambda api: api.set_hosted_tools("proj_a", {"teleport": False}),
        lambda api: api.set_rate_limit("proj_a", "rl_1", {"max_fun": 1}),
        lambda api: api.set_model_permissions("proj_a", "maybe_list", ["gpt-4o"]),
        lambda api: api.project_spend_limit("../users"),
    ):
        with pytest.raises(ControlError) as caught:
            run(handler, call)
        assert caught.value.kind == "invalid"


def test_a_connection_failure_is_retryable_and_names_no_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"boom {request.headers['Authorization']}")

    with pytest.raises(ControlError) as caught:
        run(handler, lambda api: api.delete_project_spend_limit("proj_a"))
    assert caught.value.retryable and KEY not in str(caught.value)
    assert "cannot" not in repr(Controls(KEY)) and KEY not in repr(Controls(KEY))
