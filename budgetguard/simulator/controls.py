"""OpenAI's own controls, simulated with the quirks the reference notes record:

- a GET (or DELETE) of a spend limit or model permissions that is not set answers 404;
- limits and alerts are integer cents in ``USD``, monthly; a POST of a limit creates or
  replaces it; an alert update takes the whole body;
- model permissions are replaced whole, with exact ids the organisation can see;
- hosted tools update partially; rate limits have no reset or DELETE, only writes;
- enforcement is late: a limit turns ``enforcing`` once the month's spend, as of
  ``enforcement_lag`` seconds ago, reaches it (so recorded spend can pass the limit), and
  from then on model requests of that project (or of the whole org, for the org's limit)
  answer 429 ``project_spend_limit_exceeded`` (``organization_spend_limit_exceeded``);
- deleting a key and archiving a project are irreversible (there is no undo here either);
- optionally (``alert_replaces_limit``), writing a project spend alert replaces that
  project's limit with the alert's amount and no enforcement, as reported against a
  community Terraform provider (off by default: a report, not a documented behaviour).

Request bodies are checked against the spec (``controls_spec``); the answers are the
spec's objects. Thread-safe: one lock around the state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from budgetguard.simulator.controls_spec import ControlRoute, body_problem
from budgetguard.simulator.org import PROJECTS, STREAMS, TOKEN_PRICES

__all__ = ["DEFAULT_RATE_LIMITS", "TOOLS", "ControlsState", "month_start"]

TOOLS = ("file_search", "web_search", "image_generation", "mcp", "code_interpreter")
DEFAULT_RATE_LIMITS = {"max_requests_per_1_minute": 10_000, "max_tokens_per_1_minute": 2_000_000}
_IMAGE_MODELS = frozenset({"dall-e-2", "dall-e-3"})
#: models every org sees besides the ones it uses (exact ids, as model_permissions needs)
_PUBLIC_MODELS = frozenset(
    {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3", "o4-mini", "gpt-5", "gpt-5-mini"}
)

Answer = tuple[int, dict[str, Any]]


def month_start(at: int) -> int:
    """The start of ``at``'s calendar month in UTC (the limits' month; the docs say no zone)."""
    when = datetime.fromtimestamp(at, UTC)
    return int(when.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> Answer:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return status, {"error": {"message": message, "type": kind, "param": param, "code": code}}


class ControlsState:
    """The organisation's limits, alerts and permissions, and the handlers that serve them.

    ``spend(project or None, t0, t1)`` is the org's spend in USD over ``[t0, t1)`` (the
    simulated usage priced), which enforcement compares with the limits."""

    def __init__(
        self,
        clock: Callable[[], int],
        spend: Callable[[str | None, int, int], float],
        *,
        enforcement_lag: int = 900,
        alert_replaces_limit: bool = False,
    ) -> None:
        self.clock = clock
        self.spend = spend
        self.enforcement_lag = enforcement_lag
        self.alert_replaces_limit = alert_replaces_limit
        self.lock = threading.Lock()
        self.limits: dict[str | None, int] = {}  # None: the org's; cents
        self.alerts: dict[str | None, dict[str, dict[str, Any]]] = {}
        self.permissions: dict[str, dict[str, Any]] = {}
        self.tools: dict[str, dict[str, bool]] = {p: dict.fromkeys(TOOLS, True) for p in PROJECTS}
        self.rate_limits: dict[str, list[dict[str, Any]]] = {p: _rate_rows(p) for p in PROJECTS}
        self.deleted_keys: set[str] = set()
        self.archived: dict[str, int] = {}
        self.writes = 0
        self._next_alert = 0
        self.models = _PUBLIC_MODELS | {s.model for s in STREAMS if s.model} | set(TOKEN_PRICES)

    # -- enforcement --------------------------------------------------------------------------

    def enforcing(self, project: str | None) -> bool:
        """Whether the limit of ``project`` (None: the org's) is enforcing now: the month's
        spend up to ``enforcement_lag`` ago has reached it."""
        with self.lock:
            limit = self.limits.get(project)
        if limit is None:
            return False
        now = self.clock()
        start = month_start(now)
        seen_until = max(start, now - self.enforcement_lag)
        return round(self.spend(project, start, seen_until) * 100) >= limit

    def refused(self, project: str | None) -> Answer | None:
        """The 429 a model request of ``project`` gets while a limit enforces, else None."""
        if self.enforcing(None):
            return _error(
                429,
                "You have exceeded your organization's hard spend limit.",
                code="organization_spend_limit_exceeded",
            )
        if project is not None and self.enforcing(project):
            return _error(
                429,
                "You have exceeded this project's hard spend limit.",
                code="project_spend_limit_exceeded",
            )
        return None

    # -- requests -----------------------------------------------------------------------------

    def answer(self, route: ControlRoute, path: str, body: Any) -> Answer:
        params = route.params(path)
        project = params.get("project_id")
        if project is not None and project not in PROJECTS:
            return _error(404, f"No project found with id '{project}'.", "project_id")
        if route.body_schema is not None:
            problem = body_problem(route.body_schema, body if body is not None else {})
            if problem is not None:
                return _error(400, problem[0], problem[1])
        name = route.template.rsplit("/", 1)[-1].strip("{}")  # spend_limit, alert_id, ...
        handler = getattr(self, f"_{name}")
        with self.lock:
            if route.method != "GET":
                self.writes += 1
        answer: Answer = handler(route.method, project, params, body)
        return answer

    def _spend_limit(self, method: str, project: str | None, _: Any, body: Any) -> Answer:
        kind = "project.spend_limit" if project else "organization.spend_limit"
        with self.lock:
            if method == "POST":
                self.limits[project] = int(body["threshold_amount"])
            elif method == "DELETE":
                if self.limits.pop(project, None) is None:
                    return _error(404, "No hard spend limit is set.")
                return 200, {"object": f"{kind}.deleted", "deleted": True}
            cents = self.limits.get(project)
        if cents is None:
            return _error(404, "No hard spend limit is set.")
        status = "enforcing" if self.enforcing(project) else "inactive"
        return 200, {
            "object": kind,
            "threshold_amount": cents,
            "currency": "USD",
            "interval": "month",
            "enforcement": {"status": status},
        }

    def _spend_alerts(self, method: str, project: str | None, _: Any, body: Any) -> Answer:
        kind = "project.spend_alert" if project else "organization.spend_alert"
        with self.lock:
            alerts = self.alerts.setdefault(project, {})
            if method == "GET":
                data = list(alerts.values())
                return 200, {
                    "object": "list",
                    "data": data,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                    "has_more": False,
                }
            self._next_alert += 1
            alert_id = f"spend_alert_{self._next_alert:04d}"
            alerts[alert_id] = _alert(kind, alert_id, body)
            self._clobber(project, body)
            return 200, alerts[alert_id]

    def _alert_id(self, method: str, project: str | None, params: Any, body: Any) -> Answer:
        kind = "project.spend_alert" if project else "organization.spend_alert"
        alert_id = params["alert_id"]
        with self.lock:
            alerts = self.alerts.setdefault(project, {})
            if alert_id not in alerts:
                return _error(404, f"No spend alert found with id '{alert_id}'.", "alert_id")
            if method == "DELETE":
                del alerts[alert_id]
                return 200, {"object": f"{kind}.deleted", "id": alert_id, "deleted": True}
            if method == "POST":
                alerts[alert_id] = _alert(kind, alert_id, body)
                self._clobber(project, body)
            return 200, alerts[alert_id]

    def _clobber(self, project: str | None, body: dict[str, Any]) -> None:
        """The reported quirk: an alert write replaces the project's limit (lock held)."""
        if self.alert_replaces_limit and project is not None and project in self.limits:
            self.limits[project] = int(body["threshold_amount"])

    def _model_permissions(self, method: str, project: str | None, _: Any, body: Any) -> Answer:
        assert project is not None
        with self.lock:
            if method == "POST":
                unknown = [m for m in body["model_ids"] if m not in self.models]
                if unknown:
                    return _error(400, f"The model '{unknown[0]}' does not exist.", "model_ids")
                self.permissions[project] = {
                    "object": "project.model_permissions",
                    "mode": body["mode"],
                    "model_ids": list(dict.fromkeys(body["model_ids"])),
                }
            elif method == "DELETE":
                if self.permissions.pop(project, None) is None:
                    return _error(404, "No model permissions are set for this project.")
                return 200, {"object": "project.model_permissions.deleted", "deleted": True}
            found = self.permissions.get(project)
        if found is None:
            return _error(404, "No model permissions are set for this project.")
        return 200, found

    def _hosted_tool_permissions(
        self, method: str, project: str | None, _: Any, body: Any
    ) -> Answer:
        assert project is not None
        with self.lock:
            tools = self.tools[project]
            if method == "POST":
                for tool, update in body.items():
                    if update is not None:
                        tools[tool] = bool(update["enabled"])
            return 200, {tool: {"enabled": on} for tool, on in tools.items()}

    def _rate_limits(self, method: str, project: str | None, _: Any, body: Any) -> Answer:
        assert project is not None
        with self.lock:
            rows = [dict(r) for r in self.rate_limits[project]]
        return 200, {
            "object": "list",
            "data": rows,
            "first_id": rows[0]["id"] if rows else None,
            "last_id": rows[-1]["id"] if rows else None,
            "has_more": False,
        }

    def _rate_limit_id(self, method: str, project: str | None, params: Any, body: Any) -> Answer:
        assert project is not None
        with self.lock:
            for row in self.rate_limits[project]:
                if row["id"] == params["rate_limit_id"]:
                    for field, value in body.items():
                        if value < 1:
                            return _error(400, f"'{field}' must be a positive integer.", field)
                    row.update(body)
                    return 200, dict(row)
        return _error(
            404, f"No rate limit found with id '{params['rate_limit_id']}'.", "rate_limit_id"
        )

    def _api_key_id(self, method: str, project: str | None, params: Any, body: Any) -> Answer:
        key = params["api_key_id"]
        owned = {s.api_key_id for s in STREAMS if s.project_id == project and s.api_key_id}
        with self.lock:
            if key not in owned or key in self.deleted_keys:
                return _error(404, f"No API key found with id '{key}'.", "api_key_id")
            self.deleted_keys.add(key)
        return 200, {"object": "organization.project.api_key.deleted", "id": key, "deleted": True}

    def _archive(self, method: str, project: str | None, _: Any, body: Any) -> Answer:
        assert project is not None
        with self.lock:
            at = self.archived.setdefault(project, self.clock())
        return 200, {
            "id": project,
            "object": "organization.project",
            "name": PROJECTS[project],
            "created_at": 1_700_000_000,
            "archived_at": at,
            "status": "archived",
        }


def _alert(kind: str, alert_id: str, body: dict[str, Any]) -> dict[str, Any]:
    channel = dict(body["notification_channel"])
    channel.setdefault("subject_prefix", None)
    return {
        "id": alert_id,
        "object": kind,
        "threshold_amount": body["threshold_amount"],
        "currency": body["currency"],
        "interval": body["interval"],
        "notification_channel": channel,
    }


def _rate_rows(project: str) -> list[dict[str, Any]]:
    """One row per model the project uses, at the default tier's limits."""
    models = sorted({s.model for s in STREAMS if s.project_id == project and s.model})
    rows = []
    for model in models:
        row: dict[str, Any] = {
            "object": "project.rate_limit",
            "id": "rl-" + model.replace(":", "-"),
            "model": model,
            **DEFAULT_RATE_LIMITS,
        }
        if model in _IMAGE_MODELS:
            row["max_images_per_1_minute"] = 50
        rows.append(row)
    return rows
