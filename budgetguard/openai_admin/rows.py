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
    ``(bucket_start, *dims, *metrics)`` (an absent or null metric is 0 or None, an absent
    dimension None)."""

    bounds: list[tuple[int, int]]
    rows: list[tuple[Any, ...]]
    #: where each bucket's rows begin in ``rows`` (and, last, their end)
    offsets: list[int]


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

    if not isinstance(page, dict) or page.get("object") != "page":
        raise fail("object", "not a page")
    data = page.get("data")
    if not isinstance(data, list):
        raise fail("data", "a list is required")
    spec = _SPECS.get(expected_object)
    if spec is None:  # pragma: no cover - every usage endpoint has a model
        raise fail("object", f"no model for {expected_object!r}")
    fast = _Fast(spec, dims, metrics)
    careful = _Careful(spec, dims, metrics)
    bounds: list[tuple[int, int]] = []
    rows: list[tuple[Any, ...]] = []
    offsets: list[int] = []
    for b, bucket in enumerate(data):
        if not isinstance(bucket, dict) or bucket.get("object") != "bucket":
            raise fail(f"data.{b}", "not a bucket")
        start, end = bucket.get("start_time"), bucket.get("end_time")
        if type(start) is not int or type(end) is not int:
            raise fail(f"data.{b}", "start_time and end_time must be integers")
        # an empty bucket still says ``results: []``: a missing or null list is no data,
        # never zero usage
        results = bucket["results"] if "results" in bucket else bucket.get("result")
        if not isinstance(results, list):
            raise fail(f"data.{b}.results", "a list is required")
        bounds.append((start, end))
        offsets.append(len(rows))
        if len(results) > 1 and _repeats(results, spec):
            raise fail(f"data.{b}.results", "two results with the same dimensions")
        for r, result in enumerate(results):
            if type(result) is dict and result.get("object") == expected_object:
                row = fast.row(start, result)
                if row is not None:
                    rows.append(row)
                    continue
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
            rows.append(careful.row(start, result, where, fail))
    offsets.append(len(rows))
    return RowPage(bounds, rows, offsets)


def _repeats(results: list[Any], spec: _Spec) -> bool:
    """Two results of one bucket with the same dimensions: a page counted twice, which
    would double its usage."""
    keys = spec.others
    try:
        seen = {tuple(r.get(k) for k in keys) if isinstance(r, dict) else id(r) for r in results}
    except TypeError:  # a list or object as a dimension: the result's own check names it
        return False
    return len(seen) < len(results)


_ABSENT = "\x00absent"  # a key no result has: reads as None
_COUNT_TYPES = frozenset({int, type(None)})
_STR_TYPES = frozenset({str, type(None)})
_BOOL_TYPES = frozenset({bool, type(None)})


class _Fast:
    """The common case in a few C-level passes per result: every field of the expected
    type, no alias in play. ``row`` returns None for anything else (``_Careful`` then
    finds the fault, or reads a lax form the models accept)."""

    def __init__(self, spec: _Spec, dims: Sequence[str], metrics: Sequence[str]) -> None:
        self.usable = all(len(names) == 1 for names, _ in spec.counts.values())
        extra = [c for c in spec.counts if c not in metrics]
        self.count_keys = [m if m in spec.counts else _ABSENT for m in metrics] + extra
        order = {k: i for i, k in enumerate(self.count_keys)}
        self.required = [order[c] for c, (_, req) in spec.counts.items() if req]
        self.n_metrics = len(metrics)
        self.dim_keys = [d if d in spec.others else _ABSENT for d in dims]
        self.str_keys = [k for k, kind in spec.others.items() if kind is str]
        self.bool_keys = [k for k, kind in spec.others.items() if kind is bool]

    def row(self, start: int, result: dict[str, Any]) -> tuple[Any, ...] | None:
        if not self.usable:
            return None
        get = result.get
        counts = tuple(map(get, self.count_keys))
        if not _COUNT_TYPES.issuperset(map(type, counts)):
            return None
        if min(filter(None, counts), default=1) < 0:
            return None
        for i in self.required:
            if counts[i] is None:
                return None
        if not _STR_TYPES.issuperset(map(type, map(get, self.str_keys))):
            return None
        if self.bool_keys and not _BOOL_TYPES.issuperset(map(type, map(get, self.bool_keys))):
            return None
        return (start, *map(get, self.dim_keys), *counts[: self.n_metrics])


class _Careful:
    """Field by field, naming the first fault: the path of results ``_Fast`` declines."""

    def __init__(self, spec: _Spec, dims: Sequence[str], metrics: Sequence[str]) -> None:
        self.counts = [(i, spec.counts.get(m)) for i, m in enumerate(metrics)]
        self.extra = [count for c, count in spec.counts.items() if c not in metrics]
        self.stored = [(d, spec.others.get(d)) for d in dims]
        self.checked = [(d, kind) for d, kind in spec.others.items() if d not in dims]
        self.n_metrics = len(metrics)

    def row(self, start: int, result: dict[str, Any], where: str, fail: Any) -> tuple[Any, ...]:
        values = [0] * self.n_metrics
        for i, count in self.counts:
            if count is not None:
                values[i] = _count(result, *count, where, fail)
        for names, required in self.extra:  # checked, not stored
            _count(result, names, required, where, fail)
        row: list[Any] = [start]
        for dim, kind in self.stored:
            row.append(None if kind is None else _other(result, dim, kind, where, fail))
        for dim, kind in self.checked:
            _other(result, dim, kind, where, fail)
        return (*row, *values)


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
            if type(value) is not int or value < 0:
                raise fail(f"{where}.{key}", "a non-negative integer is required")
            return int(value)
    if required:
        raise fail(f"{where}.{names[0]}", "field required")
    return 0
