"""Budgets x data -> findings: spend, limit, ratio, forecast, anomaly, severity, data status.

Missing data is never zero: a budget whose sources are stale, failed or absent is
``unknown``. How spend is summed per source is ``spend.py``'s job.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from budgetguard.evaluate.burn_rate import BurnRate, BurnRates, runs_out_at
from budgetguard.evaluate.consistency import mismatches
from budgetguard.evaluate.coverage import coverage_problem, end_cut_problem
from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.seasonal import SeasonalAnomaly
from budgetguard.evaluate.spend import Spend, collect_spend, total_of
from budgetguard.evaluate.windows import Window, budget_window
from budgetguard.rules.model import Budget, Rules, Threshold
from budgetguard.rules.needs import endpoints_of

__all__ = ["FORECAST_METHOD", "SEVERITY_ORDER", "Finding", "evaluate", "group_label"]

SEVERITY_ORDER = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
_DAY = 86400
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Finding:
    """One budget (or one group of an ``each`` budget) at one instant."""

    budget: Budget
    group: dict[str, str]
    window: Window
    spend: Decimal | None
    limit: Decimal | None
    forecast: Decimal | None
    severity: str
    source: str
    complete: bool
    note: str | None
    crossed: tuple[Threshold, ...] = ()
    forecast_crossed: tuple[Threshold, ...] = ()
    anomaly: bool = False
    anomaly_baseline: Decimal | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: the burn-rate pairs of the budget, for this group (``evaluate.burn_rate``)
    burn: tuple[BurnRate, ...] = ()

    @property
    def planned(self) -> Decimal:
        """What ``--expect`` added to the spend (part of ``spend``)."""
        return Decimal(self.extra.get("planned", _ZERO))

    @property
    def ratio(self) -> Decimal | None:
        if self.spend is None or not self.limit:
            return None
        return self.spend / self.limit


def group_label(group: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in group.items()) or "—"


def evaluate(
    rules: Rules,
    data: SpendData,
    now: datetime,
    expect: Iterable[tuple[dict[str, str], Decimal]] = (),
    *,
    clock: Callable[[], float] = time.time,
    past: bool = False,
) -> list[Finding]:
    """Every enabled budget (and group) at ``now``; ``expect`` adds planned spend. A window
    that reaches past ``clock`` (the wall clock) is unknown: nothing is stored for it. A
    ``past`` ``now`` (a ``--now``, not a replay) cuts its hour: split by its minutes, else
    unknown, never by time."""
    expectations = list(expect)
    findings: list[Finding] = []
    wall = int(clock())
    for budget in rules.budgets:
        if budget.enabled:
            findings.extend(_evaluate_budget(rules, budget, data, now, expectations, wall, past))
    return findings


def _expected(
    budget: Budget,
    expectations: list[tuple[dict[str, str], Decimal]],
    groups: set[tuple[str, ...]],
) -> tuple[dict[tuple[str, ...], Decimal], list[str]]:
    """Planned spend per group of ``budget``: a selector adds its amount to a cost budget
    with a limit whose every restricted ``match`` key it names and covers (a budget on a
    user, key, model or line item the plan does not name gets none, and a note says so
    when the plan names nothing the budget leaves out) and, for an ``each`` budget, to the
    one group it names (an id or a glob that matches exactly one of the ``groups`` seen);
    where it names no single group, nothing is added and a note says so."""
    placed: dict[tuple[str, ...], Decimal] = {}
    notes: list[str] = []
    if budget.metric != "cost" or budget.limit is None:  # a plan is spend against a limit
        return placed, notes
    restricted = {k: p for k, p in budget.match.items() if "*" not in p}  # "*": everything
    for selector, amount in expectations:
        covered = all(
            key not in restricted or any(fnmatch.fnmatchcase(value, p) for p in restricted[key])
            for key, value in selector.items()
        )
        if not covered:
            continue  # a plan for spend this budget does not count
        named = ",".join(f"{k}={v}" for k, v in selector.items()) or "(every budget)"
        unnamed = [k for k in restricted if k not in selector]
        if unnamed:
            counts = "; ".join(f"{k} {', '.join(restricted[k])}" for k in unnamed)
            notes.append(
                f"--expect {named}={amount} not added: it names no {', '.join(unnamed)} "
                f"(this budget counts only {counts})"
            )
            continue
        missing = [k for k in budget.each if k not in selector]
        if missing:
            notes.append(
                f"--expect {named}={amount} not added: it names no single group "
                f"(give {', '.join(missing)})"
            )
            continue
        key: tuple[str, ...] = ()
        if budget.each:  # an id or a glob: it must pick one group seen, never a new one
            wanted = tuple(selector[k] for k in budget.each)
            hits = [g for g in groups if all(map(fnmatch.fnmatchcase, g, wanted))]
            if len(hits) != 1:
                notes.append(
                    f"--expect {named}={amount} not added: it matches {len(hits)} groups, not one"
                )
                continue
            key = hits[0]
        placed[key] = placed.get(key, _ZERO) + amount
    return placed, notes


def _evaluate_budget(
    rules: Rules,
    budget: Budget,
    data: SpendData,
    now: datetime,
    expectations: list[tuple[dict[str, str], Decimal]],
    clock: int,
    past: bool = False,
) -> list[Finding]:
    window = budget_window(budget, now, rules.timezone)
    start, end = int(window.start.timestamp()), int(now.timestamp())
    source = budget.source
    # what the figure needs whole: the attribution's usage too (a hole there is a hole in
    # the figure, never $0 of a model)
    sources = endpoints_of(budget, attribution=True)
    if source == "estimate":
        sources -= {"costs"}
    needed = start
    if budget.baseline_delta is not None:  # the baseline before the window must be there too
        needed -= int(budget.baseline_delta.total_seconds())
    stale_after = int(budget.staleness_delta.total_seconds())
    problem = (
        coverage_problem(data, sources, needed, end, stale_after, clock)
        or data.status(sources, needed, end, stale_after)
        or coverage_problem(data, sources, needed, end, stale_after)
        or (end_cut_problem(data, sources, end) if past else None)
        or _names_unmatched(budget, data)
    )
    if problem is not None:
        return [
            Finding(
                budget,
                {},
                window,
                None,
                budget.limit,
                None,
                "unknown",
                _shown(source),
                False,
                problem,
            )
        ]
    spend = collect_spend(budget, data, source, start, end, end)
    if spend.missing is not None:  # nothing stands in for its data: never zero
        return [_unknown(budget, {}, window, source, spend.missing)]
    expected, expect_notes = _expected(budget, expectations, spend.groups())
    # No spend at all still shows the budget (at zero), split or not.
    groups = spend.groups() | set(expected) or {()}
    forecaster = _Forecast(budget, data, source, window, now)
    anomalies: _Anomaly | SeasonalAnomaly = (
        SeasonalAnomaly(budget, data, source, now)
        if budget.anomaly is not None and budget.anomaly.seasonal
        else _Anomaly(budget, data, source, now)
    )
    zone = ZoneInfo(rules.timezone)
    burn_rates = BurnRates(budget, data, source, window, now, zone)
    by_usage = spend.apportioned and not spend.by_time
    limit = budget.limit
    at_amounts = [] if limit is None else [(t, t.ratio * limit) for t in budget.thresholds]
    mismatched = mismatches(budget, data, spend, start, end)
    findings = []
    for key in sorted(groups):
        group = dict(zip(budget.each, key, strict=True)) if key else {}
        if foreign := spend.foreign(key):  # never a silent drop, never a sum of currencies
            findings.append(_foreign(budget, group, window, foreign))
            continue
        if key in spend.missing_in:
            findings.append(_unknown(budget, group, window, source, spend.missing_in[key]))
            continue
        total, used = total_of(spend, key, source, window, end)
        planned = expected.get(key, _ZERO)
        total += planned
        if used == "costs" and by_usage and source == "auto":  # costs split by the estimate
            used = "mixed"  # (a costs budget stays costs: its note says it was apportioned)
        mismatch = mismatched.get(key)
        notes = [*sorted(spend.summary(key)), *expect_notes, *_name_notes(budget), mismatch]
        note = "; ".join(n for n in notes if n) or None
        forecast, forecast_note = forecaster.of(key, total), forecaster.note
        crossed = tuple(t for t, amount in at_amounts if total >= amount)
        forecast_crossed = tuple(
            t
            for t, amount in at_amounts
            if forecast is not None
            and (t.forecast or (budget.forecast and t.ratio >= 1))
            and forecast >= amount
            and t not in crossed
        )
        burn = burn_rates.of(key, total)
        reach = runs_out_at(total, limit, _pace(forecaster, window, total, forecast), now)
        anomaly, baseline = anomalies.of(key)
        severity = max(  # a firing burn-rate pair is as loud as a crossed threshold
            [*(t.severity for t in crossed), *(b.pair.severity for b in burn if b.holds)],
            key=SEVERITY_ORDER.__getitem__,
            default="ok",
        )
        if (anomaly or mismatch) and severity == "ok":  # costs that do not add up are not ok
            severity = "warning"
        findings.append(
            Finding(
                budget,
                group,
                window,
                total,
                budget.limit,
                forecast,
                severity,
                used,
                spend.complete(key),
                "; ".join(n for n in (note, forecast_note, *_burn_notes(burn)) if n) or None,
                crossed,
                forecast_crossed,
                anomaly,
                baseline,
                {
                    **({"planned": expected[key]} if key in expected else {}),
                    **({"mismatch": mismatch} if mismatch else {}),
                    **({"runs_out_at": reach.astimezone(zone)} if reach is not None else {}),
                },
                burn,
            )
        )
    return findings


def _burn_notes(burn: tuple[BurnRate, ...]) -> list[str]:
    """Why each pair is unknown, and the figures of each that fires (the text and markdown
    reports say why a budget is critical on pace, as the JSON report's pairs do)."""
    out = []
    for b in burn:
        if b.note is not None:
            out.append(b.note)
        elif b.holds and b.long_rate is not None and b.short_rate is not None:
            out.append(
                f"burn rate {b.pair.key}: {b.long_rate:.1f}x and {b.short_rate:.1f}x the pace "
                f"that spends the limit (fires over {b.pair.factor}x)"
            )
    return out


def _name_notes(budget: Budget) -> tuple[str, ...]:
    """What the directory's names say of the budget's match (a renamed entry, say)."""
    return budget.names.notes if budget.names is not None else ()


def _unknown(
    budget: Budget, group: dict[str, str], window: Window, source: str, note: str
) -> Finding:
    return Finding(
        budget, group, window, None, budget.limit, None, "unknown", _shown(source), False, note
    )


def _foreign(
    budget: Budget, group: dict[str, str], window: Window, currencies: list[str]
) -> Finding:
    """A figure whose costs are (partly) in a currency other than USD: unknown."""
    note = (
        f"costs in {', '.join(c.upper() for c in currencies)}: budgetguard counts USD "
        "only, so this figure is unknown (never converted, never left out)"
    )
    return Finding(budget, group, window, None, budget.limit, None, "unknown", "costs", False, note)


def _pace(
    forecaster: _Forecast, window: Window, total: Decimal, forecast: Decimal | None
) -> Decimal:
    """Spend per second "at this pace": the forecast's (its 7-day mean daily spend) where
    there is one, else the window's own mean (spend so far over the time it covers)."""
    if forecast is not None and window.period_end is not None:
        left = Decimal(int((window.period_end - window.end).total_seconds()))
        if left > 0:
            return (forecast - total) / left
    return total / window.seconds if window.seconds > 0 else _ZERO


#: How the forecast projects, named in forecast messages.
FORECAST_METHOD = "spend to date + the mean daily spend of the last 7 complete days x days left"


class _Forecast:
    """Spend so far + the mean daily spend of the last 7 complete UTC days x days left
    (``FORECAST_METHOD``). The history is summed once per budget, then read per group."""

    def __init__(
        self, budget: Budget, data: SpendData, source: str, window: Window, now: datetime
    ) -> None:
        self.source = source
        self.history: Spend | None = None
        self.note: str | None = None
        if not budget.forecasts or window.period_end is None:
            return
        self.now = int(now.timestamp())
        today = self.now - self.now % _DAY
        start = today - 7 * _DAY
        sources = endpoints_of(budget, attribution=True) - (
            {"costs"} if source == "estimate" else set()
        )
        if (
            data.status(sources, start, today, 10**9) is not None
            or coverage_problem(data, sources, start, today, 0) is not None
        ):
            self.note = "too little history for a forecast (7 complete days needed)"
            return
        self.history = collect_spend(budget, data, source, start, today, self.now)
        self.history_window = Window(datetime.fromtimestamp(start, now.tzinfo), now, "period")
        self.days_left = Decimal((window.period_end - now).total_seconds()) / _DAY

    def of(self, group: tuple[str, ...], spent: Decimal) -> Decimal | None:
        if self.history is None:
            return None
        past, _ = total_of(self.history, group, self.source, self.history_window, self.now)
        return spent + past / 7 * self.days_left


class _Anomaly:
    """Spend in the anomaly window against the mean of same-size windows over the baseline,
    both summed once per budget."""

    def __init__(self, budget: Budget, data: SpendData, source: str, now: datetime) -> None:
        self.anomaly, self.source = budget.anomaly, source
        if budget.anomaly is None:
            return
        w, b = budget.anomaly_window_delta, budget.baseline_delta
        assert w is not None and b is not None
        self.end = int(now.timestamp())
        recent_start = self.end - int(w.total_seconds())
        base_start = recent_start - int(b.total_seconds())
        self.recent = collect_spend(budget, data, source, recent_start, self.end, self.end)
        self.base = collect_spend(budget, data, source, base_start, recent_start, self.end)
        self.recent_window = Window(now - w, now, "rolling")
        self.base_window = Window(now - w - b, now - w, "rolling")
        self.windows_in_baseline = Decimal(b / w)

    def of(self, group: tuple[str, ...]) -> tuple[bool, Decimal | None]:
        anomaly = self.anomaly
        if anomaly is None:
            return False, None
        spent, _ = total_of(self.recent, group, self.source, self.recent_window, self.end)
        history, _ = total_of(self.base, group, self.source, self.base_window, self.end)
        mean = history / self.windows_in_baseline
        return spent > anomaly.factor * mean and spent >= anomaly.min, mean


#: Where a ``match`` key's ids are in a usage group (``store.blocks.ROLLUP_DIMENSIONS``) and in
#: a costs row.
_GROUP_INDEX = {"project": 0, "user": 1, "api_key": 2}


def _names_unmatched(budget: Budget, data: SpendData) -> str | None:
    """A note when a glob meant for names (``project: "Support chat*"``) matches no name the
    store knows and no id in the data: names are for people, never for matching safety, so
    that is not $0 ``ok`` but ``unknown`` (the names may not be read yet, or be gone)."""
    if budget.names is None or not budget.names.unresolved:
        return None
    for key, pattern in budget.names.unresolved:
        if not any(fnmatch.fnmatchcase(i, pattern) for i in _ids_in(data, key)):
            return (
                f"{key} '{pattern}' matches no {key.replace('_', ' ')} the store knows by "
                "name or id (the admin API's directory of names not read yet, or the "
                f"{key.replace('_', ' ')} is gone): this budget cannot be counted"
            )
    return None


def _ids_in(data: SpendData, key: str) -> set[str]:
    """Every ``key`` id the loaded usage groups and costs rows name."""
    found = data.memo.get(("ids", key))
    if found is None:
        at = _GROUP_INDEX[key]
        found = set()
        for endpoint in data.endpoints():
            for series, _, _ in data.usage_parts(endpoint, 0, 2**62):
                if series is not None and series.cube is not None:
                    found.update(str(g[at]) for g in series.cube.groups if g[at])
        if key != "user":
            found.update(str(v) for r in data.costs(0, 2**62) if (v := getattr(r, key)))
        data.memo[("ids", key)] = found
    return found


def _shown(source: str) -> str:
    """The report's name for a budget's source when no figure says which one it used: the
    contract knows costs, estimate, mixed and usage; ``auto`` combines costs and estimates."""
    return "mixed" if source == "auto" else source
