"""What evaluating the store reads, and a stdlib ``sqlite3`` reader of it.

``Reads`` is the read side of a store: sync marks, coverage, usage blocks, cost rows, display
names, active silences, and what the report's alert keys are made of (the installation id,
alert states, held notifications). ``Store`` provides it through SQLAlchemy;
``SQLiteReads`` provides it for a SQLite file through the standard library alone,
read-only, so that a cold `check --offline` does not import SQLAlchemy (a quarter of its
time). It only opens a store at this
budgetguard's schema version (anything else goes through ``Store``, which migrates or
refuses it) and never writes.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote

from budgetguard.store.blocks import RollupBlock
from budgetguard.store.columns import MATCHER_KEYS, SCHEMA_VERSION, StoredAlert, SyncMark

__all__ = ["Reads", "SQLiteReads", "SilenceRow", "check_silence", "silence_row"]

log = logging.getLogger("budgetguard.store")

#: id, matchers, starts_at, ends_at, comment, created_at
SilenceRow = tuple[str, tuple[tuple[str, str], ...], datetime, datetime, str, datetime]

#: Bounds of a silence as stored: what `silence add` accepts, and what a read trusts.
MAX_MATCHERS, MAX_GLOB, MAX_COMMENT = 32, 200, 1000
_YEAR_2200 = 7258118400


def check_silence(
    matchers: tuple[tuple[str, str], ...], starts_at: int, ends_at: int, comment: str
) -> None:
    """``ValueError`` (what is wrong) unless the silence is one budgetguard can apply: 1 to
    MAX_MATCHERS matchers on known keys with non-empty globs of at most MAX_GLOB printable
    characters, an end after its start (both Unix seconds in range), a bounded comment."""
    if not 1 <= len(matchers) <= MAX_MATCHERS:
        raise ValueError(f"a silence has 1 to {MAX_MATCHERS} matchers")
    for key, glob in matchers:
        if key not in MATCHER_KEYS:
            raise ValueError(f"matcher key {key!r} is not one of {', '.join(MATCHER_KEYS)}")
        if not glob or len(glob) > MAX_GLOB or not glob.isprintable():
            raise ValueError(f"matcher {key}=: a glob of 1 to {MAX_GLOB} printable characters")
    if not 0 <= starts_at < ends_at < _YEAR_2200:
        raise ValueError("a silence ends after it starts, and before 2200")
    if len(comment) > MAX_COMMENT:
        raise ValueError(f"a comment is at most {MAX_COMMENT} characters")


def silence_row(
    silence_id: Any, matchers: Any, starts: Any, ends: Any, comment: Any, created: Any
) -> SilenceRow | None:
    """A stored silence, checked as when it was written; None (and a warning naming it,
    never its contents) for a row that is not one — a hand edit, a bad restore — so a
    malformed row never stops a check."""
    try:
        pairs = json.loads(matchers)
        parsed = tuple((str(k), str(g)) for k, g in pairs if isinstance(k, str))
        if len(parsed) != len(pairs) or not all(isinstance(g, str) for _, g in pairs):
            raise ValueError("a matcher is not [key, glob]")
        text = "" if comment is None else str(comment)
        check_silence(parsed, int(starts), int(ends), text)
        return (str(silence_id), parsed, _at(int(starts)), _at(int(ends)), text, _at(int(created)))
    except (ValueError, TypeError, OverflowError, OSError) as exc:
        shown = str(silence_id)[:32].encode("ascii", "replace").decode()
        log.warning("silence %r skipped: not a valid silence (%s)", shown, type(exc).__name__)
        return None


class Reads(Protocol):
    def sync_marks(self) -> list[SyncMark]: ...

    def coverage(self) -> dict[str, list[tuple[int, int]]]: ...

    def usage_blocks(
        self, query_key: str, bucket_width: int, start: int | None, end: int | None
    ) -> list[RollupBlock]: ...

    def cost_rows(
        self,
        *,
        query_keys: Iterable[str] | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> Iterator[Mapping[str, Any]]: ...

    def names(self) -> dict[str, str]: ...

    def names_by_kind(self) -> dict[str, dict[str, str]]: ...

    def former_names(self) -> dict[str, dict[str, tuple[str, ...]]]: ...

    def silences_at(self, moment: datetime) -> list[SilenceRow]: ...

    def silence_holds(self) -> dict[str, tuple[str, str]]: ...

    def alert_states(self) -> list[StoredAlert]: ...

    def installation_id(self) -> str: ...


class _Record(NamedTuple):
    day_start: int
    row_count: int
    groups: str
    layout: str
    data: bytes


def _at(stamp: int) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


class SQLiteReads:
    """A read-only view of a SQLite store; ``open`` gives None where it cannot serve."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @classmethod
    def open(cls, url: str) -> SQLiteReads | None:
        """The reader of ``sqlite:///PATH`` when that file is a store at this schema
        version; None for any other URL, a missing file or another version."""
        prefix = "sqlite:///"
        path = url[len(prefix) :] if url.startswith(prefix) else ""
        if not path or "?" in path or path.startswith(":memory:") or not os.path.isfile(path):
            return None
        try:
            conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=30)
        except sqlite3.Error:
            return None
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            found = conn.execute("SELECT version FROM bg_schema_version").fetchone()
        except sqlite3.Error:
            found = None
        if found != (SCHEMA_VERSION,):
            conn.close()
            return None
        return cls(conn)

    def close(self) -> None:
        self._conn.close()

    def sync_marks(self) -> list[SyncMark]:
        rows = self._conn.execute(
            "SELECT query_key, endpoint, bucket_width, covered_start, covered_end, "
            "last_attempt_at, last_success_at, last_error FROM bg_sync_marks ORDER BY query_key"
        )
        return [SyncMark(*row) for row in rows]

    def coverage(self) -> dict[str, list[tuple[int, int]]]:
        found: dict[str, list[tuple[int, int]]] = {}
        rows = self._conn.execute(
            'SELECT query_key, start, "end" FROM bg_coverage ORDER BY query_key, start'
        )
        for key, a, b in rows:
            found.setdefault(key, []).append((int(a), int(b)))
        return found

    def usage_blocks(
        self, query_key: str, bucket_width: int, start: int | None, end: int | None
    ) -> list[RollupBlock]:
        sql = (
            "SELECT day_start, row_count, groups, layout, data FROM bg_usage_rollups "
            "WHERE query_key = ? AND bucket_width = ?"
        )
        args: list[Any] = [query_key, bucket_width]
        if start is not None:
            sql += " AND day_start > ?"
            args.append(start - 86400)
        if end is not None:
            sql += " AND day_start < ?"
            args.append(end)
        seen: dict[str, list[tuple[Any, ...]]] = {}
        rows = self._conn.execute(sql + " ORDER BY day_start", args)
        return [RollupBlock.from_record(_Record(*row), seen) for row in rows]

    def cost_rows(
        self,
        *,
        query_keys: Iterable[str] | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> Iterator[Mapping[str, Any]]:
        sql, args = "SELECT * FROM bg_cost_buckets WHERE 1 = 1", list[Any]()
        if query_keys is not None:
            keys = list(query_keys)
            sql += f" AND query_key IN ({', '.join('?' * len(keys)) or 'NULL'})"
            args.extend(keys)
        if start is not None:
            sql += " AND day_start >= ?"
            args.append(start)
        if end is not None:
            sql += " AND day_start < ?"
            args.append(end)
        cursor = self._conn.execute(sql + " ORDER BY day_start", args)
        columns = [c[0] for c in cursor.description]
        for row in cursor:
            yield dict(zip(columns, row, strict=True))

    def names(self) -> dict[str, str]:
        rows = self._conn.execute("SELECT id, name FROM bg_directory")
        return {str(i): str(n) for i, n in rows if n}

    def names_by_kind(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for kind, entry_id, name in self._conn.execute("SELECT kind, id, name FROM bg_directory"):
            if name:
                out.setdefault(str(kind), {})[str(entry_id)] = str(name)
        return out

    def former_names(self) -> dict[str, dict[str, tuple[str, ...]]]:
        out: dict[str, dict[str, tuple[str, ...]]] = {}
        rows = self._conn.execute(
            "SELECT kind, id, name FROM bg_directory_former ORDER BY kind, id, until"
        )
        for kind, entry_id, name in rows:
            mine = out.setdefault(str(kind), {})
            mine[str(entry_id)] = (*mine.get(str(entry_id), ()), str(name))
        return out

    def silences_at(self, moment: datetime) -> list[SilenceRow]:
        at = int(moment.timestamp())
        rows = self._conn.execute(
            "SELECT id, matchers, starts_at, ends_at, comment, created_at FROM bg_silences "
            "WHERE starts_at <= ? AND ends_at > ? ORDER BY created_at, id",
            (at, at),
        )
        return [found for row in rows if (found := silence_row(*row)) is not None]

    def silence_holds(self) -> dict[str, tuple[str, str]]:
        rows = self._conn.execute("SELECT identity, idempotency_key, event FROM bg_silence_holds")
        return {str(i): (str(k), str(e)) for i, k, e in rows}

    def alert_states(self) -> list[StoredAlert]:
        rows = self._conn.execute(
            "SELECT identity, budget, group_json, kind, threshold, state, period_key, since, "
            "last_sent_at, episode, fire_key FROM bg_alert_state"
        )
        return [StoredAlert(*row) for row in rows]

    def installation_id(self) -> str:
        found = self._conn.execute("SELECT installation_id FROM bg_installation").fetchone()
        return str(found[0])
