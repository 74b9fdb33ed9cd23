"""The usage fast path: the typed reader agrees with the dict reader on every page.

``parse_rows`` reads a page with msgspec structs and falls back to the dict reader when they
decline; so whatever a page holds (wrong types, negative or huge counts, nulls, aliases, lax
booleans, repeated results, unknown fields), ``parse_rows`` must give exactly what the dict
reader gives: the same rows or the same error.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetguard.providers.openai.errors import ResponseFormatError
from budgetguard.providers.openai.models import RESULT_MODELS
from budgetguard.providers.openai.rows import RowPage, _typed, parse_rows, read_dicts
from budgetguard.store import USAGE_METRICS
from budgetguard.store.rollups import ROLLUP_DIMENSIONS

T0 = 1_795_334_400
H = 3600
COMPLETIONS = "organization.usage.completions.result"
# an endpoint with an alias, one with a single dimension, one with size and source
ENDPOINTS = [
    COMPLETIONS,
    "organization.usage.code_interpreter_sessions.result",
    "organization.usage.vector_stores.result",
    "organization.usage.images.result",
]
_MISSING = object()

_ABSENT = st.sampled_from([None, _MISSING])
#: what a field may hold in a clean page, and what else a broken one may hold instead
_COUNT = (st.integers(0, 10**6), st.sampled_from([-1, 2**63, 2**64 + 1, 1.0, 5.5, "5", True]))
_TEXT = (st.sampled_from(["a", "b", "proj_1", "é"]), st.sampled_from([1, True, ["a"]]))
_BOOL = (st.booleans(), st.sampled_from(["true", "false", 1, 0, "x", 2.5]))


def _fields(tag: str) -> list[tuple[str, bool, tuple[st.SearchStrategy[Any], ...]]]:
    """Each field of the result model but ``object``: name, required, its values."""
    out = []
    for name, field in RESULT_MODELS[tag].model_fields.items():
        if name != "object":
            kind = {bool | None: _BOOL, str | None: _TEXT}.get(field.annotation, _COUNT)
            out.append((name, field.is_required(), kind))
    return out


def identity(tag: str, result: dict[str, Any]) -> tuple[Any, ...]:
    """What tells two results of a bucket apart: their text and boolean fields."""
    return tuple(result.get(name) for name, _, kind in _fields(tag) if kind is not _COUNT)


@st.composite
def result(draw: st.DrawFn, tag: str, clean: bool) -> dict[str, Any]:
    """A result of ``tag``; unless ``clean``, now and then one field is wrong, null or
    missing, or the object or a field's name is another."""
    fields = _fields(tag)
    broken = None
    if not clean and not draw(st.integers(0, 5)):
        broken = draw(st.sampled_from(["object", *(name for name, _, _ in fields)]))
    out: dict[str, Any] = {"object": tag}
    if broken == "object":
        out["object"] = draw(st.sampled_from([tag.replace(".result", ".item"), 5, None]))
    for name, required, (good, bad) in fields:
        value = draw(good if required else st.one_of(good, good, _ABSENT))
        if name == broken:
            value = draw(st.one_of(bad, _ABSENT, good))
            if name == "num_sessions" and draw(st.booleans()):
                name = "sessions"  # noqa: PLW2901 - the old name of the field
        if value is not _MISSING:
            out[name] = value
    if draw(st.booleans()):
        out["a_field_from_2027"] = draw(st.sampled_from([1, "x", None, [1, {"a": 2}]]))
    return out


@st.composite
def body(draw: st.DrawFn, clean: bool = False) -> tuple[str, bytes]:
    tag = draw(st.sampled_from(ENDPOINTS))
    buckets = []
    for n in range(draw(st.integers(0, 4))):
        results = draw(st.lists(result(tag, clean), max_size=5))
        if clean:  # one result per identity, as the API sends them
            results = list({identity(tag, r): r for r in results}.values())
        elif results and not draw(st.integers(0, 10)):
            results.append(dict(results[0]))  # a result twice
        bucket: dict[str, Any] = {
            "object": "bucket",
            "start_time": T0 + n * H,
            "end_time": T0 + (n + 1) * H,
        }
        key = "results" if draw(st.integers(0, 10)) else "result"  # the old name
        bucket[key] = results
        if not clean and not draw(st.integers(0, 30)):
            bucket[draw(st.sampled_from(["object", "start_time", "results"]))] = None
        buckets.append(bucket)
    return tag, json.dumps({"object": "page", "data": buckets, "has_more": False}).encode()


def outcome(read: Any, tag: str, raw: bytes) -> tuple[Any, ...]:
    """What a reader made of a page: its rows in full, or the error it raised."""
    try:
        page: RowPage = read("completions", tag, raw, ROLLUP_DIMENSIONS, USAGE_METRICS)
    except (ResponseFormatError, OverflowError) as exc:
        return ("error", type(exc).__name__, str(exc))
    metrics = sorted(page.metrics)
    rows = [
        (
            int(page.starts[i]),
            repr(page.groups[page.gid[i]]),
            *(int(page.metrics[m][i]) for m in metrics),
        )
        for i in range(page.size)
    ]
    return ("rows", page.bounds, page.offsets, metrics, rows)


@settings(max_examples=400, deadline=None)
@given(body())
def test_parse_rows_gives_what_the_dict_reader_gives(case: tuple[str, bytes]) -> None:
    tag, raw = case
    assert outcome(parse_rows, tag, raw) == outcome(read_dicts, tag, raw)


@settings(max_examples=150, deadline=None)
@given(body(clean=True))
def test_the_typed_reader_reads_every_clean_page(case: tuple[str, bytes]) -> None:
    tag, raw = case
    typed = _typed(tag, ROLLUP_DIMENSIONS, USAGE_METRICS)
    assert typed is not None
    assert typed.read(raw) is not None  # the fast path, not the fallback
    assert outcome(parse_rows, tag, raw) == outcome(read_dicts, tag, raw)


@pytest.mark.parametrize(
    "text",
    [
        '{"object":"page","data":[],"note":NaN}',  # only json reads NaN
        '\ufeff{"object":"page","data":[]}',  # a byte-order mark
        '{"object":"page","data":[],"note":"\\ud800"}',  # a lone surrogate
    ],
)
def test_json_only_forms_are_read_by_the_dict_reader(text: str) -> None:
    raw = text.encode()
    typed = _typed(COMPLETIONS, ROLLUP_DIMENSIONS, USAGE_METRICS)
    assert typed is not None and typed.read(raw) is None
    read = outcome(parse_rows, COMPLETIONS, raw)
    assert read[:3] == ("rows", [], [0])
    assert read == outcome(read_dicts, COMPLETIONS, raw)


def test_a_list_as_a_dimension_fails_the_page_not_the_reader() -> None:
    twice = {"object": COMPLETIONS, "input_tokens": 1, "output_tokens": 1, "num_model_requests": 1}
    twice["project_id"] = ["a"]
    bucket = {"object": "bucket", "start_time": T0, "end_time": T0 + H, "results": [twice] * 2}
    raw = json.dumps({"object": "page", "data": [bucket], "has_more": False}).encode()
    with pytest.raises(ResponseFormatError, match=r"results\.0\.project_id: a str or null"):
        parse_rows("completions", COMPLETIONS, raw, ROLLUP_DIMENSIONS, USAGE_METRICS)


def _page(*buckets: dict[str, Any]) -> bytes:
    return json.dumps({"object": "page", "data": list(buckets), "has_more": False}).encode()


@pytest.mark.parametrize("start", [2**63, 2**64, -(2**63) - 1, -1])
def test_a_bucket_bound_that_is_no_instant_fails_the_page_not_the_reader(start: int) -> None:
    one = {"object": COMPLETIONS, "input_tokens": 1, "output_tokens": 1, "num_model_requests": 1}
    for results in ([], [one]):
        raw = _page({"object": "bucket", "start_time": start, "end_time": T0, "results": results})
        with pytest.raises(ResponseFormatError, match="start_time and end_time must be within"):
            parse_rows("completions", COMPLETIONS, raw, ROLLUP_DIMENSIONS, USAGE_METRICS)


@pytest.mark.parametrize("lax", ["true", 1, "True"])
def test_a_result_repeated_with_a_lax_boolean_is_still_a_repeat(lax: Any) -> None:
    """``batch: "true"`` and ``batch: true`` are read as one batch: counting both would
    double the bucket's usage."""
    one = {"object": COMPLETIONS, "input_tokens": 7, "output_tokens": 1, "num_model_requests": 1}
    twice = [{**one, "batch": True}, {**one, "batch": lax}]
    raw = _page({"object": "bucket", "start_time": T0, "end_time": T0 + H, "results": twice})
    with pytest.raises(ResponseFormatError, match="two results with the same dimensions"):
        parse_rows("completions", COMPLETIONS, raw, ROLLUP_DIMENSIONS, USAGE_METRICS)
