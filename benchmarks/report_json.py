"""`check -f json` report: time and memory per finding, streamed vs built whole.

Makes N findings of three budgets (plain, `each` with people keys, a token budget), then
writes the JSON report to a file twice, side by side: the way `check` does now (``write_json``,
streamed) and the report built whole first (``json_text(to_json(...))``, as before). Time is
the best of 3; memory is the peak of Python allocations during the call (tracemalloc, a
separate run), per finding. The two outputs are checked to be identical.

Targets (issue 16): <= 5 us and <= 1 KB per finding.

    python -m benchmarks.report_json [--findings 200000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from budgetguard.report import json_text, to_json, write_json
from tests.test_report_json import NOW, findings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--findings", type=int, default=200_000)
    args = parser.parse_args()
    found = findings(args.findings, seed=1)
    alerts = [{"budget": "plain", "group": {}, "kind": "threshold", "key": "k"}]

    def streamed(out: TextIO) -> None:
        write_json(out, found, alerts, NOW)

    def whole(out: TextIO) -> None:
        out.write(json_text(to_json(found, alerts, NOW)) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        texts = {}
        for name, fn in (("streamed (check now)", streamed), ("built whole (before)", whole)):
            path = Path(tmp) / "report.json"
            seconds = min(_timed(fn, path) for _ in range(3))
            peak = _peak(fn, path)
            texts[name] = path.read_text()
            per_us, per_kb = 1e6 * seconds / len(found), peak / len(found) / 1024
            verdict = "OK" if per_us <= 5 and per_kb <= 1 else "MISS"
            print(
                f"{name}: {len(found):,} findings in {seconds:.2f} s = {per_us:.1f} us and "
                f"{per_kb:.2f} KB per finding ({verdict}: <= 5 us and <= 1 KB)"
            )
        assert len(set(texts.values())) == 1, "the two reports differ"
        print("outputs identical")


def _timed(fn: Callable[[TextIO], None], path: Path) -> float:
    with path.open("w", encoding="utf-8") as out:
        began = time.perf_counter()
        fn(out)
        return time.perf_counter() - began


def _peak(fn: Callable[[TextIO], None], path: Path) -> int:
    with path.open("w", encoding="utf-8") as out:
        tracemalloc.start()
        try:
            fn(out)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


if __name__ == "__main__":
    main()
