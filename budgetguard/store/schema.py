"""The store's tables (SQLAlchemy Core), and the schema version they make.

Money is stored as exact decimal text (``amount``), never as a float column: SQLite has no
exact decimal type, and the same text reads back the same on PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from budgetguard.store.columns import (
    SCHEMA_VERSION,
    TOKEN_KIND_METRICS,
    USAGE_DIMENSIONS,
    USAGE_METRICS,
)

__all__ = [
    "SCHEMA_VERSION",
    "TOKEN_KIND_METRICS",
    "USAGE_DIMENSIONS",
    "USAGE_METRICS",
    "alert_state",
    "cost_buckets",
    "coverage_intervals",
    "installation",
    "metadata",
    "outbox",
    "schema_version",
    "sync_marks",
    "usage_buckets",
    "usage_rollups",
]

metadata = MetaData()

schema_version = Table(
    "bg_schema_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

#: Usage rows, as stores before version 7 kept them: now always empty (the blocks below are
#: the only copy); kept so the migrations of older stores can read them.
usage_buckets = Table(
    "bg_usage_buckets",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("query_key", String(200), nullable=False),
    Column("endpoint", String(40), nullable=False),
    Column("bucket_start", BigInteger, nullable=False),
    Column("bucket_width", Integer, nullable=False),
    Column("project_id", String(200)),
    Column("user_id", String(200)),
    Column("api_key_id", String(200)),
    Column("model", String(200)),
    Column("batch", Boolean),
    Column("service_tier", String(40)),
    Column("size", String(40)),
    Column("source", String(40)),
    Column("vector_store_id", String(200)),
    Column("context_level", String(20)),
    *(Column(metric, BigInteger, nullable=False, default=0) for metric in USAGE_METRICS),
    Index("ix_usage_query_start", "query_key", "bucket_start"),
    Index("ix_usage_endpoint_width_start", "endpoint", "bucket_width", "bucket_start"),
)

#: One compressed columnar block per (query, UTC day) of usage rows: the store's usage
#: (``budgetguard.store.rollups``), rewritten in the transaction that syncs its range.
usage_rollups = Table(
    "bg_usage_rollups",
    metadata,
    Column("query_key", String(200), nullable=False),
    Column("day_start", BigInteger, nullable=False),
    Column("endpoint", String(40), nullable=False),
    Column("bucket_width", Integer, nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("groups", Text, nullable=False),  # JSON list of dimension lists
    Column("layout", Text, nullable=False),  # JSON: the arrays in ``data`` and their types
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("query_key", "day_start", name="pk_usage_rollups"),
)

cost_buckets = Table(
    "bg_cost_buckets",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("query_key", String(200), nullable=False),
    Column("day_start", BigInteger, nullable=False),
    Column("project_id", String(200)),
    Column("line_item", Text),
    Column("api_key_id", String(200)),
    Column("amount", String(64), nullable=False),  # exact decimal text
    Column("currency", String(8), nullable=False),
    Column("quantity", String(64)),
    Column("quantity_unit", String(40)),
    Column("model", String(200)),  # parsed from line_item
    Column("kind", String(100)),
    Column("product", String(100)),
    Index("ix_cost_query_day", "query_key", "day_start"),
    Index("ix_cost_day", "day_start"),
)

sync_marks = Table(
    "bg_sync_marks",
    metadata,
    Column("query_key", String(200), primary_key=True),
    Column("endpoint", String(40), nullable=False),
    Column("bucket_width", Integer, nullable=False),
    Column("covered_start", BigInteger),
    Column("covered_end", BigInteger),
    Column("last_attempt_at", BigInteger),
    Column("last_success_at", BigInteger),
    Column("last_error", Text),
)

#: What each query holds, as disjoint intervals ``[start, end)`` of Unix seconds (what the API
#: returned, never past the clock): a gap between two is a hole (``budgetguard.store.coverage``).
coverage_intervals = Table(
    "bg_coverage",
    metadata,
    Column("query_key", String(200), nullable=False),
    Column("start", BigInteger, nullable=False),
    Column("end", BigInteger, nullable=False),
    PrimaryKeyConstraint("query_key", "start", name="pk_coverage"),
)

alert_state = Table(
    "bg_alert_state",
    metadata,
    Column("identity", String(64), primary_key=True),
    Column("budget", String(100), nullable=False),
    Column("group_json", Text, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("threshold", String(40), nullable=False),
    Column("state", String(10), nullable=False),  # ok | firing
    Column("period_key", String(40)),
    Column("since", BigInteger),
    Column("last_sent_at", BigInteger),
    Column("episode", Integer, nullable=False, default=0),
    # the key of the notification that carried the current episode's fire (version 9)
    Column("fire_key", String(100)),
)

#: The store's identity: an id made with the store (version 9 gives one to an older store)
#: and kept across upgrades, part of every idempotency key, so two stores (staging and
#: production, two organisations) never share a key or a PagerDuty ``dedup_key``.
installation = Table(
    "bg_installation",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("installation_id", String(40), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

outbox = Table(
    "bg_outbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("idempotency_key", String(100), nullable=False),
    Column("notifier", String(100), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(12), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger),
    Column("last_error", Text),
    # the deliverer holding the row's lease (until ``next_attempt_at``); see store/outbox.py
    Column("claimed_by", String(40)),
    UniqueConstraint("idempotency_key", "notifier", name="uq_outbox_key_notifier"),
    Index("ix_outbox_status_next", "status", "next_attempt_at"),
)
