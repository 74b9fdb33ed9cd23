"""Usage pages straight to columns: the collector's fast path, exactly as strict.

A backfill is millions of results; a pydantic model per result costs more than everything
else the collector does. Every usage result is checked against a field table derived from the
result models themselves (so the two cannot drift): every required count present, counts JSON
integers >= 0 (no ``"5"``, ``5.5`` or ``true``), an optional metric ``null`` or absent,
dimensions strings, ``batch`` a boolean, unknown fields ignored, the ``sessions`` and
``result`` aliases honoured. A result of another ``object`` fails the page as ``PageCheck``
would. Costs pages keep the models (few rows, exact money).

Two readers share that table. ``_Typed`` decodes the whole page in C (msgspec structs built
from the table, every field strict) and reads the columns off the structs: no dict or tuple
per result. It accepts only pages the dict reader would accept, with the same figures, and
declines anything else (a fault, the old ``sessions`` name, a lax boolean, text only
``json`` reads); the dict reader (``json``, then each result by the table) then names the
fault or reads it. ``tests/test_rows.py`` holds the two to the same answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import msgspec
from pydantic import AliasChoices, TypeAdapter, ValidationError

from budgetguard.providers.openai.errors import ResponseFormatError
from budgetguard.providers.openai.models import MAX_COUNT, RESULT_MODELS, CostsResult

if TYPE_CHECKING:
    import numpy as np

__all__ = ["RowPage", "parse_rows", "read_dicts"]


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
    """One validated usage page in columns: its buckets' ``(start, end)``, where each
    bucket's rows begin (and, last, their end), the page's distinct ``dims`` tuples (an
    absent dimension None), and per row the index of its tuple and its bucket start; per
    metric of ``metrics`` the endpoint reports, its value in each row (absent or null: 0)."""

    bounds: list[tuple[int, int]]
    offsets: list[int]
    groups: list[tuple[Any, ...]]
    gid: np.ndarray
    starts: np.ndarray
    metrics: dict[str, np.ndarray]

    @property
    def size(self) -> int:
        """The page's rows (results)."""
        return len(self.gid)


def parse_rows(
    name: str,
    expected_object: str,
    body: bytes,
    dims: Sequence[str],
    metrics: Sequence[str],
    first: int = 0,
) -> RowPage:
    """Validate a usage page and return its rows; ``ResponseFormatError`` names the first
    fault (``json.JSONDecodeError`` for a body that is not JSON, which callers retry).
    ``first``: the index of the body's first bucket in the page it is part of (a streamed
    page is read a few buckets at a time), for the messages."""
    typed = _typed(expected_object, tuple(dims), tuple(metrics))
    read = None if typed is None else typed.read(body)
    if read is not None:
        return read
    return read_dicts(name, expected_object, body, dims, metrics, first)


def read_dicts(
    name: str,
    expected_object: str,
    body: bytes,
    dims: Sequence[str],
    metrics: Sequence[str],
    first: int = 0,
) -> RowPage:
    """``parse_rows`` by the dict reader alone (what the typed reader must agree with)."""
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
    careful = _Careful(spec, dims, metrics)
    bounds: list[tuple[int, int]] = []
    rows: list[tuple[Any, ...]] = []
    offsets: list[int] = []
    for b, bucket in enumerate(data, first):
        if not isinstance(bucket, dict) or bucket.get("object") != "bucket":
            raise fail(f"data.{b}", "not a bucket")
        start, end = bucket.get("start_time"), bucket.get("end_time")
        if type(start) is not int or type(end) is not int:
            raise fail(f"data.{b}", "start_time and end_time must be integers")
        if not (0 <= start <= MAX_COUNT and 0 <= end <= MAX_COUNT):  # no instant is out there
            raise fail(f"data.{b}", f"start_time and end_time must be within 0..{MAX_COUNT}")
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
    return _columns(bounds, offsets, rows, len(dims), metrics, spec)


def _columns(
    bounds: list[tuple[int, int]],
    offsets: list[int],
    rows: list[tuple[Any, ...]],
    n_dims: int,
    metrics: Sequence[str],
    spec: _Spec,
) -> RowPage:
    """The ``RowPage`` of the dict reader's ``(start, *dims, *metrics)`` rows."""
    import numpy as np

    index: dict[tuple[Any, ...], int] = {}
    gid = [index.setdefault(tuple(r[1 : 1 + n_dims]), len(index)) for r in rows]
    columns = list(zip(*rows, strict=True)) or [()] * (1 + n_dims + len(metrics))
    values = {
        m: np.array([v or 0 for v in columns[1 + n_dims + i]], dtype=np.int64)
        for i, m in enumerate(metrics)
        if m in spec.counts
    }
    return RowPage(
        bounds,
        offsets,
        list(index),
        np.array(gid, dtype=np.int64),
        np.array(columns[0], dtype=np.int64),
        values,
    )


_Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]
#: a bucket's bound (Unix seconds): past 2^53 it is no instant, and would not fit int64
_Time = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]


class _Typed:
    """The dict reader's checks as msgspec structs (one per result, no dict): ``read``
    returns None for any page the structs refuse, or whose buckets repeat a result."""

    def __init__(
        self, expected_object: str, spec: _Spec, dims: Sequence[str], metrics: Sequence[str]
    ):
        fields: list[tuple[str, Any, Any]] = [
            ("object", Literal[expected_object], msgspec.NODEFAULT)
        ]
        for column, (names, required) in spec.counts.items():
            count: Any = _Count if required else _Count | None
            default = msgspec.NODEFAULT if required else None
            fields.append((column, count, msgspec.field(default=default, name=names[0])))
        for column, kind in spec.others.items():
            fields.append((column, kind | None, None))
        result: Any = msgspec.defstruct("Result", fields, kw_only=True, gc=False)
        results: Any = list[result] | msgspec.UnsetType
        bucket: Any = msgspec.defstruct(
            "Bucket",
            [
                ("object", Literal["bucket"]),
                ("start_time", _Time),
                ("end_time", _Time),
                # ``results``, else the old name ``result``: neither is no data, never zero
                ("results", results, msgspec.UNSET),
                ("result", results, msgspec.UNSET),
            ],
            gc=False,
        )
        page = msgspec.defstruct(
            "Page", [("object", Literal["page"]), ("data", list[bucket])], gc=False
        )
        self.decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(page)
        others = list(spec.others)
        #: what tells two results of a bucket apart (as ``_repeats``): every str or bool field
        self.identity: Callable[[Any], tuple[Any, ...]] = (
            attrgetter(*others) if len(others) > 1 else lambda r: (getattr(r, others[0]),)
        )
        self.dims = [others.index(d) if d in spec.others else None for d in dims]
        self.metrics = [m for m in metrics if m in spec.counts]

    def read(self, body: bytes) -> RowPage | None:
        import numpy as np

        try:
            page = self.decoder.decode(body)
        except msgspec.MsgspecError:
            return None
        lists = [b.result if b.results is msgspec.UNSET else b.results for b in page.data]
        if msgspec.UNSET in lists:
            return None
        bounds = [(b.start_time, b.end_time) for b in page.data]
        sizes = list(map(len, lists))
        results = list(chain.from_iterable(lists))
        keys = list(map(self.identity, results))
        index = dict.fromkeys(keys, 0)
        for i, key in enumerate(index):
            index[key] = i
        ids = list(map(index.__getitem__, keys))
        offsets = [0]
        for size in sizes:
            lo = offsets[-1]
            offsets.append(lo + size)
            if size > 1 and len(set(ids[lo : lo + size])) < size:
                return None  # the dict reader names the bucket
        # an identity's dims tuple (dims are some of its fields): distinct identities may
        # share one, so gids index the distinct dims tuples
        groups: dict[tuple[Any, ...], int] = {}
        to_group = [
            groups.setdefault(
                tuple(None if at is None else key[at] for at in self.dims), len(groups)
            )
            for key in index
        ]
        values = {}
        for name in self.metrics:
            column = list(map(attrgetter(name), results))
            if None in column:
                column = [v or 0 for v in column]
            values[name] = np.array(column, dtype=np.int64)
        return RowPage(
            bounds,
            offsets,
            list(groups),
            np.array(to_group, dtype=np.int64)[np.array(ids, dtype=np.int64)],
            np.repeat(np.array([s for s, _ in bounds], dtype=np.int64), sizes),
            values,
        )


@cache
def _typed(expected_object: str, dims: tuple[str, ...], metrics: tuple[str, ...]) -> _Typed | None:
    spec = _SPECS.get(expected_object)
    return None if spec is None or not spec.others else _Typed(expected_object, spec, dims, metrics)


def _repeats(results: list[Any], spec: _Spec) -> bool:
    """Two results of one bucket with the same dimensions, as they will be read (``"true"``
    and ``true`` are one ``batch``): a page counted twice, which would double its usage."""
    kinds = list(spec.others.items())
    try:
        seen = {
            tuple(_as_read(r.get(k), kind) for k, kind in kinds) if isinstance(r, dict) else id(r)
            for r in results
        }
    except TypeError:  # a list or object as a dimension: the result's own check names it
        return False
    return len(seen) < len(results)


def _as_read(value: Any, kind: type) -> Any:
    """A dimension as ``_other`` reads it, where it reads it at all (else as it is)."""
    if kind is bool and value is not None and type(value) is not bool:
        try:
            return _LAX_BOOL.validate_python(value)
        except ValidationError:
            return value
    return value


class _Careful:
    """The dict reader of one result: field by field, naming the first fault."""

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
            if value > MAX_COUNT:
                raise fail(
                    f"{where}.{key}", f"a count of at most 2^53 - 1 ({MAX_COUNT}) is required"
                )
            return int(value)
    if required:
        raise fail(f"{where}.{names[0]}", "field required")
    return 0
