"""The simulator speaks the API as the spec and the reference notes describe it.

These tests use plain httpx and the spec's JSON schemas, never the client's models, so the
simulator is checked independently of the code it is used to test.
"""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from budgetguard.simulator import SimulatorServer
from budgetguard.simulator.org import TOKEN_PRICES
from budgetguard.simulator.spec import load_spec, routes
from tests.conftest import ADMIN_KEY, NOW

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
DAY, HOUR = 86400, 3600
TODAY = NOW - NOW % DAY


def _validator() -> jsonschema.Draft202012Validator:
    spec = load_spec()
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:spec", resource)
    schema = {"$ref": "urn:spec#/components/schemas/UsageResponse"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


VALIDATOR = _validator()


def get(
    sim: SimulatorServer, path: str, params: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.get(
        f"{sim.base_url}{path}",
        params=params,
        headers=AUTH if headers is None else headers,
        timeout=30,
    )


ALL_ROUTES = sorted(routes().values(), key=lambda r: r.name)


@pytest.mark.parametrize("route", ALL_ROUTES, ids=lambda r: r.name)
def test_every_endpoint_validates_against_the_spec_with_every_grouping(
    sim: SimulatorServer, route: Any
) -> None:
    groups = sorted(route.params["group_by"].enum)
    width = "1d" if route.is_costs else "1h"
    for group_by in ([], groups):
        r = get(
            sim,
            route.path,
            {
                "start_time": TODAY - 2 * DAY,
                "bucket_width": width,
                "group_by": group_by,
                "limit": 48 if width == "1h" else 3,
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        VALIDATOR.validate(body)
        results = [res for b in body["data"] for res in b["results"]]
        assert results, f"{route.name} served no usage at all"
        assert {res["object"] for res in results} == {route.result_object}
        for res in results:
            for dim in groups:
                if group_by:
                    assert dim in res
                else:
                    assert res.get(dim) is None, f"{dim} must be null unless grouped by"


def test_the_first_usage_bucket_starts_at_start_time_and_costs_at_midnight(
    sim: SimulatorServer,
) -> None:
    start = TODAY - 2 * DAY + 5 * HOUR + 17
    usage = get(
        sim, "/organization/usage/completions", {"start_time": start, "bucket_width": "1d"}
    ).json()["data"]
    assert usage[0]["start_time"] == start
    assert usage[0]["end_time"] == TODAY - DAY
    assert usage[1]["start_time"] == TODAY - DAY
    costs = get(sim, "/organization/costs", {"start_time": start}).json()["data"]
    assert costs[0]["start_time"] == TODAY - 2 * DAY
    assert all(b["start_time"] % DAY == 0 for b in costs)


def test_end_time_is_exclusive_and_empty_buckets_are_listed(sim: SimulatorServer) -> None:
    history_start = sim.api.org.history_start
    body = get(
        sim,
        "/organization/usage/images",
        {"start_time": history_start - 3 * DAY, "end_time": history_start, "bucket_width": "1d"},
    ).json()
    assert [b["start_time"] for b in body["data"]] == [
        history_start - 3 * DAY + i * DAY for i in range(3)
    ]
    assert all(b["results"] == [] for b in body["data"])


def test_limit_defaults_and_maxima(sim: SimulatorServer) -> None:
    start = TODAY - 30 * DAY
    for width, default, maximum in (("1d", 7, 31), ("1h", 24, 168), ("1m", 60, 1440)):
        body = get(
            sim, "/organization/usage/embeddings", {"start_time": start, "bucket_width": width}
        ).json()
        assert len(body["data"]) == default
        assert body["has_more"] is True
        assert (
            get(
                sim,
                "/organization/usage/embeddings",
                {"start_time": start, "bucket_width": width, "limit": maximum},
            ).status_code
            == 200
        )
        too_many = get(
            sim,
            "/organization/usage/embeddings",
            {"start_time": start, "bucket_width": width, "limit": maximum + 1},
        )
        assert too_many.status_code == 400
        assert too_many.json()["error"]["param"] == "limit"
    assert (
        len(get(sim, "/organization/costs", {"start_time": TODAY - 40 * DAY}).json()["data"]) == 7
    )
    assert get(sim, "/organization/costs", {"start_time": start, "limit": 181}).status_code == 400


def test_cursor_pages_cover_the_range_once(sim: SimulatorServer) -> None:
    start, end = TODAY - 3 * DAY, TODAY
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {
            "start_time": start,
            "end_time": end,
            "bucket_width": "1h",
            "limit": 10,
        }
        if cursor:
            params["page"] = cursor
        body = get(sim, "/organization/usage/moderations", params).json()
        seen += [b["start_time"] for b in body["data"]]
        if not body["has_more"]:
            assert body["next_page"] is None
            break
        cursor = body["next_page"]
        assert cursor.startswith("page_")
    assert seen == list(range(start, end, HOUR))


def test_a_cursor_from_another_query_is_refused(sim: SimulatorServer) -> None:
    body = get(
        sim,
        "/organization/usage/moderations",
        {"start_time": TODAY - DAY, "bucket_width": "1h", "limit": 2},
    ).json()
    other = get(
        sim,
        "/organization/usage/moderations",
        {"start_time": TODAY - DAY, "bucket_width": "1h", "limit": 3, "page": body["next_page"]},
    )
    assert other.status_code == 400
    assert (
        get(
            sim, "/organization/usage/moderations", {"start_time": TODAY, "page": "garbage"}
        ).status_code
        == 400
    )


def test_both_array_encodings_are_accepted(sim: SimulatorServer) -> None:
    base = {"start_time": TODAY - DAY, "end_time": TODAY}
    repeated = get(
        sim,
        "/organization/usage/completions",
        [*base.items(), ("group_by", "project_id"), ("group_by", "model")],
    ).json()
    brackets = get(
        sim,
        "/organization/usage/completions",
        [*base.items(), ("group_by[]", "project_id"), ("group_by[]", "model")],
    ).json()
    assert repeated == brackets
    assert repeated["data"][0]["results"][0]["model"] is not None


def test_filters_select_what_they_name(sim: SimulatorServer) -> None:
    body = get(
        sim,
        "/organization/usage/completions",
        {
            "start_time": TODAY - DAY,
            "end_time": TODAY,
            "group_by": ["project_id", "batch"],
            "project_ids": ["proj_batch", "proj_search"],
            "batch": "true",
        },
    ).json()
    results = body["data"][0]["results"]
    assert {(r["project_id"], r["batch"]) for r in results} == {("proj_batch", True)}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({}, "start_time"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"start_time": TODAY, "end_time": TODAY}, "end_time"),
        ({"start_time": TODAY, "bucket_width": "1w"}, "bucket_width"),
        ({"start_time": TODAY, "group_by": "line_item"}, "group_by"),
        ({"start_time": TODAY, "batch": "maybe"}, "batch"),
    ],
)
def test_bad_parameters_get_400_in_the_apis_shape(
    sim: SimulatorServer, params: Any, param: str
) -> None:
    r = get(sim, "/organization/usage/completions", params)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert error["message"]


def test_auth(sim: SimulatorServer) -> None:
    params = {"start_time": TODAY}
    assert get(sim, "/organization/costs", params, headers={}).status_code == 401
    project = get(
        sim, "/organization/costs", params, headers={"Authorization": "Bearer sk-proj-abc"}
    )
    assert project.status_code == 403
    assert "api.usage.read" in project.json()["error"]["message"]
    assert (
        get(
            sim, "/organization/costs", params, headers={"Authorization": "Bearer nonsense"}
        ).status_code
        == 401
    )


def test_buckets_of_every_width_agree(sim: SimulatorServer) -> None:
    start, end = TODAY - DAY + 7 * HOUR, TODAY - DAY + 9 * HOUR

    def total(width: str, limit: int) -> int:
        body = get(
            sim,
            "/organization/usage/completions",
            {"start_time": start, "end_time": end, "bucket_width": width, "limit": limit},
        ).json()
        return sum(r["input_tokens"] for b in body["data"] for r in b["results"])

    assert total("1m", 120) == total("1h", 2) > 0
    day = get(
        sim,
        "/organization/usage/completions",
        {"start_time": TODAY - DAY, "end_time": TODAY, "bucket_width": "1d"},
    ).json()
    hours = get(
        sim,
        "/organization/usage/completions",
        {"start_time": TODAY - DAY, "end_time": TODAY, "bucket_width": "1h"},
    ).json()
    assert sum(r["output_tokens"] for b in day["data"] for r in b["results"]) == sum(
        r["output_tokens"] for b in hours["data"] for r in b["results"]
    )


def test_costs_agree_with_usage_times_list_prices(sim: SimulatorServer) -> None:
    day = TODAY - 2 * DAY
    usage = get(
        sim,
        "/organization/usage/completions",
        {
            "start_time": day,
            "end_time": day + DAY,
            "group_by": ["model", "batch"],
            "models": ["gpt-4o-2024-08-06"],
        },
    ).json()["data"][0]["results"]
    (row,) = usage
    costs = get(
        sim,
        "/organization/costs",
        {"start_time": day, "end_time": day + DAY, "group_by": ["line_item"]},
    ).json()["data"][0]["results"]
    lines = {c["line_item"]: c for c in costs}
    prices = TOKEN_PRICES["gpt-4o-2024-08-06"]
    uncached = row["input_tokens"] - row["input_cached_tokens"] - row["input_audio_tokens"]
    assert lines["gpt-4o-2024-08-06, input"]["quantity"] == uncached
    assert lines["gpt-4o-2024-08-06, input"]["amount"]["value"] == pytest.approx(
        uncached * prices["input"] / 1e6
    )
    assert lines["gpt-4o-2024-08-06, cached input"]["amount"]["value"] == pytest.approx(
        row["input_cached_tokens"] * prices["cached input"] / 1e6
    )
    assert lines["gpt-4o-2024-08-06, output"]["amount"]["value"] == pytest.approx(
        row["output_tokens"] * prices["output"] / 1e6
    )
    assert any(item.startswith("batch | gpt-4o-mini") for item in lines)
    assert any(item.startswith("priority | gpt-5") for item in lines)
    assert {"Image models", "web search tool calls", "assistants api | file search"} <= set(lines)
    assert all(c["amount"]["currency"] == "usd" for c in costs)
    assert all("organization_id" in c for c in costs)  # a field the spec does not list


def test_costs_lag_behind_usage(sim: SimulatorServer) -> None:
    body = get(sim, "/organization/costs", {"start_time": TODAY}).json()
    (today,) = body["data"]
    total = sum(r["amount"]["value"] for r in today["results"])
    assert today["start_time"] == TODAY
    assert total > 0  # the partial day is reported, up to costs_delay before now
    settled = sum(
        line.amount
        for i, _ in enumerate(sim.api.org.streams)
        for line in sim.api.org.cost_lines(i, TODAY, NOW - 3 * HOUR, NOW)
    )
    assert total == pytest.approx(settled)


def test_faults_on_demand(sim: SimulatorServer) -> None:
    params = {"start_time": TODAY}
    sim.faults.script("429", retry_after=2)
    sim.faults.script("500")
    sim.faults.script("malformed")
    limited = get(sim, "/organization/costs", params)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert get(sim, "/organization/costs", params).status_code == 500
    garbled = get(sim, "/organization/costs", params)
    assert garbled.status_code == 200
    with pytest.raises(ValueError):
        garbled.json()
    sim.api.string_amounts = True
    value = get(sim, "/organization/costs", params).json()["data"][0]["results"][0]["amount"]
    assert isinstance(value["value"], str)
    sim.faults.down.add("costs")
    assert get(sim, "/organization/costs", params).status_code == 503
    assert get(sim, "/organization/usage/embeddings", params).status_code == 200
