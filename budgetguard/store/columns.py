"""What the store's tables hold, without the tables: column names, the schema version and
the sync mark, for the stages (and the read-only check path) that must not import SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MATCHER_KEYS",
    "SCHEMA_VERSION",
    "TOKEN_KIND_METRICS",
    "USAGE_DIMENSIONS",
    "USAGE_METRICS",
    "StoredAlert",
    "SyncMark",
]

#: Bump with a migration in ``migrations.py`` whenever a table changes.
SCHEMA_VERSION = 10

#: What a silence's matcher may look at: the budget, the group keys, the severity, the kind.
MATCHER_KEYS = ("budget", "project", "model", "user", "api_key", "line_item", "severity", "kind")

#: Dimension columns of usage rows, named as the API names the result fields.
USAGE_DIMENSIONS = (
    "project_id",
    "user_id",
    "api_key_id",
    "model",
    "batch",
    "service_tier",
    "size",
    "source",
    "vector_store_id",
    "context_level",
)
#: Metric columns of usage rows (every endpoint's metrics; absent ones are 0).
USAGE_METRICS = (
    "input_tokens",
    "output_tokens",
    "input_cached_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
    "num_model_requests",
    "images",
    "characters",
    "seconds",
    "usage_bytes",
    "num_sessions",
    "num_requests",
    # 2026-07 breakdowns of completions, each with its own price
    "input_cache_write_tokens",
    "input_cached_audio_tokens",
    "input_image_tokens",
    "input_cached_image_tokens",
    "output_image_tokens",
)
#: Metrics added in schema version 4 (added as columns by the migration).
TOKEN_KIND_METRICS = USAGE_METRICS[-5:]


@dataclass(frozen=True)
class SyncMark:
    """What one query has covered, and how its last attempt went."""

    query_key: str
    endpoint: str
    bucket_width: int
    covered_start: int | None
    covered_end: int | None
    last_attempt_at: int | None
    last_success_at: int | None
    last_error: str | None

    @property
    def failed(self) -> bool:
        """The last attempt failed (its data may still be there, but it is not fresh)."""
        return self.last_error is not None


@dataclass(frozen=True)
class StoredAlert:
    """One alert's state as the store keeps it. ``fire_key``: the key of the notification
    that carried the fire of its current episode (None until one was queued)."""

    identity: str
    budget: str
    group_json: str
    kind: str
    threshold: str
    state: str
    period_key: str | None
    since: int | None
    last_sent_at: int | None
    episode: int
    fire_key: str | None = None
