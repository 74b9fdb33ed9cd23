"""Faults the simulator injects on demand: scripted (deterministic) or at random rates."""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field

__all__ = ["FAULT_KINDS", "Fault", "FaultPlan"]

#: 429 with Retry-After, 500, 503, a 200 with a truncated body, or extra latency.
FAULT_KINDS = frozenset({"429", "500", "503", "malformed", "slow"})


@dataclass(frozen=True)
class Fault:
    kind: str
    endpoint: str | None = None  # only this endpoint (short name), or any
    retry_after: int | None = 1  # for 429; None sends no Retry-After header
    seconds: float = 0.0  # for "slow"


@dataclass
class FaultPlan:
    """What goes wrong next. Scripted faults fire first, in order; then the random rates."""

    fail_rate: float = 0.0
    rate_limit_rate: float = 0.0
    malformed_rate: float = 0.0
    retry_after: int = 1
    down: set[str] = field(default_factory=set)  # endpoints that always answer 503
    seed: int = 0
    _queue: deque[Fault] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def script(
        self,
        kind: str,
        *,
        times: int = 1,
        endpoint: str | None = None,
        retry_after: int | None = 1,
        seconds: float = 0.0,
    ) -> None:
        """Queue ``times`` faults of ``kind`` for the next matching requests."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(sorted(FAULT_KINDS))}")
        with self._lock:
            self._queue.extend(Fault(kind, endpoint, retry_after, seconds) for _ in range(times))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self.down.clear()

    def next(self, endpoint: str) -> Fault | None:
        """The fault for this request, if any (consumes a scripted one)."""
        with self._lock:
            if endpoint in self.down:
                return Fault("503", endpoint)
            for fault in self._queue:
                if fault.endpoint in (None, endpoint):
                    self._queue.remove(fault)
                    return fault
            draw = self._rng.random()
        if draw < self.rate_limit_rate:
            return Fault("429", retry_after=self.retry_after)
        if draw < self.rate_limit_rate + self.fail_rate:
            return Fault("500")
        if draw < self.rate_limit_rate + self.fail_rate + self.malformed_rate:
            return Fault("malformed")
        return None
