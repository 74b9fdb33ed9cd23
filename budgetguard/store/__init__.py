"""Where usage, costs, sync marks, alert state and the outbox live (SQLite or PostgreSQL).

``Store`` (SQLAlchemy) is imported when first used, so that what only reads a SQLite store
(``store.reads``, a cold `check --offline`) never imports SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from budgetguard.lazy import lazy_exports
from budgetguard.store.columns import SCHEMA_VERSION, USAGE_DIMENSIONS, USAGE_METRICS, SyncMark

if TYPE_CHECKING:
    from budgetguard.store.migrations import StoreVersionError
    from budgetguard.store.store import Store, StoreURLError, normalise_url

__all__ = [
    "SCHEMA_VERSION",
    "USAGE_DIMENSIONS",
    "USAGE_METRICS",
    "Store",
    "StoreURLError",
    "StoreVersionError",
    "SyncMark",
    "normalise_url",
]

_HOME = {
    "Store": "store",
    "StoreURLError": "store",
    "normalise_url": "store",
    "StoreVersionError": "migrations",
}

__getattr__ = lazy_exports(__name__, _HOME)
