"""Rules parsing speed: N budgets through the whole loader (YAML, models, checks).

Targets (issue 16): 1,000 budgets <= 0.1 s and 10,000 <= 1 s, with the same PATH:LINE:COL
errors; and (issue 15) a billion-laughs alias bomb refused well under a second. Beside the
loader, the YAML step alone (``load_yaml``: plain files are built from libyaml's events).
Then the largest file with one anchor (``limit: &first 100``), which takes the node path,
and with one mistake, whose position is found by composing the file again.

    python -m benchmarks.rules_parse [--budgets 1000 10000]
"""

from __future__ import annotations

import argparse
import time

from budgetguard.rules import RulesError, load_rules_text
from budgetguard.rules.yamlio import load_yaml

_BUDGET = """\
  - name: b{i}
    match: {{project: proj_{i}, model: "gpt-4o*"}}
    limit: {limit}
    window: 24h
    thresholds:
      - {{at: 80%, severity: warning}}
      - {{at: 100%, severity: critical}}
"""

_BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


_MERGE_BOMB = (
    "big: &big {" + ", ".join(f"k{i}: {i}" for i in range(5000)) + "}\n"
    "m0: &m0 {<<: *big}\n"
    + "".join(f"m{i + 1}: &m{i + 1} [{', '.join(['*m' + str(i)] * 9)}]\n" for i in range(6))
)


def rules_text(budgets: int) -> str:
    body = "".join(_BUDGET.format(i=i, limit=100 + i) for i in range(budgets))
    return "version: 1\nbudgets:\n" + body


def best_of(runs: int, work: object) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budgets", type=int, nargs="*", default=[1000, 10000])
    args = parser.parse_args()
    for n in args.budgets:
        text = rules_text(n)
        runs = 5 if n <= 1000 else 2
        yaml_s = best_of(runs, lambda t=text: load_yaml(t))
        full_s = best_of(runs, lambda t=text: load_rules_text(t, env={}))
        print(f"{n:>6} budgets: load_yaml {yaml_s:.3f} s, load_rules_text {full_s:.3f} s")
    n = max(args.budgets, default=1000)
    anchored = rules_text(n).replace("limit: 100\n", "limit: &first 100\n", 1)
    node_s = best_of(2, lambda: load_rules_text(anchored, env={}))
    print(f"{n:>6} budgets, one anchor (the node path): load_rules_text {node_s:.3f} s")
    bad = rules_text(n).replace("limit: 600\n", "limit: -1\n")
    start = time.perf_counter()
    try:
        load_rules_text(bad, source="rules.yaml", env={})
    except RulesError as exc:
        print(f"error still placed in {time.perf_counter() - start:.3f} s: {exc.errors[0]}")
    for name, bomb in (("alias bomb", _BOMB), ("merge-key bomb", _MERGE_BOMB)):
        start = time.perf_counter()
        try:
            load_rules_text(bomb, env={})
        except RulesError as exc:
            print(f"{name} refused in {time.perf_counter() - start:.3f} s: {exc.errors[0]}")


if __name__ == "__main__":
    main()
