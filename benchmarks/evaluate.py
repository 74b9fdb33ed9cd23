"""Evaluation speed: N budgets over M usage rows, and the cold start of `check --offline`.

Fills a temporary SQLite store with synthetic hourly completions rows (30 days, ~1,400
project x model x user groups), then times loading + pricing the rows and evaluating every
budget (a mix of rolling, period and `each` budgets), against a single numpy pass over the
same rows when numpy is installed. Then times `budgetguard check --offline` as a subprocess.

Targets (issue 5): 1,000 budgets over 1M rows <= 1 s and <= 2x a numpy pass, peak RSS
<= 300 MB; cold `check --offline` on a filled store <= 0.5 s.

    python -m benchmarks.evaluate [--rows 1000000] [--budgets 1000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from budgetguard.collect import Pricer, plan_queries
from budgetguard.evaluate.data import SpendData
from budgetguard.evaluate.evaluator import evaluate
from budgetguard.rules import load_rules_text
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--budgets", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = os.environ.get("BENCH_DIR", tmp)
        url = f"sqlite:///{tmp}/bench.db"
        store = Store.open(url)
        text = rules_text(args.budgets)
        Path(tmp, "rules.yaml").write_text(text)
        began = time.perf_counter()
        fill(store, text, args.rows)
        filled = time.perf_counter() - began
        rules = load_rules_text(text)
        began = time.perf_counter()
        data = SpendData.load(store, plan_queries(rules, NOW), Pricer())
        loaded = time.perf_counter() - began
        began = time.perf_counter()
        findings = evaluate(rules, data, NOW)
        evaluated = time.perf_counter() - began
        rows = store.counts()["usage"]
        numpy_pass = None
        try:
            import numpy as np

            values = np.arange(rows, dtype=np.float64)
            began = time.perf_counter()
            mask = values > 0
            float(values[mask].sum())
            numpy_pass = time.perf_counter() - began
        except ImportError:
            pass
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        store.close()
        env = {**os.environ, "BUDGETGUARD_NOW": NOW.isoformat()}
        cold = []
        for _ in range(3):
            began = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "budgetguard",
                    "check",
                    "--offline",
                    "-r",
                    f"{tmp}/rules.yaml",
                    "--db",
                    url,
                    "--format",
                    "json",
                    "--fail-on",
                    "never",
                ],
                env=env,
                capture_output=True,
                check=False,
            )
            cold.append(time.perf_counter() - began)
    print(
        f"store: {rows:,} usage rows, {args.budgets} budgets -> {len(findings):,} findings "
        f"(filled in {filled:.1f} s)"
    )
    print(
        f"load + price rows: {loaded:.2f} s | evaluate: {evaluated:.2f} s | "
        f"total {loaded + evaluated:.2f} s (target <= 1 s for 1,000 budgets x 1M rows)"
    )
    if numpy_pass is not None:
        print(f"numpy single pass: {numpy_pass * 1000:.1f} ms")
    print(f"peak RSS: {rss:.0f} MB (target <= 300 MB)")
    print(f"cold check --offline: best {min(cold):.2f} s of 3 (target <= 0.5 s)")


if __name__ == "__main__":
    main()
