"""``budgetguard doctor [--probe-writes]``, the console script against the simulator: which
levers the key may read, and write by re-writing the current value (never changing it)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from budgetguard.simulator import SimulatorServer, build_api
from tests.conftest import NOW, budgetguard_cli


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(build_api(now=NOW, days=40)) as server:
        yield server


def lines(out: str) -> dict[str, str]:
    """``access lever`` -> outcome, from the table."""
    table = {}
    for line in out.splitlines()[1:]:
        access, rest = line.split(None, 1)
        lever, _, outcome = rest.rpartition("  ")
        table[f"{access} {lever.strip()}"] = outcome.strip()
    return table


def test_reads_of_every_lever(tmp_path: Path, sim: SimulatorServer) -> None:
    (tmp_path / "rules.yaml").write_text("version: 1\n")
    code, out, err = budgetguard_cli(tmp_path, "doctor", base_url=sim.base_url)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "doctor: reads with the admin key; project probed: proj_chatbot"
    table = lines(out)
    assert len(table) == 9 and all(v.startswith("yes") for v in table.values())
    assert sim.api.controls.writes == 0


def test_probe_writes_rewrites_what_is_there_and_changes_nothing(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    (tmp_path / "rules.yaml").write_text(
        "version: 1\ncontrols: {projects: {proj_search: {spend_limit: 250}}}\n"
    )
    controls = sim.api.controls
    controls.limits["proj_search"] = 25_000
    before = (dict(controls.limits), {p: dict(t) for p, t in controls.tools.items()})
    code, out, _ = budgetguard_cli(tmp_path, "doctor", "--probe-writes", base_url=sim.base_url)
    assert code == 0, out
    assert "project probed: proj_search" in out.splitlines()[0]
    table = lines(out)
    assert table["write project spend limit"].startswith("yes (req_")
    assert table["write hosted tools"].startswith("yes")
    assert table["write org spend limit"] == "not probed (nothing set to re-write)"
    assert table["write model permissions"] == "not probed (nothing set to re-write)"
    assert table["write archive a project"] == "not probed (irreversible)"
    assert (dict(controls.limits), {p: dict(t) for p, t in controls.tools.items()}) == before
    assert controls.writes == 3  # the limit, one tool, one rate limit


def test_a_key_that_may_only_read_is_exit_3(tmp_path: Path, sim: SimulatorServer) -> None:
    (tmp_path / "rules.yaml").write_text("version: 1\n")
    sim.api.controls.limits["proj_chatbot"] = 10_000
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGETGUARD_", "OPENAI"))}
    env |= {
        "OPENAI_ADMIN_KEY": "sk-admin-test-reader",
        "BUDGETGUARD_OPENAI_ACTION_KEY": "sk-admin-readonly-actions",
        "BUDGETGUARD_OPENAI_BASE_URL": sim.base_url,
    }
    script = str(Path(sys.executable).with_name("budgetguard"))
    done = subprocess.run(
        [script, "doctor", "--probe-writes"], env=env, cwd=tmp_path, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    assert "writes with the action key (BUDGETGUARD_OPENAI_ACTION_KEY)" in done.stdout
    table = lines(done.stdout)
    assert table["read project spend limit"].startswith("yes")
    assert table["write project spend limit"] == "refused (HTTP 403)"
    assert "sk-admin-readonly-actions" not in done.stdout + done.stderr
