"""The rules file as immutable pydantic models.

``RawRules`` mirrors the file as written (every budget key optional, so each can be reported
where it is); ``Rules`` is the checked result the rest of budgetguard uses, with defaults
merged into every budget, thresholds normalised and sorted, and notifiers validated by their
type's settings model. Both refuse unknown keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import timedelta
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

from budgetguard.rules.actions import Action, ActionLimits
from budgetguard.rules.controls import Controls
from budgetguard.rules.vocabulary import (
    DURATION_PATTERN,
    CostSource,
    Metric,
    Period,
    Severity,
    parse_duration,
)

__all__ = [
    "Anomaly",
    "Budget",
    "BurnRatePair",
    "Defaults",
    "Digest",
    "FrozenDict",
    "Match",
    "ModelPrice",
    "Notifier",
    "NotifyEntry",
    "Pricing",
    "RawBudget",
    "RawRules",
    "Rules",
    "Schedule",
    "Threshold",
    "alert_identity",
    "route_name",
    "route_wants",
]


class FrozenDict(dict[str, Any]):
    """A dict that refuses changes, so a loaded ``Rules`` cannot be altered in place."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("loaded rules are immutable")

    __setitem__ = __delitem__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        """Pickled whole (``run`` hands the rules to its workers): unpickling item by item
        would go through the refused ``__setitem__``."""
        return FrozenDict, (dict(self),)


def _as_tuple(value: Any) -> Any:
    """A single string where a list is allowed becomes a one-item list."""
    if isinstance(value, str):
        return (value,)
    return value


#: The bounds of what a number or duration in the rules may be: anything accepted must also
#: be computable later (timedeltas, JSON reports, forecasts), so validate refuses the rest.
MAX_AMOUNT = Decimal("1e15")
MAX_DURATION_MINUTES = 3660 * 24 * 60  # 3660d, ten years
_MINUTES = {"m": 1, "h": 60, "d": 24 * 60}


def _bounded_duration(text: str) -> str:
    if len(text) > 12 or int(text[:-1]) * _MINUTES[text[-1]] > MAX_DURATION_MINUTES:
        raise ValueError("a duration is at most 3660d (ten years)")
    return text


Duration = Annotated[
    str, StringConstraints(pattern=DURATION_PATTERN), AfterValidator(_bounded_duration)
]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9._-]+$", min_length=1, max_length=100)]
_OneOrMany = str | list[str]
Patterns = Annotated[
    tuple[Annotated[str, StringConstraints(min_length=1)], ...],
    BeforeValidator(_as_tuple, json_schema_input_type=_OneOrMany),
    Field(min_length=1),
]
Names = Annotated[tuple[str, ...], BeforeValidator(_as_tuple, json_schema_input_type=_OneOrMany)]
Transition = Literal["fire", "resolve", "remind"]


class NotifyEntry(BaseModel):
    """``{name: finops, on: [fire, resolve]}``: a notifier that wants only some transitions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(min_length=1)]
    on: Annotated[tuple[Transition, ...], Field(min_length=1)] = ("fire", "resolve", "remind")


#: Where alerts go: notifier names, or entries that subscribe to some transitions only.
Routes = Annotated[
    tuple[str | NotifyEntry, ...],
    BeforeValidator(_as_tuple, json_schema_input_type=_OneOrMany | list[str | NotifyEntry]),
]


def route_name(route: str | NotifyEntry) -> str:
    """The notifier a ``notify`` entry names."""
    return route if isinstance(route, str) else route.name


def route_wants(route: str | NotifyEntry, transition: str) -> bool:
    """Whether a ``notify`` entry subscribes to ``transition`` (fire, resolve, remind)."""
    return isinstance(route, str) or transition in route.on


GroupKey = Literal["project", "model", "user", "api_key", "line_item"]
PositiveNumber = Annotated[Decimal, Field(gt=0, le=MAX_AMOUNT, allow_inf_nan=False)]
Price = Annotated[Decimal, Field(ge=0, le=Decimal(1_000_000), allow_inf_nan=False)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Schedule(_Frozen):
    interval: Duration = "15m"


class Match(_Frozen):
    """Globs per dimension; an absent key matches everything."""

    project: Patterns | None = None
    model: Patterns | None = None
    user: Patterns | None = None
    api_key: Patterns | None = None
    line_item: Patterns | None = None
    endpoint: Patterns | None = None

    def items(self) -> Iterator[tuple[str, tuple[str, ...]]]:
        for key in type(self).model_fields:
            value = getattr(self, key)
            if value is not None:
                yield key, value


Percent = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?%$")]


class RawThreshold(_Frozen):
    """``{at: 80%, severity: warning, notify: [...]}``; ``at`` is checked by the loader."""

    at: Any
    severity: Severity | None = None
    notify: Routes | None = None
    #: fire on the projected end-of-period spend (at any percent), not only on spend so far
    forecast: StrictBool = False
    action: Name | None = None


#: What a threshold may be written as: ``80%``, an absolute amount, or a mapping.
ThresholdInput = RawThreshold | Percent | PositiveNumber


class Threshold(_Frozen):
    """A normalised threshold: ``ratio`` of the limit (1 = 100%), its severity, its routing.

    ``at`` keeps the form the user wrote (``"80%"`` or an absolute number) for dumping.
    """

    at: str | Decimal
    ratio: Decimal
    severity: Severity
    notify: tuple[str | NotifyEntry, ...] | None = None
    forecast: StrictBool = False
    #: the name of a top-level action to take when the threshold is crossed
    action: str | None = None

    @property
    def key(self) -> str:
        """Stable text of the threshold for alert identities (``0.8``, ``1``)."""
        return format(self.ratio.normalize(), "f")


class BurnRatePair(_Frozen):
    """A multi-window burn-rate rule (Google SRE's, as sloth runs it): it holds when both
    the ``long`` and the ``short`` window spend faster than ``factor`` x the pace that spends
    the limit exactly over the budget's period (or window), and the long window spent at
    least ``min_spend``. A first-class object: its ``key`` names it in alert identities
    and idempotency keys, so that it can carry more (routing, actions) without new keys."""

    long: Duration
    short: Duration
    factor: Annotated[Decimal, Field(gt=0, le=Decimal(1_000_000), allow_inf_nan=False)]
    severity: Severity = "critical"
    min_spend: Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)] | None = None
    notify: Routes | None = None
    #: the name of a top-level action to take when the pair fires
    action: Name | None = None

    @property
    def key(self) -> str:
        """Stable text of the pair for alert identities: ``1h/15m``."""
        return f"{self.long}/{self.short}"

    @property
    def ratio(self) -> Decimal:
        """What ranks it among an alert's transitions: its factor."""
        return self.factor

    @property
    def at(self) -> str:
        """How people read it: ``1h/15m x14.4``."""
        return f"{self.key} x{self.factor.normalize():f}"

    @property
    def long_delta(self) -> timedelta:
        return parse_duration(self.long)

    @property
    def short_delta(self) -> timedelta:
        return parse_duration(self.short)


#: ``burn_rate:`` as written: ``default`` (the pairs of the budget's period), ``off``, or pairs.
BurnRateInput = Literal["default", "off"] | tuple[BurnRatePair, ...]


class Anomaly(_Frozen):
    """Fires when spend in ``window`` exceeds ``factor`` x the mean of same-size windows over
    ``baseline``, and is at least ``min``. ``seasonal``: the mean of the same slots (hour of
    week) of the previous weeks the baseline holds (default 4 weeks), not a flat mean."""

    window: Duration
    baseline: Duration | None = None
    seasonal: StrictBool = False
    factor: Annotated[Decimal, Field(gt=1, le=Decimal(1_000_000), allow_inf_nan=False)]
    min: Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)] = Decimal(0)


#: The history a seasonal anomaly compares with when its ``baseline`` is not given.
SEASONAL_BASELINE = "28d"


#: How far settled costs and the usage estimate may disagree before a budget's costs are
#: said not to add up (a warning and a note): ``3`` means within 3x either way.
MismatchFactor = Annotated[Decimal, Field(gt=1, le=Decimal(1000), allow_inf_nan=False)]


class Defaults(_Frozen):
    thresholds: tuple[Any, ...] | None = None
    notify: Routes | None = None
    cost_source: CostSource | None = None
    repeat: Duration | None = None
    max_staleness: Duration | None = None
    mismatch_factor: MismatchFactor | None = None
    burn_rate: BurnRateInput | None = None


#: Free-form labels for people and routing: ``{team: search, tier: prod}``.
Labels = Annotated[dict[str, str], AfterValidator(FrozenDict)]
Url = Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]


class RawBudget(_Frozen):
    """One budget as written; every key optional here so each mistake is found in place."""

    name: Name
    description: str | None = None
    runbook_url: Url | None = None
    labels: Labels = Field(default_factory=FrozenDict)
    match: Match = Match()
    each: Annotated[
        tuple[GroupKey, ...],
        BeforeValidator(_as_tuple, json_schema_input_type=GroupKey | list[GroupKey]),
    ] = ()
    metric: Metric = "cost"
    limit: PositiveNumber | None = None
    window: Duration | None = None
    period: Period | None = None
    thresholds: tuple[Any, ...] | None = None
    forecast: StrictBool = False
    anomaly: Anomaly | None = None
    repeat: Duration | None = None
    notify: Routes | None = None
    cost_source: CostSource | None = None
    max_staleness: Duration | None = None
    mismatch_factor: MismatchFactor | None = None
    burn_rate: BurnRateInput | None = None
    enabled: StrictBool = True


class ModelPrice(_Frozen):
    """USD per 1M tokens."""

    input: Price
    cached_input: Price | None = None
    output: Price
    audio_input: Price | None = None
    audio_output: Price | None = None


class Pricing(_Frozen):
    """Overrides and additions to the built-in price list, by model name."""

    models: Annotated[dict[str, ModelPrice], AfterValidator(FrozenDict)] = Field(
        default_factory=FrozenDict
    )


class Digest(_Frozen):
    schedule: str = "0 9 * * mon"
    period: Literal["day", "week", "month"] = "week"
    notify: Names = ()
    top: Annotated[int, Field(ge=1, le=50)] = 5


class RawRules(_Frozen):
    """The file as written. Notifiers stay untyped here: their type picks their model."""

    version: Literal[1]
    timezone: str = "UTC"
    schedule: Schedule = Schedule()
    notifiers: dict[str, Any] = Field(default_factory=dict)
    defaults: Defaults = Defaults()
    pricing: Pricing = Pricing()
    budgets: tuple[Any, ...] = ()
    digest: Digest | None = None
    actions: dict[Name, Action] = Field(default_factory=dict)
    action_limits: ActionLimits = ActionLimits()
    controls: Controls | None = None  # OpenAI's own controls as code (rules.controls)


class Notifier(_Frozen):
    """A configured notifier: its name, type and type-checked settings.

    ``unresolved`` names the ``${VAR}`` of its settings that were not set when the rules were
    loaded for a command that sends nothing; such a notifier must not be used to send.
    """

    name: str
    type: str
    settings: BaseModel
    unresolved: tuple[str, ...] = ()


class NameMatches(_Frozen):
    """What matching a budget's globs on display names found (``Rules.with_names``): notes
    for people (an entry matched by a former name), and the globs meant for names that
    matched no name (evaluation makes the budget unknown unless they match an id)."""

    notes: tuple[str, ...] = ()
    unresolved: tuple[tuple[str, str], ...] = ()


class Budget(_Frozen):
    """A checked budget with defaults merged in."""

    name: str
    description: str | None = None
    runbook_url: str | None = None
    labels: Labels = Field(default_factory=FrozenDict)
    match: Match = Match()
    each: tuple[str, ...] = ()
    metric: Metric = "cost"
    limit: Decimal | None = None
    window: Duration | None = None
    period: Period | None = None
    thresholds: tuple[Threshold, ...] = ()
    forecast: StrictBool = False
    anomaly: Anomaly | None = None
    repeat: Duration | None = None
    notify: tuple[str | NotifyEntry, ...] = ()
    cost_source: CostSource = "auto"
    max_staleness: Duration = "6h"
    mismatch_factor: Decimal = Decimal(3)
    #: the burn-rate pairs, ``default`` resolved for the budget's period or window
    burn_rate: tuple[BurnRatePair, ...] = ()
    enabled: StrictBool = True
    #: set by ``Rules.with_names`` only (never in a rules file)
    names: NameMatches | None = None

    @property
    def about(self) -> str | None:
        """``description · runbook: URL · labels: k=v, ...`` for people, or None."""
        parts = [self.description] if self.description else []
        if self.runbook_url:
            parts.append(f"runbook: {self.runbook_url}")
        if self.labels:
            parts.append("labels: " + ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items())))
        return " · ".join(parts) or None

    @property
    def kind(self) -> Literal["rolling", "period", "anomaly"]:
        if self.window is not None:
            return "rolling"
        if self.period is not None:
            return "period"
        return "anomaly"

    @property
    def window_delta(self) -> timedelta | None:
        return None if self.window is None else parse_duration(self.window)

    @property
    def anomaly_window_delta(self) -> timedelta | None:
        return None if self.anomaly is None else parse_duration(self.anomaly.window)

    @property
    def baseline_delta(self) -> timedelta | None:
        if self.anomaly is None:
            return None
        return parse_duration(self.anomaly.baseline or SEASONAL_BASELINE)

    @property
    def shortest_window(self) -> timedelta | None:
        """The shortest rolling span the budget measures (its window, anomaly window or a
        burn-rate pair's short window)."""
        spans = [d for d in (self.window_delta, self.anomaly_window_delta) if d is not None]
        spans += [p.short_delta for p in self.burn_rate]
        return min(spans) if spans else None

    @property
    def forecasts(self) -> bool:
        """Whether anything of the budget reads a forecast (``forecast: true`` on the
        budget or on one of its thresholds)."""
        return self.forecast or any(t.forecast for t in self.thresholds)

    @property
    def source(self) -> str:
        """The source the budget really uses: ``usage`` for usage metrics; ``estimate`` where
        costs cannot answer (per endpoint or user); else its ``cost_source`` (``auto`` under
        a day too: costs apportioned into the window by usage against the estimate, the
        larger wins, so late costs never hide spend)."""
        if self.metric != "cost":
            return "usage"
        if self.match.endpoint is not None or self.match.user is not None or "user" in self.each:
            return "estimate"
        return self.cost_source

    @property
    def repeat_delta(self) -> timedelta | None:
        return None if self.repeat is None else parse_duration(self.repeat)

    @property
    def staleness_delta(self) -> timedelta:
        return parse_duration(self.max_staleness)


class Rules(_Frozen):
    """The checked rules file."""

    version: Literal[1] = 1
    timezone: str = "UTC"
    schedule: Schedule = Schedule()
    notifiers: tuple[Notifier, ...] = ()
    defaults: Defaults = Defaults()
    pricing: Pricing = Pricing()
    budgets: tuple[Budget, ...] = ()
    digest: Digest | None = None
    actions: Annotated[dict[str, Action], AfterValidator(FrozenDict)] = Field(
        default_factory=FrozenDict
    )
    action_limits: ActionLimits = ActionLimits()
    controls: Controls | None = None

    def notifier(self, name: str) -> Notifier:
        for notifier in self.notifiers:
            if notifier.name == name:
                return notifier
        raise KeyError(name)

    def budget(self, name: str) -> Budget:
        for budget in self.budgets:
            if budget.name == name:
                return budget
        raise KeyError(name)

    def with_names(
        self,
        names: Mapping[str, Mapping[str, str]],
        former: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None,
    ) -> Rules:
        """These rules with ``match`` globs on project, user and api_key also matching display
        names: ``names`` (kind -> id -> name) and ``former`` (kind -> id -> the names a
        renamed entry had) turn each glob's name hits into their ids; what that found is
        each budget's ``names`` (see ``rules.names``)."""
        from budgetguard.rules.names import literal, resolve

        budgets = []
        for budget in self.budgets:
            found = resolve(dict(budget.match.items()), names, former or {})
            extra = {
                key: (*patterns, *sorted(literal(i) for i in found.ids[key]))
                for key, patterns in budget.match.items()
                if key in found.ids
            }
            update: dict[str, Any] = {}
            if extra:
                update["match"] = budget.match.model_copy(update=extra)
            if found.notes or found.unresolved:
                update["names"] = NameMatches(
                    notes=tuple(found.notes), unresolved=tuple(found.unresolved)
                )
            budgets.append(budget.model_copy(update=update) if update else budget)
        return self.model_copy(update={"budgets": tuple(budgets)})

    def to_data(self, *, reveal_secrets: bool = False) -> dict[str, Any]:
        """The rules as plain data in the file's own shape (secrets masked unless asked)."""
        from budgetguard.rules.dump import rules_to_data

        return rules_to_data(self, reveal_secrets=reveal_secrets)


def alert_identity(budget: str, group: Mapping[str, str], kind: str, threshold: str) -> str:
    """A stable key of one alert: budget name + group + kind + threshold.

    The same inputs give the same key on every run and every replica, so alert state and
    notification idempotency keys survive restarts and reloads of unchanged budgets.
    """
    canonical = json.dumps([budget, sorted(group.items()), kind, threshold], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
