"""Display names of projects, users and API keys (from the admin API's directory).

One row per (kind, id); a refresh replaces a kind's rows in one transaction and records when,
so the collector knows when the names are a day old (a row with an empty id marks the refresh
of a kind that listed nothing).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    delete,
    func,
    select,
)

from budgetguard.store.schema import USAGE_DIMENSIONS, cost_buckets, metadata, usage_rollups

__all__ = ["DirectoryStore", "directory"]

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


class DirectoryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def replace(self, kind: str, names: Mapping[str, str], now: int) -> None:
        """The names of every ``kind`` entry the API listed, replacing the old ones."""
        with self.engine.begin() as conn:
            conn.execute(delete(directory).where(directory.c.kind == kind))
            conn.execute(directory.insert().values(kind=kind, id="", name="", refreshed_at=now))
            for entry_id, name in names.items():
                conn.execute(
                    directory.insert().values(kind=kind, id=entry_id, name=name, refreshed_at=now)
                )

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
