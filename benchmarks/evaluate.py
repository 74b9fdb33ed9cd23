"""Evaluation speed: N budgets over M usage rows, and the cold start of `check --offline`.

Fills a SQLite store with synthetic hourly completions rows (30 days, ~1,400 project x model
x user groups; reused from --keep DIR when it is already there). A fresh process then loads
what the budgets look at (the per-day blocks, priced into cubes) and evaluates every budget (a
mix of rolling, period, `each` and token budgets), and reports its own peak RSS. Beside it, on
the same rows, two references: one numpy pass (cost per row from its token columns, summed per
group) over columns already in memory, and the same pass after reading the rows out of the
store (decoded from its blocks into Python tuples). Last, `budgetguard check --offline` is
timed as a new process, with 20 budgets and with all of them, next to the import time of
numpy and the stdlib sqlite3 alone.

Issue 5 set 1,000 budgets over 1M rows <= 1 s and peak RSS <= 300 MB. Issue 16's targets
for evaluation are in `evaluate_wide.py`, for the cold check in `cold_check.py` (against a
floor script that does what a check must).

    python -m benchmarks.evaluate [--rows 1000000] [--budgets 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.evaluator import evaluate
from budgetguard.evaluate.pricing import Pricer
from budgetguard.rules import load_rules_text
from budgetguard.rules.needs import plan_queries
from budgetguard.store import Store

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
MODELS = ("gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "gpt-5-2025-08-07", "o3-mini")


def rules_text(budgets: int) -> str:
    lines = ["version: 1", "budgets:"]
    for i in range(budgets):
        shape = i % 4
        if shape == 0:
            lines.append(
                f"  - {{name: b{i}, limit: 500, window: 24h, "
                f"match: {{project: proj_{i % 50:02d}}}, cost_source: estimate}}"
            )
        elif shape == 1:
            lines.append(
                f"  - {{name: b{i}, limit: 5000, period: month, cost_source: estimate,"
                f" match: {{model: 'gpt-4o*'}}}}"
            )
        elif shape == 2:
            lines.append(
                f"  - {{name: b{i}, limit: 100, period: day, each: project, cost_source: estimate}}"
            )
        else:
            lines.append(
                f"  - {{name: b{i}, limit: 100000000, window: 7d, metric: tokens,"
                f" match: {{project: 'proj_{i % 50:02d}'}}}}"
            )
    return "\n".join(lines) + "\n"


def fill(store: Store, rules_yaml: str, rows: int) -> None:
    rules = load_rules_text(rules_yaml)
    (completions,) = [q for q in plan_queries(rules, NOW) if q.key.startswith("completions:1h")]
    hours = 30 * 24
    per_hour = max(1, rows // hours)
    start = int((NOW - timedelta(days=30)).timestamp())
    batch = []
    for h in range(hours):
        for g in range(per_hour):
            batch.append(
                {
                    "bucket_start": start + h * 3600,
                    "project_id": f"proj_{g % 50:02d}",
                    "model": MODELS[g % len(MODELS)],
                    "user_id": f"user-{g % 7}",
                    "batch": False,
                    "service_tier": "default",
                    "input_tokens": 1000 + g,
                    "output_tokens": 200 + h,
                    "input_cached_tokens": 100,
                    "num_model_requests": 3,
                }
            )
        if len(batch) >= 100_000 or h == hours - 1:
            first = batch[0]["bucket_start"]
            store.replace_usage(
                completions.key,
                "completions",
                3600,
                first,
                batch[-1]["bucket_start"] + 1,
                batch,
                int(NOW.timestamp()),
            )
            batch = []
    # every other planned query is marked collected and empty
    for q in plan_queries(rules, NOW):
        if q.key != completions.key:
            if q.endpoint == "costs":
                store.replace_costs(
                    q.key, int(q.start.timestamp()), int(NOW.timestamp()), [], int(NOW.timestamp())
                )
            else:
                store.replace_usage(
                    q.key,
                    q.endpoint,
                    q.width_seconds,
                    int(q.start.timestamp()),
                    int(NOW.timestamp()),
                    [],
                    int(NOW.timestamp()),
                )


def _peak_rss_mb() -> float:
    """This process's peak RSS. Linux's ``ru_maxrss`` survives ``exec`` (a child started by
    a big parent would report the parent's size), ``VmHWM`` starts afresh."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(url: str, rules_path: str) -> None:
    """The child: load + evaluate like ``check`` does, then the numpy references."""
    import numpy as np

    from budgetguard.rules.needs import needed_from

    rules = load_rules_text(Path(rules_path).read_text())
    store = Store.open(url)
    began = time.perf_counter()
    since = int(needed_from(rules, NOW).timestamp())
    data = SpendData.load(store, plan_queries(rules, NOW), Pricer(), start=since)
    loaded = time.perf_counter() - began
    began = time.perf_counter()
    findings = evaluate(rules, data, NOW)
    evaluated = time.perf_counter() - began
    rss = _peak_rss_mb()

    (key,) = [q.key for q in plan_queries(rules, NOW) if q.key.startswith("completions:1h")]
    columns = ("model", "project_id", "input_tokens", "output_tokens", "input_cached_tokens")
    began = time.perf_counter()
    table = store.usage_table(key, 3600, None, None, columns)
    model_names = sorted({r[0] for r in table})
    model = np.fromiter((model_names.index(r[0]) for r in table), np.int64, len(table))
    group = np.fromiter((hash(r[1]) % 50 for r in table), np.int64, len(table))
    tokens = [np.fromiter((r[i] for r in table), np.int64, len(table)) for i in (2, 3, 4)]
    del table
    prices = np.random.default_rng(1).random((len(model_names), 3)) / 1e6

    def one_pass() -> float:
        began = time.perf_counter()
        cost = sum(tokens[i] * prices[model, i] for i in range(3))
        np.bincount(group, weights=cost)
        return time.perf_counter() - began

    read_and_pass = time.perf_counter() - began + one_pass()
    in_memory = min(one_pass() for _ in range(5))
    print(
        json.dumps(
            {
                "rows": len(model),
                "findings": len(findings),
                "load": loaded,
                "evaluate": evaluated,
                "rss_mb": rss,
                "numpy_pass": in_memory,
                "read_and_pass": read_and_pass,
            }
        )
    )


def _best_of(argv: list[str], runs: int = 3) -> float:
    env = {**os.environ, "BUDGETGUARD_NOW": NOW.isoformat()}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode cached
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - began)
    return min(times)


def _cold_check(url: str, rules_path: Path) -> float:
    argv = [sys.executable, "-m", "budgetguard", "check", "--offline", "-r", str(rules_path)]
    return _best_of([*argv, "--db", url, "--format", "json", "--fail-on", "never"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--budgets", type=int, default=1000)
    parser.add_argument("--keep", help="a folder for the store, reused when already filled")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        _measure(*args.measure)
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder / 'bench.db'}"
        text = rules_text(args.budgets)
        rules_path, small_path = folder / "rules.yaml", folder / "rules-20.yaml"
        rules_path.write_text(text)
        small_path.write_text(rules_text(20))
        marker = folder / "filled.json"
        wanted = {"rows": args.rows, "budgets": args.budgets}
        if not marker.exists() or json.loads(marker.read_text()) != wanted:
            Path(folder / "bench.db").unlink(missing_ok=True)
            store = Store.open(url)
            began = time.perf_counter()
            fill(store, text, args.rows)
            print(f"filled the store in {time.perf_counter() - began:.1f} s", flush=True)
            store.close()
            marker.write_text(json.dumps(wanted))
        runs = []
        for _ in range(3):
            child = subprocess.run(
                [sys.executable, "-m", "benchmarks.evaluate", "--measure", url, str(rules_path)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(child.stdout))
        cold_small = _cold_check(url, small_path)
        cold_all = _cold_check(url, rules_path)
        floor = _best_of([sys.executable, "-c", "import numpy, sqlite3"])

    def med(name: str) -> float:
        return statistics.median(r[name] for r in runs)

    first = runs[0]
    load, evaluated, numpy_pass = med("load"), med("evaluate"), med("numpy_pass")
    total = load + evaluated
    print(
        f"store: {first['rows']:,} usage rows; {args.budgets} budgets -> "
        f"{first['findings']:,} findings (medians of 3 fresh processes)"
    )
    print(f"load what the budgets look at (blocks -> priced cubes): {load:.2f} s")
    print(f"evaluate {args.budgets} budgets: {evaluated:.2f} s")
    print(f"load + evaluate: {total:.2f} s (issue 5: <= 1 s)")
    print(
        f"one numpy pass over the rows in memory: {numpy_pass * 1000:.1f} ms -> evaluate is "
        f"{evaluated / numpy_pass:.0f}x, load + evaluate {total / numpy_pass:.0f}x"
    )
    print(
        f"decoding the rows from the blocks into tuples + that pass: "
        f"{med('read_and_pass'):.2f} s -> "
        f"load + evaluate is {total / med('read_and_pass'):.2f}x of it"
    )
    print(f"peak RSS of the load + evaluate process: {med('rss_mb'):.0f} MB (issue 5: <= 300 MB)")
    print(
        f"cold check --offline: {cold_small:.2f} s with 20 budgets, {cold_all:.2f} s with "
        f"{args.budgets} (best of 3); importing numpy and sqlite3 alone: {floor:.2f} s"
    )


if __name__ == "__main__":
    main()
