"""The rules' ``actions:`` section: what budgetguard may do through a provider's own controls
when a threshold (or any alert that carries one) is crossed.

An action is named once at the top level and referenced by name (``{at: 100%, action:
freeze}``), so the same settings, approval and locks apply wherever it is used. It runs only
with ``enforce: true`` here **and** ``BUDGETGUARD_ACTIONS=on`` in the environment (two
locks); otherwise it is planned and reported (dry-run). The cross-key checks (irreversible
types, names that exist, a project to act on) are ``rules.checks``'s.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints

from budgetguard.rules.vocabulary import DURATION_PATTERN, parse_duration

__all__ = [
    "ACTION_TYPES",
    "HOSTED_TOOLS",
    "IRREVERSIBLE_TYPES",
    "PROJECT_TYPES",
    "Action",
    "ActionLimits",
    "Revert",
]

#: Every action type; the ``openai.`` prefix names the provider whose controls it writes.
ActionType = Literal[
    "openai.project_spend_limit",
    "openai.org_spend_limit",
    "openai.model_deny",
    "openai.hosted_tools",
    "openai.rate_limit",
    "openai.delete_key",
    "openai.archive",
]
ACTION_TYPES: tuple[str, ...] = ActionType.__args__  # type: ignore[attr-defined]
#: Types with no way back (there is no undelete of a key, no unarchive of a project).
IRREVERSIBLE_TYPES = frozenset({"openai.delete_key", "openai.archive"})
#: Types that act on one project (the group's, the action's ``project``, or the budget's).
PROJECT_TYPES = frozenset(ACTION_TYPES) - {"openai.org_spend_limit"}
HOSTED_TOOLS = ("file_search", "web_search", "image_generation", "mcp", "code_interpreter")

_Amount = Annotated[Decimal, Field(ge=0, le=Decimal("1e12"), allow_inf_nan=False)]
_Glob = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def _as_tuple(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


_Globs = Annotated[
    tuple[_Glob, ...], BeforeValidator(_as_tuple, json_schema_input_type=str | list[str])
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Revert(_Frozen):
    """``revert: {after: 2h}``: undo the action that long after it was applied."""

    after: Annotated[str, StringConstraints(pattern=DURATION_PATTERN)]

    @property
    def delta(self) -> Any:
        return parse_duration(self.after)


class Action(_Frozen):
    """One named action. Settings by type: ``margin`` or ``amount`` (USD) for the spend
    limits (the limit becomes the month's spend so far plus ``margin``, or ``amount``);
    ``models`` (globs, expanded at plan time to the exact model ids the org uses) for
    ``model_deny`` and ``rate_limit``; ``tools`` for ``hosted_tools``; ``fraction`` (of the
    current limits) for ``rate_limit``; ``project`` (an id) when neither the group nor the
    budget names one project; ``key`` (an API key id) for ``delete_key`` when the group
    has none."""

    type: ActionType
    margin: _Amount | None = None
    amount: _Amount | None = None
    models: _Globs | None = None
    tools: (
        tuple[
            Literal["file_search", "web_search", "image_generation", "mcp", "code_interpreter"], ...
        ]
        | None
    ) = None
    fraction: Annotated[Decimal, Field(gt=0, lt=1, allow_inf_nan=False)] | None = None
    project: _Glob | None = None
    key: _Glob | None = None
    approval: Literal["manual", "auto"] = "manual"
    enforce: StrictBool = False
    revert: Literal["period_end", "manual"] | Revert = "period_end"
    protect: _Globs = ()
    irreversible: StrictBool = False

    @property
    def revert_after(self) -> Any:
        """The delay after which the action is undone, when ``revert: {after: ...}``."""
        return self.revert.delta if isinstance(self.revert, Revert) else None


class ActionLimits(_Frozen):
    """The blast radius of every action together: at most ``per_tick`` writes in one tick
    and ``per_day`` in 24 hours; ``protect`` lists project globs only manual approval may
    touch (an ``auto`` action on one of them waits for approval instead)."""

    per_tick: Annotated[int, Field(ge=0, le=1000)] = 3
    per_day: Annotated[int, Field(ge=0, le=10000)] = 10
    protect: _Globs = ()
