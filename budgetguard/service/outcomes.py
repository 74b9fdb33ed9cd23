"""What a job did, in a form that crosses from a worker process to the service as JSON.

Only the standard library here: the service reads outcomes without importing what made
them. The ``/status`` body goes as the JSON ``/status`` serves (``default=str``), so it
reads back as it would have been served.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Gauge", "JobOutcome", "TickOutcome", "from_json", "to_json"]


@dataclass(frozen=True)
class Gauge:
    """One finding's ``budgetguard_spend``/``_limit``/``_ratio`` labels and values."""

    budget: str
    group: str
    shown: str
    spend: float | None
    limit: float | None
    ratio: float | None


@dataclass
class JobOutcome:
    """What a job did: each delivery attempt's (notifier, outcome), and its error if any."""

    attempts: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None


@dataclass
class TickOutcome(JobOutcome):
    """A tick's results; ``status`` is None when the tick failed (``error`` says why)."""

    collected: dict[str, int] = field(default_factory=dict)  # endpoint -> last success
    gauges: list[Gauge] | None = None
    status: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)  # why /healthz distrusts the data


def to_json(outcome: JobOutcome) -> bytes:
    kind = "tick" if isinstance(outcome, TickOutcome) else "job"
    return json.dumps({"kind": kind, **asdict(outcome)}, default=str).encode()


def from_json(data: bytes) -> JobOutcome:
    """The outcome ``to_json`` wrote (ValueError when ``data`` is not one)."""
    found = json.loads(data)
    if not isinstance(found, dict) or found.get("kind") not in ("tick", "job"):
        raise ValueError("not a job outcome")
    attempts = [(str(n), str(o)) for n, o in found.get("attempts") or ()]
    error = found.get("error")
    if found["kind"] == "job":
        return JobOutcome(attempts, error)
    gauges = found.get("gauges")
    return TickOutcome(
        attempts,
        error,
        collected={str(k): int(v) for k, v in (found.get("collected") or {}).items()},
        gauges=None if gauges is None else [Gauge(**g) for g in gauges],
        status=found.get("status"),
        problems=[str(p) for p in found.get("problems") or ()],
    )
