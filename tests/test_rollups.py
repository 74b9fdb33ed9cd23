"""Per-day usage blocks: whatever happens to the rows, the blocks say the same."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from budgetguard.store import SCHEMA_VERSION, USAGE_METRICS, Store
from budgetguard.store import rollups as rollups_module
from budgetguard.store.rollups import ROLLUP_DIMENSIONS, RollupBlock, encode_day
from budgetguard.store.schema import usage_buckets, usage_rollups
from tests.conftest import needs_postgres

DAY = 86400
DAY0 = 1795305600 - 3 * DAY  # a UTC midnight
KEY = "completions:1h:test"

_dims = st.tuples(
    st.sampled_from(["proj_a", "proj_b", None]),
    st.sampled_from(["user-1", None]),
    st.sampled_from(["key_1", "key_2", None]),
    st.sampled_from(["gpt-4o-2024-08-06", "o3-mini", None]),
    st.sampled_from([True, False, None]),
    st.sampled_from(["default", "flex", None]),
    st.sampled_from([None, "1024x1024"]),
)
_metric = st.one_of(
    st.just(0),
    st.integers(0, 60_000),
    st.integers(0, 2**40),
    st.integers(-(2**62), 2**62),
)


@st.composite
def day_rows(draw: st.DrawFn) -> tuple[int, list[tuple[Any, ...]]]:
    """Rows of one day, sorted by bucket start: minute-aligned or not, any metric size."""
    aligned = draw(st.booleans())
    offsets = st.integers(0, 1439).map(lambda m: m * 60) if aligned else st.integers(0, DAY - 1)
    rows = draw(
        st.lists(
            st.tuples(
                offsets,
                _dims,
                st.lists(_metric, min_size=len(USAGE_METRICS), max_size=len(USAGE_METRICS)),
            ),
            min_size=1,
            max_size=40,
        )
    )
    return DAY0, sorted(
        ((DAY0 + offset, *dims, *metrics) for offset, dims, metrics in rows),
        key=lambda r: r[0],
    )


def decoded_rows(block: RollupBlock) -> list[tuple[Any, ...]]:
    gid, starts, metrics = block.arrays()
    return [
        (
            int(starts[i]),
            *block.groups[gid[i]],
            *(int(metrics[m][i]) if m in metrics else 0 for m in USAGE_METRICS),
        )
        for i in range(block.row_count)
    ]


@settings(max_examples=150, deadline=None)
@given(day_rows())
def test_a_block_decodes_to_exactly_its_rows(case: tuple[int, list[tuple[Any, ...]]]) -> None:
    day, rows = case
    record = encode_day(day, rows)
    block = RollupBlock.from_record(SimpleNamespace(**record))
    assert decoded_rows(block) == rows
    nonzero = {m for i, m in enumerate(USAGE_METRICS) if any(r[8 + i] for r in rows)}
    assert set(block.metrics) == nonzero  # all-zero metrics are left out


def test_small_figures_are_stored_narrow() -> None:
    rows = [
        (
            DAY0 + h * 3600,
            "p",
            None,
            None,
            "m",
            False,
            None,
            None,
            5,
            7,
            *[0] * (len(USAGE_METRICS) - 2),
        )
        for h in range(24)
    ]
    record = encode_day(DAY0, rows)
    layout = RollupBlock.from_record(SimpleNamespace(**record)).layout
    assert layout == {
        "gid": "H",
        "at": "H",
        "unit": 60,
        "metrics": [["input_tokens", "H"], ["output_tokens", "H"]],
    }


def row(start: int, project: str, tokens: int) -> dict[str, Any]:
    return {
        "bucket_start": start,
        "project_id": project,
        "model": "gpt-4o-2024-08-06",
        "batch": False,
        "input_tokens": tokens,
        "output_tokens": 2 * tokens,
        "num_model_requests": 1,
    }


def blocks_by_day(store: Store) -> dict[int, Counter[tuple[Any, ...]]]:
    return {
        b.day_start: Counter(decoded_rows(b)) for b in store.usage_blocks(KEY, 3600, None, None)
    }


def as_tuple(r: dict[str, Any]) -> tuple[Any, ...]:
    return (
        r["bucket_start"],
        *(r.get(d) for d in ROLLUP_DIMENSIONS),
        *(r.get(m, 0) for m in USAGE_METRICS),
    )


def by_day(rows: list[dict[str, Any]]) -> dict[int, Counter[tuple[Any, ...]]]:
    out: dict[int, Counter[tuple[Any, ...]]] = {}
    for r in rows:
        out.setdefault(r["bucket_start"] - r["bucket_start"] % DAY, Counter())[as_tuple(r)] += 1
    return out


def rows_by_day(store: Store) -> dict[int, Counter[tuple[Any, ...]]]:
    return by_day([dict(r) for r in store.usage_rows(query_keys=[KEY])])


class Written:
    """What the writes so far should leave: each replaces its range's buckets."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def write(self, store: Store, start: int, end: int, rows: list[dict[str, Any]]) -> None:
        write(store, start, end, rows)
        self.rows = [r for r in self.rows if not start <= r["bucket_start"] < end] + rows

    def by_day(self) -> dict[int, Counter[tuple[Any, ...]]]:
        return by_day(self.rows)


def write(store: Store, start: int, end: int, rows: list[dict[str, Any]]) -> None:
    store.replace_usage(KEY, "completions", 3600, start, end, rows, end)


def exercise(store: Store) -> None:
    """Three days written, part of the middle one rewritten, the last one emptied: after
    each step the blocks hold exactly the rows written and not replaced since."""
    written = Written()
    written.write(
        store,
        DAY0,
        DAY0 + 3 * DAY,
        [row(DAY0 + h * 3600, f"p{h % 3}", 100 + h) for h in range(72)],
    )
    assert blocks_by_day(store) == written.by_day() == rows_by_day(store)
    assert sorted(blocks_by_day(store)) == [DAY0, DAY0 + DAY, DAY0 + 2 * DAY]
    first_day = blocks_by_day(store)[DAY0]
    written.write(
        store,
        DAY0 + DAY + 5 * 3600,
        DAY0 + DAY + 10 * 3600,
        [row(DAY0 + DAY + 6 * 3600, "p9", 10**12)],
    )
    assert blocks_by_day(store) == written.by_day() == rows_by_day(store)
    assert blocks_by_day(store)[DAY0] == first_day
    groups = {b.day_start: b.groups for b in store.usage_blocks(KEY, 3600, None, None)}
    assert sorted(g[0] for g in groups[DAY0 + DAY]) == ["p0", "p1", "p2", "p9"]
    written.write(store, DAY0 + 2 * DAY, DAY0 + 3 * DAY, [])
    assert blocks_by_day(store) == written.by_day() == rows_by_day(store)
    assert DAY0 + 2 * DAY not in blocks_by_day(store)
    assert store.counts()["usage"] == 48 - 5 + 1


def test_blocks_follow_the_rows_on_sqlite(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'spend.db'}")
    try:
        exercise(store)
    finally:
        store.close()


@pytest.fixture
def postgres(pg_url: str) -> Iterator[Store]:
    store = Store.open(pg_url)  # a database of its own: the server is shared
    try:
        yield store
    finally:
        store.close()


@pytest.mark.postgres
@needs_postgres
def test_blocks_follow_the_rows_on_postgresql(postgres: Store) -> None:
    exercise(postgres)


def test_rows_outside_the_written_range_are_not_stored(tmp_path: Path) -> None:
    """A bucket that starts at the range's end (the clock had only just reached it) is not
    covered, so it is not stored, even on a day the range does not touch."""
    store = Store.open(f"sqlite:///{tmp_path / 'spend.db'}")
    try:
        end = DAY0 + DAY  # midnight
        write(store, DAY0 + 3600, end, [row(DAY0 + 7200, "p", 5), row(end, "late", 9)])
        assert blocks_by_day(store) == by_day([row(DAY0 + 7200, "p", 5)])
    finally:
        store.close()


def test_a_failed_write_changes_neither_blocks_nor_coverage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'spend.db'}")
    try:
        write(store, DAY0, DAY0 + DAY, [row(DAY0 + h * 3600, "p", 5) for h in range(24)])
        blocks, covered = blocks_by_day(store), store.coverage()

        def broken(*args: Any) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(rollups_module, "merge", broken)
        with pytest.raises(OSError, match="disk full"):
            write(store, DAY0 + 3600, DAY0 + 2 * DAY, [row(DAY0 + 7200, "other", 1)])
        assert (blocks_by_day(store), store.coverage()) == (blocks, covered)
    finally:
        store.close()


def test_an_older_store_gets_its_blocks_built_when_opened(tmp_path: Path) -> None:
    """A version 1 store kept rows only: opened, its blocks are built from them, and the
    rows go (version 5 keeps blocks only)."""
    url = f"sqlite:///{tmp_path / 'spend.db'}"
    store = Store.open(url)
    rows = [row(DAY0 + h * 3600, f"p{h % 4}", h) for h in range(48)]
    write(store, DAY0, DAY0 + 2 * DAY, rows)
    expected = blocks_by_day(store)
    assert expected == by_day(rows)
    with store.engine.begin() as conn:  # as version 1 left it: rows, no blocks
        usage_rollups.drop(conn)
        conn.execute(
            usage_buckets.insert(),
            [
                {"query_key": KEY, "endpoint": "completions", "bucket_width": 3600, **r}
                for r in rows
            ],
        )
        conn.execute(text("UPDATE bg_schema_version SET version = 1"))
    store.close()
    store = Store.open(url)
    try:
        with store.engine.connect() as conn:
            version = conn.execute(text("SELECT version FROM bg_schema_version")).scalar()
        assert version == SCHEMA_VERSION  # every step since version 1 ran
        assert blocks_by_day(store) == expected
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM bg_usage_buckets")).scalar() == 0
    finally:
        store.close()


def test_a_version_4_store_gets_the_token_kind_columns(tmp_path: Path) -> None:
    """Version 5 adds the 2026-07 token kinds as usage columns; old rows read as 0."""
    from budgetguard.store.schema import TOKEN_KIND_METRICS

    url = f"sqlite:///{tmp_path / 'spend.db'}"
    store = Store.open(url)
    write(store, DAY0, DAY0 + DAY, [row(DAY0 + h * 3600, "p", h) for h in range(24)])
    expected = blocks_by_day(store)
    with store.engine.begin() as conn:  # as version 4 left it: no token-kind columns
        for metric in TOKEN_KIND_METRICS:
            conn.execute(text(f"ALTER TABLE bg_usage_buckets DROP COLUMN {metric}"))
        conn.execute(text("UPDATE bg_schema_version SET version = 4"))
    store.close()
    store = Store.open(url)
    try:
        with store.engine.connect() as conn:
            columns = [r[1] for r in conn.execute(text("PRAGMA table_info(bg_usage_buckets)"))]
            version = conn.execute(text("SELECT version FROM bg_schema_version")).scalar()
        assert version == SCHEMA_VERSION and set(TOKEN_KIND_METRICS) <= set(columns)
        assert blocks_by_day(store) == expected
    finally:
        store.close()


def test_rows_out_of_order_in_a_block_give_the_same_figures(tmp_path: Path) -> None:
    """Blocks keep rows by bucket start, but loading never relies on it."""
    from datetime import UTC, datetime

    from sqlalchemy import update

    from budgetguard.evaluate import SpendData, evaluate
    from budgetguard.evaluate.pricing import Pricer
    from budgetguard.rules import load_rules_text
    from budgetguard.rules.needs import plan_queries

    now = datetime.fromtimestamp(DAY0 + 2 * DAY + 7200, UTC)
    rules = load_rules_text(
        "version: 1\nbudgets:\n"
        "  - {name: t, limit: 1, window: 30h, metric: tokens, each: project}\n"
        "  - {name: e, limit: 1, window: 20h, cost_source: estimate}\n"
    )
    store = Store.open(f"sqlite:///{tmp_path / 'spend.db'}")
    try:
        for q in plan_queries(rules, now):
            begin, end = int(q.start.timestamp()), int(now.timestamp())
            rows = []
            if q.key.startswith("completions:1h"):
                rows = [row(DAY0 + h * 3600, f"p{h % 3}", 100 + h) for h in range(50)]
            store.replace_usage(q.key, q.endpoint, q.width_seconds, begin, end, rows, end)

        def figures() -> list[tuple[Any, ...]]:
            since = DAY0 + 22 * 3600  # a cut inside the first block, inside the windows
            data = SpendData.load(store, plan_queries(rules, now), Pricer(), start=since)
            return [(f.budget.name, f.group, f.spend) for f in evaluate(rules, data, now)]

        before = figures()
        (key,) = [q.key for q in plan_queries(rules, now) if q.key.startswith("completions:1h")]
        with store.engine.begin() as conn:
            for block in store.usage_blocks(key, 3600, None, None):
                shuffled = list(reversed(decoded_rows(block)))
                record = encode_day(block.day_start, shuffled)
                conn.execute(
                    update(usage_rollups)
                    .where(
                        usage_rollups.c.query_key == key,
                        usage_rollups.c.day_start == block.day_start,
                    )
                    .values(**record)
                )
        assert figures() == before
        assert any(spend for _, _, spend in before)
    finally:
        store.close()
