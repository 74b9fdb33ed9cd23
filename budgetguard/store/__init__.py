"""Where usage, costs, sync marks, alert state and the outbox live (SQLite or PostgreSQL).

``Store`` (SQLAlchemy) is imported when first used, so that what only reads a SQLite store
(``store.reads``, a cold `check --offline`) never imports SQLAlchemy.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
