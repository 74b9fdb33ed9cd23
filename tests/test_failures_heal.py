"""Failures heal: one run that fails all at once (a refused key, a hung API) leaves budgets
``unknown`` only while data is really missing. A query that had nothing to fetch is not failed
by a run that failed elsewhere, and the next healthy run clears what it proves. Real `check`
processes against the simulator, on a warm store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.store import Store
from tests.conftest import ADMIN_KEY, NOW

BUDGETGUARD = str(Path(sys.executable).with_name("budgetguard"))
RULES = """
version: 1
budgets:
  - {name: org-month, limit: 100000000, period: month}
  - {name: org-quarter, limit: 100000000, period: quarter}
  - {name: org-year, limit: 100000000, period: year, cost_source: estimate}
  - {name: tokens-quarter, limit: 100000000000000, period: quarter, metric: tokens}
  - {name: day, limit: 100000000, window: 24h}
  - {name: per-project, limit: 100000000, period: month, match: {project: "*"}, each: project}
"""


def check(
    tmp_path: Path, sim: SimulatorServer, *flags: str, key: str = ADMIN_KEY, deadline: str = "20"
) -> Any:
    extra = ["-f", "json", *flags]
    env = dict(
        os.environ,
        OPENAI_ADMIN_KEY=key,
        BUDGETGUARD_OPENAI_BASE_URL=sim.base_url,
        BUDGETGUARD_NOW=datetime.fromtimestamp(NOW, UTC).isoformat(),
        BUDGETGUARD_COLLECT_DEADLINE=deadline,
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    done = subprocess.run(
        [BUDGETGUARD, "check", "-r", str(rules), "--db", f"sqlite:///{tmp_path / 'h.db'}", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def unknown(report: dict[str, Any]) -> list[str]:
    return [b["name"] for b in report["budgets"] if b["severity"] == "unknown"]


def failed_marks(tmp_path: Path) -> list[str]:
    store = Store.open(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        return [m.query_key for m in store.sync_marks() if m.last_error]
    finally:
        store.close()


def test_one_refused_run_on_a_warm_store_heals_at_the_next_healthy_one(tmp_path: Path) -> None:
    with SimulatorServer(build_api(now=NOW, days=400, seed=3)) as sim:
        code, report, err = check(tmp_path, sim, "--fail-on", "never")
        assert code == 0 and not unknown(report), err
        code, report, err = check(tmp_path, sim, key="sk-proj-typo")  # the API refuses it
        assert code == 3 and len(unknown(report)) == len(report["budgets"])
        # the daily usage before the hourly data had nothing to fetch: not failed by it
        idle = [k for k in failed_marks(tmp_path) if ":1d:" in k and not k.startswith("costs")]
        assert idle == [], failed_marks(tmp_path)
        code, report, err = check(tmp_path, sim, "--fail-on", "never")
        assert code == 0, err
        assert not unknown(report)
        assert failed_marks(tmp_path) == []


def test_a_hung_run_heals_at_the_next_healthy_one(tmp_path: Path) -> None:
    with SimulatorServer(build_api(now=NOW, days=400, seed=3)) as sim:
        assert check(tmp_path, sim, "--fail-on", "never")[0] == 0
        for endpoint in ("costs", "completions", "embeddings"):
            sim.faults.script("hang", times=50, endpoint=endpoint, seconds=30)
        try:
            code, report, _ = check(tmp_path, sim, deadline="2")
        finally:
            sim.faults.clear()
        assert code == 3 and unknown(report)
        code, report, err = check(tmp_path, sim, "--fail-on", "never")
        assert code == 0 and not unknown(report), err
        assert failed_marks(tmp_path) == []
