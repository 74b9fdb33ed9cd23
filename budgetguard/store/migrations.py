"""Schema versioning: a version table and checked, ordered migrations.

A new store gets every table at the current version. An older store is migrated step by
step inside one transaction; a store written by a newer budgetguard is refused rather than
misread. Creation and migration are serialised — a PostgreSQL advisory lock held for the
transaction, SQLite's write lock taken up front (``BEGIN IMMEDIATE``) — so any number of
processes may open one empty store at once: the first creates it, the others find it made.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, delete, inspect, select, text, update

from budgetguard.store import actions, cost_reads, coverage, directory, rollups, silences
from budgetguard.store.locks import lock_key
from budgetguard.store.schema import (
    SCHEMA_VERSION,
    TOKEN_KIND_METRICS,
    alert_state,
    coverage_intervals,
    installation,
    metadata,
    outbox,
    schema_version,
    usage_buckets,
    usage_rollups,
)

__all__ = ["MIGRATIONS", "StoreVersionError", "migrate"]


class StoreVersionError(RuntimeError):
    """The store's schema is newer than this budgetguard understands."""


def _add_usage_rollups(conn: Connection) -> None:
    """Version 2: per-day blocks of usage rows for fast evaluation, built from the rows."""
    usage_rollups.create(conn, checkfirst=True)
    rollups.rebuild_all(conn)


def _add_coverage(conn: Connection) -> None:
    """Version 3: coverage as intervals per query, seeded from the sync marks' spans."""
    coverage_intervals.create(conn, checkfirst=True)
    coverage.seed_from_marks(conn)


def _add_silences_and_directory(conn: Connection) -> None:
    """Version 4: silences, the notifications they hold back, and display names."""
    for table in (silences.silences, silences.silence_holds, directory.directory):
        table.create(conn, checkfirst=True)


def _add_token_kinds(conn: Connection) -> None:
    """Version 5: the 2026-07 token kinds (cache writes, image and cached audio/image tokens)
    as usage columns, so each is priced with its own price; old rows hold 0 (the API did
    not report them)."""
    have = {c["name"] for c in inspect(conn).get_columns(usage_buckets.name)}
    for metric in TOKEN_KIND_METRICS:
        if metric not in have:
            column = f"{metric} BIGINT NOT NULL DEFAULT 0"
            conn.execute(text(f"ALTER TABLE {usage_buckets.name} ADD COLUMN {column}"))


def _add_outbox_owner(conn: Connection) -> None:
    """Version 6: the outbox's ``claimed_by`` (the owner token of a row's delivery lease)."""
    columns = {c["name"] for c in inspect(conn).get_columns(outbox.name)}
    if "claimed_by" not in columns:
        conn.execute(text(f"ALTER TABLE {outbox.name} ADD COLUMN claimed_by VARCHAR(40)"))


def _blocks_only(conn: Connection) -> None:
    """Version 7: usage lives in its per-day blocks only; the row table (97 % of a store, read
    by nothing) is emptied. The blocks have mirrored it since version 2."""
    conn.execute(delete(usage_buckets))


def _add_former_names_and_cost_reads(conn: Connection) -> None:
    """Version 8: the names a renamed project, user or key had, so a ``match`` glob that
    matched it by name keeps matching its id; when each costs day was read, so settled days
    are read again and a bad answer heals."""
    directory.former_names.create(conn, checkfirst=True)
    cost_reads.cost_reads.create(conn, checkfirst=True)


def _legacy_key(identity: str, episode: int, event: str, sequence: int = 0) -> str:
    """An alert notification's key before version 9 (no installation id in it)."""
    raw = json.dumps([identity, episode, event, sequence])
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def _ensure_installation(conn: Connection) -> None:
    """Give the store its installation id, once (a new store, or the upgrade to 9)."""
    if conn.execute(select(installation.c.id)).first() is None:
        made = secrets.token_hex(8)
        conn.execute(
            installation.insert().values(id=1, installation_id=made, created_at=int(time.time()))
        )


def _keys_per_installation(conn: Connection) -> None:
    """Version 9: an installation id, part of every idempotency key from now on, and each
    alert's ``fire_key``: for alerts that fired before, the key their fire was delivered
    under (the old form, found in the outbox), so their reminders and resolutions still
    reach the incident it opened, and nothing delivered is sent again under a new key."""
    columns = {c["name"] for c in inspect(conn).get_columns(alert_state.name)}
    if "fire_key" not in columns:
        conn.execute(text(f"ALTER TABLE {alert_state.name} ADD COLUMN fire_key VARCHAR(100)"))
    installation.create(conn, checkfirst=True)
    _ensure_installation(conn)
    carried: dict[str, str] = {}  # an alert's own fire key -> the notification's that carried it
    for key, payload in conn.execute(select(outbox.c.idempotency_key, outbox.c.payload)):
        try:
            body = json.loads(payload)
        except ValueError:
            continue
        for grouped in body.get("thresholds") or () if isinstance(body, dict) else ():
            if isinstance(grouped, dict) and grouped.get("event") == "fire" and grouped.get("key"):
                carried.setdefault(str(grouped["key"]), str(key))
    fired = select(alert_state.c.identity, alert_state.c.episode).where(alert_state.c.episode > 0)
    for identity, episode in conn.execute(fired).all():
        own = _legacy_key(identity, episode, "fire")
        conn.execute(
            update(alert_state)
            .where(alert_state.c.identity == identity)
            .values(fire_key=carried.get(own, own))
        )


def _add_actions(conn: Connection) -> None:
    """Version 10: budget actions, their append-only log, and the global kill switch."""
    for table in (actions.actions, actions.action_log, actions.action_switch):
        table.create(conn, checkfirst=True)


#: MIGRATIONS[n] upgrades a store from version n to n + 1.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _add_usage_rollups,
    2: _add_coverage,
    3: _add_silences_and_directory,
    4: _add_token_kinds,
    5: _add_outbox_owner,
    6: _blocks_only,
    7: _add_former_names_and_cost_reads,
    8: _keys_per_installation,
    9: _add_actions,
}


def _serialise(conn: Connection) -> None:
    """Take the store's schema lock for this transaction (waits for another process's)."""
    if conn.dialect.name == "postgresql":
        key = lock_key(conn, "schema")
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def migrate(engine: Engine) -> int:
    """Bring the store to ``SCHEMA_VERSION``; returns the version it was at (0 if new)."""
    with engine.connect() as conn:
        _serialise(conn)
        found = _migrate(conn)
        conn.commit()
        return found


def _migrate(conn: Connection) -> int:
    if not inspect(conn).has_table(schema_version.name):
        metadata.create_all(conn)
        _ensure_installation(conn)
        conn.execute(schema_version.insert().values(id=1, version=SCHEMA_VERSION))
        return 0
    found = int(conn.execute(select(schema_version.c.version)).scalar_one())
    if found > SCHEMA_VERSION:
        raise StoreVersionError(
            f"the store is at schema version {found}, newer than this budgetguard "
            f"({SCHEMA_VERSION}); upgrade budgetguard or use another --db"
        )
    if found == SCHEMA_VERSION:
        return found
    for version in range(found, SCHEMA_VERSION):
        MIGRATIONS[version](conn)
    metadata.create_all(conn)  # tables added since: created empty
    conn.execute(schema_version.update().values(version=SCHEMA_VERSION))
    return found
