"""The GitHub Action's own script steps, run here as a runner would run them: where it lives,
the install from the action's checkout into a virtual environment, then the check against the
simulator, with GITHUB_OUTPUT, GITHUB_ENV and GITHUB_STEP_SUMMARY as files and a fake GitHub
API on loopback for the pull-request comment. Only what needs GitHub (``actions/setup-python``
and ``actions/cache``) is left out: the Python running the tests stands in for the first, and
the state folder simply stays between runs, as the cache would restore it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from budgetguard.simulator import SimulatorServer, build_api
from tests.conftest import ADMIN_KEY, INSTALL_TIMEOUT, NOW

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(INSTALL_TIMEOUT)  # the first test's fixture installs
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
STEPS = ACTION["runs"]["steps"]
STEP = {step.get("id") or step.get("name"): step for step in STEPS}
INSTALL = STEP["Install budgetguard from the action's checkout"]
EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")

RULES = """\
version: 1
budgets:
  - {name: org-day, limit: 100000, window: 24h, cost_source: estimate}
"""


def test_the_action_installs_itself_once_and_caches_it_never_a_package_from_an_index() -> None:
    assert STEPS[0]["uses"].startswith("actions/setup-python@")
    assert '"$ACTION_PATH"' in INSTALL["run"] and "python -m venv" in INSTALL["run"]
    assert INSTALL["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert INSTALL["if"] == "steps.venv-cache.outputs.cache-hit != 'true'"
    assert STEP["venv-cache"]["uses"].startswith("actions/cache@")
    assert "steps.paths.outputs.key" in STEP["venv-cache"]["with"]["key"]
    state = next(s for s in STEPS if s.get("name") == "Restore the store and the last report")
    assert state["with"]["path"] == "${{ steps.paths.outputs.state }}"
    assert "version" not in ACTION["inputs"]  # no requirement specifier to install by name
    for step in STEPS:  # inputs reach scripts as environment variables, never pasted in
        assert "${{" not in step.get("run", ""), step["name"]


def run_step(
    step: dict[str, Any], inputs: dict[str, str], runner: dict[str, str]
) -> tuple[int, str]:
    """One `run:` step as the runner runs it: its env with the expressions evaluated, the
    variables GITHUB_ENV set so far, bash with -e and -o pipefail; (exit code, stdout)."""

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
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        env=env,
        cwd=runner["GITHUB_WORKSPACE"],
        stdout=subprocess.PIPE,
        text=True,
        timeout=600,
        check=False,
    )
    return done.returncode, done.stdout


def outputs(runner: dict[str, str]) -> dict[str, str]:
    lines = Path(runner["GITHUB_OUTPUT"]).read_text().splitlines()
    Path(runner["GITHUB_OUTPUT"]).write_text("")
    return dict(line.split("=", 1) for line in lines if "=" in line)


def summary(runner: dict[str, str]) -> str:
    text = Path(runner["GITHUB_STEP_SUMMARY"]).read_text()
    Path(runner["GITHUB_STEP_SUMMARY"]).write_text("")
    return text


class FakeGitHub(ThreadingHTTPServer):
    """The three calls of the comment script, as GitHub's REST API answers them."""

    def __init__(self) -> None:
        self.comments: list[dict[str, Any]] = [{"id": 1, "body": "LGTM"}]
        self.calls: list[tuple[str, str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> dict[str, Any]:
                size = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(size)) if size else {}
                outer.calls.append((self.command, self.path, self.headers["Authorization"]))
                return dict(body)

            def do_GET(self) -> None:
                self._record()
                assert self.path.startswith("/repos/acme/app/issues/7/comments?")
                self._answer(200, outer.comments if "page=1" in self.path else [])

            def do_POST(self) -> None:
                body = self._record()
                assert self.path == "/repos/acme/app/issues/7/comments"
                outer.comments.append({"id": 100 + len(outer.comments), "body": body["body"]})
                self._answer(201, outer.comments[-1])

            def do_PATCH(self) -> None:
                body = self._record()
                found = next(c for c in outer.comments if self.path.endswith(f"/{c['id']}"))
                found["body"] = body["body"]
                self._answer(200, found)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(scope="session")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A runner's environment after the install ran (once a session: it installs for real,
    which takes minutes on a loaded machine: the tests' timeout allows for it)."""
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
    env |= {
        "RUNNER_TEMP": str(tmp / "temp"),
        "RUNNER_TOOL_CACHE": str(tmp / "tools"),
        "GITHUB_WORKSPACE": str(workspace),
        "CI": "true",
    }
    (tmp / "temp").mkdir()
    with SimulatorServer(build_api(now=NOW, days=5)) as sim:
        env["BUDGETGUARD_OPENAI_BASE_URL"] = sim.base_url  # the job's env, as a user sets it
        env["BUDGETGUARD_NOW"] = datetime.fromtimestamp(NOW, UTC).isoformat()
        assert run_step(STEP["paths"], {}, env)[0] == 0
        found = outputs(env)
        assert found["venv"].startswith(str(tmp / "tools")) and len(found["key"]) > 16
        assert run_step(INSTALL, {}, env)[0] == 0
        venv = Path(found["venv"])
        assert (venv / "bin" / "budgetguard").exists()
        yield env


def test_a_pull_request_gets_annotations_a_summary_with_changes_and_one_comment(
    runner: dict[str, str], tmp_path: Path
) -> None:
    github = FakeGitHub()
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    env = runner | {
        "GITHUB_REPOSITORY": "acme/app",
        "GITHUB_API_URL": github.url,
        "GITHUB_EVENT_PATH": str(event),
    }
    inputs = {"admin-key": ADMIN_KEY, "github-token": "ghs_secret_token_42"}
    code, stdout = run_step(STEP["check"], inputs, env)
    assert code == 0, stdout
    ok = outputs(runner)
    assert ok["status"] == "ok" and ok["exit-code"] == "0" and ok["budgets"] == "1"
    assert json.loads(Path(ok["report"]).read_text())["status"] == "ok"
    first = summary(runner)
    assert "No budget at risk." in first and "<details><summary>All 1 budgets</summary>" in first
    assert "org-day" in first and "Since the last run" not in first  # nothing to compare yet
    assert "::error" not in stdout and "::warning" not in stdout  # nothing to annotate
    # the store and the report live outside the checkout
    workspace = Path(runner["GITHUB_WORKSPACE"])
    assert sorted(p.name for p in workspace.iterdir()) == ["rules.yaml"]
    assert (Path(ok["report"]).parent / "budgetguard.db").exists()

    # the next push plans spend past the limit: critical, annotated, what changed said
    inputs["expect"] = "250000\n"
    code, stdout = run_step(STEP["check"], inputs, env)
    assert code == 1
    critical = outputs(runner)
    assert critical["status"] == "critical" and critical["critical"] == "1"
    assert re.search(
        r"^::error title=budgetguard org-day::critical org-day: (≥ )?\$250,", stdout, re.M
    )
    second = summary(runner)
    assert "**Since the last run** (2026-11-22T10:17:31Z, status ok):" in second
    assert "`org-day`: ok → **critical**" in second
    assert "**What the plan adds** (`--expect`):" in second and "+$250,000.00" in second
    assert "**At risk:**" in second and "| 🔴 critical | org-day |" in second

    # one comment, posted then updated in place; the token only in its header
    ours = [c for c in github.comments if c["body"].startswith("<!-- budgetguard-check -->")]
    assert len(ours) == 1 and len(github.comments) == 2
    assert "critical" in ours[0]["body"] and "Since the last run" in ours[0]["body"]
    methods = [method for method, _, _ in github.calls]
    assert methods == ["GET", "POST", "GET", "PATCH"]
    assert {auth for _, _, auth in github.calls} == {"Bearer ghs_secret_token_42"}
    assert "ghs_secret_token_42" not in stdout + second
    github.shutdown()

    inputs["fail-on"] = "never"  # still critical, but the gate is off
    assert run_step(STEP["check"], inputs | {"github-token": ""}, runner)[0] == 0
    assert outputs(runner)["status"] == "critical"
    summary(runner)


def test_bad_input_fails_with_code_2_and_says_why(runner: dict[str, str]) -> None:
    code, stdout = run_step(STEP["check"], {"admin-key": ADMIN_KEY, "expect": "lots"}, runner)
    assert code == 2
    out = outputs(runner)
    assert out["status"] == "error" and out["exit-code"] == "2"
    said = summary(runner)
    assert "### budgetguard: ❌ bad input (exit 2)" in said
    assert "--expect 'lots': the amount must be a number" in said
    assert "::error title=budgetguard exit 2 (bad input)::budgetguard: --expect" in stdout


def test_data_unavailable_fails_with_code_3_and_says_why(runner: dict[str, str]) -> None:
    code, stdout = run_step(STEP["check"], {"admin-key": "sk-proj-not-an-admin-key"}, runner)
    assert code == 3
    assert outputs(runner)["status"] == "unknown"
    said = summary(runner)
    assert "### budgetguard: ❌ data unavailable (exit 3)" in said and "admin key" in said
    assert "| ❔ unknown | org-day |" in said  # the report still shows what is unknown
    assert "::error title=budgetguard exit 3 (data unavailable)::" in stdout


def test_a_workspace_env_file_cannot_redirect_the_key_or_the_clock(
    runner: dict[str, str],
) -> None:
    """A pull request adding `.env` with another API base and a past instant: the Action
    runs outside the checkout, so neither is read."""
    trap = FakeGitHub()  # any listener: it must never be asked anything
    workspace = Path(runner["GITHUB_WORKSPACE"])
    (workspace / ".env").write_text(
        f"BUDGETGUARD_OPENAI_BASE_URL={trap.url}/v1\nBUDGETGUARD_NOW=2026-11-01T00:00:00Z\n"
        "BUDGETGUARD_DATABASE_URL=sqlite:///stolen.db\n"
    )
    try:
        code, _ = run_step(STEP["check"], {"admin-key": ADMIN_KEY}, runner)
        assert code == 0
        report = json.loads(Path(outputs(runner)["report"]).read_text())
        assert report["evaluated_at"] == "2026-11-22T10:17:31Z"
        assert trap.calls == []
        assert not (workspace / "stolen.db").exists()
        summary(runner)
    finally:
        (workspace / ".env").unlink()
        trap.shutdown()


def test_an_input_is_never_run_as_shell(runner: dict[str, str], tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    inputs = {"admin-key": ADMIN_KEY, "fail-on": f'critical"; touch {marker}; echo "'}
    assert run_step(STEP["check"], inputs, runner)[0] == 2  # a bad --fail-on, nothing more
    assert not marker.exists()
    outputs(runner)
    summary(runner)
