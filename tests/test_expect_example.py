"""What-ifs on the shipped rules, as issue 23 found them: a plan lands only where that spend
can (a budget on a user, an API key, a model or a line item the plan does not name gets
none, and says so), and every finding shows its planned part (JSON, text, markdown)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import budgetguard_cli


@pytest.fixture
def folder(example_store: Path, tmp_path: Path) -> Path:
    for name in ("store.db", "rules.yaml"):
        shutil.copy(example_store / name, tmp_path / name)
    return tmp_path


def _report(folder: Path, *expect: str) -> dict[str, dict[str, Any]]:
    argv = ["check", "--offline", "-f", "json", "--fail-on", "never"]
    for plan in expect:
        argv += ["--expect", plan]
    code, out, err = budgetguard_cli(folder, *argv)
    assert code in (0, 3), err
    return {b["name"] + json.dumps(b["group"]): b for b in json.loads(out)["budgets"]}


def test_a_plan_lands_only_where_that_spend_can(folder: Path) -> None:
    base = _report(folder)
    assert all(b["planned"] == 0 for b in base.values())

    batch = _report(folder, "project=proj_batch=200")  # issue 23: erin-week got it
    planned = {k for k, b in batch.items() if b["planned"]}
    assert planned == {"org-month{}", 'per-project-day{"project": "proj_batch"}'}
    for key in planned:
        assert batch[key]["spend"] == pytest.approx(base[key]["spend"] + 200)
    erin = batch["erin-week{}"]
    assert erin["spend"] == base["erin-week{}"]["spend"] and erin["severity"] != "critical"
    assert "--expect project=proj_batch=200 not added: it names no user" in erin["data"]["note"]

    runner = _report(folder, "api_key=key_batch_runner=1600")  # issue 23: three went critical
    planned = {k for k, b in runner.items() if b["planned"]}
    assert planned == {"org-month{}", "batch-key-quarter{}"}
    for name, missing in (
        ("chatbot-gpt-4o", "project, model"),
        ("erin-week", "user"),
        ("batch-line-items", "line_item"),
    ):
        budget = runner[name + "{}"]
        assert budget["spend"] == base[name + "{}"]["spend"]
        assert budget["severity"] == base[name + "{}"]["severity"]
        assert f"it names no {missing} (this budget counts only" in budget["data"]["note"]
    day = runner['per-project-day{"project": "proj_batch"}']
    assert "names no single group (give project)" in day["data"]["note"]
    assert runner["spend-spike" + '{"project": "proj_batch"}']["planned"] == 0  # no limit

    named = _report(folder, "user=user-erin=10")  # a plan that names the user reaches it
    assert named["erin-week{}"]["planned"] == 10


def test_text_and_markdown_show_the_planned_part(folder: Path) -> None:
    code, text, err = budgetguard_cli(
        folder,
        "check",
        "--offline",
        "--fail-on",
        "never",
        "--expect",
        "api_key=key_batch_runner=1600",
    )
    assert code == 0, err
    header = next(line for line in text.splitlines() if "budget" in line and "planned" in line)
    assert header.index("forecast") < header.index("planned") < header.index("severity")
    row = next(line for line in text.splitlines() if "batch-key-quarter" in line)
    assert "$1,600.00" in row
    code, markdown, err = budgetguard_cli(
        folder, "check", "--offline", "-f", "markdown", "--fail-on", "never",
        "--expect", "api_key=key_batch_runner=1600",
    )  # fmt: skip
    assert code == 0, err
    assert "| forecast | planned | severity |" in markdown
    assert "| \\$1,600.00 |" in markdown  # ($ escaped for markdown)
    code, plain, err = budgetguard_cli(folder, "check", "--offline", "--fail-on", "never")
    assert code == 0 and "planned" not in plain, err  # no plan, no column
