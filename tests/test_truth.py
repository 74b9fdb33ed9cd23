"""Every figure against the simulator's truth: its costs bill its usage exactly, so the true
spend of any interval is known. Calendar periods in four zones (a half-hour one among them),
every cost_source, model and ``each`` budgets, rolling windows that start mid-hour and
mid-day, anomaly windows, and the digest's local days.

The simulator's traffic is bursty inside the hour (whole hours in one minute, in 5 minutes,
in the first half), so a cut hour split by time would be far off: it is split by its minutes.
Exact to the cent wherever the bounds fall on whole minutes; where a bound cuts a minute (the
conftest's ``NOW`` is 10:17:31), between the truth without that minute and with it.
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from time import monotonic as _monotonic
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budgetguard.collect import Collector
from budgetguard.digest import build_digest
from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.evaluator import evaluate
from budgetguard.evaluate.pricing import Pricer
from budgetguard.evaluate.spend import collect_spend, cost_parts
from budgetguard.providers.openai import AdminClient
from budgetguard.rules import Rules, load_rules_text
from budgetguard.rules.needs import plan_queries
from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.simulator.org import TOKEN_PRICES, Organisation
from budgetguard.store import Store
from tests.conftest import ADMIN_KEY, NOW

NOW_DT = datetime.fromtimestamp(NOW, UTC)  # 10:17:31 UTC: windows start mid-hour
#: a backtest's instant (03:40, two days back): its own cut hour needs minutes too
THEN = NOW_DT.replace(hour=3, minute=40, second=0) - timedelta(days=2)
ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Europe/Berlin")
_KEYS = {"input": "input", "cached input": "cached_input", "output": "output"}
_KEYS |= {"audio input": "audio_input", "audio output": "audio_output"}
#: The simulator's own list prices, so that the estimate prices usage as its costs bill it.
PRICING = "\n".join(
    f"    {model}: {{{', '.join(f'{_KEYS[k]}: {v}' for k, v in prices.items())}, output: 0}}"
    if "output" not in prices
    else f"    {model}: {{{', '.join(f'{_KEYS[k]}: {v}' for k, v in prices.items())}}}"
    for model, prices in TOKEN_PRICES.items()
)
BUDGETS = """
  - {name: day-costs, limit: 100000, period: day, cost_source: costs}
  - {name: week-costs, limit: 100000, period: week, cost_source: costs}
  - {name: month-costs, limit: 100000, period: month, cost_source: costs}
  - {name: quarter-costs, limit: 100000, period: quarter, cost_source: costs}
  - {name: day-auto, limit: 100000, period: day}
  - {name: week-estimate, limit: 100000, period: week, cost_source: estimate}
  - {name: dalle-month, limit: 100000, period: month, cost_source: costs,
     match: {model: dall-e-3}}
  - {name: gpt4o-week, limit: 100000, period: week, match: {model: "gpt-4o*"}}
  - {name: per-project-day, limit: 100000, period: day, each: project, cost_source: costs}
  - {name: per-model-week, limit: 100000, period: week, each: model, cost_source: costs}
  - {name: tokens-day, limit: 100000000000, period: day, metric: tokens}
"""
ROLLING = """
  - {name: w7d-costs, limit: 100000, window: 7d, cost_source: costs}
  - {name: w2d-costs, limit: 100000, window: 2d, cost_source: costs}
  - {name: w36h-auto, limit: 100000, window: 36h}
  - {name: w24h-estimate, limit: 100000, window: 24h, cost_source: estimate}
  - {name: w6h-auto, limit: 100000, window: 6h, match: {project: proj_chatbot}}
"""


def rules_for(zone: str) -> Rules:
    return load_rules_text(
        f"version: 1\ntimezone: {zone}\npricing:\n  models:\n{PRICING}\n"
        f"budgets:{BUDGETS}{ROLLING}digest: {{period: week}}\n"
    )


#: Prices a tenth of what the costs bill (the sub-day ``auto`` test)
_CHEAP_PRICES = "\n".join(
    f"    {model}: {{{', '.join(f'{_KEYS[k]}: {v / 10}' for k, v in prices.items())}"
    + (", output: 0}" if "output" not in prices else "}")
    for model, prices in TOKEN_PRICES.items()
)
CHEAP = load_rules_text(
    f"version: 1\npricing:\n  models:\n{_CHEAP_PRICES}\nbudgets:\n"
    "  - {name: w90m-auto, limit: 100000, window: 90m}\n"
    "  - {name: w6h-auto, limit: 100000, window: 6h, match: {project: proj_chatbot}}\n"
    "  - {name: w6h-estimate, limit: 100000, window: 6h, cost_source: estimate}\n"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One store holding what the rules of every zone need (costs without delay, so that
    costs and the truth see the same span)."""
    db = f"sqlite:///{tmp_path_factory.mktemp('truth') / 'truth.db'}"
    with SimulatorServer(build_api(now=NOW, days=60, costs_delay_hours=0)) as sim:
        store = Store.open(db)

        async def run() -> None:
            async with AdminClient(ADMIN_KEY, sim.base_url) as client:
                for rules in [*(rules_for(zone) for zone in ZONES), CHEAP]:
                    await Collector(client, store).collect(
                        plan_queries(rules, NOW_DT, replayed=[THEN]), NOW_DT
                    )

        asyncio.run(run())
        yield {"org": sim.api.org, "store": store}
        store.close()


def load(world: dict[str, Any], rules: Rules) -> SpendData:
    plan = plan_queries(rules, NOW_DT, replayed=[THEN])
    return SpendData.load(world["store"], plan, Pricer(rules.pricing.models))


def truth(
    org: Organisation,
    start: int,
    end: int = NOW,
    *,
    project: str | None = None,
    model: str | None = None,
    at: int = NOW,
) -> float:
    """What the simulator bills for ``[start, end)`` as seen at ``at``: its usage at its
    prices."""
    total = 0.0
    for index, stream in enumerate(org.streams):
        if project is not None and stream.project_id != project:
            continue
        if model is not None and not fnmatch.fnmatchcase(stream.model or "", model):
            continue
        total += sum(line.amount for line in org.cost_lines(index, start, end, at))
    return total


def minute_bounds(start: int) -> tuple[int, int]:
    """The whole minutes around ``start``: the truth without the minute it cuts, and with."""
    return -(-start // 60) * 60, start - start % 60


def assert_between(got: float, org: Organisation, start: int, **scope: Any) -> None:
    """``got`` is the truth of ``[start, NOW)`` to the cent, the minute ``start`` cuts
    counted anywhere from none of it to all of it (the API's finest bucket is a minute)."""
    late, early = minute_bounds(start)
    low, high = truth(org, late, **scope), truth(org, early, **scope)
    assert low - 0.005 <= got <= high + 0.005, (got, low, high)


def tokens(org: Organisation, start: int) -> int:
    return sum(
        sum(org.total(i, start, NOW, NOW).get(m, 0) for m in ("input_tokens", "output_tokens"))
        for i, _ in enumerate(org.streams)
    )


_MODELS = {"dalle-month": "dall-e-3", "gpt4o-week": "gpt-4o*"}


@pytest.mark.parametrize("zone", ZONES)
def test_every_budget_is_the_true_spend_of_its_interval(world: dict[str, Any], zone: str) -> None:
    org = world["org"]
    rules = rules_for(zone)
    findings = evaluate(rules, load(world, rules), NOW_DT)
    seen: set[str] = set()
    for f in findings:
        assert f.spend is not None, (f.budget.name, f.note)
        start = int(f.window.start.timestamp())
        name = f.budget.name
        seen.add(name)
        if name == "tokens-day":
            assert f.spend == tokens(org, start)
            continue
        group = f.group
        got = float(f.spend)
        if group.get("model") == "(none)":  # lines that name no model and bill no model
            expected = truth(org, start) - truth(org, start, model="?*")
            assert abs(got - expected) < 0.01, (name, group, got, expected)
            assert f"${f.spend:.2f} of line items that name no model left unattributed" in (
                f.note or ""
            ), f.note
        else:
            project = group.get("project", "proj_chatbot" if name == "w6h-auto" else None)
            model = group.get("model", _MODELS.get(name))
            assert_between(got, org, start, project=project, model=model)
        assert "by time" not in (f.note or ""), (name, f.note)  # minutes, not a guess
        if zone != "UTC" and f.budget.period and f.budget.source in ("costs", "auto"):
            assert "apportioned by usage" in (f.note or ""), name
            if f.budget.cost_source == "costs":  # split by usage, but no estimate in it
                assert f.source == "costs"
    assert seen == {b.name for b in rules.budgets}


def test_model_less_line_items_are_attributed_to_models(world: dict[str, Any]) -> None:
    """ "Image models" costs name no model: a dall-e-3 budget on costs sees them by the day's
    images usage; file search and vector storage stay unattributed, and the note says so."""
    rules = rules_for("UTC")
    (f,) = [
        x for x in evaluate(rules, load(world, rules), NOW_DT) if x.budget.name == "dalle-month"
    ]
    start = int(f.window.start.timestamp())
    assert float(f.spend or 0) == pytest.approx(truth(world["org"], start, model="dall-e-3"))
    assert f.spend and f.spend > 100
    assert "left unattributed" in (f.note or "")


def _local_days(zone: str, first: date, days: int) -> list[tuple[date, int, int]]:
    tz = ZoneInfo(zone)
    out = []
    for n in range(days):
        day = first + timedelta(days=n)
        lo = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
        hi = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        out.append((day, int(lo.timestamp()), int(hi.timestamp())))
    return out


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Tokyo", "America/New_York", "UTC"])
def test_the_digest_counts_local_days(world: dict[str, Any], zone: str) -> None:
    rules = rules_for("UTC").model_copy(update={"timezone": zone})
    data = load(world, rules_for("UTC"))
    digest = build_digest(rules, data, [], [], NOW_DT, period="week")
    first = date(2026, 11, 9)  # the last complete week before Sunday 2026-11-22: Nov 9-15
    assert [d for d, _ in digest.daily] == [first + timedelta(days=n) for n in range(7)]
    for (day, value), (_, lo, hi) in zip(digest.daily, _local_days(zone, first, 7), strict=True):
        assert value is not None and abs(float(value) - truth(world["org"], lo, hi)) < 0.01, day
    week = _local_days(zone, first, 7)
    assert digest.total is not None
    assert abs(float(digest.total) - truth(world["org"], week[0][1], week[-1][2])) < 0.05


def test_a_replay_splits_the_bucket_open_at_the_instant(world: dict[str, Any]) -> None:
    """Evaluated as if at 03:40 two days ago (a backtest), a day budget counts the hours
    before it and the open hour's share, never the later spend the store also holds."""
    rules = rules_for("UTC")
    data = load(world, rules)
    (f,) = [x for x in evaluate(rules, data, THEN) if x.budget.name == "day-auto"]
    start = int(f.window.start.timestamp())
    expected = truth(world["org"], start, int(THEN.timestamp()))
    assert abs(float(f.spend or 0) - expected) < 0.01  # the open hour: by its minutes


_ZONES = sorted(available_timezones() - {"Factory", "localtime"})
_DST_DAYS = [date(2026, 10, 25), date(2026, 11, 1), date(2026, 10, 4)]  # EU, US, AU changes


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    zone=st.sampled_from(_ZONES),
    day=st.one_of(st.sampled_from(_DST_DAYS), st.dates(date(2026, 10, 2), date(2026, 11, 20))),
    cuts=st.lists(st.floats(min_value=0, max_value=1, exclude_max=True), max_size=6),
)
def test_apportioning_is_additive(
    world: dict[str, Any], zone: str, day: date, cuts: list[float]
) -> None:
    """The parts of any partition of a local day (any zone, DST days too) add up to the day:
    costs lines, estimates and usage metrics alike."""
    rules = rules_for("UTC")
    data = world.setdefault("data", load(world, rules))
    ((_, lo, hi),) = _local_days(zone, day, 1)
    bounds = sorted({lo, hi, *(lo + int(c * (hi - lo)) for c in cuts)})
    parts = list(itertools.pairwise(bounds))

    def costs(a: int, b: int) -> Decimal:
        return sum((amount for _, amount, _ in cost_parts(data, a, b)), Decimal(0))

    estimate = rules.budget("week-estimate")
    tokens_budget = rules.budget("tokens-day")

    def priced(a: int, b: int) -> Decimal:
        spend = collect_spend(estimate, data, "estimate", a, b, NOW)
        return sum((v for days in spend.estimate.values() for v in days.values()), Decimal(0))

    def used(a: int, b: int) -> Decimal:
        return sum(
            collect_spend(tokens_budget, data, "usage", a, b, NOW).usage.values(), Decimal(0)
        )

    for measure in (costs, priced, used):
        whole = measure(lo, hi)
        assert whole > 0
        assert abs(sum((measure(a, b) for a, b in parts), Decimal(0)) - whole) < Decimal("1e-9")


def test_the_plan_fetches_hourly_usage_for_every_day_a_bound_cuts() -> None:
    """A New York quarter starts at 04:00 UTC on Oct 1 and a 90d window at 10:17 UTC, both
    older than the hourly span: hourly usage reaches back to those UTC days, for costs
    budgets too (their first day is split by it). In UTC, whole days need no hours."""
    from budgetguard.rules.needs import HOURLY_DAYS

    def hourly_from(zone: str, budget: str) -> dict[str, datetime]:
        rules = load_rules_text(f"version: 1\ntimezone: {zone}\nbudgets:\n  - {budget}\n")
        return {q.endpoint: q.start for q in plan_queries(rules, NOW_DT) if q.width == "1h"}

    costs = "cost_source: costs"
    quarter = hourly_from("America/New_York", f"{{name: q, limit: 1, period: quarter, {costs}}}")
    assert quarter and set(quarter.values()) == {datetime(2026, 10, 1, tzinfo=UTC)}
    assert "images" in quarter and "completions" in quarter
    rolling = hourly_from("UTC", "{name: r, limit: 1, window: 90d}")
    assert set(rolling.values()) == {datetime(2026, 8, 24, tzinfo=UTC)}
    whole = hourly_from("UTC", f"{{name: q, limit: 1, period: quarter, {costs}}}")
    assert whole == {}
    recent = hourly_from("UTC", "{name: q, limit: 1, period: quarter}")
    today = NOW_DT.replace(hour=0, minute=0, second=0)
    assert set(recent.values()) == {today - timedelta(days=HOURLY_DAYS)}


def test_a_past_now_cuts_its_hour_and_its_day_where_the_clock_does_not() -> None:
    """At the clock the API cuts the current bucket at the request: a UTC month of costs
    needs no usage. At a ``--now`` in the past its day holds later spend: the plan reads the
    day's hourly usage of every endpoint and the minutes of the hour it cuts."""
    rules = load_rules_text(
        "version: 1\nbudgets:\n  - {name: m, limit: 1, period: month, cost_source: costs}\n"
    )
    at_clock = plan_queries(rules, NOW_DT)
    assert [q.endpoint for q in at_clock] == ["costs"]
    past = plan_queries(rules, NOW_DT, past=True)
    today = NOW_DT.replace(hour=0, minute=0, second=0)
    hour = int(NOW_DT.replace(minute=0, second=0).timestamp())
    hourly = {q.endpoint: q.start for q in past if q.width == "1h"}
    assert "completions" in hourly and set(hourly.values()) == {today}
    minutes = [q for q in past if q.width == "1m"]
    assert minutes and {q.spans for q in minutes} == {((hour, hour + 3600),)}
    on_the_hour = plan_queries(rules, NOW_DT.replace(minute=0, second=0), past=True)
    assert not [q for q in on_the_hour if q.width == "1m"]


def test_auto_under_a_day_takes_costs_where_they_exceed_the_estimate(
    world: dict[str, Any],
) -> None:
    """Prices a tenth of what the costs bill: a sub-day ``auto`` window counts the costs
    apportioned into it by usage (the larger), never the estimate alone."""
    rules = CHEAP
    findings = {f.budget.name: f for f in evaluate(rules, load(world, rules), NOW_DT)}
    for name, project in (("w90m-auto", None), ("w6h-auto", "proj_chatbot")):
        f = findings[name]
        start = int(f.window.start.timestamp())
        expected = truth(world["org"], start, project=project)
        assert float(f.spend or 0) == pytest.approx(expected, rel=1e-2), name
        assert f.source == "mixed", name  # costs, split by the usage estimate
    estimate = findings["w6h-estimate"]
    start = int(estimate.window.start.timestamp())
    assert float(estimate.spend or 0) < truth(world["org"], start) / 2  # the estimate is low


def test_a_check_earlier_today_counts_only_its_share_of_the_day(tmp_path: Any) -> None:
    """Collected at ``--now`` 10:17 while the clock (and the API) say 15:17: today's costs
    bucket holds the spend up to 15:17. A past ``--now`` is a bound: the collection reads
    the day's usage on past it (and the minutes of the hour it cuts), so the share before
    10:17 is by usage, never the whole bucket; collected up to the clock (with those
    minutes, as a backtest of that instant collects them), the same figure."""
    from budgetguard.pipeline import _through_day

    later = NOW + 5 * 3600
    rules = load_rules_text(
        "version: 1\nbudgets:\n  - {name: day-costs, limit: 100000, period: day, "
        "cost_source: costs}\n  - {name: w90m, limit: 100000, window: 90m}\n"
    )
    found = []
    for asked in (NOW_DT, datetime.fromtimestamp(later, UTC)):
        past = asked < datetime.fromtimestamp(later, UTC)
        plan = plan_queries(rules, asked, replayed=[] if past else [NOW_DT], past=past)
        store = Store.open(f"sqlite:///{tmp_path / f'{int(asked.timestamp())}.db'}")
        with SimulatorServer(build_api(now=later, days=3, costs_delay_hours=0)) as sim:

            async def run(asked: datetime = asked, store: Store = store, plan: Any = plan) -> None:
                async with AdminClient(ADMIN_KEY, sim.base_url, clock=lambda: later) as client:
                    await Collector(client, store).collect(plan, asked)
                    if asked < datetime.fromtimestamp(later, UTC):
                        await _through_day(client, store, plan, asked, _monotonic() + 60)

            asyncio.run(run())
            loaded = plan_queries(rules, NOW_DT, past=True)
            data = SpendData.load(store, loaded, Pricer(rules.pricing.models))
            found.append(
                next(
                    f
                    for f in evaluate(rules, data, NOW_DT, clock=lambda: later, past=True)
                    if f.budget.cost_source == "costs"
                )
            )
        store.close()
    start = int(found[0].window.start.timestamp())
    bucket = truth(sim.api.org, start, later, at=later)
    # the hour open at 10:17: by its minutes, the minute 10:17:31 cuts by time
    low, high = (truth(sim.api.org, start, NOW - 31 + m, at=later) for m in (0, 60))
    assert bucket > high * 2  # the bucket does hold much later spend
    for figure in found:
        assert low - 0.005 <= float(figure.spend or 0) <= high + 0.005, (figure, low, high)
        assert "by time" not in (figure.note or ""), figure.note


def test_nothing_is_covered_past_the_clock(world: dict[str, Any]) -> None:
    """Offline at a ``--now`` 5 h past the clock, within ``max_staleness``: a window that
    reaches past the clock is unknown, its note naming the range; at the clock it is known."""
    rules = rules_for("UTC")
    data = load(world, rules)
    later = evaluate(rules, data, NOW_DT + timedelta(hours=5), clock=lambda: NOW)
    assert later and all(f.severity == "unknown" and f.spend is None for f in later)
    (day,) = [f for f in later if f.budget.name == "day-auto"]
    assert "2026-11-22T10:17:31Z to 2026-11-22T15:17:31Z" in (day.note or ""), day.note
    tomorrow = NOW_DT.replace(hour=6, minute=0, second=0) + timedelta(days=1)
    (next_day,) = [
        f for f in evaluate(rules, data, tomorrow, clock=lambda: NOW) if f.budget.name == "day-auto"
    ]
    assert next_day.severity == "unknown" and "2026-11-23T00:00:00Z to" in (next_day.note or "")
    now = evaluate(rules, data, NOW_DT, clock=lambda: NOW + 120)
    assert all(f.severity != "unknown" for f in now)


#: Zones whose days start at a half or quarter hour: every day's start cuts an hour in two
CUT_ZONES = ("Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham")
#: a minute-aligned instant inside an hour: rolling windows start at 10:17:00
ON_MINUTE = NOW_DT.replace(second=0)
CUT_BUDGETS = """
  - {name: day-costs, limit: 100000, period: day, cost_source: costs}
  - {name: day-estimate, limit: 100000, period: day, cost_source: estimate}
  - {name: day-auto, limit: 100000, period: day}
  - {name: week-costs, limit: 100000, period: week, cost_source: costs}
  - {name: month-auto, limit: 100000, period: month, match: {project: proj_chatbot}}
  - {name: w1h-estimate, limit: 100000, window: 1h, cost_source: estimate}
  - {name: w45m-chat, limit: 100000, window: 45m, cost_source: estimate,
     match: {project: proj_chatbot}}
  - {name: w24h-auto, limit: 100000, window: 24h}
  - {name: w7d-costs, limit: 100000, window: 7d, cost_source: costs}
  - {name: w90m-tokens, limit: 100000000000, window: 90m, metric: tokens}
"""


def cut_rules(zone: str) -> Rules:
    return load_rules_text(
        f"version: 1\ntimezone: {zone}\npricing:\n  models:\n{PRICING}\n"
        f"budgets:{CUT_BUDGETS}digest: {{period: week}}\n"
    )


@pytest.fixture(scope="module")
def cut_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A store collected for every cut zone's rules at ``ON_MINUTE``."""
    db = f"sqlite:///{tmp_path_factory.mktemp('cut') / 'cut.db'}"
    with SimulatorServer(build_api(now=NOW, days=60, costs_delay_hours=0)) as sim:
        store = Store.open(db)

        async def run() -> None:
            async with AdminClient(ADMIN_KEY, sim.base_url) as client:
                for zone in CUT_ZONES:
                    plan = plan_queries(cut_rules(zone), ON_MINUTE, replayed=[ON_MINUTE])
                    await Collector(client, store).collect(plan, NOW_DT)

        asyncio.run(run())
        yield {"org": sim.api.org, "store": store}
        store.close()


@pytest.mark.parametrize("zone", CUT_ZONES)
def test_cut_hours_are_split_by_their_minutes_to_the_cent(
    cut_world: dict[str, Any], zone: str
) -> None:
    """Days that start at :30 or :45 (Kolkata, Kathmandu, St John's, Chatham) and rolling
    windows that start at 10:17 cut hours whose traffic comes in bursts: split by their
    minutes, every figure is the truth to the cent, the digest's local days too."""
    org, rules = cut_world["org"], cut_rules(zone)
    plan = plan_queries(rules, ON_MINUTE, replayed=[ON_MINUTE])
    data = SpendData.load(cut_world["store"], plan, Pricer(rules.pricing.models))
    end = int(ON_MINUTE.timestamp())
    for f in evaluate(rules, data, ON_MINUTE):
        assert f.spend is not None, (f.budget.name, f.note)
        start = int(f.window.start.timestamp())
        assert start % 60 == 0 and (start % 3600 or f.budget.window)  # it cuts an hour
        assert "by time" not in (f.note or ""), (f.budget.name, f.note)
        if f.budget.metric == "tokens":
            expected_tokens = sum(
                org.total(i, start, end, end).get(m, 0)
                for i, _ in enumerate(org.streams)
                for m in ("input_tokens", "output_tokens")
            )
            assert f.spend == expected_tokens, f.budget.name
            continue
        project = "proj_chatbot" if f.budget.match.project else None
        expected = truth(org, start, end, project=project, at=end)
        assert abs(float(f.spend) - expected) < 0.01, (zone, f.budget.name, f.spend, expected)
    digest = build_digest(rules, data, [], [], ON_MINUTE, period="week")
    week = _local_days(zone, digest.daily[0][0], 7)
    for (day, value), (_, lo, hi) in zip(digest.daily, week, strict=True):
        assert lo % 3600  # the local day cuts an hour
        assert value is not None and abs(float(value) - truth(org, lo, hi)) < 0.01, (zone, day)
