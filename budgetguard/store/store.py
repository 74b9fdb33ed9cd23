"""The store: the queries the other stages need, on SQLite (default) or PostgreSQL.

Each sync of one query replaces its buckets in the fetched range and moves its sync mark in
one transaction, so a crash or a failed page leaves the previous data and mark intact. Usage
is kept as per-day blocks (``rollups``) only; costs as rows (few, and exact decimal text).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, and_, create_engine, delete, event, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from budgetguard.store import cost_reads, coverage, rollups
from budgetguard.store.alerts import AlertStore

if TYPE_CHECKING:
    from budgetguard.store.actions import ActionStore
from budgetguard.store.columns import StoredAlert, SyncMark
from budgetguard.store.migrations import migrate
from budgetguard.store.reads import SilenceRow
from budgetguard.store.schema import (
    USAGE_DIMENSIONS,
    USAGE_METRICS,
    cost_buckets,
    installation,
    sync_marks,
    usage_rollups,
)

__all__ = ["Store", "StoreURLError", "SyncMark", "normalise_url"]

#: the drivers budgetguard ships with (``pip install budgetguard-openai``): pysqlite and psycopg 3
_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
_URL_EXAMPLES = "use sqlite:///path/to/budgetguard.db or postgresql://user@host:5432/dbname"


class StoreURLError(ValueError):
    """The store URL cannot name a store budgetguard can use (bad input, not an outage)."""


def normalise_url(url: str) -> URL:
    """A SQLAlchemy URL; ``postgresql://`` uses psycopg 3. ``StoreURLError`` (whose text
    never holds the URL, so never its password) for a URL that is not one, names a database
    or driver other than SQLite's and psycopg's, a port out of range, a SQLite store in
    memory (it would keep nothing), or query arguments the driver would ignore."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StoreURLError(f"not a store URL: {_URL_EXAMPLES}") from None
    if parsed.drivername == "postgres":
        parsed = parsed.set(drivername="postgresql")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreURLError(
            f"unsupported database '{parsed.get_backend_name()}': use sqlite or postgresql"
        )
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in _DRIVERS:
        raise StoreURLError(
            f"unsupported driver '{parsed.drivername}': {_URL_EXAMPLES} (psycopg 3)"
        )
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise StoreURLError(f"port {parsed.port} is out of range (1-65535)")
    if parsed.get_backend_name() == "sqlite":
        _sqlite_file_named(parsed)
    elif parsed.query:
        _libpq_options(parsed)
    return parsed


def _libpq_options(url: URL) -> None:
    """A PostgreSQL URL's query names only libpq connection options (psycopg passes them on;
    a misspelt one would otherwise fail every connection as if the server were down)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    try:
        make_conninfo("", **dict.fromkeys(url.query, "1"))  # the names; libpq checks values
    except psycopg.Error as exc:
        raise StoreURLError(f"its query: {exc}") from None


def _sqlite_file_named(url: URL) -> None:
    """A SQLite URL names a file, and only query arguments pysqlite takes (SQLAlchemy would
    warn, on stderr, and ignore the rest)."""
    import warnings

    from sqlalchemy.exc import SAWarning

    if not url.database or url.database == ":memory:":
        raise StoreURLError(
            "an in-memory SQLite store keeps nothing between runs: name a file, "
            "as in sqlite:///path/to/budgetguard.db"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", SAWarning)
        try:
            url.get_dialect()().create_connect_args(url)
        except (SAWarning, ValueError, TypeError) as exc:
            text = str(exc).split(" (Background on this", 1)[0]
            raise StoreURLError(f"its query: {text}") from None


def _private_sqlite_file(url: URL) -> None:
    """Create the SQLite file readable by its owner only (it holds spend data)."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.is_dir():
        raise StoreURLError(f"{path} is a directory: name the SQLite store's file in it")
    if not path.parent.is_dir():  # never created: a typo must not grow a directory tree
        raise StoreURLError(
            f"the directory {path.parent} of the SQLite store does not exist (create it, "
            "or point --db / BUDGETGUARD_DATABASE_URL elsewhere)"
        )
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _use_wal(cursor: Any, wait: float = 30.0) -> None:
    """Put the SQLite file in WAL mode (a property of the file, kept once set). Switching
    needs the file to itself, and SQLite refuses at once rather than wait when another
    process has it open, as when replicas open a new store together: retry for a while."""
    import sqlite3
    import time

    deadline = time.monotonic() + wait
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            if str(cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower() == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError("database is locked: cannot switch it to WAL mode")
        time.sleep(0.05)


class Store:
    """Open with ``Store.open(url)``; one instance per process, thread-safe through its pool."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        parsed = normalise_url(url)
        if parsed.get_backend_name() == "sqlite":
            _private_sqlite_file(parsed)
            engine = create_engine(parsed, connect_args={"timeout": 30})

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _: Any) -> None:
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA busy_timeout=30000")
                _use_wal(cursor)
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()
        else:
            engine = create_engine(parsed, pool_pre_ping=True)
        migrate(engine)
        return cls(engine)

    @cached_property
    def alerts(self) -> AlertStore:
        """Alert state and the outbox (``store.alerts.outbox``) of this store."""
        return AlertStore(self.engine)

    @cached_property
    def actions(self) -> ActionStore:
        """Budget actions, their log and the kill switch (``store/actions.py``)."""
        from budgetguard.store.actions import ActionStore

        return ActionStore(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @cached_property
    def _installation(self) -> str:
        with self.engine.connect() as conn:
            return str(conn.execute(select(installation.c.installation_id)).scalar_one())

    def installation_id(self) -> str:
        """The id made with this store, part of every idempotency key it queues."""
        return self._installation

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    # -- sync marks -----------------------------------------------------------------------------

    def sync_mark(self, query_key: str) -> SyncMark | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(sync_marks).where(sync_marks.c.query_key == query_key))
                .mappings()
                .first()
            )
        return None if row is None else SyncMark(**row)

    def sync_marks(self) -> list[SyncMark]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(sync_marks).order_by(sync_marks.c.query_key)).mappings()
            return [SyncMark(**row) for row in rows]

    def _upsert_mark(self, conn: Connection, key: str, values: Mapping[str, Any]) -> None:
        found = (
            conn.execute(select(sync_marks).where(sync_marks.c.query_key == key).with_for_update())
            .mappings()
            .first()
        )
        if found is None:
            conn.execute(sync_marks.insert().values(query_key=key, **values))
        else:
            conn.execute(sync_marks.update().where(sync_marks.c.query_key == key).values(**values))

    def _covered(
        self, conn: Connection, key: str, start: int, end: int, at: int, width: int | None = None
    ) -> dict[str, int]:
        """Add ``[start, end)`` to the query's coverage intervals (capped at ``at``, the real
        time of the fetch; a usage bucket of ``width`` cut at ``end`` ends them there); the
        mark keeps their hull."""
        # the mark's row lock serialises two writers of one query (replicas, on PostgreSQL)
        conn.execute(
            select(sync_marks.c.query_key).where(sync_marks.c.query_key == key).with_for_update()
        )
        spans = coverage.add(conn, key, start, end, at, width=width)
        if not spans:
            return {}
        return {"covered_start": spans[0][0], "covered_end": spans[-1][1]}

    def coverage(self) -> dict[str, list[tuple[int, int]]]:
        """Every query's coverage: disjoint ``[start, end)`` intervals, by query key."""
        return coverage.load_all(self.engine)

    def mark_failure(
        self, query_key: str, endpoint: str, bucket_width: int, error: str, at: int
    ) -> None:
        with self.engine.begin() as conn:
            self._upsert_mark(
                conn,
                query_key,
                {
                    "endpoint": endpoint,
                    "bucket_width": bucket_width,
                    "last_attempt_at": at,
                    "last_error": error,
                },
            )

    def clear_failure(self, query_key: str, at: int) -> None:
        """The query's data is whole (nothing was left to fetch): its recorded failure is
        over."""
        with self.engine.begin() as conn:
            conn.execute(
                sync_marks.update()
                .where(sync_marks.c.query_key == query_key)
                .values(last_error=None, last_attempt_at=at)
            )

    # -- writes ---------------------------------------------------------------------------------

    def replace_usage(
        self,
        query_key: str,
        endpoint: str,
        bucket_width: int,
        start: int,
        end: int,
        rows: Sequence[Mapping[str, Any]],
        fetched_at: int,
    ) -> None:
        """Replace ``query_key``'s buckets starting in ``[start, end)`` with ``rows`` (dicts
        of dimensions and metrics with ``bucket_start``, by bucket start)."""
        tuples = [
            (
                row["bucket_start"],
                *(row.get(d) for d in rollups.ROLLUP_DIMENSIONS),
                *(int(row.get(m) or 0) for m in USAGE_METRICS),
            )
            for row in sorted(rows, key=lambda r: int(r["bucket_start"]))
        ]
        blocks = {
            day: rollups.RollupBlock.of(rollups.encode_day(day, list(day_rows)))
            for day, day_rows in groupby(tuples, key=lambda r: r[0] - r[0] % 86400)
        }
        self.replace_usage_blocks(query_key, endpoint, bucket_width, start, end, blocks, fetched_at)

    def replace_usage_blocks(
        self,
        query_key: str,
        endpoint: str,
        bucket_width: int,
        start: int,
        end: int,
        blocks: Mapping[int, rollups.RollupBlock | dict[str, Any]],
        fetched_at: int,
    ) -> None:
        """Replace ``query_key``'s buckets starting in ``[start, end)`` with the rows of
        ``blocks`` (one per UTC day, rows inside the range; a block or its record), and
        cover the range: one transaction. A day the range only partly covers keeps its
        other buckets."""
        with self.engine.begin() as conn:
            # the mark's row lock first: a replica writing the same query waits here, before
            # it reads the blocks it merges into (PostgreSQL; SQLite has one writer)
            conn.execute(
                select(sync_marks.c.query_key)
                .where(sync_marks.c.query_key == query_key)
                .with_for_update()
            )
            rollups.replace(conn, query_key, endpoint, bucket_width, start, end, blocks)
            self._succeeded(
                conn, query_key, endpoint, bucket_width, start, end, fetched_at, cut=True
            )

    def replace_costs(
        self,
        query_key: str,
        start: int,
        end: int,
        rows: Sequence[Mapping[str, Any]],
        fetched_at: int,
    ) -> None:
        """Replace ``query_key``'s cost days starting in ``[start, end)`` with ``rows``."""
        columns = (
            "day_start",
            "project_id",
            "line_item",
            "api_key_id",
            "currency",
            "quantity_unit",
            "model",
            "kind",
            "product",
        )
        records = [
            {
                "query_key": query_key,
                **{k: row.get(k) for k in columns},
                "amount": str(row["amount"]),  # exact decimal text
                "quantity": None if row.get("quantity") is None else str(row["quantity"]),
            }
            for row in rows
        ]
        self._replace(
            cost_buckets.c.day_start,
            query_key,
            "costs",
            86400,
            start,
            end,
            records,
            fetched_at,
            also=lambda conn: cost_reads.record(conn, query_key, start, end, records, end),
        )

    def cost_days_due(self, query_key: str, end: int, settled: int) -> list[int]:
        """The settled costs days (before ``settled``) to read again at a collection ending
        at ``end`` (see ``cost_reads``)."""
        return cost_reads.days_due(self.engine, query_key, end, settled)

    def _replace(
        self,
        start_column: Any,
        query_key: str,
        endpoint: str,
        bucket_width: int,
        start: int,
        end: int,
        records: list[dict[str, Any]],
        fetched_at: int,
        also: Callable[[Connection], None] | None = None,
    ) -> None:
        """Delete the range, insert the new rows and move the sync mark: one transaction
        (with ``also``)."""
        table = start_column.table
        with self.engine.begin() as conn:
            conn.execute(
                delete(table).where(
                    and_(table.c.query_key == query_key, start_column >= start, start_column < end)
                )
            )
            if records:
                conn.execute(table.insert(), records)
            if also is not None:
                also(conn)
            self._succeeded(conn, query_key, endpoint, bucket_width, start, end, fetched_at)

    def _succeeded(
        self,
        conn: Connection,
        query_key: str,
        endpoint: str,
        bucket_width: int,
        start: int,
        end: int,
        fetched_at: int,
        *,
        cut: bool = False,
    ) -> None:
        """Move the mark and cover ``[start, end)``; ``cut``: usage, whose last bucket the
        API cuts at ``end`` (its coverage ends there)."""
        width = bucket_width if cut else None
        self._upsert_mark(
            conn,
            query_key,
            {
                "endpoint": endpoint,
                "bucket_width": bucket_width,
                **self._covered(conn, query_key, start, end, fetched_at, width),
                "last_attempt_at": fetched_at,
                "last_success_at": fetched_at,
                "last_error": None,
            },
        )

    # -- reads ----------------------------------------------------------------------------------

    def usage_rows(
        self,
        *,
        query_keys: Iterable[str] | None = None,
        endpoints: Iterable[str] | None = None,
        bucket_width: int = 3600,
        start: int | None = None,
        end: int | None = None,
    ) -> Iterator[Mapping[str, Any]]:
        """Usage rows (one per bucket and group) in ``[start, end)``, decoded from the
        blocks: by query, then bucket start (for tests and tools; evaluation reads blocks)."""
        table = usage_rollups.c
        query = select(table.query_key, table.endpoint).distinct()
        query = query.where(table.bucket_width == bucket_width)
        if query_keys is not None:
            query = query.where(table.query_key.in_(list(query_keys)))
        if endpoints is not None:
            query = query.where(table.endpoint.in_(list(endpoints)))
        with self.engine.connect() as conn:
            found = sorted(conn.execute(query).all())
        columns = ("bucket_start", *rollups.ROLLUP_DIMENSIONS, *USAGE_METRICS)
        absent = dict.fromkeys(d for d in USAGE_DIMENSIONS if d not in rollups.ROLLUP_DIMENSIONS)
        for key, endpoint in found:
            for values in self.usage_table(key, bucket_width, start, end, columns):
                yield {
                    "query_key": key,
                    "endpoint": endpoint,
                    "bucket_width": bucket_width,
                    **absent,
                    **dict(zip(columns, values, strict=True)),
                }

    def usage_table(
        self,
        query_key: str,
        bucket_width: int,
        start: int | None,
        end: int | None,
        columns: Sequence[str],
    ) -> list[tuple[Any, ...]]:
        """Plain tuples of ``columns`` (``bucket_start``, block dimensions, metrics) for one
        query's rows in ``[start, end)``, by bucket start, decoded from its blocks."""
        out: list[tuple[Any, ...]] = []
        for block in self.usage_blocks(query_key, bucket_width, start, end):
            out.extend(rollups.rows_of(block, columns, start, end))
        return out

    def usage_blocks(
        self, query_key: str, bucket_width: int, start: int | None, end: int | None
    ) -> list[rollups.RollupBlock]:
        """One query's per-day blocks of usage rows for the days ``[start, end)`` touches,
        by day (rows outside ``[start, end)`` are the caller's to drop)."""
        table = usage_rollups.c
        query = select(
            table.day_start, table.row_count, table.groups, table.layout, table.data
        ).where(table.query_key == query_key, table.bucket_width == bucket_width)
        if start is not None:
            query = query.where(table.day_start > start - 86400)
        if end is not None:
            query = query.where(table.day_start < end)
        seen: dict[str, list[tuple[Any, ...]]] = {}
        with self.engine.connect() as conn:
            return [
                rollups.RollupBlock.from_record(r, seen)
                for r in conn.execute(query.order_by(table.day_start))
            ]

    def cost_rows(
        self,
        *,
        query_keys: Iterable[str] | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> Iterator[Mapping[str, Any]]:
        table = cost_buckets
        query = select(table)
        if query_keys is not None:
            query = query.where(table.c.query_key.in_(list(query_keys)))
        if start is not None:
            query = query.where(table.c.day_start >= start)
        if end is not None:
            query = query.where(table.c.day_start < end)
        with self.engine.connect() as conn:
            for row in conn.execute(query.order_by(table.c.day_start)).mappings():
                yield dict(row)

    def names(self) -> dict[str, str]:
        """id -> display name of the projects, users and API keys the directory lists."""
        from budgetguard.store.directory import DirectoryStore

        return DirectoryStore(self.engine).names()

    def names_by_kind(self) -> dict[str, dict[str, str]]:
        from budgetguard.store.directory import DirectoryStore

        return DirectoryStore(self.engine).names_by_kind()

    def former_names(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """kind -> id -> the names a renamed entry had before (for ``match`` globs)."""
        from budgetguard.store.directory import DirectoryStore

        return DirectoryStore(self.engine).former_by_kind()

    def silences_at(self, moment: datetime) -> list[SilenceRow]:
        """The silences running at ``moment``, oldest first."""
        from budgetguard.store.silences import SilenceStore

        return SilenceStore(self.engine).all(active_at=moment)

    def silence_holds(self) -> dict[str, tuple[str, str]]:
        """identity -> (key, transition) of every notification a silence held back."""
        from budgetguard.store.silences import SilenceStore

        return SilenceStore(self.engine).holds()

    def alert_states(self) -> list[StoredAlert]:
        return self.alerts.states()

    def counts(self) -> dict[str, int]:
        """Rows per table, for summaries and tests."""
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return {
                "usage": int(
                    conn.execute(select(func.sum(usage_rollups.c.row_count))).scalar_one() or 0
                ),
                "costs": conn.execute(select(func.count()).select_from(cost_buckets)).scalar_one(),
            }
