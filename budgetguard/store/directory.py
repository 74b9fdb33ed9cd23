"""Display names of projects, users and API keys (from the admin API's directory).

One row per (kind, id); a refresh updates a kind's rows in one transaction and records when,
so the collector knows when the names are a day old (a row with an empty id marks the refresh
of a kind). Names are for people, never for matching safety: a refresh adds and renames, but
never forgets — an entry the listing no longer shows (an answer that listed nothing, a project
the directory stopped listing) keeps its name, and a renamed entry's former names are kept
(``bg_directory_former``), so a ``match`` glob that matched it by name keeps matching its id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    select,
)

from budgetguard.store.schema import USAGE_DIMENSIONS, cost_buckets, metadata, usage_rollups

__all__ = ["DirectoryStore", "directory", "former_names"]

_RECENT = 2 * 86400
assert USAGE_DIMENSIONS[:3] == ("project_id", "user_id", "api_key_id")  # a block group's head

directory = Table(
    "bg_directory",
    metadata,
    Column("kind", String(20), nullable=False),  # project | user | api_key
    Column("id", String(200), nullable=False),
    Column("name", Text, nullable=False),
    Column("refreshed_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("kind", "id", name="pk_directory"),
)


#: Names an entry had before the directory listed it under another: (kind, id, name) and
#: when the listing first showed the new name.
former_names = Table(
    "bg_directory_former",
    metadata,
    Column("kind", String(20), nullable=False),
    Column("id", String(200), nullable=False),
    Column("name", Text, nullable=False),
    Column("until", BigInteger, nullable=False),
    PrimaryKeyConstraint("kind", "id", "name", name="pk_directory_former"),
)


class DirectoryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def refresh(self, kind: str, names: Mapping[str, str], now: int) -> None:
        """Record the names of every ``kind`` entry the API listed: new ones added, renamed
        ones updated (their former name kept), the rest left as they were."""
        table = directory.c
        with self.engine.begin() as conn:
            stored = {
                str(i): str(n)
                for i, n in conn.execute(
                    select(table.id, table.name).where(table.kind == kind, table.id != "")
                )
            }
            conn.execute(delete(directory).where(table.kind == kind, table.id == ""))
            conn.execute(directory.insert().values(kind=kind, id="", name="", refreshed_at=now))
            for entry_id, name in names.items():
                old = stored.get(entry_id)
                if old is None:
                    conn.execute(
                        directory.insert().values(
                            kind=kind, id=entry_id, name=name, refreshed_at=now
                        )
                    )
                    continue
                kept = name or old  # an empty name renames nothing
                if old and kept != old:
                    self._former(conn, kind, entry_id, old, kept, now)
                conn.execute(
                    directory.update()
                    .where(table.kind == kind, table.id == entry_id)
                    .values(name=kept, refreshed_at=now)
                )

    @staticmethod
    def _former(conn: Connection, kind: str, entry_id: str, old: str, new: str, at: int) -> None:
        """Keep ``old`` as a former name of the entry (renamed back: ``new`` is not former)."""
        c = former_names.c
        mine = and_(c.kind == kind, c.id == entry_id)
        conn.execute(delete(former_names).where(mine, c.name.in_([old, new])))
        conn.execute(former_names.insert().values(kind=kind, id=entry_id, name=old, until=at))

    def names(self, kinds: Iterable[str] | None = None) -> dict[str, str]:
        """id -> display name (ids are unique across kinds: ``proj_``, ``user-``, ``key_``)."""
        query = select(directory.c.id, directory.c.name)
        if kinds is not None:
            query = query.where(directory.c.kind.in_(list(kinds)))
        with self.engine.connect() as conn:
            return {str(i): str(n) for i, n in conn.execute(query) if n}

    def names_by_kind(self) -> dict[str, dict[str, str]]:
        """kind -> id -> display name, for ``match`` on names."""
        out: dict[str, dict[str, str]] = {}
        query = select(directory.c.kind, directory.c.id, directory.c.name)
        with self.engine.connect() as conn:
            for kind, entry_id, name in conn.execute(query):
                if name:
                    out.setdefault(str(kind), {})[str(entry_id)] = str(name)
        return out

    def former_by_kind(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """kind -> id -> the names the entry had before its current one."""
        out: dict[str, dict[str, tuple[str, ...]]] = {}
        c = former_names.c
        query = select(c.kind, c.id, c.name).order_by(c.kind, c.id, c.until)
        with self.engine.connect() as conn:
            for kind, entry_id, name in conn.execute(query):
                mine = out.setdefault(str(kind), {})
                mine[str(entry_id)] = (*mine.get(str(entry_id), ()), str(name))
        return out

    def unknown_ids(self) -> set[str]:
        """Project, user and API key ids the stored usage (its last three days of blocks)
        and costs name that the directory has not listed (a new project, user or key: time
        to refresh)."""
        ids: set[str] = set()
        blocks = usage_rollups.c
        recent = select(func.max(blocks.day_start)).scalar_subquery() - _RECENT
        with self.engine.connect() as conn:
            for (groups,) in conn.execute(select(blocks.groups).where(blocks.day_start >= recent)):
                for group in json.loads(groups):
                    ids.update(str(v) for v in group[:3] if v)  # project, user, api key
            for column in ("project_id", "api_key_id"):
                query = select(cost_buckets.c[column]).distinct()
                ids.update(str(v) for (v,) in conn.execute(query) if v)
            known = {str(i) for (i,) in conn.execute(select(directory.c.id))}
        return ids - known

    def refreshed_at(self) -> int | None:
        """When the names were last refreshed (the oldest kind), or None if never."""
        query = select(directory.c.kind, func.max(directory.c.refreshed_at)).group_by(
            directory.c.kind
        )
        with self.engine.connect() as conn:
            stamps = [int(s) for _, s in conn.execute(query)]
        return min(stamps) if stamps else None
