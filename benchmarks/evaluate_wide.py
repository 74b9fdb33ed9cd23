"""Evaluation of a wide organisation on the rows its budgets really read.

Fills a store (through the store's block writer, so filling takes seconds) with what the
collector would fetch for these budgets: every query the planner plans, over the range it
plans (hourly completions of GROUPS project x model x user groups since the 90-day window's
start: 26M rows at 12,000 groups), each with its coverage. Then, each in a fresh process
like `check`, loads what the budgets look at and evaluates: 10 budgets (one `window: 90d`,
`each: user`, periods, forecast, anomaly, token budgets), then the same with the 90d window
at 30d (the old cliff's two sides), then 1,000 budgets. Each prints the rows it read beside
its time and the process's peak RSS, and fails when a finding is `unknown` (a benchmark
whose budgets read nothing measures nothing).

Targets (issue 25): 12k groups, 10 budgets incl. 90d and each: user: <= 5 s and <= 1.5 GB;
1,000 budgets <= 10 s; time at most linear in the rows read and the budgets.

    python -m benchmarks.evaluate_wide [--groups 12000] [--hours N] [--keep DIR] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.collect_throughput import create_database, drop_database
from benchmarks.evaluate import MODELS, NOW, _peak_rss_mb
from budgetguard.rules import load_rules_text
from budgetguard.rules.needs import plan_queries
from budgetguard.store import Store
from budgetguard.store.rollups import RollupBlock, encode_arrays

DAY = 86400
TEN = """
version: 1
budgets:
  - {name: org-month, limit: 500000, period: month, forecast: true, cost_source: estimate}
  - {name: ninety, limit: 900000, window: WINDOW, cost_source: estimate}
  - {name: per-user-week, limit: 50, window: 7d, each: user, cost_source: estimate}
  - {name: per-project-day, limit: 1000, period: day, each: project, cost_source: estimate}
  - {name: tokens-day, limit: 1000000000, window: 24h, metric: tokens}
  - {name: models-30d, limit: 20000, window: 30d, each: model, cost_source: estimate,
     match: {project: "proj_1*"}}
  - {name: users-a, limit: 1000, window: 7d, match: {user: "user-1*"}, cost_source: estimate}
  - {name: pm-week, limit: 5000, period: week, each: [project, model], cost_source: estimate}
  - {name: spike, each: project, anomaly: {window: 1h, baseline: 7d, factor: 3, min: 5},
     cost_source: estimate}
  - {name: input-week, limit: 100000000000, window: 7d, metric: input_tokens, each: project}
"""


def ten(window: str) -> str:
    return TEN.replace("WINDOW", window)


def thousand() -> str:
    """1,000 budgets: the ten, a hundred times over, each copy with its own names and
    project globs (so no two copies share their cached masks); past the first copy the
    per-user budget matches one project instead of splitting 12,000 ways."""
    head, body = ten("90d").split("budgets:\n")
    copies = [
        body.replace("name: ", f"name: c{i}-").replace('"proj_1*"', f'"proj_{i % 50:02d}"')
        for i in range(100)
    ]
    copies[1:] = [
        c.replace("each: user,", f"match: {{project: proj_{i % 50:02d}}},")
        for i, c in enumerate(copies[1:])
    ]
    return head + "budgets:\n" + "".join(copies)


def groups_of(n: int) -> list[tuple[object, ...]]:
    return [
        (
            f"proj_{g % 50:02d}",
            f"user-{g:05d}",
            None,
            MODELS[g % len(MODELS)],
            False,
            "default",
            None,
        )
        for g in range(n)
    ]


def day_blocks(day: int, groups: list[tuple[object, ...]], hours: range) -> RollupBlock:
    n = len(groups)
    gid = np.tile(np.arange(n, dtype=np.int64), len(hours))
    starts = np.repeat(np.array([day + h * 3600 for h in hours], dtype=np.int64), n)
    seed = (gid * 7919 + starts // 3600) % 9000
    metrics = {
        "input_tokens": 1000 + seed,
        "output_tokens": 200 + seed // 3,
        "input_cached_tokens": seed // 5,
        "num_model_requests": 1 + seed // 900,
    }
    return RollupBlock.of(encode_arrays(day, groups, gid, starts, metrics))


def fill(store: Store, n_groups: int, hours: int | None = None) -> int:
    """What the collector stores for the ten budgets: every planned query over its planned
    range (``hours``: only the last ones, for a quick run; the budgets reaching further are
    then `unknown` and the run fails), completions in every hour."""
    rules = load_rules_text(ten("90d"))
    now = int(NOW.timestamp())
    groups = groups_of(n_groups)
    total = 0
    for q in plan_queries(rules, NOW):
        begin = int(q.start.timestamp())
        if hours is not None:
            begin = max(begin, now - now % DAY - hours // 24 * DAY)
        blocks: dict[int, RollupBlock] = {}
        if q.key.startswith("completions:1h"):
            for day in range(begin - begin % DAY, now, DAY):
                blocks[day] = day_blocks(day, groups, range(min(24, (now - day) // 3600)))
        if q.endpoint == "costs":
            store.replace_costs(q.key, begin, now, [], now)
            continue
        store.replace_usage_blocks(q.key, q.endpoint, q.width_seconds, begin, now, blocks, now)
        total += sum(b.row_count for b in blocks.values())
    return total


def measure(url: str, rules_path: str) -> None:
    """The child: load + evaluate like ``check`` does."""
    from budgetguard.evaluate.data import SpendData
    from budgetguard.evaluate.evaluator import evaluate
    from budgetguard.evaluate.pricing import Pricer
    from budgetguard.rules.needs import needed_from

    rules = load_rules_text(Path(rules_path).read_text())
    store = Store.open(url)
    began = time.perf_counter()
    since = int(needed_from(rules, NOW).timestamp())
    data = SpendData.load(store, plan_queries(rules, NOW), Pricer(), start=since)
    loaded = time.perf_counter() - began
    findings = evaluate(rules, data, NOW)
    total = time.perf_counter() - began
    read = sum(len(s.cube.keys) for s in data._series.values() if s.cube is not None)
    unknown = sorted({f.budget.name for f in findings if f.severity == "unknown"})
    print(
        json.dumps(
            {
                "findings": len(findings),
                "unknown": unknown,
                "rows_read": read,
                "load": loaded,
                "total": total,
                "rss_mb": _peak_rss_mb(),
            }
        )
    )


def run(url: str, rules: Path) -> dict[str, Any]:
    """The child's figures, and its CPU time (user + system: robust where wall time is not,
    on a machine other work shares)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = subprocess.run(
        [sys.executable, "-m", "benchmarks.evaluate_wide", "--measure", url, str(rules)],
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found: dict[str, Any] = json.loads(child.stdout)
    found["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=12_000)
    parser.add_argument(
        "--hours", type=int, help="store only the last HOURS (a quick run: budgets go unknown)"
    )
    parser.add_argument("--keep", help="a folder for the store, reused when already filled")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="a fresh database on the local PostgreSQL (filled each run, dropped after)",
    )
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure)
        return
    if args.postgres:
        url = create_database()
        try:
            store = Store.open(url)
            stored = fill(store, args.groups, args.hours)
            store.close()
            with tempfile.TemporaryDirectory() as scratch:
                report(url, Path(scratch), stored, args.groups)
        finally:
            drop_database(url)
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder / 'wide.db'}"
        marker = folder / "wide.json"
        wanted = {"hours": args.hours, "groups": args.groups}
        held = json.loads(marker.read_text()) if marker.exists() else {}
        if {k: v for k, v in held.items() if k != "stored"} != wanted:
            Path(folder / "wide.db").unlink(missing_ok=True)
            store = Store.open(url)
            began = time.perf_counter()
            stored = fill(store, args.groups, args.hours)
            store.close()
            print(f"filled {stored:,} rows in {time.perf_counter() - began:.1f} s", flush=True)
            marker.write_text(json.dumps({**wanted, "stored": stored}))
        stored = json.loads(marker.read_text())["stored"]
        report(url, folder, stored, args.groups)


def report(url: str, folder: Path, stored: int, groups: int) -> None:
    """Each case in a fresh process, its figures printed."""
    cases = {
        "10 budgets, window 90d": ten("90d"),
        "10 budgets, window 30d": ten("30d"),
        "1,000 budgets": thousand(),
    }
    print(f"store: {stored:,} usage rows, {groups:,} groups (every planned query and hour)")
    failed = []
    for name, text in cases.items():
        path = folder / "rules.yaml"
        path.write_text(text)
        found = run(url, path)
        limit = 10.0 if name.startswith("1,000") else 5.0
        ok = found["total"] <= limit and (limit == 10.0 or found["rss_mb"] <= 1536)
        print(
            f"{name}: {found['rows_read']:,} rows read, {found['findings']:,} findings, "
            f"load {found['load']:.2f} s, load + evaluate {found['total']:.2f} s "
            f"({found['total'] / limit:.2f}x the target; the process's CPU {found['cpu']:.2f} s, "
            f"imports included), peak RSS {found['rss_mb']:.0f} MB "
            f"({found['rss_mb'] / 1536:.2f}x) ({'OK' if ok else 'MISS'}: <= {limit:g} s"
            f"{'' if limit == 10.0 else ' and <= 1.5 GB'})"
        )
        if found["unknown"]:
            failed.append(f"{name}: unknown: {', '.join(found['unknown'][:5])}")
    if failed:
        why = "; ".join(failed)
        raise SystemExit(f"budgets read nothing, so these figures measure nothing: {why}")


if __name__ == "__main__":
    main()
