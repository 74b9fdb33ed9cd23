"""Budget actions: plan (pure), approve, apply through a provider's controls, verify,
revert; every step recorded in the store's append-only log and notified through the outbox.

``pipeline.act`` wires them after the alerts; ``budgetguard actions ...`` lets people list,
approve, reject, revert and read the log.
"""

from budgetguard.actions.controls import ControlError, Controls, Observed, change
from budgetguard.actions.links import approve_url, verify
from budgetguard.actions.messages import describe_state, step_notes
from budgetguard.actions.plan import (
    Facts,
    Plan,
    Trigger,
    facts_of,
    month_rules,
    plan_actions,
    triggers,
)
from budgetguard.actions.run import ActionRun, Gate, Runner, machine_name

__all__ = [
    "ActionRun",
    "ControlError",
    "Controls",
    "Facts",
    "Gate",
    "Observed",
    "Plan",
    "Runner",
    "Trigger",
    "approve_url",
    "change",
    "describe_state",
    "facts_of",
    "machine_name",
    "month_rules",
    "plan_actions",
    "step_notes",
    "triggers",
    "verify",
]
