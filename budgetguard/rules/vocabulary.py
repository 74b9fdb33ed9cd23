"""The words of the rules file: metrics, endpoints, match keys, periods, durations.

Kept apart from the models so the collector and evaluator can share the same vocabulary
without importing pydantic models or YAML.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

__all__ = [
    "DURATION_PATTERN",
    "ENDPOINTS",
    "GROUP_KEYS",
    "MATCH_KEYS",
    "METRICS",
    "METRIC_ENDPOINTS",
    "PERIODS",
    "SEVERITIES",
    "Metric",
    "Period",
    "Severity",
    "parse_duration",
]

Metric = Literal[
    "cost",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "tokens",
    "requests",
    "images",
    "characters",
    "seconds",
    "usage_bytes",
    "sessions",
]
Period = Literal["day", "week", "month", "quarter", "year"]
Severity = Literal["warning", "critical"]
CostSource = Literal["costs", "estimate", "auto"]

METRICS: tuple[str, ...] = Metric.__args__  # type: ignore[attr-defined]
PERIODS: tuple[str, ...] = Period.__args__  # type: ignore[attr-defined]
SEVERITIES: tuple[str, ...] = Severity.__args__  # type: ignore[attr-defined]

#: The usage endpoints (and costs) a budget can match with ``endpoint:``.
ENDPOINTS: tuple[str, ...] = (
    "completions",
    "embeddings",
    "moderations",
    "images",
    "audio_speeches",
    "audio_transcriptions",
    "vector_stores",
    "code_interpreter_sessions",
    "file_search_calls",
    "web_search_calls",
)
_TOKENS = ("completions", "embeddings", "moderations")
#: Which endpoints can measure each metric (cost is measured everywhere).
METRIC_ENDPOINTS: dict[str, tuple[str, ...]] = {
    "cost": ENDPOINTS,
    "input_tokens": _TOKENS,
    "output_tokens": ("completions",),
    "cached_tokens": ("completions",),
    "tokens": _TOKENS,
    "requests": (
        "completions",
        "embeddings",
        "moderations",
        "images",
        "audio_speeches",
        "audio_transcriptions",
        "file_search_calls",
        "web_search_calls",
    ),
    "images": ("images",),
    "characters": ("audio_speeches",),
    "seconds": ("audio_transcriptions",),
    "usage_bytes": ("vector_stores",),
    "sessions": ("code_interpreter_sessions",),
}

MATCH_KEYS: tuple[str, ...] = ("project", "model", "user", "api_key", "line_item", "endpoint")
#: Keys a budget can be split by with ``each``.
GROUP_KEYS: tuple[str, ...] = ("project", "model", "user", "api_key", "line_item")

DURATION_PATTERN = r"^[1-9][0-9]*[mhd]$"
_DURATION = re.compile(DURATION_PATTERN)
_UNIT = {"m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``15m``, ``24h``, ``7d`` as a timedelta; ValueError says the accepted form."""
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ValueError(
            "a duration is a whole number and a unit: Nm (minutes), Nh (hours) or Nd (days), "
            "e.g. 15m, 24h, 7d"
        )
    return timedelta(**{_UNIT[text[-1]]: int(text[:-1])})
