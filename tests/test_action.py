"""The GitHub Action's own script steps, run here as a runner would run them: the install
from the action's checkout into a virtual environment, then the check against the simulator,
with GITHUB_OUTPUT, GITHUB_ENV and GITHUB_STEP_SUMMARY as files. Only what needs GitHub
(``actions/setup-python``) is left out: the Python running the tests stands in for it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from budgetguard.simulator import SimulatorServer, build_api
from tests.conftest import ADMIN_KEY, NOW

ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
STEPS = ACTION["runs"]["steps"]
EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")

RULES = """\
version: 1
budgets:
  - {name: org-day, limit: 100000, window: 24h, cost_source: estimate}
"""


def test_the_action_installs_itself_never_a_package_from_an_index() -> None:
    assert STEPS[0]["uses"].startswith("actions/setup-python@")
    install = STEPS[1]["run"]
    assert '"$ACTION_PATH"' in install and "python -m venv" in install
    assert STEPS[1]["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert "version" not in ACTION["inputs"]  # no requirement specifier to install by name
    for step in STEPS:  # inputs reach scripts as environment variables, never pasted in
        assert "${{" not in step.get("run", ""), step["name"]


def run_step(step: dict[str, Any], inputs: dict[str, str], runner: dict[str, str]) -> int:
    """One `run:` step as the runner runs it: its env with the expressions evaluated, the
    variables GITHUB_ENV set so far, bash with -e and -o pipefail."""

    def evaluate(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "github.action_path":
            return str(ROOT)
        if name.startswith("inputs."):
            key = name.removeprefix("inputs.")
            return inputs.get(key, ACTION["inputs"][key].get("default", ""))
        raise AssertionError(f"unexpected expression {name}")

    env = dict(runner)
    env_file = Path(runner["GITHUB_ENV"])
    for line in env_file.read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    for key, value in step.get("env", {}).items():
        env[key] = EXPRESSION.sub(evaluate, str(value))
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        env=env,
        cwd=runner["WORKSPACE"],
        timeout=600,
        check=False,
    ).returncode


def outputs(runner: dict[str, str]) -> dict[str, str]:
    lines = Path(runner["GITHUB_OUTPUT"]).read_text().splitlines()
    Path(runner["GITHUB_OUTPUT"]).write_text("")
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A runner's environment after the install step ran (once: it installs for real)."""
    tmp = tmp_path_factory.mktemp("runner")
    workspace = tmp / "workspace"
    workspace.mkdir()
    (workspace / "rules.yaml").write_text(RULES)
    files = {n: tmp / n.lower() for n in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY")}
    for path in files.values():
        path.write_text("")
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    # what actions/setup-python leaves: a `python` on PATH (here, the one running the tests)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env |= {k: str(v) for k, v in files.items()}
    env |= {"RUNNER_TEMP": str(tmp), "WORKSPACE": str(workspace), "CI": "true"}
    with SimulatorServer(build_api(now=NOW, days=5)) as sim:
        env["BUDGETGUARD_OPENAI_BASE_URL"] = sim.base_url  # the job's env, as a user sets it
        env["BUDGETGUARD_NOW"] = datetime.fromtimestamp(NOW, UTC).isoformat()
        assert run_step(STEPS[1], {}, env) == 0
        venv = Path(files["GITHUB_ENV"].read_text().strip().split("=", 1)[1])
        assert (venv / "bin" / "budgetguard").exists()
        assert str(venv).startswith(str(tmp))  # its own environment, not the tests'
        yield env


def test_outputs_are_what_the_check_decided_expect_included(runner: dict[str, str]) -> None:
    inputs = {"admin-key": ADMIN_KEY}
    assert run_step(STEPS[2], inputs, runner) == 0
    ok = outputs(runner)
    assert ok["status"] == "ok" and ok["exit-code"] == "0"
    assert ok["budgets"] == "1" and ok["critical"] == "0"
    report = json.loads(Path(ok["report"]).read_text())
    assert report["status"] == "ok"
    assert "org-day" in Path(runner["GITHUB_STEP_SUMMARY"]).read_text()

    # planned spend past the limit: the step fails as critical, and says so
    inputs["expect"] = "250000\n"
    assert run_step(STEPS[2], inputs, runner) == 1
    critical = outputs(runner)
    assert critical["status"] == "critical" and critical["exit-code"] == "1"
    assert critical["critical"] == "1"
    assert json.loads(Path(critical["report"]).read_text())["budgets"][0]["spend"] > 250000

    inputs["fail-on"] = "never"  # still critical, but the gate is off
    assert run_step(STEPS[2], inputs, runner) == 0
    assert outputs(runner)["status"] == "critical"


def test_bad_input_fails_with_code_2_and_status_error(runner: dict[str, str]) -> None:
    inputs = {"admin-key": ADMIN_KEY, "expect": "lots"}
    assert run_step(STEPS[2], inputs, runner) == 2
    out = outputs(runner)
    assert out["status"] == "error" and out["exit-code"] == "2"


def test_an_input_is_never_run_as_shell(runner: dict[str, str], tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    inputs = {"admin-key": ADMIN_KEY, "fail-on": f'critical"; touch {marker}; echo "'}
    assert run_step(STEPS[2], inputs, runner) == 2  # a bad --fail-on, nothing more
    assert not marker.exists()
    outputs(runner)
