"""The status page of ``budgetguard run`` (``/``, ``/ui`` and its views): server-rendered
HTML with SVG charts drawn in Python, from the last ``/status`` body and ``/healthz`` only;
read-only, no secret (the report holds none), no script, no request at view time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from budgetguard.service.page.detail import detail
from budgetguard.service.page.events import health, timeline
from budgetguard.service.page.layout import CSP, page
from budgetguard.service.page.overview import groups, overview

__all__ = ["CSP", "PATHS", "render"]

PATHS = ("/", "/ui", "/ui/", "/ui/budget", "/ui/groups", "/ui/timeline", "/ui/health")


def render(
    path: str, query: str, status: Mapping[str, Any], healthz: tuple[int, Mapping[str, Any]]
) -> tuple[int, str]:
    """(HTTP status, HTML) of the view at ``path``."""
    if "budgets" not in status:
        body = '<p id="starting">The first check has not finished yet: this page fills then.</p>'
        return 200, page("overview", "budgetguard is starting", body, status)
    if path == "/ui/budget":
        params = parse_qsl(query)
        name = next((v for k, v in params if k == "name"), "")
        group = {k[2:]: v for k, v in params if k.startswith("g.")}
        code, title, body = detail(status, name, group)
        return code, page("detail", title, body, status)
    if path == "/ui/groups":
        return 200, page("groups", "Groups", groups(status), status)
    if path == "/ui/timeline":
        return 200, page("timeline", "Timeline: the last 30 days", timeline(status), status)
    if path == "/ui/health":
        return 200, page("health", "Data health", health(status, healthz), status)
    return 200, page("overview", "Budgets", overview(status), status)
