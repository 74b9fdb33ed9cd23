"""Apply a plan: each change written in the plan's safe order (limits, then permissions and
tools, then alerts), the lever read again after each write and compared with what the rules
say. A failed or mismatched write stops the run (what follows assumed it had happened);
when every write held, the whole state is read and planned once more, because writing one
object has been seen to change another (a project alert replacing the project's limit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from budgetguard.controls.live import read_live
from budgetguard.controls.plan import Change, alert_value, plan
from budgetguard.providers import ControlError, Reply
from budgetguard.providers.openai import Controls, dollars
from budgetguard.rules.controls import Controls as DeclaredControls

__all__ = ["Applied", "ApplyReport", "apply_plan"]


@dataclass(frozen=True)
class Applied:
    """One change as written: the write's HTTP status and request id, and whether reading
    the lever back found what was meant (``problem`` says why not, or why it failed)."""

    change: Change
    status: int | None
    request_id: str | None
    held: bool
    problem: str | None = None
    #: the failure's kind when the write or its read-back failed (``ControlError.kind``)
    failure: str | None = None


@dataclass
class ApplyReport:
    applied: list[Applied] = field(default_factory=list)
    #: what still differs after every write held (a side effect of one write on another)
    remaining: list[Change] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(a.held for a in self.applied) and not self.remaining

    @property
    def unavailable(self) -> bool:
        """A write or read-back failed because OpenAI was unreachable or refused the key."""
        return any(a.failure in ("auth", "unavailable", "format") for a in self.applied)


async def apply_plan(
    declared: DeclaredControls, changes: list[Change], api: Controls
) -> ApplyReport:
    """Write ``changes`` (from ``plan``), verifying each; then plan again."""
    report = ApplyReport()
    for change in changes:
        try:
            reply = await _write(change, api)
        except ControlError as exc:
            failed = str(exc)
            report.applied.append(
                Applied(change, exc.status, exc.request_id, False, failed, exc.kind)
            )
            return report
        try:
            found = await _read_back(change, api)
        except ControlError as exc:
            failed = f"written, but reading it back failed: {exc}"
            report.applied.append(
                Applied(change, reply.status, reply.request_id, False, failed, exc.kind)
            )
            return report
        held = _holds(change, found, reply)
        problem = None if held else f"read back {found!r}, not what was written"
        report.applied.append(Applied(change, reply.status, reply.request_id, held, problem))
        if not held:
            return report
    if changes:
        report.remaining = plan(declared, await read_live(declared, api))
    return report


async def _write(change: Change, api: Controls) -> Reply[Any]:
    scope, after = change.scope, change.after
    if change.lever == "spend_limit":
        if change.op == "delete":
            if scope is None:
                return await api.delete_org_spend_limit()
            return await api.delete_project_spend_limit(scope)
        amount = dollars(int(after))
        if scope is None:
            return await api.set_org_spend_limit(amount)
        return await api.set_project_spend_limit(scope, amount)
    if change.lever == "model_permissions":
        assert scope is not None
        if change.op == "delete":
            return await api.delete_model_permissions(scope)
        return await api.set_model_permissions(scope, after["mode"], after["model_ids"])
    if change.lever == "hosted_tools":
        assert scope is not None
        return await api.set_hosted_tools(scope, after)
    if change.op == "delete":
        assert change.alert_id is not None
        return await api.delete_spend_alert(change.alert_id, project=scope)
    amount = Decimal(after["cents"]) / 100
    to, prefix = after["recipients"], after["subject_prefix"]
    if change.op == "update":
        assert change.alert_id is not None
        return await api.update_spend_alert(
            change.alert_id, amount, to, project=scope, subject_prefix=prefix
        )
    return await api.create_spend_alert(amount, to, project=scope, subject_prefix=prefix)


async def _read_back(change: Change, api: Controls) -> Any:
    """The lever's live value, in the plan's terms (what ``Change.after`` holds)."""
    scope = change.scope
    if change.lever == "spend_limit":
        limit = (await (api.project_spend_limit(scope) if scope else api.org_spend_limit())).value
        return None if limit is None else limit.threshold_cents
    if change.lever == "model_permissions":
        assert scope is not None
        found = (await api.model_permissions(scope)).value
        return (
            None
            if found is None
            else {"mode": found.mode, "model_ids": sorted(set(found.model_ids))}
        )
    if change.lever == "hosted_tools":
        assert scope is not None
        tools = (await api.hosted_tools(scope)).value.enabled
        return {tool: tools.get(tool) for tool in change.after}
    return {a.id: alert_value(a) for a in (await api.spend_alerts(scope)).value}


def _holds(change: Change, found: Any, reply: Reply[Any]) -> bool:
    if change.lever != "spend_alert":
        return bool(found == change.after)
    if change.op == "delete":
        return change.alert_id not in found
    alert_id = change.alert_id or getattr(reply.value, "id", None)
    return bool(found.get(alert_id) == change.after)
