"""The client's models (tolerant parsing) and query validation (before anything is sent)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from budgetguard.providers.openai import ENDPOINTS, InvalidQueryError, Page, Query, parse_result
from budgetguard.providers.openai.models import (
    CodeInterpreterSessionsResult,
    CompletionsResult,
    CostsResult,
    UnknownResult,
)
from budgetguard.rules.vocabulary import ENDPOINTS as RULE_ENDPOINTS
from budgetguard.simulator.spec import load_spec

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_the_endpoint_tables_agree_with_the_spec() -> None:
    spec_paths = {path.rsplit("/", 1)[-1]: path for path in load_spec()["paths"]}
    assert len(spec_paths) == 11
    assert {name: ep.path for name, ep in ENDPOINTS.items()} == spec_paths
    assert set(RULE_ENDPOINTS) == set(spec_paths) - {"costs"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.06, Decimal("0.06")),
        ("0.1739150000000000000000000000", Decimal("0.173915")),
        (Decimal("109.38197322500001"), Decimal("109.38197322500001")),
        (3, Decimal(3)),
    ],
)
def test_amount_number_or_string_is_exact_decimal(value: object, expected: Decimal) -> None:
    result = parse_result(
        {"object": "organization.costs.result", "amount": {"value": value, "currency": "USD"}}
    )
    assert isinstance(result, CostsResult)
    assert result.amount is not None
    assert result.amount.value == expected
    assert isinstance(result.amount.value, Decimal)
    assert result.amount.currency == "usd"
    assert result.amount.is_currency("USD")


def test_old_sessions_name_and_old_result_key_and_unknown_fields() -> None:
    page = Page.model_validate(
        {
            "object": "page",
            "has_more": False,
            "next_page": None,
            "data": [
                {
                    "object": "bucket",
                    "start_time": 0,
                    "end_time": 60,
                    "result": [
                        {
                            "object": "organization.usage.code_interpreter_sessions.result",
                            "sessions": 4,
                            "brand_new_field": True,
                        },
                        {"object": "organization.usage.decisions.result", "num_decisions": 2},
                    ],
                }
            ],
        }
    )
    first, second = page.data[0].results
    assert isinstance(first, CodeInterpreterSessionsResult)
    assert first.num_sessions == 4
    assert isinstance(second, UnknownResult)


def test_missing_required_metric_is_an_error_not_zero() -> None:
    with pytest.raises(ValueError, match="output_tokens"):
        parse_result(
            {
                "object": "organization.usage.completions.result",
                "input_tokens": 1,
                "num_model_requests": 1,
            }
        )


def test_optional_breakdowns_default() -> None:
    result = parse_result(
        {
            "object": "organization.usage.completions.result",
            "input_tokens": 10,
            "output_tokens": 5,
            "num_model_requests": 1,
        }
    )
    assert isinstance(result, CompletionsResult)
    assert result.input_cached_tokens is None  # absent: the store counts it as 0
    assert result.project_id is None


def test_limit_defaults_to_the_maximum_for_the_width() -> None:
    assert Query.build("completions", start_time=T0, bucket_width="1d").effective_limit == 31
    assert Query.build("completions", start_time=T0, bucket_width="1h").effective_limit == 168
    assert Query.build("completions", start_time=T0, bucket_width="1m").effective_limit == 1440
    assert Query.build("costs", start_time=T0).effective_limit == 180


def test_params_use_repeated_keys_and_lowercase_booleans() -> None:
    q = Query.build(
        "completions",
        start_time=T0,
        end_time=T0 + timedelta(days=1),
        bucket_width="1h",
        group_by=["project_id", "model"],
        limit=10,
        project_ids=["proj_a", "proj_b"],
        batch=False,
    )
    assert q.params("cur") == [
        ("start_time", str(int(T0.timestamp()))),
        ("end_time", str(int(T0.timestamp()) + 86400)),
        ("bucket_width", "1h"),
        ("limit", "10"),
        ("group_by", "project_id"),
        ("group_by", "model"),
        ("batch", "false"),
        ("project_ids", "proj_a"),
        ("project_ids", "proj_b"),
        ("page", "cur"),
    ]


def test_times_may_be_ints_or_aware_datetimes() -> None:
    tz = timezone(timedelta(hours=2))
    q = Query.build(
        "embeddings", start_time=datetime(2026, 11, 1, 2, tzinfo=tz), end_time=2_000_000_000
    )
    assert q.start_time == int(T0.timestamp())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bucket_width": "1w"}, "bucket_width '1w' not allowed"),
        (
            {"endpoint": "costs", "bucket_width": "1h"},
            "bucket_width '1h' not allowed; use one of 1d",
        ),
        ({"limit": 32}, "limit 32 out of range 1..31"),
        ({"limit": 0}, "limit 0 out of range"),
        ({"endpoint": "costs", "limit": 181}, "out of range 1..180"),
        ({"group_by": ["line_item"]}, "cannot group by 'line_item'"),
        ({"endpoint": "vector_stores", "group_by": ["model"]}, "cannot group by 'model'"),
        ({"group_by": ["model", "model"]}, "twice"),
        ({"sizes": ["1024x1024"]}, "unknown filter 'sizes'"),
        ({"endpoint": "images", "sizes": ["999x999"]}, "'999x999' not allowed"),
        ({"endpoint": "web_search_calls", "context_levels": ["huge"]}, "'huge' not allowed"),
        ({"project_ids": "proj_a"}, "must be a list"),
        ({"project_ids": []}, "must not be empty"),
        ({"batch": "yes"}, "batch must be true or false"),
        ({"end_time": T0}, "start_time must be before end_time"),
        ({"start_time": datetime(2026, 11, 1)}, "timezone-aware"),
        ({"endpoint": "nope"}, "unknown endpoint 'nope'"),
    ],
)
def test_invalid_queries_say_what(kwargs: dict[str, object], message: str) -> None:
    endpoint = kwargs.pop("endpoint", "completions")
    kwargs.setdefault("start_time", T0)
    with pytest.raises(InvalidQueryError, match=message.replace("(", r"\(")):
        Query.build(endpoint, **kwargs)  # type: ignore[arg-type]


def test_newer_parameters_are_accepted() -> None:
    Query.build("costs", start_time=T0, group_by=["api_source", "user_id"])
    Query.build("completions", start_time=T0, group_by=["api_source"])
    Query.build(
        "file_search_calls", start_time=T0, vector_store_ids=["vs_1"], group_by=["vector_store_id"]
    )
