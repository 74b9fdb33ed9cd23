"""Checks of the ``actions:`` section that span several keys, and of the thresholds that name
an action: each reported at its key (``PATH:LINE:COL``), all in one run of ``validate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from budgetguard.rules.actions import IRREVERSIBLE_TYPES, PROJECT_TYPES, Action
from budgetguard.rules.errors import did_you_mean

if TYPE_CHECKING:
    from budgetguard.rules.loader import Reporter
    from budgetguard.rules.model import RawBudget

__all__ = ["action_targets", "check_actions", "single_project"]

Loc = tuple[str | int, ...]
_GLOB = frozenset("*?[")


def check_actions(actions: Mapping[str, Action], report: Reporter) -> None:
    for name, action in actions.items():
        path: Loc = ("actions", name)
        kind = action.type
        if kind in IRREVERSIBLE_TYPES:
            if not action.irreversible:
                report.at(
                    (*path, "type"),
                    f"action '{name}': {kind} cannot be undone; write irreversible: true "
                    "(and approval: manual) to allow it",
                )
            if action.approval != "manual":
                report.at(
                    (*path, "approval"),
                    f"action '{name}': {kind} cannot be undone, so it needs approval: manual",
                )
        elif action.irreversible:
            report.at((*path, "irreversible"), f"action '{name}': {kind} can be undone")
        if kind in IRREVERSIBLE_TYPES and action.revert != "period_end":
            report.at((*path, "revert"), f"action '{name}': {kind} cannot be reverted")
        spend = kind in ("openai.project_spend_limit", "openai.org_spend_limit")
        if spend and action.margin is not None and action.amount is not None:
            report.at((*path, "amount"), "give either margin (over the month's spend) or amount")
        _needs(action, path, report)
        if kind == "openai.org_spend_limit" and action.project is not None:
            report.at(
                (*path, "project"),
                "an organization's limit has no project",
            )
        elif action.project is not None and _GLOB & set(action.project):
            report.at(
                (*path, "project"),
                "project: one project id, not a glob (split the budget by project to act on each)",
            )
        if action.models is not None and len(action.models) == 0:
            report.at((*path, "models"), "models: an empty list acts on nothing")


_SETTINGS = {
    "margin": ("openai.project_spend_limit", "openai.org_spend_limit"),
    "amount": ("openai.project_spend_limit", "openai.org_spend_limit"),
    "models": ("openai.model_deny", "openai.rate_limit"),
    "tools": ("openai.hosted_tools",),
    "fraction": ("openai.rate_limit",),
    "key": ("openai.delete_key",),
}
_REQUIRED = {
    "openai.model_deny": "models",
    "openai.hosted_tools": "tools",
    "openai.rate_limit": "fraction",
}


def _needs(action: Action, path: Loc, report: Reporter) -> None:
    """Settings the type uses are there; settings it does not use are refused."""
    for key, types in _SETTINGS.items():
        if getattr(action, key) is not None and action.type not in types:
            report.at((*path, key), f"{key}: {action.type} has no such setting", key=True)
    needed = _REQUIRED.get(action.type)
    if needed is not None and getattr(action, needed) is None:
        report.at(path, f"{action.type} needs '{needed}'")


def single_project(raw: RawBudget | Any) -> str | None:
    """The one project id a budget's ``match.project`` names without a glob, else None."""
    patterns = raw.match.project
    if patterns is None or len(patterns) != 1 or _GLOB & set(patterns[0]):
        return None
    return str(patterns[0])


def action_targets(
    raw: RawBudget,
    items: tuple[Any, ...] | None,
    path: Loc,
    actions: Mapping[str, Action] | None,
    report: Reporter,
) -> None:
    """Each threshold's ``action`` names an action, which can tell what it acts on (None:
    the actions did not load, and their own mistakes are what the report says)."""
    if actions is None:
        return
    for index, item in enumerate(items or ()):
        if not isinstance(item, dict) or not isinstance(item.get("action"), str):
            continue
        where: Loc = (*path, index, "action")
        name = item["action"]
        action = actions.get(name)
        if action is None:
            report.at(where, f"unknown action '{name}'{did_you_mean(name, actions)}")
            continue
        grouped = "project" in raw.each
        if action.type in PROJECT_TYPES and not (
            grouped or action.project or single_project(raw) is not None
        ):
            report.at(
                where,
                f"action '{name}' acts on one project: split the budget by project "
                "(each: project), match one project id, or give the action a project",
            )
        if action.type == "openai.delete_key" and not (action.key or "api_key" in raw.each):
            report.at(where, f"action '{name}' deletes one key: split by api_key or give key")
