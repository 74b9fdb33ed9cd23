"""The service's watch on OpenAI's own state, when the rules have a ``controls:`` section
(with ``watch``, the default), as alerts through the usual lifecycle:

- ``openai:spend-limit`` (per project) and ``openai:org-spend-limit``: a hard spend limit
  that is ``enforcing`` while the month's spend (as the store has it, complete or at least
  that much) is at or past it: the project's requests are being refused. Never on the
  status alone (OpenAI's example shows ``enforcing`` right after a limit is set), never on
  unknown spend. Critical, once a month, resolved when either stops holding.
- ``openai:controls`` (per declared scope): the live controls differ from the rules' (alert
  kind ``drift``, warning), resolved when they match again.

The month's spend comes from the evaluation of two budgets added for the watch (a month
per project, and the organisation's), collected with the user's: their names hold a ``:``,
which no budget of a rules file may, so they never collide. Reading OpenAI's state is
bounded in time; a failure skips this tick's watch (nothing fires or resolves on it) and
is said in ``/status``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from budgetguard.evaluate.evaluator import Finding
from budgetguard.evaluate.windows import Window
from budgetguard.rules import Budget, Rules, Threshold
from budgetguard.rules.model import Match, NotifyEntry

if TYPE_CHECKING:
    from budgetguard.controls import Change
    from budgetguard.providers.openai import Controls, SpendLimit
    from budgetguard.rules.controls import Controls as Declared
    from budgetguard.settings import Settings

__all__ = [
    "CONTROLS",
    "ORG_SPEND_LIMIT",
    "SPEND_LIMIT",
    "drift_findings",
    "is_watch",
    "limit_findings",
    "watch_findings",
    "watched_rules",
]

log = logging.getLogger("budgetguard.watch")

SPEND_LIMIT = "openai:spend-limit"
ORG_SPEND_LIMIT = "openai:org-spend-limit"
CONTROLS = "openai:controls"
#: the most projects whose limits one tick reads (the ones with spend this month first)
MAX_PROJECTS = 200
_FULL = Threshold(at="100%", ratio=Decimal(1), severity="critical")


def is_watch(budget: Budget) -> bool:
    return budget.name in (SPEND_LIMIT, ORG_SPEND_LIMIT, CONTROLS)


def _notify(rules: Rules) -> tuple[str | NotifyEntry, ...]:
    declared = rules.controls
    if declared is not None and declared.notify is not None:
        return declared.notify
    return tuple(rules.defaults.notify or ())


def watched_rules(rules: Rules) -> Rules:
    """``rules`` with the watch's two month budgets, when the rules ask for the watch."""
    if rules.controls is None or not rules.controls.watch:
        return rules
    about = (
        "OpenAI's hard spend limit is enforcing and the month's spend has reached it: "
        "OpenAI refuses these requests (429 {code}) until the limit is raised or the month "
        "ends. Raise it with `budgetguard controls apply` or in the platform's settings."
    )
    month = Budget(
        name=ORG_SPEND_LIMIT,
        period="month",
        limit=Decimal(1),  # replaced by OpenAI's own limit (limit_findings)
        thresholds=(_FULL,),
        notify=_notify(rules),
        description=about.format(code="organization_spend_limit_exceeded"),
    )
    project = month.model_copy(
        update={
            "name": SPEND_LIMIT,
            "match": Match(project=("*",)),
            "each": ("project",),
            "description": about.format(code="project_spend_limit_exceeded"),
        }
    )
    return rules.model_copy(update={"budgets": (*rules.budgets, project, month)})


def limit_findings(
    findings: Sequence[Finding], limits: dict[str | None, SpendLimit | None]
) -> list[Finding]:
    """The watch budgets' findings with OpenAI's limit in place of the placeholder:
    crossed when the limit enforces and the spend is at or past it. A finding whose limit
    was not read, whose spend is unknown, whose status is not one OpenAI documents, or whose
    spend is a lower bound under an enforcing limit, is left out: no transition on what is
    not known."""
    out = []
    for f in findings:
        scope = f.group.get("project") if f.budget.name == SPEND_LIMIT else None
        if scope not in limits or f.spend is None or f.severity == "unknown":
            continue
        limit = limits[scope]
        if limit is None:  # no limit (any more): nothing is refused
            out.append(_with(f, None, False, "none"))
            continue
        enforcing, reached = limit.enforcing, f.spend >= limit.amount
        if enforcing is None or (enforcing and not reached and not f.complete):
            continue  # a status not known yet, or a lower bound of the spend under the limit
        out.append(_with(f, limit.amount, enforcing and reached, limit.enforcement))
    return out


def _with(f: Finding, limit: Decimal | None, crossed: bool, status: str) -> Finding:
    return replace(
        f,
        limit=limit,
        crossed=(_FULL,) if crossed else (),
        forecast_crossed=(),
        forecast=None,
        severity="critical" if crossed else "ok",
        extra={**f.extra, "enforcement": status},
    )


def drift_findings(
    rules: Rules, declared: Declared, changes: Sequence[Change], now: datetime
) -> list[Finding]:
    """One finding per declared scope: drifting when ``changes`` touch it."""
    budget = Budget(
        name=CONTROLS,
        description="OpenAI's live controls differ from the rules' controls: section; "
        "`budgetguard controls plan` shows how, `controls apply` writes the rules' values.",
        notify=_notify(rules),
        cost_source="estimate",
    )
    out = []
    for scope, _ in declared.scopes():
        lines = [c.describe() for c in changes if c.scope == scope]
        out.append(
            Finding(
                budget=budget,
                group={"project": scope} if scope else {},
                window=Window(now, now, "rolling"),
                spend=None,
                limit=None,
                forecast=None,
                severity="warning" if lines else "ok",
                source="controls",
                complete=True,
                note="; ".join(lines) or None,
                extra={"drift": lines},
            )
        )
    return out


def watch_findings(
    settings: Settings, rules: Rules, findings: Sequence[Finding], now: datetime
) -> tuple[list[Finding], list[str]]:
    """The watch's findings (from the watch budgets' ``findings`` and OpenAI's state), and
    what kept it from looking (for ``/status``)."""
    declared = rules.controls
    if declared is None or not declared.watch:
        return [], []
    if settings.openai_admin_key is None:
        return [], ["controls watch: no admin key"]
    ours = [f for f in findings if f.budget.name in (SPEND_LIMIT, ORG_SPEND_LIMIT)]
    spenders = sorted(
        (f for f in ours if f.group.get("project") and f.spend),
        key=lambda f: -(f.spend or 0),
    )[:MAX_PROJECTS]
    projects = [f.group["project"] for f in spenders]
    try:
        limits, changes = asyncio.run(_read(settings, declared, projects))
    except Exception as exc:  # any failure skips the watch this tick, said on /status
        log.info("controls watch skipped: %s", exc)
        return [], [f"controls watch: {exc}"]
    return [*limit_findings(ours, limits), *drift_findings(rules, declared, changes, now)], []


async def _read(
    settings: Settings, declared: Declared, projects: list[str]
) -> tuple[dict[str | None, SpendLimit | None], list[Change]]:
    from budgetguard.controls import plan, read_live
    from budgetguard.providers.openai import OPENAI, RetryPolicy

    within = max(5.0, min(60.0, settings.collect_deadline / 4))
    retry = RetryPolicy(max_attempts=2, deadline=within / 2)
    async with (
        asyncio.timeout(within),
        OPENAI.controls(settings.openai_admin_key, settings.openai_base_url, retry=retry) as api,
    ):
        limits = await _limits(api, projects)
        changes = plan(declared, await read_live(declared, api))
    return limits, changes


async def _limits(api: Controls, projects: list[str]) -> dict[str | None, SpendLimit | None]:
    gate = asyncio.Semaphore(4)

    async def one(project: str | None) -> SpendLimit | None:
        async with gate:
            reply = await (api.project_spend_limit(project) if project else api.org_spend_limit())
            return reply.value

    scopes: list[str | None] = [None, *projects]
    found = await asyncio.gather(*(one(s) for s in scopes))
    return dict(zip(scopes, found, strict=True))
