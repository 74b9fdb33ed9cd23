"""Display names of projects, users and API keys (from the admin API's directory).

One row per (kind, id); a refresh replaces a kind's rows in one transaction and records when,
so the collector knows when the names are a day old (a row with an empty id marks the refresh
of a kind that listed nothing).
"""

from __future__ import annotations

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

from budgetguard.store.schema import metadata

__all__ = ["DirectoryStore", "directory"]

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

    def refreshed_at(self) -> int | None:
        """When the names were last refreshed (the oldest kind), or None if never."""
        query = select(directory.c.kind, func.max(directory.c.refreshed_at)).group_by(
            directory.c.kind
        )
        with self.engine.connect() as conn:
            stamps = [int(s) for _, s in conn.execute(query)]
        return min(stamps) if stamps else None
