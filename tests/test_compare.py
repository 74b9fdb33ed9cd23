"""`check --compare`: only with Markdown, only a JSON report; what the Action's summary uses
(tests/test_action.py runs it end to end)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BUDGETGUARD = str(Path(sys.executable).with_name("budgetguard"))


@pytest.mark.parametrize(
    ("content", "extra", "said"),
    [
        ("not json", [], "not a JSON report"),
        ('{"status": "ok"}', [], "not a budgetguard JSON report (no budgets list)"),
        ('{"budgets": [{"name": 3}]}', [], "not a budgetguard JSON report"),
        ('{"budgets": []}', ["-f", "json"], "--compare needs --format markdown"),
    ],
)
def test_a_compare_file_that_is_not_a_report_is_bad_input(
    tmp_path: Path, content: str, extra: list[str], said: str
) -> None:
    previous = tmp_path / "previous.json"
    previous.write_text(content)
    done = subprocess.run(
        [BUDGETGUARD, "check", "--offline", "-f", "markdown", *extra, "--compare", str(previous)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert said in done.stderr and len(done.stderr.splitlines()) == 1
