"""Faults the simulator injects on demand: scripted (deterministic) or at random rates.

Beyond status codes: ``rewrite`` hands the page (parsed JSON) to a function that returns what
to send instead (a missing amount, shifted buckets, a cursor that never ends...), and the
transport faults act below HTTP: ``reset`` closes the connection without an answer, ``hang``
accepts and never answers (for ``seconds``), ``trickle`` sends the body a byte every
``seconds``. They are how the fault matrix attacks the client.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAULT_KINDS", "TRANSPORT_FAULTS", "Fault", "FaultPlan", "Rewrite"]

#: What a ``rewrite`` fault does to a page: the page as parsed JSON in, the page to send out.
Rewrite = Callable[[dict[str, Any]], Any]
#: Faults below HTTP, which the server (not the API) carries out.
TRANSPORT_FAULTS = frozenset({"reset", "hang", "trickle"})
#: 429 with Retry-After, 500, 503, a 200 with a truncated body, extra latency, a rewritten
#: page, and the transport faults.
FAULT_KINDS = frozenset({"429", "500", "503", "malformed", "slow", "rewrite"}) | TRANSPORT_FAULTS


@dataclass(frozen=True)
class Fault:
    kind: str
    endpoint: str | None = None  # only this endpoint (short name), or any
    retry_after: int | None = 1  # for 429; None sends no Retry-After header
    seconds: float = 0.0  # for "slow", "hang" (how long) and "trickle" (per byte)
    rewrite: Rewrite | None = None  # for "rewrite"
    ignore_cursor: bool = False  # for "rewrite": answer as if no page cursor was sent


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
        rewrite: Rewrite | None = None,
        ignore_cursor: bool = False,
    ) -> None:
        """Queue ``times`` faults of ``kind`` for the next matching requests."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(sorted(FAULT_KINDS))}")
        if (kind == "rewrite") != (rewrite is not None):
            raise ValueError("a rewrite fault needs a rewrite function, and only it")
        fault = Fault(kind, endpoint, retry_after, seconds, rewrite, ignore_cursor)
        with self._lock:
            self._queue.extend(fault for _ in range(times))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self.down.clear()

    def next(self, endpoint: str, *, exact: bool = False) -> Fault | None:
        """The fault for this request, if any (consumes a scripted one). ``exact``: only a
        fault scripted for this very endpoint, no random one (the directory's lists)."""
        with self._lock:
            if endpoint in self.down:
                return Fault("503", endpoint)
            for fault in self._queue:
                if fault.endpoint == endpoint or (fault.endpoint is None and not exact):
                    self._queue.remove(fault)
                    return fault
            if exact:
                return None
            draw = self._rng.random()
        if draw < self.rate_limit_rate:
            return Fault("429", retry_after=self.retry_after)
        if draw < self.rate_limit_rate + self.fail_rate:
            return Fault("500")
        if draw < self.rate_limit_rate + self.fail_rate + self.malformed_rate:
            return Fault("malformed")
        return None
