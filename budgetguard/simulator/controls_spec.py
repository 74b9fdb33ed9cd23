"""The controls endpoints as the official spec describes them (``controls_openapi.json``, the
public OpenAI spec cut down to spend limits, spend alerts, model permissions, hosted tools,
rate limits, key deletion and archiving): which method and path exist, and what a request
body must be. The simulator routes and validates from here, never from the client's code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["ControlRoute", "body_problem", "match", "routes", "schemas"]


@dataclass(frozen=True)
class ControlRoute:
    method: str  # GET | POST | DELETE
    template: str  # /organization/projects/{project_id}/spend_limit
    pattern: re.Pattern[str]
    body_schema: str | None  # the request body's schema name, when it takes one
    answer_schema: str  # the 200 answer's schema name

    def params(self, path: str) -> dict[str, str]:
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else {}


@cache
def _spec() -> dict[str, Any]:
    text = resources.files("budgetguard.simulator").joinpath("controls_openapi.json")
    spec: dict[str, Any] = json.loads(text.read_text("utf-8"))
    return spec


def schemas() -> dict[str, Any]:
    found: dict[str, Any] = _spec()["components"]["schemas"]
    return found


def _ref(node: dict[str, Any] | None) -> str | None:
    ref = (node or {}).get("$ref")
    return str(ref).rsplit("/", 1)[-1] if ref else None


@cache
def routes() -> tuple[ControlRoute, ...]:
    out = []
    for template, item in _spec()["paths"].items():
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        for method, op in item.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            answer = op["responses"]["200"]["content"]["application/json"]["schema"]
            out.append(
                ControlRoute(
                    method.upper(),
                    template,
                    re.compile(regex),
                    _ref(body.get("schema")),
                    _ref(answer) or "",
                )
            )
    return tuple(out)


def match(method: str, path: str) -> tuple[ControlRoute | None, bool]:
    """(the route of ``method path``, whether the path exists for another method)."""
    known = False
    for route in routes():
        if route.pattern.fullmatch(path):
            if route.method == method:
                return route, True
            known = True
    return None, known


def body_problem(schema_name: str, value: Any) -> tuple[str, str | None] | None:
    """(message, param) of the first way ``value`` breaks the schema, or None."""
    return _check(schemas()[schema_name], value, "")


def _check(schema: dict[str, Any], value: Any, where: str) -> tuple[str, str | None] | None:
    name = _ref(schema)
    if name is not None:
        return _check(schemas()[name], value, where)
    if "anyOf" in schema:
        options = [_check(option, value, where) for option in schema["anyOf"]]
        return None if any(o is None for o in options) else options[0]
    param = where or None
    kind = schema.get("type")
    if kind == "null":
        return None if value is None else (f"{where} must be null", param)
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    }
    if kind in checks and not checks[kind](value):
        what = "an object" if kind in ("object", "array") else f"an {kind}"
        if kind in ("string", "boolean"):
            what = f"a {kind}"
        return (f"Invalid type for '{where or 'body'}': expected {what}.", param)
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(repr(v) for v in schema["enum"])
        return (f"Invalid value for '{where}': expected one of {allowed}.", param)
    if "minimum" in schema and value < schema["minimum"]:
        return (f"Invalid '{where}': must be at least {schema['minimum']}.", param)
    if kind == "array":
        for item in value:
            problem = _check(schema.get("items", {}), item, where)
            if problem:
                return problem
    if kind == "object":
        for required in schema.get("required", []):
            if required not in value:
                label = f"{where}.{required}" if where else required
                return (f"Missing required parameter: '{label}'.", label)
        for key, item in value.items():
            sub = schema.get("properties", {}).get(key)
            label = f"{where}.{key}" if where else key
            if sub is None:
                return (f"Unrecognized request argument supplied: {label}", label)
            problem = _check(sub, item, label)
            if problem:
                return problem
    return None
