"""The diff between the declared controls and the live ones: a pure function, in the order
``apply`` writes (limits, then permissions and tools, then alerts), so a plan reads as what
will happen.

Compared as OpenAI stores them: limits and alerts in cents (the rules' dollars rounded up to
the cent, as the client sends them), model ids as a set (a write replaces the whole list),
hosted tools only for the tools the rules name, alerts matched by amount (same amount:
update when its recipients or subject differ; else create; live ones left over: delete).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from budgetguard.controls.live import Live, Scope
from budgetguard.providers.openai import SpendAlert, cents, dollars
from budgetguard.rules.controls import AlertSpec, ScopeControls
from budgetguard.rules.controls import Controls as DeclaredControls

__all__ = ["LEVER_ORDER", "Change", "alert_value", "plan"]

Lever = Literal["spend_limit", "model_permissions", "hosted_tools", "spend_alert"]
Op = Literal["create", "update", "delete"]
#: the safe order of writes: stop spend first, then narrow access, then tell people
LEVER_ORDER: dict[str, int] = {
    "spend_limit": 0,
    "model_permissions": 1,
    "hosted_tools": 1,
    "spend_alert": 2,
}
_SIGN = {"create": "+", "update": "~", "delete": "-"}


@dataclass(frozen=True)
class Change:
    """One write that would bring a lever to what the rules say. ``before`` and ``after``
    are plain JSON values (None: nothing there, or nothing after a delete)."""

    scope: Scope
    lever: Lever
    op: Op
    before: Any
    after: Any
    alert_id: str | None = None

    @property
    def where(self) -> str:
        return f"project {self.scope}" if self.scope else "organization"

    def describe(self) -> str:
        """One line, terraform-like: ``~ project proj_a spend_limit: $150.00 -> $100.01``."""
        what = self.lever.replace("_", " ")
        if self.lever == "spend_alert":
            shown = _show_alert(self.after if self.op != "delete" else self.before)
            extra = f" ({self.alert_id})" if self.alert_id else ""
            if self.op == "update":
                shown = f"{_show_alert(self.before)} -> {shown}"
            return f"{_SIGN[self.op]} {self.where} {what}{extra}: {shown}"
        return (
            f"{_SIGN[self.op]} {self.where} {what}: "
            f"{_show(self.lever, self.before)} -> {_show(self.lever, self.after)}"
        )

    def to_json(self) -> dict[str, Any]:
        """In the rules' units: money as USD numbers (OpenAI's cents are the wire's)."""
        return {
            "scope": self.scope or "organization",
            "lever": self.lever,
            "op": self.op,
            "before": _usd(self.before),
            "after": _usd(self.after),
            "alert_id": self.alert_id,
        }


def _usd(value: Any) -> Any:
    """A limit's cents (an int) or an alert's ``cents`` as USD; anything else as it is."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(dollars(value))
    if isinstance(value, dict) and "cents" in value:
        rest = {k: v for k, v in value.items() if k != "cents"}
        return {"usd": None if value["cents"] is None else float(dollars(value["cents"])), **rest}
    return value


def plan(declared: DeclaredControls, live: Live) -> list[Change]:
    """Every change that brings ``live`` to ``declared``, in the order to write them."""
    changes: list[Change] = []
    for scope, wanted in declared.scopes():
        changes += _limit(scope, wanted, live)
        changes += _permissions(scope, wanted, live)
        changes += _tools(scope, wanted, live)
        changes += _alerts(scope, wanted, live)
    return sorted(changes, key=lambda c: LEVER_ORDER[c.lever])  # stable: scopes in order


def _limit(scope: Scope, wanted: ScopeControls, live: Live) -> list[Change]:
    if wanted.spend_limit is None or scope not in live.limits:
        return []
    current = live.limits[scope]
    before = current.threshold_cents if current is not None else None
    after = None if wanted.spend_limit == "none" else cents(wanted.spend_limit)
    if before == after:
        return []
    op: Op = "create" if before is None else "delete" if after is None else "update"
    return [Change(scope, "spend_limit", op, before, after)]


def _permissions(scope: Scope, wanted: ScopeControls, live: Live) -> list[Change]:
    if scope is None or wanted.model_permissions is None or scope not in live.permissions:
        return []
    current = live.permissions[scope]
    before = (
        None
        if current is None
        else {"mode": current.mode, "model_ids": sorted(set(current.model_ids))}
    )
    spec = wanted.model_permissions
    after = None if spec == "none" else {"mode": spec.mode, "model_ids": sorted(set(spec.models))}
    if before == after:
        return []
    op: Op = "create" if before is None else "delete" if after is None else "update"
    return [Change(scope, "model_permissions", op, before, after)]


def _tools(scope: Scope, wanted: ScopeControls, live: Live) -> list[Change]:
    if scope is None or wanted.hosted_tools is None or scope not in live.tools:
        return []
    managed = wanted.hosted_tools.managed()
    before = {tool: live.tools[scope].enabled.get(tool) for tool in managed}
    if before == managed:
        return []
    return [Change(scope, "hosted_tools", "update", before, managed)]


def alert_value(alert: SpendAlert | AlertSpec) -> dict[str, Any]:
    """An alert as compared and shown: cents, recipients (sorted), subject prefix."""
    if isinstance(alert, SpendAlert):
        amount, to, prefix = (
            alert.threshold_cents,
            alert.channel.recipients,
            alert.channel.subject_prefix,
        )
    else:
        amount, to, prefix = cents(alert.at), alert.email, alert.subject_prefix
    return {"cents": amount, "recipients": sorted(to), "subject_prefix": prefix}


def _alerts(scope: Scope, wanted: ScopeControls, live: Live) -> list[Change]:
    if wanted.spend_alerts is None or scope not in live.alerts:
        return []
    unused = {a.id: alert_value(a) for a in live.alerts[scope]}
    changes = []
    pending = []
    for spec in wanted.spend_alerts:
        value = alert_value(spec)
        same = next((i for i, v in unused.items() if v == value), None)
        if same is not None:
            del unused[same]
        else:
            pending.append(value)
    for value in pending:
        near = next((i for i, v in unused.items() if v["cents"] == value["cents"]), None)
        if near is not None:
            changes.append(Change(scope, "spend_alert", "update", unused.pop(near), value, near))
        else:
            changes.append(Change(scope, "spend_alert", "create", None, value))
    changes += [Change(scope, "spend_alert", "delete", v, None, i) for i, v in unused.items()]
    return changes


def _show(lever: str, value: Any) -> str:
    if value is None:
        return "(none)"
    if lever == "spend_limit":
        return f"${dollars(value):,} a month"
    if lever == "model_permissions":
        return f"{value['mode']} [{', '.join(value['model_ids'])}]"
    return ", ".join(f"{tool} {'on' if on else 'off'}" for tool, on in value.items())


def _show_alert(value: dict[str, Any]) -> str:
    prefix = f" subject {value['subject_prefix']!r}" if value.get("subject_prefix") else ""
    return f"at ${dollars(value['cents']):,} to {', '.join(value['recipients'])}{prefix}"
