"""What a job tells the service, as it happens and when it ends, in a form that crosses from
a worker process to the service as JSON lines.

A job reports each delivery attempt and each endpoint's last successful collection while it
runs (``Progress``), so the metrics count what was done even when the job is then killed;
and its outcome when it ends. Only the standard library here: the service reads them
without importing what made them. The ``/status`` body goes as the JSON ``/status`` serves
(``default=str``), so it reads back as it would have been served.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

__all__ = [
    "LOADED",
    "Gauge",
    "JobOutcome",
    "Progress",
    "TickOutcome",
    "Unloadable",
    "attempt_line",
    "collected_line",
    "outcome_line",
    "read_line",
    "unloadable_line",
]

#: The worker's first line once it has loaded its job (a worker that ends before saying it
#: could not start or load it: the deployment is broken, not the job's data).
LOADED = b'{"loaded": true}\n'


class Progress(Protocol):
    """Hears what a job did while it runs (the service's metrics)."""

    def attempt(self, notifier: str, outcome: str) -> None:
        """A delivery attempt: ``delivered``, ``retrying`` or ``failed``."""

    def collected(self, endpoint: str, stamp: int) -> None:
        """When ``endpoint``'s data was last collected successfully (Unix seconds)."""


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
    """How a job ended: its error, if any."""

    error: str | None = None


@dataclass
class TickOutcome(JobOutcome):
    """A tick's results; ``status`` is None when the tick failed (``error`` says why)."""

    gauges: list[Gauge] | None = None
    status: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)  # why /healthz distrusts the data


def attempt_line(notifier: str, outcome: str) -> bytes:
    return _line({"attempt": [notifier, outcome]})


def collected_line(endpoint: str, stamp: int) -> bytes:
    return _line({"collected": [endpoint, stamp]})


def unloadable_line(cause: str) -> bytes:
    """What a worker that could not load its job says instead (read as a fault: its text)."""
    return _line({"unloadable": cause})


def outcome_line(outcome: JobOutcome) -> bytes:
    kind = "tick" if isinstance(outcome, TickOutcome) else "job"
    return _line({"outcome": {"kind": kind, **asdict(outcome)}})


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, default=str).encode() + b"\n"


class Unloadable(ValueError):
    """The worker said it could not load its job; the text is why."""


def read_line(line: bytes, progress: Progress) -> JobOutcome | None:
    """Pass a progress line on to ``progress``, or the outcome a final line carries;
    ``Unloadable`` for a worker's word that it could not load its job, ValueError when
    ``line`` is none of these."""
    found = json.loads(line)
    if not isinstance(found, dict) or len(found) != 1:
        raise ValueError("not a job's line")
    if "unloadable" in found:
        raise Unloadable(str(found["unloadable"]))
    if "attempt" in found:
        notifier, outcome = found["attempt"]
        progress.attempt(str(notifier), str(outcome))
        return None
    if "collected" in found:
        endpoint, stamp = found["collected"]
        progress.collected(str(endpoint), int(stamp))
        return None
    body = found.get("outcome")
    if not isinstance(body, dict) or body.get("kind") not in ("tick", "job"):
        raise ValueError("not a job's line")
    if body["kind"] == "job":
        return JobOutcome(body.get("error"))
    gauges = body.get("gauges")
    return TickOutcome(
        body.get("error"),
        gauges=None if gauges is None else [Gauge(**g) for g in gauges],
        status=body.get("status"),
        problems=[str(p) for p in body.get("problems") or ()],
    )
