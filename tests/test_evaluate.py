"""The evaluator and check against the simulator's own figures, exit codes, the JSON shape."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from budgetguard.cli import app
from budgetguard.collect import Collector
from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.evaluator import Finding, evaluate, group_label
from budgetguard.evaluate.pricing import Pricer
from budgetguard.providers.openai import AdminClient
from budgetguard.rules import Rules, RulesError, load_rules_text
from budgetguard.rules.needs import plan_queries
from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.simulator.org import TOKEN_PRICES
from budgetguard.store import Store
from tests.conftest import ADMIN_KEY, NOW

DAY = 86400
TODAY = NOW - NOW % DAY
NOW_DT = datetime.fromtimestamp(NOW, UTC)
RULES = """
version: 1
budgets:
  - {name: org-costs-week, limit: 100000, window: 7d, cost_source: costs}
  - {name: gpt4o-estimate, limit: 100000, window: 3d, cost_source: estimate,
     match: {model: "gpt-4o-2*"}}
  - {name: per-project, limit: 100, period: day, each: project}
  - {name: embedding-tokens, limit: 1000000000, window: 2d, metric: input_tokens,
     match: {endpoint: embeddings}}
  - {name: images, limit: 100, period: day, metric: images}
  - {name: month, limit: 1000000, period: month, forecast: true}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A simulator, a store collected for RULES, and the rules file on disk."""
    tmp = tmp_path_factory.mktemp("evaluate")
    rules_file = tmp / "rules.yaml"
    rules_file.write_text(RULES)
    rules = load_rules_text(RULES)
    db = f"sqlite:///{tmp / 'spend.db'}"
    with SimulatorServer(build_api(now=NOW, days=60)) as sim:
        store = Store.open(db)

        async def run() -> None:
            async with AdminClient(ADMIN_KEY, sim.base_url) as client:
                await Collector(client, store).collect(plan_queries(rules, NOW_DT), NOW_DT)

        asyncio.run(run())
        yield {"sim": sim, "store": store, "rules": rules, "db": db, "file": rules_file}
        store.close()


def findings(
    world: dict[str, Any], rules: Rules | None = None, *, collect: bool = True
) -> dict[str, list[Finding]]:
    """The findings of ``rules`` (collected first, as ``check`` does: other rules cut other
    hours, whose minutes the store may not hold yet)."""
    if rules is not None and collect:

        async def run() -> None:
            async with AdminClient(ADMIN_KEY, world["sim"].base_url) as client:
                await Collector(client, world["store"]).collect(plan_queries(rules, NOW_DT), NOW_DT)

        asyncio.run(run())
    rules = rules or world["rules"]
    data = SpendData.load(world["store"], plan_queries(rules, NOW_DT), Pricer(rules.pricing.models))
    out: dict[str, list[Finding]] = {}
    for f in evaluate(rules, data, NOW_DT):
        out.setdefault(f.budget.name, []).append(f)
    return out


def test_costs_spend_equals_the_simulators_invoice(world: dict[str, Any]) -> None:
    (f,) = findings(world)["org-costs-week"]
    org, api = world["sim"].api.org, world["sim"].api
    # the spend of [now - 7d, now) as far as costs are reported: the first day is split by
    # its hourly usage (exact at whole hours; the straddled hour by time)
    expected = sum(
        line.amount
        for index, _ in enumerate(org.streams)
        for line in org.cost_lines(index, NOW - 7 * DAY, NOW - api.costs_delay, NOW)
    )
    # split by usage, but no estimate in the figure: still costs, the note says how
    assert f.source == "costs" and f.severity == "ok" and f.complete
    assert "apportioned by usage" in (f.note or "")
    assert float(f.spend) == pytest.approx(expected, rel=1e-4)  # type: ignore[arg-type]


def test_estimate_equals_usage_times_list_prices(world: dict[str, Any]) -> None:
    (f,) = findings(world)["gpt4o-estimate"]
    org = world["sim"].api.org
    prices = TOKEN_PRICES["gpt-4o-2024-08-06"]
    start = NOW - 3 * DAY  # its first hour is split by time
    expected = Decimal(0)
    for index, stream in org.streams_of("completions"):
        if stream.model != "gpt-4o-2024-08-06":
            continue
        usage = org.total(index, start, NOW, NOW)
        cached = usage.get("input_cached_tokens", 0)
        expected += (
            Decimal(usage["input_tokens"] - cached) * Decimal(str(prices["input"]))
            + Decimal(cached) * Decimal(str(prices["cached input"]))
            + Decimal(usage["output_tokens"]) * Decimal(str(prices["output"]))
        )
    assert f.source == "estimate"
    assert f.spend == pytest.approx(expected / 1_000_000, rel=Decimal("0.001"))


def test_token_metric_is_exact(world: dict[str, Any]) -> None:
    (f,) = findings(world)["embedding-tokens"]
    org = world["sim"].api.org
    expected = sum(
        org.total(i, NOW - 2 * DAY, NOW, NOW).get("input_tokens", 0)
        for i, _ in org.streams_of("embeddings")
    )  # the first hour split by time: within a fraction of an hour
    assert f.source == "usage" and f.spend == pytest.approx(expected, rel=Decimal("0.001"))


def test_each_splits_into_the_groups_seen(world: dict[str, Any]) -> None:
    groups = {f.group["project"] for f in findings(world)["per-project"]}
    assert groups == {"proj_batch", "proj_chatbot", "proj_internal", "proj_media", "proj_search"}


def test_forecast_projects_the_period(world: dict[str, Any]) -> None:
    (f,) = findings(world)["month"]
    assert f.forecast is not None and f.spend is not None
    assert f.forecast > f.spend
    assert f.window.period_end == datetime(2026, 12, 1, tzinfo=UTC)


def test_missing_data_is_unknown_never_ok(world: dict[str, Any]) -> None:
    rules = load_rules_text("""
version: 1
budgets:
  - {name: audio, limit: 5, window: 1d, metric: seconds, match: {user: user-bob}}
""")  # never collected grouped by user
    (f,) = findings(world, rules, collect=False)["audio"]
    assert f.severity == "unknown" and f.spend is None
    assert "never collected" in (f.note or "")


def run_check(world: dict[str, Any], *args: str, now: str | None = None) -> Any:
    env = {"BUDGETGUARD_NOW": now or NOW_DT.isoformat(), "GITHUB_STEP_SUMMARY": ""}
    return CliRunner().invoke(
        app, ["check", "--offline", "-r", str(world["file"]), "--db", world["db"], *args], env=env
    )


def test_a_read_only_check_reads_sqlite_without_sqlalchemy_and_says_the_same(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`check --offline` without --notify reads a SQLite store through the standard library:
    the same report, to the byte, as through the SQLAlchemy store; and in a fresh process
    it never imports SQLAlchemy, nor typer, our HTTP client, the plugin manager or numpy.ma,
    nor genai-prices while its precomputed table prices the store's models."""
    import subprocess
    import sys

    from budgetguard.evaluate.price_table import lookup
    from budgetguard.store.reads import SQLiteReads

    for output in ("json", "text"):
        direct = run_check(world, "--format", output)
        with monkeypatch.context() as m:
            m.setattr(SQLiteReads, "open", classmethod(lambda cls, url: None))
            through_store = run_check(world, "--format", output)
        assert direct.exit_code == through_store.exit_code
        assert direct.stdout == through_store.stdout and direct.stdout
    # the table answers only for the genai-prices it was made from
    table = ", 'genai_prices'" if lookup("gpt-4o-2024-08-06") is not None else ""
    script = (
        "import sys\nfrom budgetguard.cli import run\n"
        f"code = run(['check', '--offline', '-r', {str(world['file'])!r}, '--db', "
        f"{world['db']!r}, '--format', 'json', '--now', {NOW_DT.isoformat()!r}])\n"
        f"heavy = ('sqlalchemy', 'typer', 'httpx', 'pluggy', 'numpy.ma'{table})\n"
        "print([m for m in heavy if m in sys.modules], file=sys.stderr)"
    )
    child = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True
    )
    assert child.stderr.strip().splitlines()[-1] == "[]", child.stderr
    assert json.loads(child.stdout)["budgets"]


def test_the_fast_path_knows_check_as_typer_defines_it() -> None:
    """cli/fast.py reads `check --offline` without typer: its table of options is typer's."""
    import typer.main

    from budgetguard.cli import commands
    from budgetguard.cli.check import CheckOptions
    from budgetguard.cli.fast import FLAGS, VALUES

    command = typer.main.get_command(commands()).commands["check"]  # type: ignore[attr-defined]
    params = [p for p in command.params if p.name != "help"]
    assert {o: p.name for p in params if p.is_flag for o in p.opts} == FLAGS
    assert {o: p.name for p in params if not p.is_flag for o in p.opts} == VALUES
    assert all(not p.secondary_opts for p in params)
    assert {p.name for p in params if p.multiple} == {"expect"}
    assert {p.name for p in params} == set(CheckOptions.__dataclass_fields__)


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--offline", "--help"],
        ["check", "--offline", "--notify"],
        ["check", "-f", "json"],
        ["collect", "--offline"],
        ["check", "--offline", "--bogus"],
        ["check", "--offline", "-rrules.yaml"],
        ["check", "--offline", "-r=rules.yaml"],
        ["check", "--offline=1"],
        ["check", "--offline", "--now", "-5"],
        ["check", "--offline", "--db"],
        ["check", "--offline", "extra"],
        ["check", "--offline", "--", "-f"],
    ],
)
def test_the_fast_path_leaves_anything_unusual_to_typer(argv: list[str]) -> None:
    from budgetguard.cli.fast import offline_check

    assert offline_check(argv) is None


FAST_CASES = [
    [],
    ["--format", "json"],
    ["-f", "text", "--fail-on", "warning"],
    ["--format=markdown"],
    ["-f", "github", "--fail-on=never"],
    ["--fail-on", "bogus"],
    ["--format", "yaml"],
    ["--expect", "100"],
    ["--expect", "project=proj_chatbot=50", "--expect", "10", "-f", "json"],
    ["--expect", "x=1=2"],
    ["--expect", "1e999999"],
    ["--now", "2026-11-20T00:00:00Z", "-f", "json"],
    ["--now", "yesterday"],
    ["--now", "2026-12-01T00:00:00Z"],  # data days old: unknown, exit 3
    ["--db", "nonsense://"],
    ["--db", "sqlite:///elsewhere.db", "--db", "{db}"],
    ["-r", "/nonexistent/rules.yaml"],
]


def test_the_fast_path_says_what_typer_says(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same exit code, stdout and stderr, to the byte, whichever path reads the flags."""
    from budgetguard.cli import run, run_typer
    from budgetguard.cli.fast import offline_check

    monkeypatch.setenv("BUDGETGUARD_NOW", NOW_DT.isoformat())
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", "")
    monkeypatch.chdir(world["file"].parent)
    codes = set()
    for extra in FAST_CASES:
        argv = ["check", "--offline", "-r", str(world["file"]), "--db", world["db"]]
        argv += [word.replace("{db}", world["db"]) for word in extra]
        assert offline_check(argv) is not None, extra
        fast = run(argv), *capsys.readouterr()
        slow = run_typer(argv), *capsys.readouterr()
        assert fast == slow, extra
        codes.add(fast[0])
    assert codes == {0, 1, 2, 3}  # every exit code went through both paths


def test_json_report_shape(world: dict[str, Any]) -> None:
    result = run_check(world, "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"evaluated_at", "status", "budgets", "alerts"}
    # one line per budget (and per alert): grep-able, and fast to write for big reports
    lines = result.stdout.splitlines()
    assert len(lines) == 4 + len(report["budgets"]) + 2 + (
        len(report["alerts"]) + 2 if report["alerts"] else 1
    )
    assert all(json.loads(line.strip().rstrip(",")) for line in lines if line.startswith("    {"))
    assert report["evaluated_at"] == "2026-11-22T10:17:31Z"
    for budget in report["budgets"]:
        assert set(budget) == {
            "name",
            "group",
            "metric",
            "window",
            "spend",
            "limit",
            "ratio",
            "forecast",
            "planned",
            "severity",
            "source",
            "data",
        }
        assert set(budget["window"]) == {"start", "end", "kind"}
        assert set(budget["data"]) == {"complete", "note"}
        assert budget["severity"] in ("ok", "warning", "critical", "unknown")
        assert budget["source"] in ("costs", "estimate", "mixed", "usage")
    tokens = next(b for b in report["budgets"] if b["name"] == "embedding-tokens")
    assert isinstance(tokens["spend"], int)


def test_exit_codes_and_expectations(world: dict[str, Any]) -> None:
    assert run_check(world).exit_code == 0
    over = run_check(world, "--expect", "project=proj_media=1000", "--format", "json")
    assert over.exit_code == 1
    report = json.loads(over.stdout)
    media = next(b for b in report["budgets"] if b["group"] == {"project": "proj_media"})
    assert media["severity"] == "critical" and media["spend"] > 1000
    assert any(a["budget"] == "per-project" and a["kind"] == "threshold" for a in report["alerts"])
    assert run_check(world, "--expect", "1000", "--fail-on", "never").exit_code == 0
    assert run_check(world, "--expect", "project=proj_media=lots").exit_code == 2
    assert run_check(world, "--format", "yaml").exit_code == 2
    stale = run_check(world, now="2026-11-23T10:00:00Z")  # a day after the last collect
    assert stale.exit_code == 3
    assert "unknown" in stale.stdout


def test_markdown_and_github_formats(world: dict[str, Any], tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    env = {"BUDGETGUARD_NOW": NOW_DT.isoformat(), "GITHUB_STEP_SUMMARY": str(summary)}
    result = CliRunner().invoke(
        app,
        [
            "check",
            "--offline",
            "-r",
            str(world["file"]),
            "--db",
            world["db"],
            "--format",
            "markdown",
            "--expect",
            "project=proj_media=100",
        ],
        env=env,
    )
    assert result.exit_code == 1
    assert "| budget | group |" in result.stdout
    assert summary.read_text() == result.stdout
    github = run_check(world, "--format", "github", "--expect", "project=proj_media=100")
    assert (
        "::error title=budgetguard per-project::critical per-project [project=proj_media]"
        in github.stdout
    )


def test_a_budget_with_nothing_to_count_still_shows_at_zero(world: dict[str, Any]) -> None:
    rules = load_rules_text("""
version: 1
budgets:
  - {name: none-split, limit: 5, period: day, metric: images, each: model,
     match: {model: no-such-model}}
  - {name: none-cost, limit: 5, period: day, match: {project: proj_nobody}}
""")
    found = findings(world, rules)
    (split,) = found["none-split"]
    assert (split.group, split.spend, split.source, split.severity) == ({}, 0, "usage", "ok")
    (cost,) = found["none-cost"]
    assert cost.spend == 0 and cost.severity == "ok" and cost.complete


@pytest.mark.parametrize("chunk", [7, 1 << 20])
@pytest.mark.parametrize("huge", [True, False])
def test_sparse_sums_equal_a_scan_of_the_rows(
    chunk: int, huge: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cube's window sums (running sums within each group over the rows that exist,
    sorted by group and bucket, built a few rows at a time) equal adding up the rows one by
    one, for any window, match and split: with groups absent from some buckets, rows of one
    group and bucket twice, and huge figures (past int32 within a group) or small ones."""
    import random

    import numpy as np

    from budgetguard.evaluate import cube as cubes
    from budgetguard.evaluate.cube import UsageCube
    from budgetguard.evaluate.pricing import Pricer

    monkeypatch.setattr(cubes, "_CHUNK", chunk)
    rng = random.Random(16)
    groups = [
        (f"proj_{p}", f"user-{u}", None, model, False, "default", None)
        for p in range(4)
        for u in range(3)
        for model in ("gpt-4o", "o3-mini")
    ]
    times = [1795305600 + 3600 * h for h in range(30)]
    rows = [
        (
            t,
            rng.randrange(len(groups)),
            rng.choice([0, 1, 7, 10**6, 2**40] * 20 + [2**53 - 1] if huge else [0, 1, 7, 900]),
        )
        for t in times
        for _ in range(rng.randrange(0, 40))
    ]
    rows.sort(key=lambda r: r[0])
    starts = np.array([r[0] for r in rows], dtype=np.int64)
    gid = np.array([r[1] for r in rows], dtype=np.int32)
    tokens = np.array([r[2] for r in rows], dtype=np.int64)
    cube = UsageCube("completions", 3600, starts, gid, groups, {"input_tokens": tokens}, Pricer())
    rules = load_rules_text("""
version: 1
budgets:
  - {name: all, limit: 1, window: 1d, metric: input_tokens}
  - {name: per-user, limit: 1, window: 1d, metric: input_tokens, each: user,
     match: {project: [proj_1, proj_3], model: "gpt-4o*"}}
""")
    edges = [*times, times[-1] + 3600]
    for budget in rules.budgets:
        for _ in range(25):
            lo, hi = sorted(rng.sample(edges, 2))
            h0, h1 = cube.span(lo, hi)
            expected: dict[tuple[str, ...], int] = {}
            for t, g, value in rows:
                project, user, _, model = groups[g][:4]
                if not lo <= t < hi:
                    continue
                if budget.each and (project not in ("proj_1", "proj_3") or model != "gpt-4o"):
                    continue
                label = (user,) if budget.each else ()
                expected[label] = expected.get(label, 0) + value
            got = cube.values(budget, ("input_tokens",), h0, h1)
            assert got == {k: v for k, v in expected.items() if v}, (budget.name, lo, hi)


METRIC_CASES = [
    # metric, endpoint the simulator measures it on, the simulator's fields summed
    ("input_tokens", "completions", ("input_tokens",)),
    ("output_tokens", "completions", ("output_tokens",)),
    ("cached_tokens", "completions", ("input_cached_tokens",)),
    ("tokens", "embeddings", ("input_tokens",)),
    ("requests", "moderations", ("num_model_requests",)),
    ("requests", "file_search_calls", ("num_requests",)),
    ("images", "images", ("images",)),
    ("characters", "audio_speeches", ("characters",)),
    ("seconds", "audio_transcriptions", ("seconds",)),
    ("sessions", "code_interpreter_sessions", ("num_sessions",)),
]


@pytest.mark.parametrize(
    ("metric", "endpoint", "fields"), METRIC_CASES, ids=[f"{m}-{e}" for m, e, _ in METRIC_CASES]
)
def test_every_usage_metric_equals_the_simulators_figures(
    world: dict[str, Any], metric: str, endpoint: str, fields: tuple[str, ...]
) -> None:
    rules = load_rules_text(f"""
version: 1
budgets:
  - {{name: m, limit: 1, window: 2d, metric: {metric}, match: {{endpoint: {endpoint}}}}}
""")
    (f,) = findings(world, rules)["m"]
    org = world["sim"].api.org
    low, high = (
        sum(
            org.total(i, start, NOW, NOW).get(field, 0)
            for i, _ in org.streams_of(endpoint)
            for field in fields
        )
        for start in (NOW - 2 * DAY + 29, NOW - 2 * DAY - 31)
    )  # the window's first hour is split by its minutes; the minute 10:17:31 cuts, by time
    assert low > 0
    assert (f.source, f.severity) == ("usage", "critical")
    assert low <= f.spend <= high


def test_usage_bytes_is_the_latest_figure_not_a_sum(world: dict[str, Any]) -> None:
    rules = load_rules_text("""
version: 1
budgets:
  - {name: bytes, limit: 100000000000, window: 3d, metric: usage_bytes}
""")
    (f,) = findings(world, rules)["bytes"]
    org = world["sim"].api.org
    last_hour = NOW - NOW % 3600
    expected = sum(org.gauge(i, last_hour, NOW) or 0 for i, _ in org.streams_of("vector_stores"))
    assert f.spend == expected


def test_an_anomaly_compares_the_window_with_the_baseline_mean(world: dict[str, Any]) -> None:
    rules = load_rules_text("""
version: 1
budgets:
  - {name: spike, anomaly: {window: 1h, baseline: 7d, factor: 1.2, min: 1},
     match: {model: "gpt-4o-2024-08-06"}}
  - {name: calm, anomaly: {window: 1h, baseline: 7d, factor: 50},
     match: {model: "gpt-4o-2024-08-06"}}
""")
    found = findings(world, rules)
    (spike,), (calm,) = found["spike"], found["calm"]
    assert spike.anomaly_baseline is not None and spike.spend is not None
    assert spike.anomaly_baseline == calm.anomaly_baseline
    assert spike.spend > Decimal("1.2") * spike.anomaly_baseline  # the spike, this hour
    assert spike.anomaly and spike.severity == "warning"
    assert not calm.anomaly and calm.severity == "ok"


def test_a_failed_collection_makes_its_budgets_unknown(
    world: dict[str, Any], tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "copy.db"
    source = world["db"].removeprefix("sqlite:///")
    for suffix in ("", "-wal", "-shm"):  # WAL mode: recent pages live beside the file
        if Path(source + suffix).exists():
            shutil.copy(source + suffix, str(copy) + suffix)
    store = Store.open(f"sqlite:///{copy}")
    images = next(m for m in store.sync_marks() if m.endpoint == "images")
    store.mark_failure(images.query_key, "images", images.bucket_width, "HTTP 503", NOW)
    rules = load_rules_text("""
version: 1
budgets:
  - {name: img, limit: 1000, period: day, metric: images}
  - {name: tokens, limit: 1000000000000, period: day, metric: input_tokens}
""")
    data = SpendData.load(store, plan_queries(rules, NOW_DT), Pricer())
    by_name = {f.budget.name: f for f in evaluate(rules, data, NOW_DT)}
    store.close()
    assert by_name["img"].severity == "unknown" and "HTTP 503" in (by_name["img"].note or "")
    assert by_name["tokens"].severity == "ok"


def test_loading_only_what_the_budgets_look_at_changes_no_figure(world: dict[str, Any]) -> None:
    """``check`` loads from ``needed_from`` (windows, baselines, forecast history) on."""
    from budgetguard.rules.needs import needed_from

    rules = load_rules_text(
        RULES
        + "  - {name: spike, limit: 1000000, window: 1d,"
        + " anomaly: {window: 1h, baseline: 5d, factor: 2, min: 1}}\n"
    )
    pricer = Pricer(rules.pricing.models)
    since = needed_from(rules, NOW_DT)
    assert since == datetime(2026, 11, 1, tzinfo=UTC)  # the month budget's start
    everything = SpendData.load(world["store"], plan_queries(rules, NOW_DT), pricer)
    needed = SpendData.load(
        world["store"], plan_queries(rules, NOW_DT), pricer, start=int(since.timestamp())
    )

    def figures(data: SpendData) -> list[tuple[Any, ...]]:
        return [
            (f.budget.name, f.group, f.spend, f.forecast, f.severity, f.anomaly_baseline)
            for f in evaluate(rules, data, NOW_DT)
        ]

    assert figures(needed) == figures(everything)
    weekly = load_rules_text("version: 1\nbudgets:\n  - {name: w, limit: 1, window: 7d}\n")
    assert needed_from(weekly, NOW_DT) == datetime(2026, 11, 15, tzinfo=UTC)


def test_usage_of_a_model_without_a_price_is_a_note_never_nothing(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'spend.db'}")
    rules = load_rules_text(
        "version: 1\nbudgets:\n  - {name: e, limit: 1, window: 1d, cost_source: estimate}\n"
    )
    try:
        for q in plan_queries(rules, NOW_DT):
            rows = []
            if q.key.startswith("completions:1h"):
                rows = [
                    {
                        "bucket_start": TODAY,
                        "project_id": "p",
                        "model": "mystery-model-9",
                        "input_tokens": 1000,
                        "output_tokens": 10,
                    },
                    {
                        "bucket_start": TODAY,
                        "project_id": "p",
                        "model": "gpt-4o-mini-2024-07-18",
                        "input_tokens": 10_000_000,
                    },
                ]
            start = int(q.start.timestamp())
            if q.endpoint == "costs":
                store.replace_costs(q.key, start, NOW, [], NOW)
            else:
                store.replace_usage(q.key, q.endpoint, q.width_seconds, start, NOW, rows, NOW)
        data = SpendData.load(store, plan_queries(rules, NOW_DT), Pricer())
        (f,) = evaluate(rules, data, NOW_DT)
    finally:
        store.close()
    assert not f.complete and "mystery-model-9" in (f.note or ""), f
    # the priced part alone is over the limit: a lower bound over a threshold still fires
    assert f.spend == Decimal("1.5") and f.severity == "critical"
    from budgetguard.report import to_json, to_text

    assert "≥ $1.50" in to_text([f], NOW_DT)
    assert to_json([f], [], NOW_DT)["budgets"][0]["data"]["complete"] is False


def test_vectorised_integer_pricing_equals_decimal_pricing_exactly(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prices as integers over a power of ten (int64 dot products) give the very same
    Decimal figures as pricing each group's sums one by one in Decimal."""
    from budgetguard.evaluate import cube as cube_module

    def figures() -> list[tuple[Any, ...]]:
        return [
            (f.budget.name, f.group, f.spend, f.note) for fs in findings(world).values() for f in fs
        ]

    real = cube_module._integer_prices
    made: list[Any] = []

    def spy(*args: Any) -> Any:
        made.append(real(*args))
        return made[-1]

    monkeypatch.setattr(cube_module, "_integer_prices", spy)
    vectorised = figures()
    assert any(f[2] for f in vectorised)
    assert any(m is not None for m in made)  # the integer path was taken
    monkeypatch.setattr(cube_module, "_integer_prices", lambda *args: None)
    assert figures() == vectorised


def test_backtest_lists_when_alerts_would_fire_and_resolve(world: dict[str, Any]) -> None:
    """A replay with a fresh alert state: day budgets fire each day they cross, and resolve
    when a new day starts; the store's alert state and outbox are left alone."""
    from budgetguard.store.alerts import AlertStore

    def backtest(*args: str) -> Any:
        return CliRunner().invoke(
            app,
            ["backtest", "-r", str(world["file"]), "--db", world["db"], *args],
            env={"BUDGETGUARD_NOW": NOW_DT.isoformat()},
        )

    outbox_before = AlertStore(world["store"].engine).keys()
    result = backtest("--from", "2026-11-19T10:00:00Z", "--to", "2026-11-22T10:00:00Z")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    fires = [line for line in lines if "  fire " in line]
    resolves = [line for line in lines if "  resolve " in line]
    assert fires and all(line[:20].endswith("Z") for line in lines)
    assert f"{len(fires)} fired, {len(resolves)} resolved" in result.stderr
    assert "73 steps of 1h" in result.stderr  # 3 days of hours, both ends included
    # a period budget's threshold fires at most once per day (its period)
    fields = [re.split(r"\s{2,}", line) for line in fires]  # at, event, label, what, ...
    per_day = [(at[:10], label, what) for at, _, label, what, *_ in fields]
    assert len(per_day) == len(set(per_day))
    assert {label for _, label, _ in per_day} >= {"images"}
    assert AlertStore(world["store"].engine).keys() == outbox_before

    assert backtest("--from", "1d", "--to", "2d").exit_code == 2
    assert backtest("--from", "2d", "--step", "fortnight").exit_code == 2


def test_expect_goes_to_the_one_group_its_selector_names(world: dict[str, Any]) -> None:
    """The contract's --expect: a budget whose match covers the selector gets the amount; an
    ``each`` budget only in the one group named, a multi-key selector naming each key; where
    a selector names no single group, nothing is added and the note says so."""
    rules = load_rules_text("""
version: 1
budgets:
  - {name: org, limit: 100000, period: day}
  - {name: chatbot, limit: 100000, period: day, match: {project: proj_chatbot}}
  - {name: search, limit: 100000, period: day, match: {project: proj_search}}
  - {name: per-project, limit: 100000, period: day, each: project}
  - {name: per-model, limit: 100000, period: day, each: [project, model]}
""")
    data = SpendData.load(world["store"], plan_queries(rules, NOW_DT), Pricer())

    def spends(*expect: tuple[dict[str, str], Decimal]) -> dict[tuple[str, str], Any]:
        return {
            (f.budget.name, group_label(f.group)): (f.spend, f.note)
            for f in evaluate(rules, data, NOW_DT, expect)
        }

    base = spends()
    one = spends(({"project": "proj_chatbot"}, Decimal(100)))
    changed = {k for k in one if one[k][0] != base.get(k, (None,))[0]}
    assert changed == {("org", "—"), ("chatbot", "—"), ("per-project", "project=proj_chatbot")}
    assert one[("org", "—")][0] == base[("org", "—")][0] + 100
    assert "names no single group (give model)" in (
        one[("per-model", "project=proj_chatbot, model=gpt-4o-2024-08-06")][1] or ""
    )
    both = spends(({"project": "proj_chatbot", "model": "gpt-4o-2024-08-06"}, Decimal(7)))
    changed = {k for k in both if both[k][0] != base.get(k, (None,))[0]}
    key = ("per-model", "project=proj_chatbot, model=gpt-4o-2024-08-06")
    assert changed == {("org", "—"), ("chatbot", "—"), ("per-project", "project=proj_chatbot"), key}
    assert both[key][0] == base[key][0] + 7
    new = spends(({"project": "proj_new"}, Decimal(5)))  # no such group: never made up
    assert ("per-project", "project=proj_new") not in new
    assert new[("org", "—")][0] == base[("org", "—")][0] + 5
    assert "proj_new=5 not added: it matches 0 groups" in (
        new[("per-project", "project=proj_chatbot")][1] or ""
    )
    glob = spends(({"project": "proj_chat*"}, Decimal(3)))  # a glob naming one group
    assert (
        glob[("per-project", "project=proj_chatbot")][0]
        == base[("per-project", "project=proj_chatbot")][0] + 3
    )
    wide = spends(({"project": "proj_*"}, Decimal(3)))  # ... or several: nowhere, and said
    key = ("per-project", "project=proj_chatbot")
    assert wide[key][0] == base[key][0] and "matches 5 groups, not one" in (wide[key][1] or "")


def test_multi_key_selectors_on_the_command_line(world: dict[str, Any]) -> None:
    ok = run_check(world, "--expect", "project=proj_media,model=dall-e-3=5", "--format", "json")
    assert ok.exit_code == 0, ok.stderr
    assert run_check(world, "--expect", "project=a,project=b=5").exit_code == 2
    assert run_check(world, "--expect", "project=a,colour=b=5").exit_code == 2


def test_description_runbook_and_labels_are_shown(world: dict[str, Any]) -> None:
    from budgetguard.digest import build_digest
    from budgetguard.report import to_github, to_json, to_markdown, to_text

    rules = load_rules_text("""
version: 1
budgets:
  - name: org
    limit: 1
    period: day
    description: The whole org, per day
    runbook_url: https://wiki.example.com/budget
    labels: {team: finops, tier: prod}
""")
    data = SpendData.load(world["store"], plan_queries(rules, NOW_DT), Pricer())
    found = evaluate(rules, data, NOW_DT)
    about = "The whole org, per day · runbook: https://wiki.example.com/budget"
    about += " · labels: team=finops, tier=prod"
    budget = to_json(found, [], NOW_DT)["budgets"][0]
    assert budget["description"] == "The whole org, per day"
    assert budget["runbook_url"] == "https://wiki.example.com/budget"
    assert budget["labels"] == {"team": "finops", "tier": "prod"}
    assert f"note: org: {about}" in to_text(found, NOW_DT)
    assert f"- **org**: {about}" in to_markdown(found, NOW_DT)
    assert about in to_github(found)  # it is over its limit: an annotation
    digest = build_digest(rules, data, found, [], NOW_DT)
    assert f"org: {about}" in digest.notes
    bad = "version: 1\nbudgets:\n  - {name: a, limit: 1, period: day, labels: {team: [x]}}\n"
    with pytest.raises(RulesError):
        load_rules_text(bad)


def test_a_missing_price_marks_only_the_group_that_uses_it(tmp_path: Path) -> None:
    """In an ``each: project`` budget, the lower bound and the note belong to the project
    whose usage has no price; the other project's figure is complete and says nothing."""
    store = Store.open(f"sqlite:///{tmp_path / 'spend.db'}")
    rules = load_rules_text(
        "version: 1\nbudgets:\n  - {name: e, limit: 100, window: 1d, cost_source: estimate, "
        "each: project}\n"
    )
    usage = [
        {"project_id": "p_b", "model": "mystery-model-9", "input_tokens": 1000},
        {"project_id": "p_a", "model": "gpt-4o-mini-2024-07-18", "input_tokens": 10_000_000},
    ]
    try:
        for q in plan_queries(rules, NOW_DT):
            rows = [dict(r, bucket_start=TODAY) for r in usage] if "completions:1h" in q.key else []
            start = int(q.start.timestamp())
            if q.endpoint == "costs":
                store.replace_costs(q.key, start, NOW, [], NOW)
            else:
                store.replace_usage(q.key, q.endpoint, q.width_seconds, start, NOW, rows, NOW)
        data = SpendData.load(store, plan_queries(rules, NOW_DT), Pricer())
        found = {f.group["project"]: f for f in evaluate(rules, data, NOW_DT)}
    finally:
        store.close()
    assert set(found) == {"p_a", "p_b"}
    a, b = found["p_a"], found["p_b"]
    assert a.complete and "mystery" not in (a.note or "") and a.spend == Decimal("1.5")
    assert not b.complete and "mystery-model-9" in (b.note or "") and b.spend == 0
    from budgetguard.report import to_text

    text = to_text([a, b], NOW_DT)
    assert "≥ $0.00" in text and "≥ $1.50" not in text
