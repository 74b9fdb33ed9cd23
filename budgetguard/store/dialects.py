"""The ``INSERT ... ON CONFLICT`` construct of a connection's dialect.

Only the dialect in use is imported: SQLAlchemy's PostgreSQL dialect costs a SQLite
store ~2 MB of resident memory for nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

__all__ = ["upsert_insert"]


def upsert_insert(conn: Connection) -> Any:
    """``insert`` of PostgreSQL or SQLite, whichever ``conn`` speaks (both have
    ``on_conflict_do_nothing`` / ``on_conflict_do_update``)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert
