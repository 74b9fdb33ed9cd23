"""The optional ``controls:`` section: OpenAI's own limits, spend alerts, model permissions
and hosted tools, declared as code for ``budgetguard controls plan|apply``.

What is declared is managed; what is left out is left alone. A spend limit or model
permissions of ``none`` says there must be none (``apply`` deletes what is there); a
``spend_alerts`` list is the whole set of that scope's alerts (alerts not in it are
deleted); ``hosted_tools`` names only the tools it manages. Amounts are USD a month (the
only interval OpenAI has), rounded up to the cent on the wire. Projects are keyed by id:
a control names exactly one project, never a glob.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
)

__all__ = [
    "AlertSpec",
    "Controls",
    "HostedToolsSpec",
    "ModelPermissionsSpec",
    "OrganisationControls",
    "ScopeControls",
]


def _exact_model(value: str) -> str:
    if any(c in value for c in "*?[] \t\n"):
        raise ValueError(f"{value!r} is not an exact model id (OpenAI takes no globs here)")
    return value


def _listed(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


def _frozen(value: dict[str, Any]) -> Any:
    """Loaded rules are immutable (``model.FrozenDict``; imported here, when rules load,
    because ``model`` imports this module)."""
    from budgetguard.rules.model import FrozenDict

    return FrozenDict(value)


#: a month's limit or alert, USD (OpenAI's limits are integer cents: at least one)
LimitAmount = Annotated[Decimal, Field(ge=Decimal("0.01"), le=Decimal("1e9"), allow_inf_nan=False)]
AlertAmount = Annotated[Decimal, Field(ge=0, le=Decimal("1e9"), allow_inf_nan=False)]
ProjectId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$", max_length=200)]
ModelId = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_exact_model)
]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertSpec(_Frozen):
    """An e-mail spend alert at ``at`` USD of the month's spend."""

    at: AlertAmount
    email: Annotated[
        tuple[Email, ...], BeforeValidator(_listed), Field(min_length=1, max_length=50)
    ]
    subject_prefix: Annotated[str, StringConstraints(max_length=200)] | None = None


class ModelPermissionsSpec(_Frozen):
    """A project's allow or deny list of exact model ids (OpenAI takes no globs here)."""

    mode: Literal["allow_list", "deny_list"]
    models: Annotated[tuple[ModelId, ...], BeforeValidator(_listed), Field(max_length=500)]


class HostedToolsSpec(_Frozen):
    """The hosted tools a project may use; a tool left out is not managed."""

    file_search: StrictBool | None = None
    web_search: StrictBool | None = None
    image_generation: StrictBool | None = None
    mcp: StrictBool | None = None
    code_interpreter: StrictBool | None = None

    def managed(self) -> dict[str, bool]:
        return {name: on for name, on in self if on is not None}


class ScopeControls(_Frozen):
    """The controls of the organisation or of one project."""

    spend_limit: LimitAmount | Literal["none"] | None = None
    spend_alerts: Annotated[tuple[AlertSpec, ...], Field(max_length=50)] | None = None
    model_permissions: ModelPermissionsSpec | Literal["none"] | None = None
    hosted_tools: HostedToolsSpec | None = None


class OrganisationControls(_Frozen):
    """The organisation's own: a spend limit and spend alerts (the others are per project)."""

    spend_limit: LimitAmount | Literal["none"] | None = None
    spend_alerts: Annotated[tuple[AlertSpec, ...], Field(max_length=50)] | None = None


class Controls(_Frozen):
    """``controls:`` as a whole. With ``watch`` (the default) the service alerts when the
    live controls drift from these (alert kind ``drift``) and when an OpenAI spend limit is
    enforcing while the month's spend is at or past it, to ``notify`` (default: the
    defaults' notifiers)."""

    watch: StrictBool = True
    notify: Annotated[tuple[str, ...], BeforeValidator(_listed)] | None = None
    organization: OrganisationControls | None = None
    projects: Annotated[
        dict[ProjectId, ScopeControls], Field(max_length=1000), AfterValidator(_frozen)
    ] = Field(default_factory=dict)

    def scopes(self) -> Iterator[tuple[str | None, ScopeControls]]:
        """(None for the organisation, or a project id; its controls), in a stable order."""
        if self.organization is not None:
            org = self.organization
            yield None, ScopeControls(spend_limit=org.spend_limit, spend_alerts=org.spend_alerts)
        for project in sorted(self.projects):
            yield project, self.projects[project]
