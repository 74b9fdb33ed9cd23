"""The client against the simulator over real loopback HTTP."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from budgetguard.providers.openai import (
    ENDPOINTS,
    AdminClient,
    AuthError,
    Query,
    RetryPolicy,
    UnavailableError,
)
from budgetguard.providers.openai.models import CompletionsResult, CostsResult, ImagesResult
from budgetguard.simulator import SimulatorServer
from tests.conftest import ADMIN_KEY, NOW

pytestmark = pytest.mark.anyio
DAY, HOUR = 86400, 3600
TODAY = NOW - NOW % DAY


async def no_sleep(_: float) -> None:
    return None


def client_for(sim: SimulatorServer, key: str = ADMIN_KEY, **kwargs: Any) -> AdminClient:
    return AdminClient(key, sim.base_url, sleep=no_sleep, rng=random.Random(0), **kwargs)


async def test_pagination_over_many_pages(sim: SimulatorServer) -> None:
    async with client_for(sim) as client:
        query = Query.build(
            "completions", start_time=TODAY - 10 * DAY, end_time=TODAY, bucket_width="1h", limit=7
        )
        buckets = await client.fetch(query)
        assert client.stats.requests == -(-240 // 7) == 35
    assert [b.start_time for b in buckets] == list(range(TODAY - 10 * DAY, TODAY, HOUR))


async def test_default_limit_costs_the_fewest_requests(sim: SimulatorServer) -> None:
    async with client_for(sim) as client:
        await client.fetch(
            Query.build(
                "embeddings", start_time=TODAY - 30 * DAY, end_time=TODAY, bucket_width="1h"
            )
        )
        assert client.stats.requests == -(-720 // 168)
        await client.fetch(Query.build("costs", start_time=TODAY - 59 * DAY, end_time=TODAY))
        assert client.stats.requests == 5 + 1


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
async def test_every_endpoint_with_every_grouping_parses(sim: SimulatorServer, name: str) -> None:
    ep = ENDPOINTS[name]
    spec_groups = sorted(
        ep.group_by - {"api_source", "user_id"} if ep.is_costs else ep.group_by - {"api_source"}
    )
    async with client_for(sim) as client:
        buckets = await client.fetch(
            Query.build(name, start_time=TODAY - 2 * DAY, end_time=TODAY, group_by=spec_groups)
        )
    results = [r for b in buckets for r in b.results]
    assert results
    assert all(type(r).__name__ != "UnknownResult" for r in results)


async def test_filters_and_groups_reach_the_server(sim: SimulatorServer) -> None:
    async with client_for(sim) as client:
        buckets = await client.query(
            "images",
            start_time=TODAY - DAY,
            end_time=TODAY,
            group_by=["model", "size", "source"],
            sizes=["1024x1792", "512x512"],
            sources=["image.generation"],
        )
    results = [r for b in buckets for r in b.results]
    assert results
    assert all(isinstance(r, ImagesResult) for r in results)
    assert {(r.model, r.size, r.source) for r in results} == {
        ("dall-e-3", "1024x1792", "image.generation")
    }


async def test_concurrent_queries_share_one_pool(sim: SimulatorServer) -> None:
    queries = [
        Query.build(name, start_time=TODAY - 3 * DAY, end_time=TODAY, bucket_width="1d")
        for name in sorted(ENDPOINTS)
    ]
    async with client_for(sim) as client:
        results = await client.fetch_many(queries)
    assert all(isinstance(r, list) and len(r) == 3 for r in results)


async def test_scripted_faults_are_retried(sim: SimulatorServer) -> None:
    sim.faults.script("429", retry_after=1)
    sim.faults.script("500")
    sim.faults.script("malformed")
    async with client_for(sim) as client:
        buckets = await client.query("moderations", start_time=TODAY - DAY, end_time=TODAY)
        assert client.stats.retries == 3
    assert len(buckets) == 1


async def test_an_endpoint_that_stays_down_fails_alone(sim: SimulatorServer) -> None:
    sim.faults.down.add("costs")
    queries = [
        Query.build("costs", start_time=TODAY - DAY, end_time=TODAY),
        Query.build("embeddings", start_time=TODAY - DAY, end_time=TODAY),
    ]
    async with client_for(sim, retry=RetryPolicy(max_attempts=2)) as client:
        costs, embeddings = await client.fetch_many(queries)
    assert isinstance(costs, UnavailableError)
    assert "HTTP 503" in str(costs)
    assert isinstance(embeddings, list)


async def test_string_amounts_give_the_same_decimals(sim: SimulatorServer) -> None:
    query = Query.build(
        "costs", start_time=TODAY - 3 * DAY, end_time=TODAY, group_by=["project_id", "line_item"]
    )
    async with client_for(sim) as client:
        as_numbers = await client.fetch(query)
        sim.api.string_amounts = True
        as_strings = await client.fetch(query)

    def amounts(buckets: list[Any]) -> list[Decimal]:
        return [r.amount.value for b in buckets for r in b.results if isinstance(r, CostsResult)]

    assert amounts(as_numbers) == amounts(as_strings)
    assert all(isinstance(v, Decimal) for v in amounts(as_strings))


@pytest.mark.parametrize(("key", "status"), [("sk-proj-abc", 403), ("sk-wrong", 401)])
async def test_keys_that_cannot_read_usage(sim: SimulatorServer, key: str, status: int) -> None:
    async with client_for(sim, key=key) as client:
        with pytest.raises(AuthError) as info:
            await client.query("costs", start_time=TODAY)
    assert info.value.status == status
    assert "sk-admin-" in str(info.value)
    assert key not in str(info.value)


async def test_unreachable_api_is_unavailable() -> None:
    async with AdminClient(
        ADMIN_KEY, "http://127.0.0.1:9/v1", sleep=no_sleep, retry=RetryPolicy(max_attempts=2)
    ) as client:
        with pytest.raises(UnavailableError, match="connection failed"):
            await client.query("costs", start_time=TODAY)


async def test_minute_buckets_sum_to_the_hour(sim: SimulatorServer) -> None:
    hour = TODAY - 5 * HOUR
    async with client_for(sim) as client:
        minutes = await client.query(
            "completions", start_time=hour, end_time=hour + HOUR, bucket_width="1m"
        )
        hours = await client.query(
            "completions", start_time=hour, end_time=hour + HOUR, bucket_width="1h"
        )
    assert len(minutes) == 60

    def tokens(buckets: list[Any]) -> int:
        return sum(
            r.input_tokens for b in buckets for r in b.results if isinstance(r, CompletionsResult)
        )

    assert tokens(minutes) == tokens(hours) > 0
