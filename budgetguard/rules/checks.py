"""Checks that span several keys, and the assembly of the final ``Rules``.

Each check reports at the exact key it is about, and every check runs even when others fail,
so one run of ``validate`` lists every mistake in the file.
"""

from __future__ import annotations

import fnmatch
import zoneinfo
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from budgetguard.rules.action_checks import action_targets, check_actions
from budgetguard.rules.actions import Action
from budgetguard.rules.burn_rate import MIN_SHORT, resolve_pairs
from budgetguard.rules.errors import did_you_mean
from budgetguard.rules.model import (
    SEASONAL_BASELINE,
    Anomaly,
    Budget,
    BurnRatePair,
    Defaults,
    Digest,
    Notifier,
    NotifyEntry,
    RawBudget,
    RawThreshold,
    Rules,
    Threshold,
    route_name,
)
from budgetguard.rules.notifiers import NotifierTypes
from budgetguard.rules.vocabulary import ENDPOINTS, METRIC_ENDPOINTS, parse_duration

if TYPE_CHECKING:
    from budgetguard.rules.loader import Reporter

__all__ = ["build_rules"]

Loc = tuple[str | int, ...]
_HUNDRED = Decimal(100)
_MIN_RATIO, _MAX_RATIO = Decimal("0.000001"), Decimal(1000)


def build_rules(
    data: dict[str, Any],
    report: Reporter,
    types: NotifierTypes,
    raw_model: type[BaseModel],
) -> Rules:
    raw: Any = None
    try:
        raw = raw_model.model_validate(data)
    except ValidationError as exc:
        report.validation(exc, (), raw_model)
    defaults: Defaults = raw.defaults if raw is not None else _safe(Defaults, data.get("defaults"))
    raw_notifiers = data.get("notifiers")
    names = set(raw_notifiers) if isinstance(raw_notifiers, dict) else set()
    notifiers = _notifiers(raw_notifiers, report, types)
    timezone = data.get("timezone", "UTC")
    zone_ok = _timezone(timezone, report)
    if defaults.notify:
        _names_exist(defaults.notify, ("defaults", "notify"), names, report)
    actions = _actions(raw, report)
    budgets = _budgets(data.get("budgets"), defaults, names, report, actions)
    if raw is not None and raw.controls is not None and raw.controls.notify:
        _names_exist(raw.controls.notify, ("controls", "notify"), names, report)
    digest = raw.digest if raw is not None else None
    if digest is not None:
        _digest(digest, timezone if zone_ok else "UTC", names, report)
    report.raise_if_any()
    assert raw is not None
    return Rules(
        version=raw.version,
        timezone=raw.timezone,
        schedule=raw.schedule,
        notifiers=tuple(notifiers),
        defaults=defaults,
        pricing=raw.pricing,
        budgets=tuple(b for b in budgets if b is not None),
        digest=digest,
        actions=actions or {},
        action_limits=raw.action_limits,
        controls=raw.controls,
    )


def _actions(raw: Any, report: Reporter) -> dict[str, Action] | None:
    """The top-level actions (already typed by the model), each checked across its keys;
    None when the file did not validate (its mistakes are reported where they are: the
    names thresholds and pairs give cannot be checked against actions that did not load)."""
    if raw is None:
        return None
    check_actions(raw.actions, report)
    return dict(raw.actions)


def _safe(model: type[Defaults], value: Any) -> Defaults:
    try:
        return model.model_validate(value or {})
    except ValidationError:
        return model()


# -- notifiers ------------------------------------------------------------------------------


def _notifiers(raw: Any, report: Reporter, types: NotifierTypes) -> list[Notifier]:
    if not isinstance(raw, dict):
        return []  # the RawRules model reported what it is instead
    out = []
    for name, settings in raw.items():
        path: Loc = ("notifiers", name)
        if not isinstance(settings, dict):
            report.at(
                path,
                f"notifier '{name}': expected a mapping with a 'type' ({', '.join(sorted(types))})",
            )
            continue
        kind = settings.get("type")
        if kind is None:
            report.at(
                path, f"notifier '{name}': missing required key 'type' ({', '.join(sorted(types))})"
            )
            continue
        if kind not in types:
            report.at(
                (*path, "type"), f"unknown notifier type '{kind}'{did_you_mean(str(kind), types)}"
            )
            continue
        model = types[kind]
        pending = report.unresolved.get(name, {})
        known = {k: v for k, v in settings.items() if k not in pending}
        try:
            parsed = model.model_validate(known)
        except ValidationError as exc:
            if not pending:
                report.validation(exc, path, model)
                continue
            report.validation(exc, path, model, skip=frozenset(pending))
            parsed = model.model_construct(**known)  # never sends: see Notifier.unresolved
        variables = tuple(v for names in pending.values() for v in names)
        out.append(Notifier(name=name, type=str(kind), settings=parsed, unresolved=variables))
    return out


def _names_exist(
    routes: tuple[str | NotifyEntry, ...], path: Loc, known: set[str], report: Reporter
) -> None:
    for index, route in enumerate(routes):
        name = route_name(route)
        if name not in known:
            hint = did_you_mean(name, known) if known else " (no notifiers are configured)"
            report.at((*path, index), f"no notifier named '{name}'{hint}")


# -- timezone and digest --------------------------------------------------------------------


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(name: Any, report: Reporter) -> bool:
    if not isinstance(name, str):
        return False  # reported by the model
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        report.at(
            ("timezone",),
            f"unknown time zone '{name}'{did_you_mean(name, _zones())}"
            if did_you_mean(name, _zones()).startswith(" —")
            else f"unknown time zone '{name}' (use an IANA name such "
            "as UTC, Europe/Paris, America/New_York)",
        )
        return False
    return True


def _digest(digest: Digest, timezone: str, names: set[str], report: Reporter) -> None:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(digest.schedule, timezone=zoneinfo.ZoneInfo(timezone))
    except ValueError as exc:
        report.at(
            ("digest", "schedule"),
            f"schedule: not a valid cron expression ({exc}); five fields: minute hour "
            "day-of-month month day-of-week, e.g. '0 9 * * mon'",
        )
    _names_exist(digest.notify, ("digest", "notify"), names, report)


# -- budgets --------------------------------------------------------------------------------


def _budgets(
    raw: Any,
    defaults: Defaults,
    names: set[str],
    report: Reporter,
    actions: Mapping[str, Action] | None,
) -> list[Budget | None]:
    if not isinstance(raw, list):
        return []  # reported by the model
    seen: dict[str, int] = {}
    out = []
    for index, item in enumerate(raw):
        path: Loc = ("budgets", index)
        if not isinstance(item, dict):
            report.at(
                path,
                f"budget {index + 1}: expected a mapping (name:, limit:, ...), "
                f"got {'a list' if isinstance(item, list) else 'a single value'}",
            )
            continue
        try:
            budget = RawBudget.model_validate(item)
        except ValidationError as exc:
            report.validation(exc, path, RawBudget)
            continue
        if budget.name in seen:
            line = report.positions.of_value(("budgets", seen[budget.name], "name"))[0] + 1
            report.at(
                (*path, "name"),
                f"duplicate budget name '{budget.name}' (first used on line {line})",
            )
        seen.setdefault(budget.name, index)
        out.append(_budget(budget, item, path, defaults, names, report, actions))
    return out


def _budget(
    raw: RawBudget,
    given: dict[str, Any],
    path: Loc,
    defaults: Defaults,
    names: set[str],
    report: Reporter,
    actions: Mapping[str, Action] | None,
) -> Budget | None:
    errors_before = len(report.errors)
    _shape(raw, given, path, report)
    if raw.anomaly is not None:
        _anomaly(raw.anomaly, path, report)
    thresholds: tuple[Threshold, ...] = ()
    whole = raw.metric != "cost"  # tokens, requests, ... are counted in whole units
    if raw.limit is not None:
        if whole and raw.limit != raw.limit.to_integral_value():
            report.at((*path, "limit"), f"limit: metric {raw.metric} counts whole units")
        if raw.thresholds is not None:
            where = (*path, "thresholds")
            thresholds = _thresholds(raw.thresholds, where, raw.limit, names, report, whole)
            action_targets(raw, raw.thresholds, where, actions, report)
        elif defaults.thresholds is not None:
            where = ("defaults", "thresholds")
            thresholds = _thresholds(defaults.thresholds, where, raw.limit, names, report, whole)
            action_targets(raw, defaults.thresholds, where, actions, report)
        else:
            thresholds = _thresholds(("80%", "100%"), path, raw.limit, names, report, whole)
        if any(t.forecast for t in thresholds) and raw.period is None:
            report.at(
                (*path, "thresholds"),
                "forecast: only period budgets have an end to forecast (use period:, not window:)",
            )
    burn_given = raw.burn_rate if raw.burn_rate is not None else defaults.burn_rate
    burn_path: Loc = ("defaults", "burn_rate")
    if raw.burn_rate is not None:
        burn_path = (*path, "burn_rate")
    pairs = resolve_pairs(burn_given, raw.period, raw.window)
    if raw.burn_rate not in (None, "off") and raw.limit is None:
        report.at(burn_path, "burn_rate: needs a limit (the pace is the limit over the period)")
        pairs = ()
    elif raw.limit is None:
        pairs = ()  # a spike-only budget has no pace: the defaults' pairs do not apply
    _pairs(pairs, burn_path, raw.window, names, report)
    pair_actions = tuple({"action": p.action} if p.action else {} for p in pairs)
    action_targets(raw, pair_actions, burn_path, actions, report)
    notify = raw.notify if raw.notify is not None else (defaults.notify or ())
    if raw.notify is not None:
        _names_exist(raw.notify, (*path, "notify"), names, report)
    cost_source = _cost_source(raw, given, path, defaults, report)
    _endpoint_costs(raw, cost_source, path, report)
    _daily_costs(raw, cost_source, path, report)
    _metric(raw, path, report)
    _line_items(raw, cost_source, path, report)
    if len(set(raw.each)) != len(raw.each):
        report.at((*path, "each"), "each: lists a key twice")
    if len(report.errors) > errors_before:
        return None
    return Budget(
        name=raw.name,
        description=raw.description,
        runbook_url=raw.runbook_url,
        labels=raw.labels,
        match=raw.match,
        each=raw.each,
        metric=raw.metric,
        limit=raw.limit,
        window=raw.window,
        period=raw.period,
        thresholds=thresholds,
        forecast=raw.forecast,
        anomaly=raw.anomaly,
        repeat=raw.repeat if raw.repeat is not None else defaults.repeat,
        notify=tuple(notify),
        cost_source=cost_source,
        max_staleness=raw.max_staleness or defaults.max_staleness or "6h",
        mismatch_factor=raw.mismatch_factor or defaults.mismatch_factor or Decimal(3),
        burn_rate=pairs,
        enabled=raw.enabled,
    )


def _anomaly(anomaly: Anomaly, path: Loc, report: Reporter) -> None:
    """A flat anomaly needs a baseline longer than its window; a seasonal one compares
    with whole previous weeks, so its window fits in a week and its baseline is weeks."""
    window = parse_duration(anomaly.window)
    if anomaly.baseline is None:
        if not anomaly.seasonal:
            report.at(
                (*path, "anomaly"),
                "anomaly: missing required key 'baseline' (the history the window is "
                "compared with, e.g. 7d), or seasonal: true",
            )
        baseline = parse_duration(SEASONAL_BASELINE)
    else:
        baseline = parse_duration(anomaly.baseline)
    if anomaly.seasonal:
        week = timedelta(days=7)
        if window > week:
            report.at((*path, "anomaly", "window"), "window: a seasonal window fits in a week")
        if baseline < week or baseline % week:
            report.at(
                (*path, "anomaly", "baseline"),
                "baseline: a seasonal baseline is whole weeks (7d, 14d, 28d, ...)",
            )
    elif baseline <= window:
        report.at(
            (*path, "anomaly", "baseline"),
            "baseline: must be longer than the anomaly window (it is the history "
            "the window is compared with)",
        )


def _pairs(
    pairs: tuple[BurnRatePair, ...],
    path: Loc,
    window: str | None,
    names: set[str],
    report: Reporter,
) -> None:
    """Burn-rate pairs that can be measured: a short window shorter than its long one and
    never under 15 minutes, a long window inside a rolling budget's, each pair once."""
    seen: set[str] = set()
    span = None if window is None else parse_duration(window)
    for index, pair in enumerate(pairs):
        where: Loc = (*path, index)
        if pair.short_delta < MIN_SHORT:
            report.at((*where, "short"), "short: a burn-rate window is at least 15m")
        if pair.short_delta >= pair.long_delta:
            report.at((*where, "short"), "short: must be shorter than the long window")
        if span is not None and pair.long_delta > span:
            report.at((*where, "long"), f"long: longer than the budget's window ({window})")
        if pair.key in seen:
            report.at(where, f"burn-rate pair {pair.key} is given twice")
        seen.add(pair.key)
        if pair.notify is not None:
            _names_exist(pair.notify, (*where, "notify"), names, report)


def _shape(raw: RawBudget, given: dict[str, Any], path: Loc, report: Reporter) -> None:
    """limit, window/period, forecast and anomaly in the combinations that make sense."""
    if raw.limit is None:
        if raw.anomaly is None:
            report.at(
                path,
                f"budget '{raw.name}': missing required key 'limit' (or an "
                "'anomaly' section for a spike-only budget)",
            )
        for key in ("window", "period", "thresholds", "forecast"):
            if key in given:
                report.at(
                    (*path, key),
                    f"{key}: needs a limit (an anomaly-only budget has neither window nor period)",
                    key=True,
                )
        return
    if raw.window is not None and raw.period is not None:
        report.at(
            (*path, "period"),
            "give either window (rolling) or period (calendar), not both",
            key=True,
        )
    elif raw.window is None and raw.period is None:
        report.at(
            path,
            f"budget '{raw.name}': needs a window (rolling, e.g. 24h) or a period "
            "(day, week, month, quarter or year)",
        )
    if raw.forecast and raw.period is None:
        report.at(
            (*path, "forecast"),
            "forecast: only period budgets have an end to forecast (use period:, not window:)",
            key=True,
        )


def _thresholds(
    items: tuple[Any, ...],
    path: Loc,
    limit: Decimal,
    names: set[str],
    report: Reporter,
    whole: bool = False,
) -> tuple[Threshold, ...]:
    """The thresholds, sorted; ``whole``: an absolute one must be a whole number (a count)."""
    out: dict[Decimal, Threshold] = {}
    for index, item in enumerate(items):
        where: Loc = (*path, index)
        severity = notify = action = None
        forecast = False
        at = item
        if isinstance(item, dict):
            try:
                parsed = RawThreshold.model_validate(item)
            except ValidationError as exc:
                report.validation(exc, where, RawThreshold)
                continue
            at, severity, notify = parsed.at, parsed.severity, parsed.notify
            forecast = parsed.forecast
            action = parsed.action
            if notify is not None:
                _names_exist(notify, (*where, "notify"), names, report)
            where = (*where, "at")
        ratio = _ratio(at, limit)
        if ratio is None:
            report.at(
                where,
                "a threshold is a percentage of the limit (80%), an absolute "
                "amount above 0 (120), or {at: ..., severity: ..., notify: [...]}",
            )
            continue
        if whole and isinstance(at, Decimal) and at != at.to_integral_value():
            report.at(where, "an absolute threshold of a count metric is a whole number")
            continue
        if not _MIN_RATIO <= ratio <= _MAX_RATIO:
            report.at(where, "a threshold lies between 0.0001% and 100000% of the limit")
            continue
        if ratio in out:
            report.at(where, f"threshold repeats one at {_percent(ratio)} of the limit")
            continue
        out[ratio] = Threshold(
            at=at,
            ratio=ratio,
            severity=severity or ("warning" if ratio < 1 else "critical"),
            notify=notify,
            forecast=forecast,
            action=action,
        )
    return tuple(out[r] for r in sorted(out))


def _ratio(at: Any, limit: Decimal) -> Decimal | None:
    if isinstance(at, str) and at.endswith("%"):
        try:
            value = Decimal(at[:-1])
        except InvalidOperation:
            return None
        return value / _HUNDRED if value.is_finite() and value > 0 else None
    if isinstance(at, bool) or not isinstance(at, int | Decimal):
        return None
    value = Decimal(at)
    return value / limit if value.is_finite() and value > 0 else None


def _percent(ratio: Decimal) -> str:
    return f"{(ratio * _HUNDRED).normalize():f}%"


def _cost_source(
    raw: RawBudget, given: dict[str, Any], path: Loc, defaults: Defaults, report: Reporter
) -> Any:
    by_user = raw.match.user is not None or "user" in raw.each
    if raw.cost_source is not None:
        if by_user and raw.cost_source != "estimate" and raw.metric == "cost":
            report.at(
                (*path, "cost_source"),
                "cost_source: a budget by user can only use the usage estimate (the "
                "costs endpoint has no per-user figures); use cost_source: estimate",
            )
        return raw.cost_source
    if by_user:
        return "estimate"
    return defaults.cost_source or "auto"


def _endpoint_costs(raw: RawBudget, cost_source: str, path: Loc, report: Reporter) -> None:
    """The costs endpoint has no per-endpoint figures: a cost budget on an endpoint that
    reads costs alone (its own ``cost_source`` or the defaults') could only ever read $0."""
    if raw.metric != "cost" or cost_source != "costs" or raw.match.endpoint is None:
        return
    if raw.match.line_item is not None or "line_item" in raw.each:
        return  # _line_items says that line items and an endpoint match nothing together
    if raw.cost_source is not None:
        where: Loc = (*path, "cost_source")
        how = "cost_source: costs"
    else:
        where, how = (*path, "match", "endpoint"), "cost_source: costs (from defaults)"
    report.at(
        where,
        f"endpoint with {how}: the costs endpoint has no per-endpoint figures, so this "
        "budget could only read $0; use cost_source: estimate (usage x prices)",
        key=where[-1] == "endpoint",
    )


def _daily_costs(raw: RawBudget, cost_source: str, path: Loc, report: Reporter) -> None:
    """Costs are daily: a rolling window (or anomaly window) of costs alone must be a whole
    number of days; a shorter one would read late daily costs and never see the spend."""
    if raw.metric != "cost" or cost_source != "costs":
        return
    windows: list[tuple[Loc, str, str]] = []
    if raw.window is not None:
        windows.append(((*path, "window"), "window", raw.window))
    if raw.anomaly is not None:
        windows.append(((*path, "anomaly", "window"), "anomaly window", raw.anomaly.window))
    for where, what, text in windows:
        if parse_duration(text) % timedelta(days=1):
            report.at(
                where,
                f"{what}: {text} is not a whole number of days, and costs are daily: use "
                "cost_source: auto or estimate (usage x prices, per minute)",
            )


def _line_items(raw: RawBudget, cost_source: str, path: Loc, report: Reporter) -> None:
    """Line items exist only in the costs data, which has no endpoint and no user: a budget
    on line items that reads the estimate, or also matches an endpoint or a user, could
    only ever read $0, which must never pass for a figure."""
    if raw.metric != "cost":
        return  # _metric says that line items need metric cost
    if raw.match.line_item is not None:
        where: Loc = (*path, "match", "line_item")
    elif "line_item" in raw.each:
        where = (*path, "each")
    else:
        return
    by_user = raw.match.user is not None or "user" in raw.each
    if raw.match.endpoint is not None:
        report.at(
            where,
            "line_item with endpoint: line items exist only in the costs data, which has "
            "no endpoint (and usage has no line items): together they match nothing",
            key=where[-1] == "line_item",
        )
    elif by_user:
        report.at(
            where,
            "line_item with user: line items exist only in the costs data, which has no "
            "user (and usage has no line items): together they match nothing",
            key=where[-1] == "line_item",
        )
    elif cost_source == "estimate":
        report.at(
            where,
            "line_item with cost_source: estimate: line items exist only in the costs "
            "data, and the estimate prices usage, which has none; use cost_source: costs "
            "or auto",
            key=where[-1] == "line_item",
        )


def _metric(raw: RawBudget, path: Loc, report: Reporter) -> None:
    if raw.metric != "cost":
        if raw.match.line_item is not None:
            report.at(
                (*path, "match", "line_item"),
                "line_item: only budgets of metric cost "
                "can match line items (they exist only in the costs data)",
                key=True,
            )
        if "line_item" in raw.each:
            report.at((*path, "each"), "each: line_item needs metric cost")
    if raw.match.endpoint is None:
        return
    matched: set[str] = set()
    for index, pattern in enumerate(raw.match.endpoint):
        hits = {e for e in ENDPOINTS if fnmatch.fnmatchcase(e, pattern)}
        if not hits:
            where: Loc = (*path, "match", "endpoint")
            if len(raw.match.endpoint) > 1:
                where = (*where, index)
            report.at(
                where, f"endpoint '{pattern}' matches no endpoint{did_you_mean(pattern, ENDPOINTS)}"
            )
        matched |= hits
    usable = set(METRIC_ENDPOINTS[raw.metric])
    if matched and not matched & usable:
        report.at(
            (*path, "metric"),
            f"metric '{raw.metric}' is not measured by {', '.join(sorted(matched))} "
            f"(it is measured by: {', '.join(sorted(usable))})",
        )
