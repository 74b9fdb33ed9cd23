"""Usage pages read as they stream in: the same rows and the same faults as the whole page.

The splitter finds each bucket of ``data`` in the bytes as they arrive, whatever the chunks
(a quote, an escape or a bracket inside a string split anywhere); ``RowStream`` reads the
buckets a few at a time with the page readers, so a streamed page must give exactly what
``parse_rows`` gives for the whole body: its rows, or the same error naming the same bucket.
And a page many times the client's body cap is collected whole, since no page is held.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetguard.providers.openai.errors import ResponseFormatError
from budgetguard.providers.openai.row_stream import RowStream, Unparsed, envelope
from budgetguard.providers.openai.rows import RowPage, parse_rows
from budgetguard.providers.openai.splitter import BucketSplitter, Incomplete
from budgetguard.rules import load_rules_text
from budgetguard.rules.needs import plan_queries
from budgetguard.simulator import SimulatedAPI, SimulatorServer
from budgetguard.simulator.faults import FaultPlan
from budgetguard.simulator.org import Organisation
from budgetguard.store import USAGE_METRICS, Store
from budgetguard.store.rollups import ROLLUP_DIMENSIONS
from tests.test_collect import (
    ADMIN_KEY,
    NOW,
    RULES,
    START,
    Clock,
    collect,
    org_tokens,
    stored_tokens,
)
from tests.test_rows import body, outcome


class Rows:
    """A sink keeping every row it is given, as ``outcome`` describes them."""

    def __init__(self) -> None:
        self.pages: list[RowPage] = []

    def add(self, rows: RowPage) -> None:
        self.pages.append(rows)


def streamed(
    tag: str, raw: bytes, cuts: list[int], batch: int, budget: int | None = None
) -> tuple[Any, ...]:
    """A page fed in pieces; with a ``budget``, batches are left unparsed while it allows
    and parsed by ``drain`` (as the client does once the next request has left)."""
    sink = Rows()
    unparsed = None if budget is None else Unparsed(budget)
    stream = RowStream(
        "completions", tag, ROLLUP_DIMENSIONS, USAGE_METRICS, sink, 1 << 30, batch, unparsed
    )
    try:
        at = 0
        for cut in [*sorted(cuts), len(raw)]:
            stream.feed(raw[at:cut])
            at = max(at, cut)
        page = stream.finish()
        stream.drain()
    except (ResponseFormatError, OverflowError) as exc:
        return ("error", type(exc).__name__, str(exc))
    finally:
        assert unparsed is None or unparsed.held == 0  # all given back, whatever happened
    bounds = [b for p in sink.pages for b in p.bounds]
    assert bounds == stream.bounds and page.next_page is None
    metrics = sorted({m for p in sink.pages for m in p.metrics})
    rows = [
        (
            int(p.starts[i]),
            repr(p.groups[p.gid[i]]),
            *(int(p.metrics[m][i]) if m in p.metrics else 0 for m in metrics),
        )
        for p in sink.pages
        for i in range(p.size)
    ]
    return ("rows", bounds, rows)


def whole(tag: str, raw: bytes) -> tuple[Any, ...]:
    read = outcome(parse_rows, tag, raw)
    if read[0] == "error":
        return read
    _, bounds, _, metrics, rows = read
    # metrics the page names but never counts are not columns of a batch without them
    zero = [i for i, m in enumerate(metrics) if not any(r[2 + i] for r in rows)]
    keep = [i for i in range(len(metrics)) if i not in zero]
    return ("rows", bounds, [(r[0], r[1], *(r[2 + i] for i in keep)) for r in rows])


def _drop_zero_columns(read: tuple[Any, ...]) -> tuple[Any, ...]:
    if read[0] == "error":
        return read
    _, bounds, rows = read
    width = len(rows[0]) - 2 if rows else 0
    keep = [i for i in range(width) if any(r[2 + i] for r in rows)]
    return ("rows", bounds, [(r[0], r[1], *(r[2 + i] for i in keep)) for r in rows])


@settings(max_examples=250, deadline=None)
@given(
    body(),
    st.lists(st.integers(0, 4000), max_size=12),
    st.sampled_from([1, 300, 1 << 20]),
    st.sampled_from([None, 0, 700, 1 << 30]),
)
def test_a_streamed_page_reads_as_the_whole_page(
    case: tuple[str, bytes], cuts: list[int], batch: int, budget: int | None
) -> None:
    tag, raw = case
    read = streamed(tag, raw, cuts, batch, budget)
    assert _drop_zero_columns(read) == whole(tag, raw)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(alphabet='a"\\{}[],: é\n'),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=12,
    ),
    st.lists(st.integers(0, 400), max_size=20),
)
def test_the_splitter_finds_every_element_whatever_the_chunks(data: Any, cuts: list[int]) -> None:
    elements = data if isinstance(data, list) else [data]
    page = {"object": "page", "data": elements, "has_more": True, "next_page": 'a,"]}\\'}
    raw = json.dumps(page).encode()
    splitter = BucketSplitter(1 << 30)
    found: list[bytes] = []
    at = 0
    for cut in [*sorted(cuts), len(raw)]:
        found += splitter.feed(raw[at:cut])
        at = max(at, cut)
    assert [json.loads(e) for e in found] == elements
    assert json.loads(splitter.finish()) == {**page, "data": []}


@pytest.mark.parametrize("cut", [1, 10, 40, -2, -1])
def test_a_body_cut_short_is_incomplete(cut: int) -> None:
    raw = b'{"object":"page","data":[{"a":"]"}],"has_more":false}'
    splitter = BucketSplitter(1 << 30)
    splitter.feed(raw[:cut])
    with pytest.raises(Incomplete):
        splitter.finish()


def test_the_envelope_is_read_without_the_page_and_names_a_fault() -> None:
    head = envelope("completions", b'{"object":"page","data":[],"has_more":true,"next_page":"x"}')
    assert (head.has_more, head.next_page) == (True, "x")
    nan = envelope("completions", b'{"object":"page","data":[],"has_more":false,"x":NaN}')
    assert nan.has_more is False  # JSON only ``json`` reads is read, not retried
    with pytest.raises(ResponseFormatError, match="not a page of the API"):
        envelope("completions", b'{"object":"page","data":[]}')
    with pytest.raises(ValueError):
        envelope("completions", b'{"object":"page","data":[')


def test_a_page_many_times_the_body_cap_is_collected_whole(tmp_path: Path) -> None:
    """Pages are streamed: a 16 KB cap bounds what one bucket may hold, not a page."""
    rules = load_rules_text(RULES)
    queries = [q for q in plan_queries(rules, START) if q.key.startswith("completions:1h")]
    org = Organisation.create(7, NOW, 30)
    store = Store.open(f"sqlite:///{tmp_path / 'spend.db'}")
    try:
        api = SimulatedAPI(org, clock=Clock(NOW), faults=FaultPlan())
        with SimulatorServer(api) as sim:
            report = collect(sim, store, queries, START, max_body=16 * 1024)
            assert not report.failed, report.summary()
            query = queries[0]
            first = int(query.start.timestamp())
            params = [("start_time", str(first)), ("bucket_width", "1h"), ("limit", "168")]
            params += [("group_by", g) for g in query.group_by]
            page = httpx.get(
                f"{sim.base_url}/organization/usage/completions",
                params=params,
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )
            assert len(page.content) > 4 * 16 * 1024  # a page far over the cap
            stored = stored_tokens(store, query, first, NOW + 1)
            assert stored == org_tokens(sim, first, NOW, NOW)
    finally:
        store.close()
