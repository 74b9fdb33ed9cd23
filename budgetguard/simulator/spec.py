"""The parameters each endpoint accepts, read from the official OpenAPI spec shipped here.

The simulator takes its rules from the spec itself (``openapi.json``, the public OpenAI spec
cut down to the usage and costs endpoints, MIT licensed), not from the client's tables, so a
mistake in the client cannot hide behind the same mistake in its stand-in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["EXTRA_GROUP_BY", "PAGE_LIMITS", "Param", "Route", "load_spec", "routes"]

#: (default, max) buckets per page; the spec does not say, the API reference does.
PAGE_LIMITS: dict[tuple[bool, str], tuple[int, int]] = {
    (False, "1d"): (7, 31),
    (False, "1h"): (24, 168),
    (False, "1m"): (60, 1440),
    (True, "1d"): (7, 180),
}
#: group_by values newer than the spec file that the live API already accepts.
EXTRA_GROUP_BY: dict[str, frozenset[str]] = {
    "costs": frozenset({"api_source", "user_id"}),
    "completions": frozenset({"api_source"}),
}


@dataclass(frozen=True)
class Param:
    name: str
    required: bool
    kind: str  # integer | string | boolean | array
    enum: frozenset[str] | None
    default: Any


@dataclass(frozen=True)
class Route:
    name: str  # costs, completions, ...
    path: str
    result_object: str
    result_schema: str
    params: dict[str, Param]

    @property
    def is_costs(self) -> bool:
        return self.name == "costs"


@cache
def load_spec() -> dict[str, Any]:
    text = resources.files("budgetguard.simulator").joinpath("openapi.json").read_text("utf-8")
    spec: dict[str, Any] = json.loads(text)
    return spec


def _result_schemas(spec: dict[str, Any]) -> dict[str, str]:
    """object tag -> schema name, from the schemas' ``object`` enums."""
    out = {}
    for name, schema in spec["components"]["schemas"].items():
        tag = schema.get("properties", {}).get("object", {}).get("enum", [None])[0]
        if tag and tag.startswith("organization."):
            out[name] = tag
    return out


_SCHEMA_BY_ROUTE = {
    "costs": "CostsResult",
    "completions": "UsageCompletionsResult",
    "embeddings": "UsageEmbeddingsResult",
    "moderations": "UsageModerationsResult",
    "images": "UsageImagesResult",
    "audio_speeches": "UsageAudioSpeechesResult",
    "audio_transcriptions": "UsageAudioTranscriptionsResult",
    "vector_stores": "UsageVectorStoresResult",
    "code_interpreter_sessions": "UsageCodeInterpreterSessionsResult",
    "file_search_calls": "UsageFileSearchCallsResult",
    "web_search_calls": "UsageWebSearchCallsResult",
}


@cache
def routes() -> dict[str, Route]:
    """Every endpoint of the spec by its path (``/organization/usage/completions``...)."""
    spec = load_spec()
    tags = _result_schemas(spec)
    out: dict[str, Route] = {}
    for path, item in spec["paths"].items():
        op = item["get"]
        name = path.rsplit("/", 1)[-1]
        params: dict[str, Param] = {}
        for raw in op.get("parameters", []):
            schema = raw.get("schema", {})
            kind = schema.get("type", "string")
            enum_source = schema.get("items", {}) if kind == "array" else schema
            enum = enum_source.get("enum")
            params[raw["name"]] = Param(
                name=raw["name"],
                required=bool(raw.get("required")),
                kind=kind,
                enum=frozenset(str(v) for v in enum) if enum else None,
                default=schema.get("default"),
            )
        schema_name = _SCHEMA_BY_ROUTE[name]
        out[path] = Route(name, path, tags[schema_name], schema_name, params)
    return out
