"""From findings to planned actions: a pure function of the rules, the findings (each with
its window: the instant and the period) and a few facts read from the store (the month's
spend so far, the models the org uses).

An action is planned once per budget, group, trigger, threshold, action and period: its key
is the same on every replica and every retry, and the store keeps one row per key. Nothing
is planned on data that is ``unknown`` or incomplete, nor when a fact the action needs (the
month's spend for a spend limit) is not known: what was skipped, and why, is reported.
Rolling-window budgets have no period: their actions are keyed by the UTC day (one a day),
and their period's end is one window length after planning.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

from budgetguard.evaluate.evaluator import Finding
from budgetguard.notify import money
from budgetguard.rules import Budget, Rules
from budgetguard.rules.actions import PROJECT_TYPES, Action, Revert
from budgetguard.store.actions import NewAction

__all__ = [
    "Facts",
    "Plan",
    "Trigger",
    "action_key",
    "facts_of",
    "month_rules",
    "plan_actions",
    "project_of",
    "revert_due",
    "triggers",
]

_CENT = Decimal("0.01")
_GLOB = frozenset("*?[")


@dataclass(frozen=True)
class Trigger:
    """An alert condition that names an action: a crossed threshold today; any alert that
    carries a threshold or a pair (a burn-rate pair, a forecast) makes one the same way."""

    finding: Finding
    kind: str  # threshold | forecast | burn_rate | ...
    threshold: str  # the threshold's (or pair's) stable key
    action: str  # the name of a top-level action
    label: str  # how people read what was crossed: "100%"


def triggers(findings: Iterable[Finding]) -> list[Trigger]:
    """The crossed thresholds and the firing burn-rate pairs that name an action (spend
    crossed them, not a forecast; a pair whose windows are unknown never holds)."""
    out = []
    for f in findings:
        for t in f.crossed:
            if t.action:
                label = t.at if isinstance(t.at, str) else money(t.at)
                out.append(Trigger(f, "threshold", t.key, t.action, label))
        for b in f.burn:
            if b.holds and b.pair.action:
                label = f"burn rate {b.pair.key} x {b.pair.factor}"
                out.append(Trigger(f, "burn_rate", b.pair.key, b.pair.action, label))
    return out


@dataclass(frozen=True)
class Facts:
    """What the plan reads from the store: the UTC month's spend so far per project (key
    ``""``: the organization), absent or None where not known; the model ids the org used."""

    month_spend: Mapping[str, Decimal | None] = field(default_factory=dict)
    models: Sequence[str] = ()
    installation: str = ""


@dataclass
class Plan:
    new: list[NewAction] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def action_key(
    installation: str,
    budget: str,
    group: Mapping[str, str],
    trigger: str,
    threshold: str,
    action: str,
    period: str,
) -> str:
    """One action per budget, group, trigger, threshold, action and period, per store."""
    raw = [installation, budget, sorted(group.items()), trigger, threshold, action, period]
    return hashlib.sha256(json.dumps(raw, separators=(",", ":")).encode()).hexdigest()[:40]


def project_of(budget: Budget, group: Mapping[str, str], action: Action) -> str | None:
    """The project an action acts on: the group's, else the action's, else the one project
    id the budget matches without a glob."""
    if "project" in group:
        return group["project"]
    if action.project:
        return action.project
    plain = [p for p in budget.match.project or () if not _GLOB & set(p)]
    return plain[0] if len(plain) == 1 else None


def _period(f: Finding) -> tuple[str, datetime]:
    """The period an action belongs to, and its end (a rolling window: its length on)."""
    if f.window.period_end is not None:
        return f.window.start.isoformat(), f.window.period_end
    delta = f.window.end - f.window.start
    return f"{f.window.end.date().isoformat()}/{int(delta.total_seconds())}", f.window.end + delta


def _cents(amount: Decimal) -> int:
    return max(1, int((amount / _CENT).to_integral_value(ROUND_CEILING)))


def plan_actions(rules: Rules, found: Sequence[Trigger], facts: Facts) -> Plan:
    """The actions ``found`` asks for (each keyed once per period; the instant is each
    finding's own), and what was not planned and why."""
    out = Plan()
    for trigger in found:
        f = trigger.finding
        label = f.budget.name + (
            " [" + ", ".join(f"{k}={v}" for k, v in f.group.items()) + "]" if f.group else ""
        )
        action = rules.actions.get(trigger.action)
        if action is None:
            continue  # the rules were checked: a name that is gone went with a reload
        if f.severity == "unknown" or not f.complete or f.spend is None:
            out.skipped.append(f"{label}: {trigger.action} not planned: the data is incomplete")
            continue
        params, target, why = _settings(f, action, facts)
        if params is None:
            out.skipped.append(f"{label}: {trigger.action} not planned: {why}")
            continue
        period, end = _period(f)
        revert_at: int | None = None
        if action.revert == "period_end":
            revert_at = int(end.timestamp())
        elif isinstance(action.revert, Revert):
            params["revert_after"] = int(action.revert.delta.total_seconds())
        if action.type in ("openai.delete_key", "openai.archive"):
            revert_at = None
        crossed = f"{trigger.label} ({money(f.spend)} of {money(f.limit)})"
        out.new.append(
            NewAction(
                action_key=action_key(
                    facts.installation,
                    f.budget.name,
                    f.group,
                    trigger.kind,
                    trigger.threshold,
                    trigger.action,
                    period,
                ),
                budget=f.budget.name,
                group=dict(f.group),
                threshold=trigger.threshold,
                trigger=trigger.kind,
                action_name=trigger.action,
                type=action.type,
                target=target,
                params=params,
                period_key=period,
                revert_at=revert_at,
                approval=action.approval,
                enforce=action.enforce,
                reason=f"{label} crossed {crossed}: {why}",
            )
        )
    return out


def _settings(
    f: Finding, action: Action, facts: Facts
) -> tuple[dict[str, Any] | None, dict[str, str], str]:
    """(params, target, what it does) of ``action`` for finding ``f``; params None: it
    cannot be planned now, and the text says why."""
    target: dict[str, str] = {}
    if action.type in PROJECT_TYPES:
        project = project_of(f.budget, f.group, action)
        if project is None:
            return None, target, "no single project to act on"
        target["project"] = project
    kind = action.type
    if kind in ("openai.project_spend_limit", "openai.org_spend_limit"):
        return _spend_limit(action, target, facts)
    if kind in ("openai.model_deny", "openai.rate_limit"):
        models = _models(action.models, facts.models)
        if kind == "openai.model_deny":
            if not models:
                return None, target, "no model the org uses matches its models"
            return {"models": models}, target, f"deny models {', '.join(models)}"
        fraction = str(action.fraction)
        what = ", ".join(models) if models is not None else "every model"
        return {"fraction": fraction, "models": models}, target, f"cut {what} to {fraction}"
    if kind == "openai.hosted_tools":
        tools = list(action.tools or ())
        return {"tools": tools}, target, f"switch off {', '.join(tools)}"
    if kind == "openai.delete_key":
        key = f.group.get("api_key") or action.key
        if key is None:
            return None, target, "no key to delete"
        target["key"] = key
        return {}, target, f"delete API key {key} (irreversible)"
    return {}, target, f"archive project {target['project']} (irreversible)"


def _spend_limit(
    action: Action, target: dict[str, str], facts: Facts
) -> tuple[dict[str, Any] | None, dict[str, str], str]:
    whose = f"project {target['project']}'s" if "project" in target else "the organization's"
    if action.amount is not None:
        cents = _cents(action.amount)
        return {"cents": cents}, target, f"set {whose} monthly limit to {money(cents / 100)}"
    spent = facts.month_spend.get(target.get("project", ""))
    if spent is None:
        return None, target, "the month's spend so far is not known"
    margin = action.margin or Decimal(0)
    cents = _cents(spent + margin)
    return (
        {"cents": cents},
        target,
        f"set {whose} monthly limit to {money(Decimal(cents) / 100)} (spend so far this "
        f"month {money(spent)} + margin {money(margin)}{_rounded(spent + margin, cents)})",
    )


def _rounded(exact: Decimal, cents: int) -> str:
    """Why the limit is a cent above the sum shown (OpenAI's limits are whole cents, and
    one rounded down would refuse traffic budgetguard meant to allow)."""
    return "" if exact * 100 == cents else ", rounded up to the cent"


def _models(patterns: Sequence[str] | None, used: Sequence[str]) -> list[str] | None:
    """Globs expanded to the exact model ids the org used (None: no globs, every model)."""
    if patterns is None:
        return None
    return sorted({m for m in used if any(fnmatch.fnmatchcase(m, p) for p in patterns)})


def revert_due(params: Mapping[str, Any], applied_at: int) -> int | None:
    """When a ``revert: {after: ...}`` action is undone: that long after it applied."""
    after = params.get("revert_after")
    return None if after is None else applied_at + int(after)


#: the names of the synthetic month budgets ``month_rules`` makes
MONTH_EACH, MONTH_ONE, MODELS = "month:each:", "month:", "models:"


def month_rules(rules: Rules, found: Sequence[Trigger]) -> Rules | None:
    """The facts the triggered actions need, as budgets of the UTC month (OpenAI's spend
    limits are monthly): the month's spend of each project (or of the organization) a spend
    limit acts on, and the models used (for ``model_deny`` and ``rate_limit`` globs). None
    when the triggered actions need none of them."""
    from budgetguard.rules.model import Budget as MonthBudget
    from budgetguard.rules.model import Match

    budgets: dict[str, MonthBudget] = {}

    def add(name: str, match: Match, each: tuple[str, ...], cost_source: str = "auto") -> None:
        budgets[name] = MonthBudget(
            name=name,
            match=match,
            each=each,
            period="month",
            limit=Decimal(1),
            cost_source=cost_source,
        )

    for trigger in found:
        action = rules.actions.get(trigger.action)
        budget = trigger.finding.budget
        if action is None or action.amount is not None:
            if action is not None and action.type in ("openai.model_deny", "openai.rate_limit"):
                add(MODELS, Match(), ("model",), "estimate")
            continue
        if action.type == "openai.org_spend_limit":
            add(MONTH_ONE, Match(), ())
        elif action.type == "openai.project_spend_limit":
            project = project_of(budget, trigger.finding.group, action)
            if project is not None:
                add(MONTH_ONE + project, Match(project=(project,)), ())
        elif action.type in ("openai.model_deny", "openai.rate_limit"):
            add(MODELS, Match(), ("model",), "estimate")
    if not budgets:
        return None
    return Rules(timezone="UTC", pricing=rules.pricing, budgets=tuple(budgets.values()))


def facts_of(month: Iterable[Finding], installation: str) -> Facts:
    """``Facts`` from the findings of ``month_rules``: a spend only where it is known."""
    spend: dict[str, Decimal | None] = {}
    models: set[str] = set()
    for f in month:
        known = f.spend if f.complete and f.severity != "unknown" else None
        if f.budget.name == MODELS:
            if "model" in f.group:
                models.add(f.group["model"])
        elif f.budget.name.startswith(MONTH_ONE):
            spend[f.budget.name.removeprefix(MONTH_ONE)] = known
    return Facts(month_spend=spend, models=sorted(models), installation=installation)
