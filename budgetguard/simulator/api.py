"""The simulated API's request handling, free of HTTP plumbing: request in, response out.

It behaves as the reference describes the real API: bearer auth (401 without a key, 403 for a
project key), parameters checked against the spec (400 with the API's error shape), buckets
aligned to UTC, a usage query's ends cut (the first bucket starts at ``start_time``, the last
ends at ``end_time`` or at the moment of the request), costs buckets whole UTC days (today's
ends in the future), ``end_time`` exclusive, page limits with defaults and maxima, opaque
cursors, dimensions null unless grouped by, empty buckets with ``results: []``, and
``group_by[]=`` and comma-separated ``group_by`` accepted too.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import struct
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from budgetguard.simulator import controls_spec, directory
from budgetguard.simulator.controls import ControlsState
from budgetguard.simulator.faults import TRANSPORT_FAULTS, Fault, FaultPlan
from budgetguard.simulator.org import DAY, Organisation
from budgetguard.simulator.spec import EXTRA_GROUP_BY, PAGE_LIMITS, Route, routes

__all__ = ["Response", "SimulatedAPI"]

log = logging.getLogger("budgetguard.simulator")

_WIDTHS = {"1m": 60, "1h": 3600, "1d": DAY}
_PREFIX = "/v1"
#: admin keys the simulator lets read but not write the controls (a restricted key)
READ_ONLY_PREFIX = "sk-admin-readonly"
#: model requests, served only to show a spend limit refusing them
_MODEL_PATHS = frozenset({"/v1/chat/completions", "/v1/responses"})
_FILTER_DIMS = {
    "project_ids": "project_id",
    "user_ids": "user_id",
    "api_key_ids": "api_key_id",
    "models": "model",
    "sizes": "size",
    "sources": "source",
    "vector_store_ids": "vector_store_id",
    "context_levels": "context_level",
}
_DIMENSIONS = {
    "costs": ("project_id", "line_item", "api_key_id"),
    "completions": ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier"),
    "images": ("project_id", "user_id", "api_key_id", "model", "size", "source"),
    "vector_stores": ("project_id",),
    "code_interpreter_sessions": ("project_id",),
    "file_search_calls": ("project_id", "user_id", "api_key_id", "vector_store_id"),
    "web_search_calls": ("project_id", "user_id", "api_key_id", "model", "context_level"),
}
_DEFAULT_DIMS = ("project_id", "user_id", "api_key_id", "model")
_METRICS = {
    "completions": (
        "input_tokens",
        "output_tokens",
        "input_cached_tokens",
        "input_audio_tokens",
        "output_audio_tokens",
        "num_model_requests",
    ),
    "embeddings": ("input_tokens", "num_model_requests"),
    "moderations": ("input_tokens", "num_model_requests"),
    "images": ("images", "num_model_requests"),
    "audio_speeches": ("characters", "num_model_requests"),
    "audio_transcriptions": ("seconds", "num_model_requests"),
    "vector_stores": ("usage_bytes",),
    "code_interpreter_sessions": ("num_sessions",),
    "file_search_calls": ("num_requests",),
    "web_search_calls": ("num_model_requests", "num_requests"),
}


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    #: a transport fault for the server to carry out instead of a plain answer
    fault: Fault | None = None

    def json(self) -> Any:
        return json.loads(self.body)


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param


def _error(
    status: int,
    message: str,
    kind: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return Response(
        status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


def _bearer(headers: dict[str, str]) -> str:
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    return value.partition(" ")[2].strip()


class SimulatedAPI:
    """Answers requests for one synthetic organisation; safe to call from many threads."""

    def __init__(
        self,
        org: Organisation,
        *,
        clock: Callable[[], int] | None = None,
        faults: FaultPlan | None = None,
        latency: float = 0.0,
        string_amounts: bool = False,
        costs_delay: int = 3 * 3600,
        sleep: Callable[[float], None] = time.sleep,
        cache_pages: bool = False,
        enforcement_lag: int = 900,
    ) -> None:
        self.org = org
        self.clock = clock or (lambda: int(time.time()))
        self.faults = faults or FaultPlan()
        self.latency = latency
        self.string_amounts = string_amounts
        self.costs_delay = costs_delay
        self._sleep = sleep
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self._routes = {_PREFIX + path: route for path, route in routes().items()}
        #: OpenAI's own controls (spend limits, permissions, ...): ``simulator.controls``
        self._serial = itertools.count(1)
        self.controls = ControlsState(self.clock, self.spend, enforcement_lag=enforcement_lag)
        # With a frozen clock every answer is a pure function of the request: keep the
        # recent ones, so a repeated backfill costs the simulator nothing.
        self._cache: OrderedDict[tuple[str, bool], bytes] | None = (
            OrderedDict() if cache_pages else None
        )

    # -- entry point --------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes = b""
    ) -> Response:
        path, _, query = target.partition("?")
        if path.rstrip("/") in _MODEL_PATHS:
            return self._model_request(method, headers)
        control, known = controls_spec.match(method, path.removeprefix(_PREFIX).rstrip("/"))
        if control is not None:
            return self._control(control, path.removeprefix(_PREFIX).rstrip("/"), headers, body)
        if known:
            return _error(404, f"Invalid URL ({method} {path})", "invalid_request_error")
        route = self._routes.get(path.rstrip("/"))
        if route is None and path.startswith(_PREFIX + "/organization/"):
            return self._directory(method, path.removeprefix(_PREFIX).rstrip("/"), query, headers)
        if route is None:
            return _error(404, f"Invalid URL ({method} {path})", "invalid_request_error")
        with self._lock:
            self.requests[route.name] += 1
        if self.latency:
            self._sleep(self.latency)
        if method != "GET":
            return _error(405, f"Method {method} not allowed", "invalid_request_error")
        auth = self._check_auth(headers)
        if auth is not None:
            return auth
        fault = self.faults.next(route.name)
        if fault is not None:
            if fault.kind == "slow":
                self._sleep(fault.seconds)
            elif fault.kind == "429":
                extra = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                return _error(
                    429,
                    "Rate limit reached for requests",
                    "requests",
                    code="rate_limit_exceeded",
                    headers=extra,
                )
            elif fault.kind in ("500", "503"):
                return _error(
                    int(fault.kind),
                    "The server had an error while processing your request. Sorry about that!",
                    "server_error",
                )
        if fault is not None and fault.kind == "rewrite" and fault.ignore_cursor:
            query = "&".join(kv for kv in query.split("&") if not kv.startswith("page="))
            target = f"{path}?{query}"
        try:
            data = self._cached_page(route, target, query)
        except _BadRequest as bad:
            return _error(400, bad.message, "invalid_request_error", param=bad.param)
        except Exception:  # a simulator bug must still answer like a server would
            log.exception("simulator failed on %s", target)
            return _error(500, "The simulator failed on this request.", "server_error")
        if fault is not None and fault.kind == "malformed":
            data = data[: max(1, len(data) // 2)]
        if fault is not None and fault.rewrite is not None:
            data = json.dumps(fault.rewrite(json.loads(data))).encode()
        transport = fault if fault is not None and fault.kind in TRANSPORT_FAULTS else None
        return Response(200, data, {"Content-Type": "application/json"}, transport)

    def spend(self, project: str | None, t0: int, t1: int) -> float:
        """USD the org (or one project) spent over ``[t0, t1)``: its usage priced."""
        now = self.clock()
        total = 0.0
        for index, stream in enumerate(self.org.streams):
            if project is None or stream.project_id == project:
                total += sum(line.amount for line in self.org.cost_lines(index, t0, t1, now))
        return total

    def _control(
        self, route: controls_spec.ControlRoute, path: str, headers: dict[str, str], body: bytes
    ) -> Response:
        """A controls request (``simulator.controls``), behind the same auth; faults only
        when scripted for ``controls``."""
        with self._lock:
            self.requests["controls"] += 1
        auth = self._check_auth(headers)
        if auth is not None:
            return auth
        if route.method != "GET" and _bearer(headers).startswith(READ_ONLY_PREFIX):
            return _error(
                403,
                "You have insufficient permissions for this operation: this admin key may "
                "only read.",
                "invalid_request_error",
            )
        fault = self.faults.next("controls", exact=True)
        if fault is not None and fault.kind in ("429", "500", "503"):
            status = int(fault.kind)
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
            return _error(status, "The server had an error.", "server_error", headers=extra)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            return _error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error"
            )
        status, answer = self.controls.answer(route, path, parsed)
        out = {"Content-Type": "application/json", "x-request-id": self._request_id()}
        transport = fault if fault is not None and fault.kind in TRANSPORT_FAULTS else None
        return Response(status, json.dumps(answer).encode(), out, transport)

    def _request_id(self) -> str:
        with self._lock:
            serial = next(self._serial)
        return f"req_sim{serial:012d}"

    def _model_request(self, method: str, headers: dict[str, str]) -> Response:
        """A model request (chat completions, responses): refused with 429 while a spend
        limit enforces, else a one-word answer. The project comes from ``OpenAI-Project``."""
        if method != "POST":
            return _error(405, f"Method {method} not allowed", "invalid_request_error")
        project = next((v for k, v in headers.items() if k.lower() == "openai-project"), None)
        refused = self.controls.refused(project)
        out = {"Content-Type": "application/json", "x-request-id": self._request_id()}
        if refused is not None:
            status, error = refused
            return Response(status, json.dumps(error).encode(), out)
        completion = {
            "id": "chatcmpl-sim",
            "object": "chat.completion",
            "created": self.clock(),
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok", "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        return Response(200, json.dumps(completion).encode(), out)

    def _directory(self, method: str, path: str, query: str, headers: dict[str, str]) -> Response:
        """Projects, users and API keys (``simulator.directory``), behind the same auth."""
        found = directory.answer(path, query) if method == "GET" else None
        if found is None:
            return _error(404, f"Invalid URL ({method} {_PREFIX}{path})", "invalid_request_error")
        with self._lock:
            self.requests["directory"] += 1
        auth = self._check_auth(headers)
        if auth is not None:
            return auth
        status, body = found
        fault = self.faults.next("directory", exact=True)  # scripted for "directory" only
        transport = fault if fault is not None and fault.kind in TRANSPORT_FAULTS else None
        headers = {"Content-Type": "application/json"}
        return Response(status, json.dumps(body).encode(), headers, transport)

    def _cached_page(self, route: Route, target: str, query: str) -> bytes:
        key = (target, self.string_amounts)
        if self._cache is not None:
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None:
                return hit
        data = json.dumps(self._page(route, query), separators=(",", ":")).encode()
        if self._cache is not None:
            with self._lock:
                self._cache[key] = data
                while len(self._cache) > 512:
                    self._cache.popitem(last=False)
        return data

    def _check_auth(self, headers: dict[str, str]) -> Response | None:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, key = value.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return _error(
                401,
                "You didn't provide an API key. You need to provide your API key "
                "in an Authorization header using Bearer auth (i.e. Authorization: "
                "Bearer YOUR_KEY).",
                "invalid_request_error",
            )
        if key.startswith(("sk-proj-", "sk-svcacct-")):
            return _error(
                403,
                "You have insufficient permissions for this operation. Missing "
                "scopes: api.usage.read. Check that you have the correct role in your "
                "organization, and if you're using a restricted API key, that it has "
                "the necessary scopes.",
                "invalid_request_error",
            )
        if not key.startswith("sk-admin-"):
            return _error(
                401,
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                code="invalid_api_key",
            )
        return None

    # -- parameters ---------------------------------------------------------------------------

    def _params(self, route: Route, query: str) -> dict[str, Any]:
        values: dict[str, list[str]] = {}
        for raw_key, value in parse_qsl(query, keep_blank_values=True):
            key = raw_key[:-2] if raw_key.endswith("[]") else raw_key
            values.setdefault(key, []).append(value)
        out: dict[str, Any] = {}
        for name, param in route.params.items():
            got = values.get(name)
            if not got:
                if param.required:
                    raise _BadRequest(f"Missing required parameter: '{name}'.", name)
                continue
            out[name] = self._convert(route, name, param.kind, param.enum, got)
        return out

    def _convert(
        self, route: Route, name: str, kind: str, enum: frozenset[str] | None, got: list[str]
    ) -> Any:
        if kind == "array":
            allowed = enum
            if allowed is not None and name == "group_by":
                allowed = allowed | EXTRA_GROUP_BY.get(route.name, frozenset())
            items = [item for value in got for item in value.split(",") if item]
            for item in items:
                if allowed is not None and item not in allowed:
                    raise _BadRequest(
                        f"Invalid value for '{name}': '{item}'. Supported values "
                        f"are: {', '.join(sorted(allowed))}.",
                        name,
                    )
            return items
        value = got[-1]
        if kind == "integer":
            try:
                return int(value)
            except ValueError:
                raise _BadRequest(
                    f"Invalid '{name}': expected an integer, got '{value}'.", name
                ) from None
        if kind == "boolean":
            if value.lower() not in ("true", "false"):
                raise _BadRequest(f"Invalid '{name}': expected a boolean.", name)
            return value.lower() == "true"
        if enum is not None and value not in enum:
            raise _BadRequest(
                f"Invalid value for '{name}': '{value}'. Supported values are: "
                f"{', '.join(sorted(enum))}.",
                name,
            )
        return value

    # -- one page -----------------------------------------------------------------------------

    def _page(self, route: Route, query: str) -> dict[str, Any]:
        p = self._params(route, query)
        now = self.clock()
        width_name = p.get("bucket_width", "1d")
        width = _WIDTHS[width_name]
        default_limit, max_limit = PAGE_LIMITS[(route.is_costs, width_name)]
        limit = p.get("limit", default_limit)
        if not 1 <= limit <= max_limit:
            raise _BadRequest(
                f"Invalid 'limit': {limit}. For bucket_width={width_name} it "
                f"must be between 1 and {max_limit}.",
                "limit",
            )
        start = p["start_time"]
        end = p.get("end_time")
        if start < 0:
            raise _BadRequest("Invalid 'start_time': must be a Unix timestamp.", "start_time")
        if end is not None and end <= start:
            raise _BadRequest("'end_time' must be greater than 'start_time'.", "end_time")
        first = (start // DAY) * DAY if route.is_costs else start
        upper = now if end is None else min(end, now)
        signature = self._signature(route, query)
        cursor = p.get("page")
        position = first if cursor is None else self._decode_cursor(cursor, signature)
        buckets: list[dict[str, Any]] = []
        while position < upper and len(buckets) < limit:
            bucket_end = (position // width + 1) * width
            # a costs day holds what it has up to now, whatever end_time says (as its start
            # is midnight whatever start_time says); usage buckets stop at end_time
            stop = min(bucket_end, now) if route.is_costs else min(bucket_end, upper)
            results = self._results(route, p, position, stop, now)
            buckets.append(
                {
                    "object": "bucket",
                    "start_time": position,
                    # the real API cuts a usage query's last bucket at end_time or at the
                    # moment of the request (the cookbook's [1739145600, 1739208663)); a
                    # costs bucket is a whole UTC day, today's ending in the future
                    "end_time": bucket_end if route.is_costs else stop,
                    "results": results,
                }
            )
            position = bucket_end
        has_more = position < upper
        return {
            "object": "page",
            "data": buckets,
            "has_more": has_more,
            "next_page": self._encode_cursor(position, signature) if has_more else None,
        }

    @staticmethod
    def _signature(route: Route, query: str) -> bytes:
        stable = sorted(kv for kv in parse_qsl(query, keep_blank_values=True) if kv[0] != "page")
        return hashlib.sha256(repr((route.name, stable)).encode()).digest()[:6]

    @staticmethod
    def _encode_cursor(position: int, signature: bytes) -> str:
        return "page_" + base64.urlsafe_b64encode(struct.pack(">q", position) + signature).decode()

    @staticmethod
    def _decode_cursor(cursor: str, signature: bytes) -> int:
        try:
            raw = base64.urlsafe_b64decode(cursor.removeprefix("page_").encode())
            position: int = struct.unpack(">q", raw[:8])[0]
        except (ValueError, struct.error):
            raise _BadRequest("Invalid 'page': the cursor is not valid.", "page") from None
        if raw[8:] != signature:
            raise _BadRequest("Invalid 'page': the cursor belongs to another query.", "page")
        return position

    # -- results ------------------------------------------------------------------------------

    def _matches(
        self, stream_dim: Callable[[str], object], p: dict[str, Any], route: Route
    ) -> bool:
        for name, dim in _FILTER_DIMS.items():
            if name in p and name in route.params and stream_dim(dim) not in p[name]:
                return False
        return not ("batch" in p and bool(stream_dim("batch")) != p["batch"])

    def _results(
        self, route: Route, p: dict[str, Any], t0: int, t1: int, now: int
    ) -> list[dict[str, Any]]:
        group_by = tuple(p.get("group_by", ()))
        if route.is_costs:
            return self._cost_results(p, group_by, t0, t1, now)
        dims = _DIMENSIONS.get(route.name, _DEFAULT_DIMS)
        metrics = _METRICS[route.name]
        sums: dict[tuple[object, ...], dict[str, int]] = {}
        for index, stream in self.org.streams_of(route.name):
            if not self._matches(stream.dim, p, route):
                continue
            if route.name == "vector_stores":
                value = self.org.gauge(index, t0, now)
                values = {} if value is None else {"usage_bytes": value}
            else:
                values = self.org.total(index, t0, t1, now)
            if not any(values.values()):
                continue
            key = tuple(stream.dim(g) for g in group_by)
            acc = sums.setdefault(key, {})
            for metric, value in values.items():
                acc[metric] = acc.get(metric, 0) + value
        results = []
        for key in sorted(sums, key=repr):
            grouped = dict(zip(group_by, key, strict=True))
            result: dict[str, Any] = {"object": route.result_object}
            for metric in metrics:
                result[metric] = sums[key].get(metric, 0)
            if route.name == "completions":
                self._completion_breakdown(result)
            for dim in dims:
                result[dim] = grouped.get(dim)
            results.append(result)
        return results

    @staticmethod
    def _completion_breakdown(result: dict[str, Any]) -> None:
        """The 2026 breakdown fields, consistent with the totals."""
        cached, audio_in = result["input_cached_tokens"], result["input_audio_tokens"]
        result["input_cache_write_tokens"] = 0
        result["input_uncached_tokens"] = result["input_tokens"] - cached
        result["input_text_tokens"] = result["input_tokens"] - cached - audio_in
        result["input_cached_text_tokens"] = cached
        result["input_cached_audio_tokens"] = 0
        result["output_text_tokens"] = result["output_tokens"] - result["output_audio_tokens"]
        result["input_image_tokens"] = 0
        result["input_cached_image_tokens"] = 0
        result["output_image_tokens"] = 0

    def _cost_results(
        self, p: dict[str, Any], group_by: tuple[str, ...], t0: int, t1: int, now: int
    ) -> list[dict[str, Any]]:
        settled = min(t1, now - self.costs_delay)
        sums: dict[tuple[object, ...], list[Any]] = {}
        for index, stream in enumerate(self.org.streams):
            if "project_ids" in p and stream.project_id not in p["project_ids"]:
                continue
            if "api_key_ids" in p and stream.api_key_id not in p["api_key_ids"]:
                continue
            for line in self.org.cost_lines(index, t0, settled, now):
                dims: dict[str, object] = {
                    "project_id": stream.project_id,
                    "line_item": line.line_item,
                    "api_key_id": stream.api_key_id,
                    "user_id": stream.user_id,
                    "api_source": "api",
                }
                key = tuple(dims[g] for g in group_by)
                acc = sums.setdefault(key, [0.0, 0.0, line.unit])
                acc[0] += line.amount
                acc[1] += line.quantity
        results = []
        for key in sorted(sums, key=repr):
            amount, quantity, unit = sums[key]
            grouped = dict(zip(group_by, key, strict=True))
            by_line = "line_item" in grouped
            value: Any = amount
            if self.string_amounts:
                value = f"{Decimal(repr(amount)):.28f}"
            result: dict[str, Any] = {
                "object": "organization.costs.result",
                "amount": {"value": value, "currency": "usd"},
                "line_item": grouped.get("line_item"),
                "project_id": grouped.get("project_id"),
                "api_key_id": grouped.get("api_key_id"),
                "quantity": quantity if by_line else None,
                "quantity_unit": unit if by_line else None,
                "organization_id": "org-budgetguard-sim",
            }
            for extra in ("user_id", "api_source"):
                if extra in grouped:
                    result[extra] = grouped[extra]
            results.append(result)
        return results
