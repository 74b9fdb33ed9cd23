"""What an action reads and writes, as plain values, and the port a provider's write client
is seen through.

A control's live state is a small JSON value (a spend limit: ``{"cents": 12345}`` or None
when no limit is set), so a snapshot can be stored, compared and written back as it was.
``change`` is the state an action wants given the live one: None when the live state is
already as strict (a freeze never raises a lower limit that someone else set). The port
(``Controls``) reads and writes those values; the OpenAI adapter is ``openai_controls.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Protocol

from budgetguard.providers.base import ControlError

__all__ = ["ControlError", "Controls", "Observed", "Wanted", "change"]


@dataclass(frozen=True)
class Observed:
    """A live state as read or written, with the HTTP status and request id of the call."""

    state: Any
    status: int | None = None
    request_id: str | None = None


class Controls(Protocol):
    """A provider's controls as plain values: ``read`` the live state an action type looks
    at for ``target``; ``write`` a state (None: remove what is set, e.g. a limit)."""

    def read(self, kind: str, target: Mapping[str, str]) -> Observed: ...

    def write(self, kind: str, target: Mapping[str, str], state: Any, before: Any) -> Observed: ...


@dataclass(frozen=True)
class Wanted:
    """The state an action writes (``state`` None: the object goes, e.g. a deleted key)."""

    state: Any


def change(kind: str, params: Mapping[str, Any], live: Any) -> Wanted | None:
    """The state ``kind`` wants over ``live`` (None: nothing to write)."""
    if kind in ("openai.project_spend_limit", "openai.org_spend_limit"):
        cents = int(params["cents"])
        if live is not None and int(live["cents"]) <= cents:
            return None  # already as strict: a freeze never loosens a limit
        return Wanted({"cents": cents})
    if kind == "openai.model_deny":
        denied = set(params["models"])
        if live is not None and live.get("mode") == "allow_list":
            allowed = sorted(set(live["model_ids"]) - denied)
            wanted: dict[str, Any] = {"mode": "allow_list", "model_ids": allowed}
        else:
            have = set(live["model_ids"]) if live is not None else set()
            wanted = {"mode": "deny_list", "model_ids": sorted(have | denied)}
        return None if wanted == live else Wanted(wanted)
    if kind == "openai.hosted_tools":
        tools = dict(live or {})
        for tool in params["tools"]:
            tools[tool] = False
        return None if tools == live else Wanted(tools)
    if kind == "openai.rate_limit":
        return _rate_limits(params, live or {})
    if kind == "openai.delete_key":
        return None if live is None else Wanted(None)
    if kind == "openai.archive":
        return None if live == {"status": "archived"} else Wanted({"status": "archived"})
    raise ValueError(f"unknown action type {kind}")


def _rate_limits(params: Mapping[str, Any], live: Mapping[str, Any]) -> Wanted | None:
    """Each chosen model's limits cut to ``fraction`` (whole numbers, at least 1)."""
    fraction = Decimal(str(params["fraction"]))
    models = params.get("models")
    out: dict[str, Any] = {}
    for limit_id, row in live.items():
        if models is not None and row.get("model") not in models:
            out[limit_id] = row
            continue
        cut = {
            k: (
                max(1, int((Decimal(v) * fraction).to_integral_value(ROUND_FLOOR)))
                if isinstance(v, int) and k != "model"
                else v
            )
            for k, v in row.items()
        }
        out[limit_id] = cut
    return None if out == dict(live) else Wanted(out)
