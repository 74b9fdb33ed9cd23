"""Page validation rule by rule (the fault matrix attacks the same rules over HTTP)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from budgetguard.providers.openai import (
    PageCheck,
    PaginationError,
    Query,
    ResponseFormatError,
    max_pages,
)
from budgetguard.providers.openai.models import Page

H = 3600
T0 = 1_795_334_400  # 2026-11-22T08:00:00Z, on an hour and 8 hours after a midnight
CLOCK = float(T0 + 10 * H + 17)


def usage(n: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": n,
        "output_tokens": n,
        "num_model_requests": 1,
        **fields,
    }


def bucket(start: int, width: int = H, results: list[Any] | None = None) -> dict[str, Any]:
    return {
        "object": "bucket",
        "start_time": start,
        "end_time": (start // width + 1) * width,
        "results": [usage()] if results is None else results,
    }


def page(*buckets: dict[str, Any], has_more: bool = False) -> Page:
    return Page.parse({"object": "page", "data": list(buckets), "has_more": has_more})


def check(query: Query, *pages: Page, clock: float = CLOCK) -> tuple[int, int]:
    checker = PageCheck(query, lambda: clock)
    for p in pages:
        checker.check(p)
    return checker.finish()


def hourly(start: int = T0, end: int | None = T0 + 3 * H) -> Query:
    return Query.build("completions", start_time=start, end_time=end, bucket_width="1h")


def test_a_whole_range_is_covered() -> None:
    q = hourly()
    assert check(q, page(bucket(T0), bucket(T0 + H), has_more=True), page(bucket(T0 + 2 * H))) == (
        T0,
        T0 + 3 * H,
    )


def test_the_first_usage_bucket_may_start_off_the_boundary() -> None:
    q = hourly(start=T0 + 600)
    assert check(q, page(bucket(T0 + 600), bucket(T0 + H), bucket(T0 + 2 * H))) == (
        T0 + 600,
        T0 + 3 * H,
    )


def test_up_to_the_current_bucket_and_never_past_the_clock() -> None:
    q = hourly(end=T0 + 48 * H)  # asks past the clock: covered only up to it
    buckets = [bucket(T0 + h * H) for h in range(11)]  # the current hour included
    assert check(q, page(*buckets)) == (T0, int(CLOCK))
    assert check(q, page(*buckets[:10])) == (T0, T0 + 10 * H)  # the current one missing: fine
    with pytest.raises(ResponseFormatError, match="stop at"):
        check(q, page(*buckets[:9]))  # the last whole hour missing


@pytest.mark.parametrize(
    ("pages", "what"),
    [
        ([page()], "no buckets for the asked range"),
        ([page(bucket(T0), bucket(T0 + 2 * H))], "expected"),  # a gap
        ([page(bucket(T0), bucket(T0 + H), bucket(T0 + H))], "repeats"),
        ([page(bucket(T0 + H), bucket(T0 + 2 * H))], "expected"),  # shifted
        ([page(bucket(T0), bucket(T0 + H), bucket(T0 + 2 * H), bucket(T0 + 3 * H))], "outside"),
        ([page(bucket(T0), bucket(T0 + H), bucket(T0 + 2 * H, width=2 * H))], "aligned"),
        (
            [page(bucket(T0, results=[{**usage(), "object": "organization.usage.chats.result"}]))],
            "not 'organization.usage.completions.result'",
        ),
    ],
)
def test_what_fails_a_query(pages: list[Page], what: str) -> None:
    with pytest.raises(ResponseFormatError, match=what) as raised:
        check(hourly(), *pages)
    assert raised.value.message.startswith("completions: ")  # names the endpoint


def test_a_future_bucket_and_an_advancing_nothing_fail() -> None:
    q = hourly(end=None)
    with pytest.raises(ResponseFormatError, match="future"):
        check(q, page(*(bucket(T0 + h * H) for h in range(13))))
    with pytest.raises(PaginationError, match="does not advance"):
        check(q, page(has_more=True))


def test_costs_start_at_midnight_and_may_lack_today() -> None:
    midnight = T0 - 8 * H
    q = Query.build("costs", start_time=midnight - 2 * 86400, end_time=T0 + 10 * H)

    def day(start: int) -> dict[str, Any]:
        return bucket(
            start, 86400, [{"object": "organization.costs.result", "amount": {"value": 1}}]
        )

    assert check(q, page(day(midnight - 2 * 86400), day(midnight - 86400))) == (
        midnight - 2 * 86400,
        midnight,
    )
    with pytest.raises(ResponseFormatError):
        check(q, page(day(midnight - 2 * 86400)))  # yesterday missing


@pytest.mark.parametrize(
    "result",
    [
        usage(-1),  # a negative count
        usage(2**53),  # past the last JSON-exact integer: no real usage, and not summable
        usage(input_tokens="5"),  # a count as text
        usage(input_tokens=5.5),
        usage(input_tokens=None),  # a required count null
        {"object": "organization.usage.completions.result", "output_tokens": 1},  # missing
    ],
)
def test_counts_are_non_negative_integers(result: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        page(bucket(T0, results=[result]))


def test_a_null_optional_metric_is_absent_and_unknown_fields_are_ignored() -> None:
    parsed = page(bucket(T0, results=[usage(3, input_cached_tokens=None, extra_2027=1)]))
    result = parsed.data[0].results[0]
    assert result.input_cached_tokens is None  # type: ignore[union-attr]
    assert result.input_tokens == 3  # type: ignore[union-attr]


@pytest.mark.parametrize("value", [None, True, "abc", "NaN", "Infinity", [1]])
def test_an_amount_must_be_a_number(value: Any) -> None:
    result = {"object": "organization.costs.result", "amount": {"value": value, "currency": "usd"}}
    with pytest.raises(ValidationError):
        page(bucket(T0 - 8 * H, 86400, [result]))
    with pytest.raises(ValidationError):  # and present
        page(bucket(T0 - 8 * H, 86400, [{"object": "organization.costs.result"}]))


def test_the_page_bound_follows_the_range() -> None:
    assert max_pages(hourly(), int(CLOCK)) == 4  # 3 hours: 3 pages at most, plus one
    week = Query.build("completions", start_time=T0 - 7 * 86400, end_time=T0, bucket_width="1h")
    assert max_pages(week, int(CLOCK)) == 7 * 24 + 1


def cut(start: int, end: int) -> dict[str, Any]:
    """A usage bucket as the real API cuts it at a query's end (or its start)."""
    return {"object": "bucket", "start_time": start, "end_time": end, "results": [usage()]}


def test_the_last_bucket_may_end_at_the_moment_of_the_request() -> None:
    """OpenAI's cookbook output: a query without ``end_time`` ends with the current bucket
    cut at the request; it counts for what it covers, and coverage stops at the cut."""
    q = hourly(end=None)
    moment = T0 + 10 * H + 17
    buckets = [bucket(T0 + h * H) for h in range(10)]
    assert check(q, page(*buckets, cut(T0 + 10 * H, moment))) == (T0, moment)


def test_the_last_bucket_may_end_at_the_asked_end() -> None:
    q = hourly(end=T0 + 2 * H + 600)
    assert check(q, page(bucket(T0), bucket(T0 + H), cut(T0 + 2 * H, T0 + 2 * H + 600))) == (
        T0,
        T0 + 2 * H + 600,
    )
    # one bucket cut at both ends: the whole query inside one hour
    inside = hourly(start=T0 + 60, end=T0 + 600)
    assert check(inside, page(cut(T0 + 60, T0 + 600))) == (T0 + 60, T0 + 600)


def test_a_bucket_cut_anywhere_else_is_malformed() -> None:
    q = hourly(end=None)
    with pytest.raises(ResponseFormatError, match="follows a bucket cut"):
        check(q, page(cut(T0, T0 + 600), bucket(T0 + H)))
    with pytest.raises(ResponseFormatError, match="not the query's last"):
        check(q, page(cut(T0, T0 + 600), has_more=True), page(bucket(T0 + H)))
    with pytest.raises(ResponseFormatError, match="not the query's last"):
        check(q, page(bucket(T0), cut(T0 + H, T0 + H + 60), has_more=True))
    with pytest.raises(ResponseFormatError, match="not aligned"):  # past the asked end
        check(hourly(end=T0 + H + 600), page(bucket(T0), cut(T0 + H, T0 + H + 900)))
    with pytest.raises(ResponseFormatError, match="stop at"):  # short of the asked end
        check(hourly(end=T0 + 2 * H + 600), page(bucket(T0), cut(T0 + H, T0 + H + 900)))
    with pytest.raises(ResponseFormatError, match="not aligned"):  # in the future
        check(q, page(cut(T0, T0 + 10 * H)), clock=T0 + 5)


def test_costs_buckets_are_whole_days_never_cut() -> None:
    q = Query.build("costs", start_time=T0 - 8 * H, bucket_width="1d")
    day = T0 - 8 * H
    whole = {"object": "bucket", "start_time": day, "end_time": day + 24 * H, "results": []}
    assert check(q, page(whole)) == (T0 - 8 * H, int(CLOCK))  # today's ends in the future
    with pytest.raises(ResponseFormatError, match="not aligned"):
        check(q, page({**whole, "end_time": int(CLOCK)}))
