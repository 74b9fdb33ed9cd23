"""Which replica runs the scheduled jobs: the holder of a PostgreSQL advisory lock.

The lock lives on a connection of its own, held while the process lives; when the holder
dies its connection closes, the lock is released, and the next replica to ask takes over.
On SQLite (one process per file) the only process is always the leader.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from sqlalchemy import Connection, Engine, text

__all__ = ["LOCK_KEY", "Leadership"]

log = logging.getLogger("budgetguard.leader")
#: The advisory lock's key: any fixed 64-bit number, the same in every replica.
LOCK_KEY = 0x6267_7561_7264  # "bguard"
#: Whether this session still holds the lock: a bigint key shows in pg_locks as two halves.
_HELD = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND classid = :hi AND objid = :lo AND objsubid = 1)"
)
_KEY_PARTS = {"hi": LOCK_KEY >> 32, "lo": LOCK_KEY & 0xFFFF_FFFF}


class Leadership:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self.shared = engine.dialect.name == "postgresql"

    def acquire(self) -> bool:
        """True when this process holds the lock (taking it now if it is free)."""
        if not self.shared:
            return True
        with self._lock:
            if self._conn is not None:
                try:
                    held = bool(self._conn.execute(_HELD, _KEY_PARTS).scalar())
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
                held = bool(
                    conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar()
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
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                    self._conn.commit()
                finally:
                    self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a dead connection may fail
                self._conn.close()
            self._conn = None
