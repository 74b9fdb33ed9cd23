"""A second fake of OpenAI's admin usage and costs API, written in the tests from
``shared/reference/openai-usage-api-notes.md`` and the spec alone: never from the client, and
deliberately unlike the project's simulator, so that the two cannot share a mistake.

Where the simulator keeps hourly totals split over minutes, this fake keeps requests, each at
its own second, in traffic that is bursty inside the hour (a cron job at :05, a batch drain in
the first twenty minutes of the night's hours, a chat burst in a random five minutes). Every
answer is aggregated from those requests at the moment of the request, as the notes describe
the real API:
- usage buckets are cut at the query's ends: the first starts at ``start_time``, the last
  ends at ``end_time`` or at the moment of the request, and holds what happened before it;
- costs buckets are whole UTC days at both ends (today's ends in the future, its amount the
  day so far), lag the usage by ``costs_lag`` seconds, and bill the requests exactly;
- without ``group_by`` a costs result has ``line_item: null, project_id: null`` and an
  ``organization_id``; ``group_by`` comes repeated, as ``group_by[]`` or comma-separated;
- amounts are sometimes JSON strings; currency is ``usd``; results carry fields the spec does
  not list; optional metrics may be ``null``; empty buckets say ``results: []``.

``truth(start, end)`` is what the requests in ``[start, end)`` cost.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

HOUR, DAY = 3600, 86400
#: USD per 1M tokens: the fake's list prices (rules that price its usage say the same)
PRICES: dict[str, dict[str, Decimal]] = {
    "gpt-4.1-2025-04-14": {
        "input": Decimal(2),
        "cached_input": Decimal("0.5"),
        "output": Decimal(8),
    },
    "gpt-4.1-mini-2025-04-14": {
        "input": Decimal("0.4"),
        "cached_input": Decimal("0.1"),
        "output": Decimal("1.6"),
    },
    "text-embedding-3-small": {
        "input": Decimal("0.02"),
        "cached_input": Decimal(0),
        "output": Decimal(0),
    },
}
PROJECTS = {
    "proj_app": "Storefront assistant",
    "proj_etl": "Nightly ETL",
    "proj_batch": "Bulk drain",
}
_MILLION = Decimal(1_000_000)
_USAGE_RESULT = {
    "completions": "organization.usage.completions.result",
    "embeddings": "organization.usage.embeddings.result",
    "moderations": "organization.usage.moderations.result",
    "images": "organization.usage.images.result",
    "audio_speeches": "organization.usage.audio_speeches.result",
    "audio_transcriptions": "organization.usage.audio_transcriptions.result",
    "vector_stores": "organization.usage.vector_stores.result",
    "code_interpreter_sessions": "organization.usage.code_interpreter_sessions.result",
    "file_search_calls": "organization.usage.file_searches.result",
    "web_search_calls": "organization.usage.web_searches.result",
}
_LIMITS = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}
_WIDTH = {"1m": 60, "1h": HOUR, "1d": DAY}


@dataclass(frozen=True)
class Request:
    """One API request of the organisation's traffic, at its second."""

    at: int
    endpoint: str
    project_id: str
    user_id: str
    api_key_id: str
    model: str
    batch: bool
    input_tokens: int
    cached_tokens: int
    output_tokens: int

    def line_items(self) -> Iterator[tuple[str, Decimal]]:
        """The costs lines this request bills, in the API's free-text style."""
        prices = PRICES[self.model]
        tier = Decimal("0.5") if self.batch else Decimal(1)
        prefix = "batch | " if self.batch else ""
        parts = (
            ("input", self.input_tokens - self.cached_tokens, "input"),
            ("cached input", self.cached_tokens, "cached_input"),
            ("output", self.output_tokens, "output"),
        )
        for kind, tokens, price in parts:
            if tokens:
                yield f"{prefix}{self.model}, {kind}", tokens * prices[price] * tier / _MILLION

    @property
    def cost(self) -> Decimal:
        return sum((amount for _, amount in self.line_items()), Decimal(0))


def _traffic(seed: int, hour: int) -> Iterator[Request]:
    """The requests of one hour (``hour`` in hours since the epoch)."""
    rng = random.Random(f"{seed}:{hour}")
    start = hour * HOUR
    hod = hour % 24
    # a cron job at :05 every hour: 40 requests within three minutes
    for _ in range(40):
        at = start + 300 + rng.randrange(180)
        n = rng.randrange(800, 1600)
        yield Request(
            at,
            "completions",
            "proj_etl",
            "user-ops",
            "key_etl",
            "gpt-4.1-mini-2025-04-14",
            False,
            n,
            n // 4,
            rng.randrange(50, 200),
        )
    # a batch drain in the first twenty minutes of the night's hours
    if hod < 5:
        for _ in range(rng.randrange(150, 250)):
            at = start + rng.randrange(1200)
            n = rng.randrange(1500, 3000)
            yield Request(
                at,
                "completions",
                "proj_batch",
                "user-ops",
                "key_batch",
                "gpt-4.1-mini-2025-04-14",
                True,
                n,
                0,
                rng.randrange(200, 600),
            )
    # chat: 70 % in a burst of five minutes, the rest over the hour
    busy = 1.0 if 8 <= hod < 22 else 0.3
    burst = rng.randrange(55) * 60
    for _ in range(int(rng.randrange(40, 80) * busy)):
        at = start + (burst + rng.randrange(300) if rng.random() < 0.7 else rng.randrange(HOUR))
        n = rng.randrange(500, 4000)
        yield Request(
            at,
            "completions",
            "proj_app",
            "user-web",
            "key_app",
            "gpt-4.1-2025-04-14",
            False,
            n,
            n // 3,
            rng.randrange(100, 900),
        )
    # embeddings for the app's search, steady
    for _ in range(int(30 * busy)):
        at = start + rng.randrange(HOUR)
        yield Request(
            at,
            "embeddings",
            "proj_app",
            "user-web",
            "key_app",
            "text-embedding-3-small",
            False,
            rng.randrange(50, 500),
            0,
            0,
        )


class Traffic:
    """The organisation's requests over ``[first, now)``, generated an hour at a time."""

    def __init__(self, seed: int, first: int) -> None:
        self.seed, self.first = seed, first - first % HOUR
        self._hours: dict[int, list[Request]] = {}
        self._lock = threading.Lock()

    def hour(self, hour: int) -> list[Request]:
        with self._lock:
            found = self._hours.get(hour)
            if found is None:
                found = sorted(_traffic(self.seed, hour), key=lambda r: r.at)
                self._hours[hour] = found
            return found

    def between(self, start: int, end: int) -> Iterator[Request]:
        """The requests with ``start <= at < end`` (none before the history began)."""
        start = max(start, self.first)
        for hour in range(start // HOUR, -(-end // HOUR)):
            found = self.hour(hour)
            times = [r.at for r in found]
            yield from found[bisect_left(times, start) : bisect_left(times, end)]


class FakeAdminAPI:
    """Answers ``GET`` requests as the notes say the real API does; ``clock`` is its now."""

    def __init__(
        self,
        *,
        seed: int = 3,
        days: int = 10,
        costs_lag: int = 2 * HOUR,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.costs_lag = costs_lag
        self.traffic = Traffic(seed, int(clock()) - days * DAY)
        self.requests: list[str] = []

    # -- the truth ----------------------------------------------------------------------------

    def truth(self, start: int, end: int, *, project: str | None = None) -> Decimal:
        """What the requests in ``[start, end)`` cost (of ``project`` only, if given)."""
        return sum(
            (r.cost for r in self.traffic.between(start, end) if project in (None, r.project_id)),
            Decimal(0),
        )

    def tokens(self, start: int, end: int) -> int:
        return sum(r.input_tokens + r.output_tokens for r in self.traffic.between(start, end))

    # -- requests ----------------------------------------------------------------------------

    def answer(self, path: str, query: str, headers: dict[str, str]) -> tuple[int, Any]:
        self.requests.append(path)
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        key = auth.removeprefix("Bearer ").strip()
        if not auth.startswith("Bearer ") or not key:
            return 401, _error("You didn't provide an API key.", "invalid_request_error")
        if not key.startswith("sk-admin-"):
            return 403, _error("Missing scopes: api.usage.read.", "invalid_request_error")
        params: dict[str, list[str]] = defaultdict(list)
        for name, value in parse_qsl(query, keep_blank_values=True):
            params[name.removesuffix("[]")].append(value)
        path = path.removeprefix("/v1")
        if path == "/organization/costs":
            return self._page(params, costs=True, endpoint="costs")
        if path.startswith("/organization/usage/"):
            endpoint = path.rsplit("/", 1)[1]
            if endpoint in _USAGE_RESULT:
                return self._page(params, costs=False, endpoint=endpoint)
        listed = self._directory(path)
        if listed is not None:
            return 200, listed
        return 404, _error(f"Invalid URL (GET /v1{path})", "invalid_request_error")

    def _page(self, params: dict[str, list[str]], *, costs: bool, endpoint: str) -> tuple[int, Any]:
        now = int(self.clock())
        try:
            start = int(params["start_time"][-1])
            end = int(params["end_time"][-1]) if params.get("end_time") else None
            width_name = params.get("bucket_width", ["1d"])[-1]
            if (costs and width_name != "1d") or width_name not in _WIDTH:
                raise ValueError("bucket_width")
            default, most = (7, 180) if costs else _LIMITS[width_name]
            limit = int(params["limit"][-1]) if params.get("limit") else default
            if not 1 <= limit <= most:
                raise ValueError("limit")
        except (KeyError, ValueError) as exc:
            return 400, _error(f"Invalid parameter: {exc}", "invalid_request_error")
        group_by = [g for value in params.get("group_by", []) for g in value.split(",") if g]
        width = _WIDTH[width_name]
        upper = now if end is None else min(end, now)
        signature = hashlib.sha1(
            repr(sorted((k, v) for k, v in params.items() if k != "page")).encode()
        ).hexdigest()[:8]
        position = start - start % DAY if costs else start
        if params.get("page"):
            raw = json.loads(base64.urlsafe_b64decode(params["page"][-1]))
            if raw["q"] != signature:
                return 400, _error("Invalid 'page'.", "invalid_request_error")
            position = raw["at"]
        data = []
        while position < upper and len(data) < limit:
            boundary = (position // width + 1) * width
            if costs:  # whole UTC days, today's ending in the future
                bucket = (position, boundary, self._cost_results(position, boundary, now, group_by))
            else:  # cut at the query's end or the moment of this request
                stop = min(boundary, upper)
                bucket = (position, stop, self._usage_results(endpoint, position, stop, group_by))
            data.append(
                {
                    "object": "bucket",
                    "start_time": bucket[0],
                    "end_time": bucket[1],
                    "results": bucket[2],
                }
            )
            position = boundary
        more = position < upper
        cursor = base64.urlsafe_b64encode(
            json.dumps({"at": position, "q": signature}).encode()
        ).decode()
        return 200, {
            "object": "page",
            "data": data,
            "has_more": more,
            "next_page": cursor if more else None,
        }

    def _usage_results(
        self, endpoint: str, lo: int, hi: int, group_by: list[str]
    ) -> list[dict[str, Any]]:
        sums: dict[tuple[Any, ...], list[int]] = {}
        for r in self.traffic.between(lo, hi):
            if r.endpoint != endpoint:
                continue
            key = tuple(getattr(r, g, None) for g in group_by)
            acc = sums.setdefault(key, [0, 0, 0, 0])
            acc[0] += r.input_tokens
            acc[1] += r.cached_tokens
            acc[2] += r.output_tokens
            acc[3] += 1
        out = []
        for key, (tokens_in, cached, tokens_out, count) in sorted(sums.items(), key=repr):
            grouped = dict(zip(group_by, key, strict=True))
            result: dict[str, Any] = {
                "object": _USAGE_RESULT[endpoint],
                "input_tokens": tokens_in,
                "num_model_requests": count,
                "project_id": grouped.get("project_id"),
                "user_id": grouped.get("user_id"),
                "api_key_id": grouped.get("api_key_id"),
                "model": grouped.get("model"),
                "served_region": "us",  # a field the spec does not list
            }
            if endpoint == "completions":
                result |= {
                    "output_tokens": tokens_out,
                    # an optional metric may be null when there is none
                    "input_cached_tokens": cached or None,
                    "input_audio_tokens": None,
                    "output_audio_tokens": 0,
                    "batch": grouped.get("batch"),
                    "service_tier": "default" if "service_tier" in grouped else None,
                }
            out.append(result)
        return out

    def _cost_results(
        self, day: int, end: int, now: int, group_by: list[str]
    ) -> list[dict[str, Any]]:
        sums: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
        for r in self.traffic.between(day, min(end, now - self.costs_lag)):
            for line, amount in r.line_items():
                dims = {"project_id": r.project_id, "line_item": line, "api_key_id": r.api_key_id}
                sums[tuple(dims.get(g) for g in group_by)] += amount
        out = []
        for n, (key, amount) in enumerate(sorted(sums.items(), key=repr)):
            grouped = dict(zip(group_by, key, strict=True))
            value: Any = str(amount) if n % 2 else float(amount)  # both forms are seen
            out.append(
                {
                    "object": "organization.costs.result",
                    "amount": {"value": value, "currency": "usd"},
                    "line_item": grouped.get("line_item"),
                    "project_id": grouped.get("project_id"),
                    "api_key_id": grouped.get("api_key_id"),
                    "organization_id": "org-fake-0001",
                    "quantity": None,
                    "quantity_unit": None,
                }
            )
        return out

    @staticmethod
    def _directory(path: str) -> dict[str, Any] | None:
        def listing(items: list[dict[str, Any]]) -> dict[str, Any]:
            return {
                "object": "list",
                "data": items,
                "first_id": items[0]["id"] if items else None,
                "last_id": items[-1]["id"] if items else None,
                "has_more": False,
            }

        if path == "/organization/projects":
            return listing(
                [
                    {
                        "id": pid,
                        "object": "organization.project",
                        "name": name,
                        "created_at": 1,
                        "archived_at": None,
                        "status": "active",
                    }
                    for pid, name in PROJECTS.items()
                ]
            )
        if path == "/organization/users":
            return listing(
                [
                    {
                        "id": uid,
                        "object": "organization.user",
                        "name": uid.title(),
                        "email": f"{uid}@example.com",
                        "role": "owner",
                        "added_at": 1,
                    }
                    for uid in ("user-ops", "user-web")
                ]
            )
        for pid in PROJECTS:
            if path == f"/organization/projects/{pid}/api_keys":
                return listing([])
            if path == f"/organization/projects/{pid}/service_accounts":
                return listing([])
        return None


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


class FakeAdminServer:
    """``with FakeAdminServer() as fake: ... fake.base_url``: the fake over loopback HTTP."""

    def __init__(self, api: FakeAdminAPI | None = None) -> None:
        self.api = api or FakeAdminAPI()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                status, body = outer.api.answer(parts.path, parts.query, dict(self.headers.items()))
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeAdminServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
