"""Cold `check --offline` against a floor that does only what it must.

On the demo store (``budgetguard demo --db``, made once into DIR), with 20 budgets: the
wall time of `budgetguard check --offline -f json` as a new process, and of a floor script
that imports numpy, stdlib sqlite3 and the rules loader, loads the same rules and reads and
decodes the same blocks. Both run alternately, best of 7; the ratio is of the same run.

Targets (issue 16): check <= 1.3x the floor and <= 0.5 s.

Wall times on a shared 2-core machine move by tens of percent; ``--instructions`` also counts
the instructions each executes under valgrind's callgrind (repeatable to the instruction,
whatever else runs), and prints that ratio too.

    python -m benchmarks.cold_check [--keep DIR] [--instructions]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.evaluate import rules_text

FLOOR = """
import sqlite3, sys, zlib
import numpy as np
from budgetguard.rules import load_rules
from budgetguard.rules.needs import plan_queries
from datetime import UTC, datetime
rules = load_rules(sys.argv[1])
keys = [q.key for q in plan_queries(rules, datetime.now(UTC))]
conn = sqlite3.connect(sys.argv[2])
n = 0
for key in keys:
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
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--instructions", action="store_true", help="also count (callgrind)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / "demo.db"
        if not db.exists():
            subprocess.run(
                [sys.executable, "-m", "budgetguard", "demo", "--db", f"sqlite:///{db}"],
                capture_output=True,
                check=True,
            )
        rules = folder / "rules-20.yaml"
        rules.write_text(rules_text(20))
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode
        check = [sys.executable, "-m", "budgetguard", "check", "--offline", "-r", str(rules)]
        check += ["--db", f"sqlite:///{db}", "--format", "json", "--fail-on", "never"]
        floor = [sys.executable, "-c", FLOOR, str(rules), str(db)]
        times: dict[str, list[float]] = {"check": [], "floor": []}
        for _ in range(args.runs):
            times["check"].append(best(check, env))
            times["floor"].append(best(floor, env))
        counts = [instructions(a, env) for a in (check, floor)] if args.instructions else None
    c, f = min(times["check"]), min(times["floor"])
    verdict = "OK" if c <= 1.3 * f and c <= 0.5 else "MISS"
    print(
        f"cold check --offline, 20 budgets, demo store: {c:.3f} s; floor (numpy + sqlite3 + "
        f"rules loader, same blocks): {f:.3f} s; ratio {c / f:.2f}x "
        f"({verdict}: <= 1.3x and <= 0.5 s; best of {args.runs}, alternating)"
    )
    if counts is not None:
        print(
            f"instructions (callgrind): check {counts[0] / 1e6:,.0f} M, floor "
            f"{counts[1] / 1e6:,.0f} M; ratio {counts[0] / counts[1]:.2f}x"
        )


if __name__ == "__main__":
    main()
