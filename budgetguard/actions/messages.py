"""Every step of an action is a notification: an ``Alert`` of kind ``action`` (payload type
``budgetguard.action``) to the notifiers of the action's budget, keyed by the step's log
entry, so each step is told once whatever the retries. A step that waits for approval
carries a signed, expiring approval link when the service has a public URL and a secret.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from budgetguard.notify import Alert
from budgetguard.rules import Rules
from budgetguard.rules.model import route_name
from budgetguard.store.actions import ActionLogRow, ActionRow

__all__ = ["SEVERITY", "describe_state", "step_notes"]

#: How loud each state is: a drift or a failure needs a person; a revert is good news.
SEVERITY = {
    "planned": "warning",
    "pending_approval": "warning",
    "applying": "warning",
    "applied": "critical",
    "failed": "critical",
    "reverting": "warning",
    "reverted": "ok",
    "drifted": "critical",
    "rejected": "ok",
}


def describe_state(state: Any) -> str:
    """A live state as people read it: ``limit $123.45``, ``no limit``, ``{...}``."""
    if state is None:
        return "nothing set"
    if isinstance(state, dict) and set(state) == {"cents"}:
        return f"limit ${int(state['cents']) / 100:,.2f}"
    return json.dumps(state, sort_keys=True)


def _iso(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def step_notes(
    rules: Rules,
    installation: str,
    link: Callable[[ActionRow], str | None] | None = None,
    *,
    enabled: bool = False,
) -> Callable[[ActionRow, ActionLogRow], Iterator[tuple[str, str, str]]]:
    """The ``notes`` callback of the action store: the outbox rows of one step (``enabled``:
    the environment's lock, ``BUDGETGUARD_ACTIONS=on``; without it every action is a dry-run)."""

    def notes(row: ActionRow, step: ActionLogRow) -> Iterator[tuple[str, str, str]]:
        try:
            routes = rules.budget(row.budget).notify
        except KeyError:
            return
        dry = "" if row.enforce and enabled else " (dry-run: nothing is written)"
        text = f"action {row.id} {row.action_name} ({row.type}) {step.to_state}{dry}: "
        text += step.note or row.reason
        url = link(row) if link is not None and step.to_state == "pending_approval" else None
        if url:
            text += f" — approve: {url}"
        raw = json.dumps([installation, row.action_key, step.id], separators=(",", ":"))
        key = "action-" + hashlib.sha256(raw.encode()).hexdigest()[:40]
        body: dict[str, Any] = {
            "type": "budgetguard.action",
            "budget": row.budget,
            "group": row.group,
            "kind": "action",
            "severity": SEVERITY.get(step.to_state, "warning"),
            "key": key,
            "message": text,
            "fired_at": _iso(step.at),
            "action": {
                "id": row.id,
                "name": row.action_name,
                "type": row.type,
                "target": row.target,
                "state": step.to_state,
                "from": step.from_state,
                "who": step.who,
                "before": step.before,
                "after": step.after,
                "http_status": step.http_status,
                "request_id": step.request_id,
                "enforce": row.enforce,
                "approve_url": url,
            },
        }
        payload = json.dumps(Alert.from_payload(body).to_payload())
        for route in routes:
            yield key, route_name(route), payload

    return notes
