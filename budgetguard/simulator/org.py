"""A deterministic synthetic organisation: who spends what, minute by minute.

Written from the API reference, not from the client, so that it can catch the client's
mistakes. Everything is a pure function of (seed, history window): usage per stream per hour
comes from a counter-based hash (splitmix64), minutes split an hour's total, days sum hours,
so buckets of any width agree with each other to the unit. Costs are usage x the list prices
below, aggregated per UTC day, project, API key and a free-text ``line_item`` in the real style.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["DAY", "HOUR", "MINUTE", "CostLine", "Organisation", "Stream"]

MINUTE, HOUR, DAY = 60, 3600, 86400
_MASK = (1 << 64) - 1


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _unit(*parts: int) -> float:
    """A uniform number in [0, 1) determined by ``parts``."""
    x = 0
    for part in parts:
        x = _splitmix(x ^ (part & _MASK))
    return (x >> 11) / float(1 << 53)


@dataclass(frozen=True)
class Stream:
    """One steady source of usage: an endpoint, its dimensions, and its hourly rates."""

    endpoint: str
    project_id: str
    metrics: dict[str, float]  # mean per hour at shape 1.0; derived metrics use ratios below
    user_id: str | None = None
    api_key_id: str | None = None
    model: str | None = None
    dims: dict[str, object] = field(default_factory=dict)  # batch, size, source, ...
    shape: str = "office"  # office | night | flat
    spike: int = 0  # which spike (1, 2) multiplies this stream, 0 for none

    def dim(self, name: str) -> object:
        if name in ("project_id", "user_id", "api_key_id", "model"):
            return getattr(self, name)
        return self.dims.get(name)


@dataclass(frozen=True)
class CostLine:
    """One priced line of one stream's usage."""

    line_item: str
    quantity: float
    unit: str | None
    amount: float


# --- the organisation ----------------------------------------------------------------------

PROJECTS = {
    "proj_chatbot": "Support chatbot",
    "proj_search": "Semantic search",
    "proj_batch": "Nightly batch",
    "proj_media": "Media studio",
    "proj_internal": "Internal tools",
}
USERS = ("user-alice", "user-bob", "user-carol", "user-dave", "user-erin")


def _completions(
    rate: float,
    per_req_in: int,
    per_req_out: int,
    cached: float = 0.0,
    audio_in: float = 0.0,
    audio_out: float = 0.0,
) -> dict[str, float]:
    return {
        "num_model_requests": rate,
        "_in": per_req_in,
        "_out": per_req_out,
        "_cached": cached,
        "_audio_in": audio_in,
        "_audio_out": audio_out,
    }


STREAMS: tuple[Stream, ...] = (
    Stream(
        "completions",
        "proj_chatbot",
        _completions(900, 1800, 350, cached=0.45),
        "user-alice",
        "key_chatbot_prod",
        "gpt-4o-2024-08-06",
        {"batch": False, "service_tier": "default"},
        spike=1,
    ),
    Stream(
        "completions",
        "proj_chatbot",
        _completions(2400, 900, 180, cached=0.3),
        "user-alice",
        "key_chatbot_prod",
        "gpt-4o-mini-2024-07-18",
        {"batch": False, "service_tier": "default"},
    ),
    Stream(
        "completions",
        "proj_chatbot",
        _completions(60, 1200, 300),
        "user-bob",
        "key_chatbot_dev",
        "gpt-4o-mini-2024-07-18",
        {"batch": False, "service_tier": "default"},
    ),
    Stream(
        "completions",
        "proj_chatbot",
        _completions(40, 600, 400, audio_in=0.6, audio_out=0.7),
        "user-bob",
        "key_chatbot_prod",
        "gpt-4o-audio-preview-2024-12-17",
        {"batch": False, "service_tier": "default"},
    ),
    Stream(
        "completions",
        "proj_search",
        _completions(1500, 1100, 120, cached=0.6),
        "user-carol",
        "key_search_svc",
        "gpt-4o-mini-2024-07-18",
        {"batch": False, "service_tier": "default"},
    ),
    Stream(
        "completions",
        "proj_batch",
        _completions(9000, 2000, 500),
        "user-dave",
        "key_batch_runner",
        "gpt-4o-mini-2024-07-18",
        {"batch": True, "service_tier": "default"},
        shape="night",
    ),
    Stream(
        "completions",
        "proj_internal",
        _completions(120, 3000, 900, cached=0.2),
        "user-erin",
        "key_internal_tools",
        "gpt-5-2025-08-07",
        {"batch": False, "service_tier": "priority"},
    ),
    Stream(
        "completions",
        "proj_internal",
        _completions(200, 1500, 400),
        "user-erin",
        "key_internal_tools",
        "ft:gpt-4o-mini:acme",
        {"batch": False, "service_tier": "default"},
    ),
    Stream(
        "embeddings",
        "proj_search",
        {"num_model_requests": 3000, "_in": 400},
        "user-carol",
        "key_search_svc",
        "text-embedding-3-small",
        spike=2,
    ),
    Stream(
        "embeddings",
        "proj_search",
        {"num_model_requests": 200, "_in": 800},
        "user-carol",
        "key_search_svc",
        "text-embedding-3-large",
    ),
    Stream(
        "moderations",
        "proj_chatbot",
        {"num_model_requests": 3300, "_in": 250},
        "user-alice",
        "key_chatbot_prod",
        "omni-moderation-latest",
    ),
    Stream(
        "images",
        "proj_media",
        {"num_model_requests": 40, "_per": 1.0},
        "user-dave",
        "key_media_app",
        "dall-e-3",
        {"size": "1024x1024", "source": "image.generation"},
    ),
    Stream(
        "images",
        "proj_media",
        {"num_model_requests": 12, "_per": 1.0},
        "user-dave",
        "key_media_app",
        "dall-e-3",
        {"size": "1024x1792", "source": "image.generation"},
    ),
    Stream(
        "images",
        "proj_media",
        {"num_model_requests": 20, "_per": 2.0},
        "user-bob",
        "key_media_app",
        "dall-e-2",
        {"size": "512x512", "source": "image.edit"},
    ),
    Stream(
        "audio_speeches",
        "proj_media",
        {"num_model_requests": 80, "_per": 700},
        "user-dave",
        "key_media_app",
        "tts-1",
    ),
    Stream(
        "audio_speeches",
        "proj_media",
        {"num_model_requests": 15, "_per": 1200},
        "user-dave",
        "key_media_app",
        "tts-1-hd",
    ),
    Stream(
        "audio_transcriptions",
        "proj_media",
        {"num_model_requests": 50, "_per": 95},
        "user-bob",
        "key_media_app",
        "whisper-1",
    ),
    Stream("vector_stores", "proj_search", {"usage_bytes": 3.2e9}, shape="gauge"),
    Stream("vector_stores", "proj_internal", {"usage_bytes": 4.5e8}, shape="gauge"),
    Stream("code_interpreter_sessions", "proj_internal", {"num_sessions": 18}),
    Stream("code_interpreter_sessions", "proj_chatbot", {"num_sessions": 6}),
    Stream(
        "file_search_calls",
        "proj_search",
        {"num_requests": 260},
        "user-carol",
        "key_search_svc",
        None,
        {"vector_store_id": "vs_docs"},
    ),
    Stream(
        "file_search_calls",
        "proj_internal",
        {"num_requests": 45},
        "user-erin",
        "key_internal_tools",
        None,
        {"vector_store_id": "vs_wiki"},
    ),
    Stream(
        "web_search_calls",
        "proj_chatbot",
        {"num_model_requests": 70, "_per": 1.3},
        "user-alice",
        "key_chatbot_prod",
        "gpt-4o-mini-2024-07-18",
        {"context_level": "medium"},
    ),
    Stream(
        "web_search_calls",
        "proj_internal",
        {"num_model_requests": 25, "_per": 2.0},
        "user-erin",
        "key_internal_tools",
        "gpt-5-2025-08-07",
        {"context_level": "high"},
    ),
)

# USD list prices of the simulated org, per 1M tokens unless said otherwise.
TOKEN_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o-2024-08-06": {"input": 2.50, "cached input": 1.25, "output": 10.00},
    "gpt-4o-mini-2024-07-18": {"input": 0.15, "cached input": 0.075, "output": 0.60},
    "gpt-4o-audio-preview-2024-12-17": {
        "input": 2.50,
        "cached input": 1.25,
        "output": 10.00,
        "audio input": 40.00,
        "audio output": 80.00,
    },
    "gpt-5-2025-08-07": {"input": 1.25, "cached input": 0.125, "output": 10.00},
    "ft:gpt-4o-mini:acme": {"input": 0.30, "cached input": 0.15, "output": 1.20},
    "text-embedding-3-small": {"input": 0.02},
    "text-embedding-3-large": {"input": 0.13},
}
#: Priority processing costs this multiple of the standard price; batch half.
TIER_MULTIPLIER = {"priority": 2.0, "batch": 0.5}
IMAGE_PRICES = {
    ("dall-e-3", "1024x1024"): 0.040,
    ("dall-e-3", "1024x1792"): 0.080,
    ("dall-e-2", "512x512"): 0.018,
}
CHARACTER_PRICES = {"tts-1": 15.0, "tts-1-hd": 30.0}  # per 1M characters
SECOND_PRICES = {"whisper-1": 0.0001}  # per second ($0.006 a minute)
SESSION_PRICE = 0.03
FILE_SEARCH_PRICE = 2.50 / 1000
WEB_SEARCH_PRICE = 10.00 / 1000
STORAGE_PRICE_GB_DAY = 0.10
_GB = 1_000_000_000  # OpenAI bills storage per GB (10^9 bytes)


class Organisation:
    """The synthetic org over ``[history_start, now)``; ``now`` may move with a clock."""

    def __init__(
        self,
        seed: int = 7,
        *,
        history_start: int,
        spikes: dict[int, tuple[int, int]],
        streams: tuple[Stream, ...] = STREAMS,
    ) -> None:
        self.seed = seed
        self.history_start = history_start
        self.spikes = spikes  # spike id -> [start, end) in Unix seconds
        self.streams = streams
        self._scale = tuple(0.85 + 0.3 * _unit(seed, 17, i) for i in range(len(streams)))
        self._hour = lru_cache(maxsize=400_000)(self._hour_uncached)
        self._minutes = lru_cache(maxsize=4096)(self._minutes_uncached)

    @classmethod
    def create(cls, seed: int, now: int, days: int) -> Organisation:
        """An org with ``days`` of history before ``now`` and two spikes: one a day and a
        half before the latest hour (for backtests), one over the last two hours and the
        current one (for the demo)."""
        start = (now // DAY) * DAY - days * DAY
        last_hour = (now // HOUR) * HOUR
        spikes = {
            1: (last_hour - 2 * HOUR, last_hour + HOUR),
            2: (last_hour - 36 * HOUR, last_hour - 33 * HOUR),
        }
        return cls(seed, history_start=start, spikes=spikes)

    # -- usage --------------------------------------------------------------------------------

    def streams_of(self, endpoint: str) -> Iterator[tuple[int, Stream]]:
        for index, stream in enumerate(self.streams):
            if stream.endpoint == endpoint:
                yield index, stream

    def _factor(self, index: int, hour: int) -> float:
        stream = self.streams[index]
        t = hour * HOUR
        hod = (t % DAY) // HOUR
        weekday = ((t // DAY) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
        if stream.shape == "night":
            base = 1.0 if 1 <= hod <= 4 else 0.0
        elif stream.shape == "flat":
            base = 1.0
        else:
            day_factor = (1.0, 1.0, 1.0, 1.0, 0.95, 0.45, 0.35)[weekday]
            base = day_factor * (0.2 + 0.8 * math.exp(-(((hod - 15) / 4.5) ** 2)))
        if stream.spike and stream.spike in self.spikes:
            lo, hi = self.spikes[stream.spike]
            if lo <= t < hi:
                base *= 15.0
        noise = 0.75 + 0.5 * _unit(self.seed, index, hour)
        return base * noise * self._scale[index]

    def _hour_uncached(self, index: int, hour: int) -> tuple[tuple[str, int], ...]:
        """Metric values of stream ``index`` in hour ``hour`` (hours since the epoch)."""
        stream = self.streams[index]
        f = self._factor(index, hour)
        m = stream.metrics
        if stream.endpoint == "vector_stores":
            return ()  # a gauge: see gauge()
        if "num_sessions" in m:
            return (("num_sessions", round(m["num_sessions"] * f)),)
        if stream.endpoint == "file_search_calls":
            return (("num_requests", round(m["num_requests"] * f)),)
        requests = round(m["num_model_requests"] * f)
        if requests == 0:
            return ()
        u = _unit(self.seed, index, hour, 99)
        out: list[tuple[str, int]] = [("num_model_requests", requests)]
        if stream.endpoint == "completions":
            input_tokens = round(requests * m["_in"] * (0.8 + 0.4 * u))
            audio_in = round(input_tokens * m["_audio_in"])
            cached = round((input_tokens - audio_in) * m["_cached"] * (0.9 + 0.2 * u))
            output_tokens = round(requests * m["_out"] * (0.7 + 0.6 * (1 - u)))
            audio_out = round(output_tokens * m["_audio_out"])
            out += [
                ("input_tokens", input_tokens),
                ("input_cached_tokens", cached),
                ("input_audio_tokens", audio_in),
                ("output_tokens", output_tokens),
                ("output_audio_tokens", audio_out),
            ]
        elif stream.endpoint in ("embeddings", "moderations"):
            out.append(("input_tokens", round(requests * m["_in"] * (0.8 + 0.4 * u))))
        elif stream.endpoint == "images":
            out.append(("images", round(requests * m["_per"])))
        elif stream.endpoint == "audio_speeches":
            out.append(("characters", round(requests * m["_per"] * (0.7 + 0.6 * u))))
        elif stream.endpoint == "audio_transcriptions":
            out.append(("seconds", round(requests * m["_per"] * (0.7 + 0.6 * u))))
        elif stream.endpoint == "web_search_calls":
            out.append(("num_requests", round(requests * m["_per"])))
        return tuple(out)

    def minute_weights(self, index: int, hour: int) -> list[float]:
        """How the hour's usage falls over its minutes. Real traffic is bursty inside the
        hour (cron jobs, batch drains), so a share of hours holds it all in a 5-minute
        burst, in one minute, or in the first half; the rest spread it unevenly. An
        interval cut inside an hour is only right when split by these minutes."""
        pick = _unit(self.seed, index, hour, 7)
        at = int(60 * _unit(self.seed, index, hour, 11))
        if self.streams[index].shape == "night" or pick < 0.15:  # a drain: the first half
            return [1.0 + _unit(self.seed, index, hour, m) if m < 30 else 0.0 for m in range(60)]
        if pick < 0.35:  # a 5-minute burst
            first = min(at, 55)
            return [1.0 if first <= m < first + 5 else 0.0 for m in range(60)]
        if pick < 0.45:  # one minute
            return [1.0 if m == at else 0.0 for m in range(60)]
        return [0.3 + _unit(self.seed, index, hour, minute) for minute in range(60)]

    def _minutes_uncached(self, index: int, hour: int) -> tuple[dict[str, int], ...]:
        """The hour's values split over its 60 minutes (largest remainder, sums exact)."""
        totals = dict(self._hour(index, hour))
        weights = self.minute_weights(index, hour)
        scale = sum(weights)
        minutes: list[dict[str, int]] = [{} for _ in range(60)]
        for metric, total in totals.items():
            shares = [total * w / scale for w in weights]
            floors = [int(s) for s in shares]
            order = sorted(range(60), key=lambda i: shares[i] - floors[i], reverse=True)
            for i in order[: total - sum(floors)]:
                floors[i] += 1
            for i, value in enumerate(floors):
                if value:
                    minutes[i][metric] = value
        return tuple(minutes)

    def total(self, index: int, t0: int, t1: int, now: int) -> dict[str, int]:
        """Additive metrics of stream ``index`` over ``[t0, t1)``, clipped to the history."""
        t0, t1 = max(t0, self.history_start), min(t1, now)
        acc: dict[str, int] = {}
        if t0 >= t1:
            return acc

        def add(values: tuple[tuple[str, int], ...] | dict[str, int]) -> None:
            for metric, value in values.items() if isinstance(values, dict) else values:
                acc[metric] = acc.get(metric, 0) + value

        first_full = -(-t0 // HOUR)
        last_full = t1 // HOUR  # exclusive
        if first_full >= last_full:
            self._add_minutes(index, t0, t1, add)
            return acc
        self._add_minutes(index, t0, first_full * HOUR, add)
        for hour in range(first_full, last_full):
            add(self._hour(index, hour))
        self._add_minutes(index, last_full * HOUR, t1, add)
        return acc

    def _add_minutes(self, index: int, t0: int, t1: int, add: object) -> None:
        if t0 >= t1:
            return
        hour = t0 // HOUR
        while hour * HOUR < t1:
            minutes = self._minutes(index, hour)
            for minute in range(60):
                start = hour * HOUR + minute * MINUTE
                if t0 <= start < t1 and minutes[minute]:
                    add(minutes[minute])  # type: ignore[operator]
            hour += 1

    def gauge(self, index: int, t: int, now: int) -> int | None:
        """Stored bytes of a vector-store stream at ``t`` (None outside the history)."""
        if not self.history_start <= t < now:
            return None
        stream = self.streams[index]
        days = (t - self.history_start) // DAY
        return round(stream.metrics["usage_bytes"] * self._scale[index] * (1 + 0.01 * days))

    # -- costs --------------------------------------------------------------------------------

    def cost_lines(self, index: int, t0: int, t1: int, now: int) -> list[CostLine]:
        """Priced lines of stream ``index`` over ``[t0, t1)``."""
        stream = self.streams[index]
        if stream.endpoint == "vector_stores":
            return self._storage_lines(index, t0, t1, now)
        usage = self.total(index, t0, t1, now)
        if not usage:
            return []
        return price_usage(stream, usage)

    def _storage_lines(self, index: int, t0: int, t1: int, now: int) -> list[CostLine]:
        """Storage accrues by the second: each hour's level, for the part of the hour
        inside ``[t0, t1)``."""
        hours = 0
        gib_hours = 0.0
        for t in range(t0 - t0 % HOUR, t1, HOUR):
            value = self.gauge(index, t, now)
            inside = min(t + HOUR, t1, now) - max(t, t0)
            if value is not None and inside > 0:
                hours += 1
                gib_hours += value / _GB * inside / HOUR
        if not hours:
            return []
        return [
            CostLine(
                "vector store storage",
                gib_hours,
                "gibibyte_hours",
                gib_hours / 24 * STORAGE_PRICE_GB_DAY,
            )
        ]


def price_usage(stream: Stream, usage: dict[str, int]) -> list[CostLine]:
    """Line items in the costs endpoint's free-text style for one stream's usage."""
    model = stream.model or ""
    ep = stream.endpoint
    if ep == "completions":
        prices = TOKEN_PRICES[model]
        tier = "batch" if stream.dims.get("batch") else str(stream.dims.get("service_tier"))
        mult = TIER_MULTIPLIER.get(tier, 1.0)
        prefix = f"{tier} | " if tier in TIER_MULTIPLIER else ""
        name = model.replace("ft:", "ft-", 1) if model.startswith("ft:") else model
        cached = usage.get("input_cached_tokens", 0)
        audio_in = usage.get("input_audio_tokens", 0)
        audio_out = usage.get("output_audio_tokens", 0)
        parts = {
            "input": usage.get("input_tokens", 0) - cached - audio_in,
            "cached input": cached,
            "output": usage.get("output_tokens", 0) - audio_out,
            "audio input": audio_in,
            "audio output": audio_out,
        }
        return [
            CostLine(f"{prefix}{name}, {kind}", qty, "tokens", qty * prices[kind] * mult / 1e6)
            for kind, qty in parts.items()
            if qty > 0
        ]
    if ep == "embeddings":
        tokens = usage.get("input_tokens", 0)
        return (
            [
                CostLine(
                    f"{model}, input", tokens, "tokens", tokens * TOKEN_PRICES[model]["input"] / 1e6
                )
            ]
            if tokens
            else []
        )
    if ep == "images":
        size = str(stream.dims.get("size"))
        count = usage.get("images", 0)
        return (
            [CostLine("Image models", count, "images", count * IMAGE_PRICES[(model, size)])]
            if count
            else []
        )
    if ep == "audio_speeches":
        chars = usage.get("characters", 0)
        return (
            [
                CostLine(
                    f"{model}, characters",
                    chars,
                    "characters",
                    chars * CHARACTER_PRICES[model] / 1e6,
                )
            ]
            if chars
            else []
        )
    if ep == "audio_transcriptions":
        secs = usage.get("seconds", 0)
        return (
            [CostLine(f"{model}, audio", secs, "duration_seconds", secs * SECOND_PRICES[model])]
            if secs
            else []
        )
    if ep == "code_interpreter_sessions":
        n = usage.get("num_sessions", 0)
        return (
            [CostLine("assistants api | code interpreter", n, None, n * SESSION_PRICE)] if n else []
        )
    if ep == "file_search_calls":
        n = usage.get("num_requests", 0)
        return (
            [CostLine("assistants api | file search", n, None, n * FILE_SEARCH_PRICE)] if n else []
        )
    if ep == "web_search_calls":
        n = usage.get("num_requests", 0)
        return [CostLine("web search tool calls", n, None, n * WEB_SEARCH_PRICE)] if n else []
    return []  # moderations are free
