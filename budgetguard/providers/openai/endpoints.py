"""One table of the OpenAI admin usage and costs endpoints: what each accepts and returns.

Everything the client validates before sending comes from this table, so adding an endpoint or
a parameter the API learns is a one-line change here. Sources: the official OpenAPI spec in
``shared/reference`` plus the newer parameters the notes list (``api_source``, costs by user).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BUCKET_LIMITS",
    "COSTS_LIMIT",
    "ENDPOINTS",
    "FILTER_VALUES",
    "WIDTH_SECONDS",
    "Endpoint",
    "endpoint",
]

BucketWidth = Literal["1m", "1h", "1d"]

#: (default, maximum) number of buckets per page for usage endpoints, by bucket width.
BUCKET_LIMITS: dict[str, tuple[int, int]] = {"1d": (7, 31), "1h": (24, 168), "1m": (60, 1440)}
#: (default, maximum) for the costs endpoint, which only knows ``1d``.
COSTS_LIMIT: tuple[int, int] = (7, 180)
#: The seconds each bucket width spans.
WIDTH_SECONDS: dict[str, int] = {"1m": 60, "1h": 3600, "1d": 86400}

#: Filters whose values the API restricts to a fixed set.
FILTER_VALUES: dict[str, frozenset[str]] = {
    "sources": frozenset({"image.generation", "image.edit", "image.variation"}),
    "sizes": frozenset({"256x256", "512x512", "1024x1024", "1792x1792", "1024x1792"}),
    "context_levels": frozenset({"low", "medium", "high"}),
}

_STANDARD_GROUPS = ("project_id", "user_id", "api_key_id", "model")
_STANDARD_FILTERS = ("project_ids", "user_ids", "api_key_ids", "models")


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: its path, result object, metrics, and the parameters it accepts."""

    name: str
    path: str
    result_object: str
    metrics: tuple[str, ...]
    group_by: frozenset[str]
    #: Array filters (``project_ids``...); ``batch`` is the one boolean filter.
    filters: frozenset[str]
    bucket_widths: tuple[str, ...] = ("1m", "1h", "1d")
    is_costs: bool = False
    #: Dimension fields a result can carry (each non-null only when grouped by).
    dimensions: tuple[str, ...] = field(default=())

    def limits(self, bucket_width: str) -> tuple[int, int]:
        """(default, maximum) ``limit`` for this endpoint at ``bucket_width``."""
        return COSTS_LIMIT if self.is_costs else BUCKET_LIMITS[bucket_width]

    def max_limit(self, bucket_width: str) -> int:
        return self.limits(bucket_width)[1]


def _usage(
    name: str,
    result: str,
    metrics: tuple[str, ...],
    groups: tuple[str, ...] = _STANDARD_GROUPS,
    filters: tuple[str, ...] = _STANDARD_FILTERS,
    path: str | None = None,
) -> Endpoint:
    return Endpoint(
        name=name,
        path=path or f"/organization/usage/{name}",
        result_object=f"organization.usage.{result}.result",
        metrics=metrics,
        group_by=frozenset(groups),
        filters=frozenset(("project_ids", *filters)),
        dimensions=groups,
    )


_ENDPOINT_LIST: tuple[Endpoint, ...] = (
    Endpoint(
        name="costs",
        path="/organization/costs",
        result_object="organization.costs.result",
        metrics=("amount", "quantity"),
        # api_source and user_id: newer than the spec file, already in the official SDK.
        group_by=frozenset({"project_id", "line_item", "api_key_id", "api_source", "user_id"}),
        filters=frozenset({"project_ids", "api_key_ids"}),
        bucket_widths=("1d",),
        is_costs=True,
        dimensions=("project_id", "line_item", "api_key_id"),
    ),
    _usage(
        "completions",
        "completions",
        (
            "input_tokens",
            "output_tokens",
            "input_cached_tokens",
            "input_audio_tokens",
            "output_audio_tokens",
            "num_model_requests",
        ),
        groups=(*_STANDARD_GROUPS, "batch", "service_tier", "api_source"),
        filters=(*_STANDARD_FILTERS[1:], "batch"),
    ),
    _usage("embeddings", "embeddings", ("input_tokens", "num_model_requests")),
    _usage("moderations", "moderations", ("input_tokens", "num_model_requests")),
    _usage(
        "images",
        "images",
        ("images", "num_model_requests"),
        groups=(*_STANDARD_GROUPS, "size", "source"),
        filters=(*_STANDARD_FILTERS[1:], "sizes", "sources"),
    ),
    _usage("audio_speeches", "audio_speeches", ("characters", "num_model_requests")),
    _usage("audio_transcriptions", "audio_transcriptions", ("seconds", "num_model_requests")),
    _usage("vector_stores", "vector_stores", ("usage_bytes",), groups=("project_id",), filters=()),
    _usage(
        "code_interpreter_sessions",
        "code_interpreter_sessions",
        ("num_sessions",),
        groups=("project_id",),
        filters=(),
    ),
    _usage(
        "file_search_calls",
        "file_searches",
        ("num_requests",),
        groups=("project_id", "user_id", "api_key_id", "vector_store_id"),
        filters=("user_ids", "api_key_ids", "vector_store_ids"),
    ),
    _usage(
        "web_search_calls",
        "web_searches",
        ("num_model_requests", "num_requests"),
        groups=(*_STANDARD_GROUPS, "context_level"),
        filters=(*_STANDARD_FILTERS[1:], "context_levels"),
    ),
)

#: Every endpoint by its short name (``costs``, ``completions``, ...).
ENDPOINTS: dict[str, Endpoint] = {e.name: e for e in _ENDPOINT_LIST}


def endpoint(name: str) -> Endpoint:
    """The endpoint called ``name``; a clear error lists the known names otherwise."""
    try:
        return ENDPOINTS[name]
    except KeyError:
        known = ", ".join(sorted(ENDPOINTS))
        raise ValueError(f"unknown endpoint {name!r}; known: {known}") from None
