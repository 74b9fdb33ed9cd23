"""Which replica runs the scheduled jobs: the holder of a PostgreSQL advisory lock.

The lock lives on a connection of its own, held while the process lives; when the holder
dies its connection closes, the lock is released, and the next replica to ask takes over.
On SQLite (one process per file) the only process is always the leader. The key is derived
from the store's database and schema (``store/locks.py``), so two stores on one server never
share a leader.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from sqlalchemy import Connection, Engine, text

from budgetguard.store.locks import lock_key

__all__ = ["Leadership"]

log = logging.getLogger("budgetguard.leader")
#: Whether this session still holds the lock: a bigint key shows in pg_locks as two halves.
_HELD = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND classid = :hi AND objid = :lo AND objsubid = 1)"
)


def _parts(key: int) -> dict[str, int]:
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return {"hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF}


class Leadership:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._key: int | None = None
        self.shared = engine.dialect.name == "postgresql"

    def acquire(self) -> bool:
        """True when this process holds the lock (taking it now if it is free)."""
        if not self.shared:
            return True
        with self._lock:
            if self._conn is not None:
                try:
                    assert self._key is not None
                    held = bool(self._conn.execute(_HELD, _parts(self._key)).scalar())
                    self._conn.commit()  # never left idle in a transaction (servers kill those)
                except Exception:  # the connection died: so did the lock
                    held = False
                if held:
                    return True
                # a dead connection, or one SQLAlchemy quietly replaced by a new session
                log.warning("lost the leader lock")
                self._drop()
            conn = self._engine.connect()
            try:
                self._key = lock_key(conn, "leader")
                held = bool(
                    conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar()
                )
                conn.commit()
            except Exception:
                conn.close()
                raise
            if not held:
                conn.close()
                return False
            self._conn = conn
            log.info("this replica is now the leader")
            return True

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
                    self._conn.commit()
                finally:
                    self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a dead connection may fail
                self._conn.close()
            self._conn = None
