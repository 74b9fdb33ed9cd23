"""Cold `check --offline` against a floor that does only what it must, on a store with data.

The store is the demo's (``budgetguard demo -r RULES --db --now T``, made once into DIR):
the simulator's organisation collected for these 20 budgets (on its projects and models, so
every budget reads rows), at a fixed time ``T`` that the check is run at too. The run fails
when a finding is `unknown`: a check that reads nothing measures nothing. Timed: `budgetguard
check --offline -f json` as a new process; the floor, a script that imports numpy, stdlib
sqlite3 and the rules loader, loads the same rules and reads and decodes the same blocks;
and a minimal floor, the same reads without the rules loader (what any Python reader of
this store pays). All run alternately; medians and best of N, ratios of the same run.

Targets (issue 25): check <= 1.3x the floor and <= 0.5 s, with data.

Wall times on a shared 2-core machine move by tens of percent; ``--instructions`` also counts
the instructions each executes under valgrind's callgrind (repeatable to the instruction,
whatever else runs), and prints that ratio too.

    python -m benchmarks.cold_check [--keep DIR] [--instructions]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECTS = ("proj_chatbot", "proj_search", "proj_batch", "proj_media", "proj_internal")


def rules_text(budgets: int) -> str:
    """``budgets`` budgets of four shapes on the simulator's projects and models."""
    lines = ["version: 1", "budgets:"]
    for i in range(budgets):
        project = PROJECTS[i % len(PROJECTS)]
        shape = i % 4
        if shape == 0:
            lines.append(
                f"  - {{name: b{i}, limit: 500, window: 24h, match: {{project: {project}}}, "
                "cost_source: estimate}"
            )
        elif shape == 1:
            lines.append(
                f"  - {{name: b{i}, limit: 5000, period: month, cost_source: estimate,"
                " match: {model: 'gpt-4o*'}}"
            )
        elif shape == 2:
            lines.append(
                f"  - {{name: b{i}, limit: 100, period: day, each: project, cost_source: estimate}}"
            )
        else:
            lines.append(
                f"  - {{name: b{i}, limit: 100000000, window: 7d, metric: tokens,"
                f" match: {{project: {project}}}}}"
            )
    return "\n".join(lines) + "\n"


FLOOR = """
import sqlite3, sys, zlib
import numpy as np
from budgetguard.rules import load_rules
from budgetguard.rules.needs import plan_queries
from datetime import UTC, datetime
rules = load_rules(sys.argv[1])
keys = [q.key for q in plan_queries(rules, datetime.now(UTC))]
conn = sqlite3.connect(sys.argv[2])
n = rows = 0
for key in keys:
    for count, data in conn.execute(
        "SELECT row_count, data FROM bg_usage_rollups WHERE query_key = ? ORDER BY day_start",
        (key,),
    ):
        n += len(np.frombuffer(zlib.decompress(data), dtype=np.uint8))
        rows += count
print(rows)
"""

#: The same reads, the query keys given: no rules loader (pydantic, yaml).
MINIMAL = """
import sqlite3, sys, zlib
import numpy as np
conn = sqlite3.connect(sys.argv[2])
n = 0
for key in sys.argv[3:]:
    for count, data in conn.execute(
        "SELECT row_count, data FROM bg_usage_rollups WHERE query_key = ? ORDER BY day_start",
        (key,),
    ):
        n += len(np.frombuffer(zlib.decompress(data), dtype=np.uint8))
print(n)
"""


def best(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, check=False)
    return time.perf_counter() - began


def instructions(argv: list[str], env: dict[str, str]) -> int:
    """Instructions ``argv`` executes (callgrind; OpenBLAS on one thread so none spin)."""
    tool = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    env = {**env, "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(tool + argv, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"callgrind gave no count: {done.stderr[-300:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", help="a folder for the demo store, reused when there")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--instructions", action="store_true", help="also count (callgrind)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / "cold.db"
        rules = folder / "rules-20.yaml"
        stamp = folder / "cold.json"
        text = rules_text(20)
        if not (db.exists() and stamp.exists() and rules.exists() and rules.read_text() == text):
            db.unlink(missing_ok=True)
            rules.write_text(text)
            at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
            demo = [sys.executable, "-m", "budgetguard", "demo", "-r", str(rules)]
            demo += ["--db", f"sqlite:///{db}", "--now", at.isoformat()]
            subprocess.run(demo, capture_output=True, check=True)
            stamp.write_text(json.dumps({"now": at.isoformat()}))
        now = json.loads(stamp.read_text())["now"]
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode
        check = [sys.executable, "-m", "budgetguard", "check", "--offline", "-r", str(rules)]
        check += ["--db", f"sqlite:///{db}", "--format", "json", "--fail-on", "never"]
        check += ["--now", now]
        report = json.loads(subprocess.run(check, env=env, capture_output=True, check=True).stdout)
        unknown = sorted({str(f["name"]) for f in _findings(report) if f["severity"] == "unknown"})
        if unknown:
            raise SystemExit(f"budgets read nothing, so this measures nothing: {unknown}")
        floor = [sys.executable, "-c", FLOOR, str(rules), str(db)]
        rows = int(subprocess.run(floor, capture_output=True, text=True, check=True).stdout)
        keys = _keys(rules)
        minimal = [sys.executable, "-c", MINIMAL, str(rules), str(db), *keys]
        commands = {"check": check, "floor": floor, "minimal": minimal}
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(best(argv, env))
        counts = {n: instructions(a, env) for n, a in commands.items()} if args.instructions else {}
    med = {n: statistics.median(t) for n, t in times.items()}
    low = {n: min(t) for n, t in times.items()}
    c, f, m = med["check"], med["floor"], med["minimal"]
    verdict = "OK" if c <= 1.3 * f and c <= 0.5 else "MISS"
    print(
        f"cold check --offline, 20 budgets ({len(_findings(report))} findings, none unknown), "
        f"{rows:,} usage rows in the blocks read, at {now}"
    )
    print(
        f"  wall, median of {args.runs} (best): check {c:.3f} s ({low['check']:.3f}); floor "
        f"(numpy + sqlite3 + rules loader, same blocks) {f:.3f} s ({low['floor']:.3f}); "
        f"minimal floor (numpy + sqlite3, same blocks) {m:.3f} s ({low['minimal']:.3f})"
    )
    print(
        f"  ratios: check / floor {c / f:.2f}x, check / minimal {c / m:.2f}x "
        f"({verdict}: <= 1.3x the floor and <= 0.5 s)"
    )
    if counts:
        print(
            f"  instructions (callgrind): check {counts['check'] / 1e6:,.0f} M, floor "
            f"{counts['floor'] / 1e6:,.0f} M, minimal {counts['minimal'] / 1e6:,.0f} M; ratios "
            f"{counts['check'] / counts['floor']:.2f}x the floor, "
            f"{counts['check'] / counts['minimal']:.2f}x the minimal floor"
        )


def _findings(report: object) -> list[dict[str, object]]:
    """The findings of ``check -f json``'s report."""
    assert isinstance(report, dict)
    return [f for f in report["budgets"] if isinstance(f, dict)]


def _keys(rules: Path) -> list[str]:
    from budgetguard.rules import load_rules
    from budgetguard.rules.needs import plan_queries

    return [q.key for q in plan_queries(load_rules(str(rules)), datetime.now(UTC))]


if __name__ == "__main__":
    main()
