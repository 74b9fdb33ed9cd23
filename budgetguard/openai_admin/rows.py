"""Usage pages straight to row tuples: the collector's fast path, exactly as strict.

A backfill is millions of results; a pydantic model per result costs more than everything
else the collector does. This parses a usage page's JSON once and checks each result against
a field table derived from the result models themselves (so the two cannot drift): every
required count present, counts JSON integers >= 0 (no ``"5"``, ``5.5`` or ``true``), an
optional metric ``null`` or absent, dimensions strings, ``batch`` a boolean, unknown fields
ignored, the ``sessions`` and ``result`` aliases honoured. A result of another ``object``
fails the page as ``PageCheck`` would. Costs pages keep the models (few rows, exact money).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import AliasChoices, TypeAdapter, ValidationError

from budgetguard.openai_admin.errors import ResponseFormatError
from budgetguard.openai_admin.models import RESULT_MODELS, CostsResult

__all__ = ["RowPage", "parse_rows"]


@dataclass(frozen=True, slots=True)
class _Spec:
    """How to read one result object: (column, API names, required) per count field, and
    the kind (``str`` or ``bool``) of every other field a column may name."""

    counts: dict[str, tuple[tuple[str, ...], bool]]
    others: dict[str, type]


def _spec(model: type[Any]) -> _Spec:
    counts: dict[str, tuple[tuple[str, ...], bool]] = {}
    others: dict[str, type] = {}
    for name, field in model.model_fields.items():
        if name == "object":
            continue
        alias = field.validation_alias
        names = tuple(alias.choices) if isinstance(alias, AliasChoices) else (name,)
        kinds = {a for a in get_args(field.annotation) or (field.annotation,) if a is not None}
        kinds.discard(type(None))
        if kinds <= {int} or any(getattr(a, "__origin__", None) is not None for a in kinds):
            counts[name] = (tuple(str(n) for n in names), field.is_required())
        elif kinds <= {str}:
            others[name] = str
        elif kinds <= {bool}:
            others[name] = bool
    return _Spec(counts, others)


_SPECS = {tag: _spec(model) for tag, model in RESULT_MODELS.items() if model is not CostsResult}


@dataclass(frozen=True, slots=True)
class RowPage:
    """One validated usage page: its buckets' ``(start, end)`` and one tuple per result,
    ``(bucket_start, *dims, *metrics)`` (an absent metric is 0, an absent dimension None)."""

    bounds: list[tuple[int, int]]
    rows: list[tuple[Any, ...]]


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def parse_rows(
    name: str, expected_object: str, body: bytes, dims: Sequence[str], metrics: Sequence[str]
) -> RowPage:
    """Validate a usage page and return its rows; ``ResponseFormatError`` names the first
    fault (``json.JSONDecodeError`` for a body that is not JSON, which callers retry)."""
    page = json.loads(body)

    def fail(where: str, what: str) -> ResponseFormatError:
        return ResponseFormatError(
            f"{name}: the response does not match the API's page format: {where}: {what}",
            endpoint=name,
        )

    if not isinstance(page, dict) or page.get("object", "page") != "page":
        raise fail("object", "not a page")
    data = page.get("data")
    if not isinstance(data, list):
        raise fail("data", "a list is required")
    spec = _SPECS.get(expected_object)
    if spec is None:  # pragma: no cover - every usage endpoint has a model
        raise fail("object", f"no model for {expected_object!r}")
    wanted_counts = [(m, spec.counts[m]) for m in metrics if m in spec.counts]
    metric_at = {m: i for i, m in enumerate(metrics)}
    stored = [(d, spec.others.get(d)) for d in dims]
    checked = [(d, kind) for d, kind in spec.others.items() if d not in dims]
    extra_counts = [(c, n, req) for c, (n, req) in spec.counts.items() if c not in metric_at]
    bounds: list[tuple[int, int]] = []
    rows: list[tuple[Any, ...]] = []
    zeros = [0] * len(metrics)
    for b, bucket in enumerate(data):
        if not isinstance(bucket, dict) or bucket.get("object", "bucket") != "bucket":
            raise fail(f"data.{b}", "not a bucket")
        start, end = bucket.get("start_time"), bucket.get("end_time")
        if type(start) is not int or type(end) is not int:
            raise fail(f"data.{b}", "start_time and end_time must be integers")
        results = bucket["results"] if "results" in bucket else bucket.get("result")
        if results is None:
            results = ()
        elif not isinstance(results, list):
            raise fail(f"data.{b}.results", "a list is required")
        bounds.append((start, end))
        for r, result in enumerate(results):
            where = f"data.{b}.results.{r}"
            if not isinstance(result, dict):
                raise fail(where, "not an object")
            obj = result.get("object")
            if obj != expected_object:
                raise ResponseFormatError(
                    f"{name}: the API returned an incomplete or malformed page (a result is "
                    f"{obj!r}, not {expected_object!r}); nothing of this query was stored",
                    endpoint=name,
                )
            values = zeros.copy()
            for column, (names, required) in wanted_counts:
                value = _count(result, names, required, where, fail)
                if value:
                    values[metric_at[column]] = value
            for _column, names, required in extra_counts:  # checked, not stored
                _count(result, names, required, where, fail)
            row: list[Any] = [start]
            for dim, kind in stored:
                row.append(None if kind is None else _other(result, dim, kind, where, fail))
            for dim, kind in checked:
                _other(result, dim, kind, where, fail)
            rows.append((*row, *values))
    return RowPage(bounds, rows)


_LAX_BOOL: TypeAdapter[bool] = TypeAdapter(bool)


def _other(result: dict[str, Any], key: str, kind: type, where: str, fail: Any) -> Any:
    """A string or boolean field, as the models read it (a boolean also from pydantic's lax
    forms such as ``"true"`` or ``1``)."""
    value = result.get(key)
    if value is None or type(value) is kind:
        return value
    if kind is bool:
        try:
            return _LAX_BOOL.validate_python(value)
        except ValidationError:
            pass
    raise fail(f"{where}.{key}", f"a {kind.__name__} or null is required")


def _count(
    result: dict[str, Any], names: tuple[str, ...], required: bool, where: str, fail: Any
) -> int:
    for key in names:
        if key in result:
            value = result[key]
            if value is None and not required:
                return 0
            if not _is_count(value):
                raise fail(f"{where}.{key}", "a non-negative integer is required")
            return int(value)
    if required:
        raise fail(f"{where}.{names[0]}", "field required")
    return 0
