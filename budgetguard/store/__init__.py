"""Where usage, costs, sync marks, alert state and the outbox live (SQLite or PostgreSQL)."""

from budgetguard.store.migrations import StoreVersionError
from budgetguard.store.schema import SCHEMA_VERSION, USAGE_DIMENSIONS, USAGE_METRICS
from budgetguard.store.store import Store, StoreURLError, SyncMark, normalise_url

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
