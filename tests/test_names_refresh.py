"""The names refresh inside the collection's deadline, as a user runs `check`: real processes
against the simulator over loopback, its directory lists misbehaving."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.store import Store
from budgetguard.store.directory import DirectoryStore
from tests.conftest import ADMIN_KEY

DEADLINE = 3.0
RULES = """
version: 1
budgets:
  - {name: day, limit: 10000000, period: day}
  - {name: alpha, limit: 10000000, window: 24h, match: {project: "Support*"}}
  - {name: chat, limit: 10000000, period: day, match: {project: proj_chatbot}}
  - {name: per, limit: 10000000, period: day, match: {project: "*"}, each: project}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("names")
    now = int(time.time()) - 5
    rules = base / "rules.yaml"
    rules.write_text(RULES)
    with SimulatorServer(build_api(now=now, days=3, seed=5)) as sim:
        env = {
            **os.environ,
            "OPENAI_ADMIN_KEY": ADMIN_KEY,
            "BUDGETGUARD_OPENAI_BASE_URL": sim.base_url,
            "BUDGETGUARD_COLLECT_DEADLINE": str(DEADLINE),
            "BUDGETGUARD_NOW": datetime.fromtimestamp(now, UTC).isoformat(),
        }
        yield {"sim": sim, "env": env, "rules": rules}


def check(
    world: dict[str, Any], db: Path, *extra: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "budgetguard",
            "check",
            "-r",
            str(world["rules"]),
            "--db",
            f"sqlite:///{db}",
            "-f",
            "json",
            *extra,
        ],
        check=False,
        env={**world["env"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, time.monotonic() - started


def test_a_trickling_directory_never_extends_the_command(
    world: dict[str, Any], tmp_path: Path
) -> None:
    """A directory answering a byte a second: per-read timeouts never fire, so only a total
    deadline per request, within what is left of the collection's, ends it."""
    sim: SimulatorServer = world["sim"]
    sim.faults.script("trickle", times=1000, endpoint="directory", seconds=1.0)
    try:
        done, took = check(world, tmp_path / "t.db")
    finally:
        sim.faults.clear()
    assert took < DEADLINE + 10  # the deadline, plus a cold interpreter on a busy machine
    # names are for people: without them, the glob meant for names is unknown, never $0 ok
    report = json.loads(done.stdout)
    alpha = next(b for b in report["budgets"] if b["name"] == "alpha")
    assert (
        alpha["severity"] == "unknown" and "'Support*' matches no project" in alpha["data"]["note"]
    )
    assert all(b["severity"] == "ok" for b in report["budgets"] if b["name"] != "alpha")
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1 and "1 budget unknown" in done.stderr
    store = Store.open(f"sqlite:///{tmp_path / 't.db'}")
    try:
        assert DirectoryStore(store.engine).names() == {}
    finally:
        store.close()


def test_the_names_come_within_the_deadline_when_the_directory_answers(
    world: dict[str, Any], tmp_path: Path
) -> None:
    done, _ = check(world, tmp_path / "n.db")
    assert done.returncode == 0, done.stderr
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        assert DirectoryStore(store.engine).names()["proj_chatbot"] == "Support chatbot"
    finally:
        store.close()


def test_a_refused_key_is_one_line_and_no_names_refresh(
    world: dict[str, Any], tmp_path: Path
) -> None:
    sim: SimulatorServer = world["sim"]
    before = sim.api.requests["directory"]
    done, _ = check(world, tmp_path / "r.db", OPENAI_ADMIN_KEY="sk-proj-nope")
    assert done.returncode == 3
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "sk-admin-" in done.stderr
    assert sim.api.requests["directory"] == before  # the refresh was not even tried


def test_expect_selectors_name_projects_as_match_does(
    world: dict[str, Any], tmp_path: Path
) -> None:
    """``project=<display name>`` is that project's id; a selector never makes up a group."""
    db = tmp_path / "x.db"
    done, _ = check(world, db)
    assert done.returncode == 0, done.stderr

    def spends(*extra: str) -> dict[tuple[str, str], Any]:
        done, _ = check(world, db, "--offline", *extra)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        return {(b["name"], b["group"].get("project", "")): b for b in report["budgets"]}

    before = spends()
    after = spends("--expect", "project=Support chatbot=100", "--expect", "project=proj_nope=7")
    assert set(after) == set(before)  # no group "Support chatbot", none "proj_nope"
    for key in (("chat", ""), ("per", "proj_chatbot")):
        assert after[key]["spend"] == pytest.approx(before[key]["spend"] + 100), key
    # the whole organisation covers every project, an unknown one too
    assert after[("day", "")]["spend"] == pytest.approx(before[("day", "")]["spend"] + 107)
    assert "proj_nope=7 not added" in (after[("per", "proj_chatbot")]["data"]["note"] or "")
