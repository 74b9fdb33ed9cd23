"""Advisory-lock keys of one store, derived from where the store is.

PostgreSQL's advisory locks are per server, not per database: a fixed key would make two
budgetguard stores on one server (two teams, two test runs) take each other's locks. The key
is a hash of the purpose, the database and the schema, so every replica of one store agrees
on it and no other store shares it. ``BUDGETGUARD_LOCK_NAMESPACE`` adds a namespace of the
user's choosing (two stores that must not share a lock on one schema).
"""

from __future__ import annotations

import hashlib
import os

from sqlalchemy import Connection, text

__all__ = ["LOCK_NAMESPACE_ENV", "lock_key"]

LOCK_NAMESPACE_ENV = "BUDGETGUARD_LOCK_NAMESPACE"


def lock_key(conn: Connection, purpose: str) -> int:
    """A signed 64-bit advisory-lock key for ``purpose`` on this connection's store."""
    where = conn.execute(text("SELECT current_database(), current_schema()")).one()
    namespace = os.environ.get(LOCK_NAMESPACE_ENV, "")
    raw = f"budgetguard:{purpose}:{where[0]}:{where[1]}:{namespace}".encode()
    return int.from_bytes(hashlib.sha256(raw).digest()[:8], "big", signed=True)
