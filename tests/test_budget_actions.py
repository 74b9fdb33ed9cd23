"""Budget actions end to end, through the installed console script against the simulator over
real HTTP: a threshold with ``action: freeze`` sets the project's limit, reads it back, logs
and notifies it, and reverts it at the period's end; dry-run writes nothing and says what
it would do; a manual action waits for ``approve``; a change made behind budgetguard's back
is drift and never reverted over; two replicas, and a process killed mid-write, apply once.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from budgetguard.simulator import SimulatorServer, build_api
from tests.conftest import ADMIN_KEY, NOW, start_run

NOW_ISO = datetime.fromtimestamp(NOW, UTC).isoformat()
NEXT_DAY = "2026-11-23T00:05:00+00:00"  # past the day budget's period end (UTC midnight)
PROJECT = "proj_search"


def rules(approval: str = "auto", enforce: bool = True) -> str:
    return f"""
version: 1
timezone: UTC
notifiers:
  console: {{type: console}}
actions:
  freeze:
    type: openai.project_spend_limit
    margin: 0
    approval: {approval}
    enforce: {str(enforce).lower()}
budgets:
  - name: search-day
    match: {{project: {PROJECT}}}
    limit: 0.01
    period: day
    thresholds: [{{at: 100%, action: freeze}}]
    notify: [console]
  - name: search-month
    match: {{project: {PROJECT}}}
    limit: 100000
    period: month
"""


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    """A simulator of its own: the controls are state these tests change."""
    with SimulatorServer(build_api(now=NOW, days=40)) as server:
        yield server


def _env(folder: Path, sim: SimulatorServer, now: str, enabled: bool, lease: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGETGUARD_", "OPENAI"))}
    env |= {
        "OPENAI_ADMIN_KEY": ADMIN_KEY,
        "BUDGETGUARD_OPENAI_BASE_URL": sim.base_url,
        "BUDGETGUARD_NOW": now,
        "BUDGETGUARD_DATABASE_URL": f"sqlite:///{folder / 'store.db'}",
        "BUDGETGUARD_ACTION_LEASE": str(lease),
    }
    if enabled:
        env["BUDGETGUARD_ACTIONS"] = "on"
    return env


def _command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("budgetguard")), *args]


def cli(
    folder: Path,
    sim: SimulatorServer,
    *args: str,
    now: str = NOW_ISO,
    enabled: bool = True,
    lease: int = 300,
) -> tuple[int, str, str]:
    """The installed console script in ``folder`` (its rules.yaml and store.db)."""
    done = subprocess.run(
        _command(*args),
        env=_env(folder, sim, now, enabled, lease),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


def setup(tmp_path: Path, text: str) -> Path:
    (tmp_path / "rules.yaml").write_text(text)
    return tmp_path


def limit(sim: SimulatorServer) -> int | None:
    return sim.api.controls.limits.get(PROJECT)


def states(folder: Path, sim: SimulatorServer) -> list[str]:
    """The actions' states, read from the store's file (the CLI's own list is asserted on
    where it matters: a command costs a second)."""
    with sqlite3.connect(folder / "store.db") as conn:
        return [str(r[0]) for r in conn.execute("SELECT state FROM bg_actions ORDER BY id")]


def log_lines(folder: Path, sim: SimulatorServer) -> list[str]:
    code, out, err = cli(folder, sim, "actions", "log")
    assert code == 0, err
    return out.splitlines()


def test_a_freeze_sets_reads_back_logs_notifies_and_reverts_at_the_period_end(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    folder = setup(tmp_path, rules())
    code, out, err = cli(folder, sim, "check", "--notify")
    assert code == 1, err  # over budget
    assert states(folder, sim) == ["applied"]
    cents = limit(sim)
    assert cents is not None and cents > 1
    log = log_lines(folder, sim)
    assert [line.split()[3:6] for line in log] == [
        ["—", "->", "planned"],
        ["planned", "->", "applying"],
        ["applying", "->", "applied"],
    ]
    applied = log[-1]
    assert f"after: limit ${cents / 100:,.2f}" in applied and "before: nothing set" in applied
    assert "HTTP 200 req_" in applied  # the status and OpenAI's request id
    # every step is a notification (the console notifier prints them)
    assert "action 1 freeze (openai.project_spend_limit) planned" in out
    assert "action 1 freeze (openai.project_spend_limit) applied: wrote limit" in out
    writes = sim.api.controls.writes
    # the next tick plans nothing more and writes nothing (one action per period)
    assert cli(folder, sim, "check", "--notify")[0] == 1
    assert states(folder, sim) == ["applied"] and sim.api.controls.writes == writes
    # the day is over: the limit goes back to what it was (none), only then
    cli(folder, sim, "check", "--notify", "--offline", now=NEXT_DAY)
    assert states(folder, sim) == ["reverted"]
    assert limit(sim) is None
    last = log_lines(folder, sim)[-1]
    assert "reverting -> reverted" in last and "after: nothing set" in last


def test_dry_run_writes_nothing_and_says_what_it_would_do(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    folder = setup(tmp_path, rules())
    code, out, err = cli(folder, sim, "check", "--notify", enabled=False)  # one lock shut
    assert code == 1, err
    assert sim.api.controls.writes == 0 and limit(sim) is None
    assert "(dry-run: nothing is written)" in out
    listed = cli(folder, sim, "actions", "list", enabled=False)[1]
    assert "planned" in listed and "dry-run" in listed
    (line,) = log_lines(folder, sim)
    assert "set project proj_search's monthly limit to $" in line
    # the other lock: enforce false in the rules, the environment on
    (tmp_path / "other").mkdir()
    other = setup(tmp_path / "other", rules(enforce=False))
    cli(other, sim, "check", "--notify")
    assert "dry-run" in cli(other, sim, "actions", "list")[1]
    assert sim.api.controls.writes == 0


def here(folder: Path, sim: SimulatorServer, *args: str, enabled: bool = True) -> tuple[int, str]:
    """The same command in this process (typer's runner): for the bad-input cases, which the
    console script covers end to end elsewhere. (exit code, stderr)"""
    from typer.testing import CliRunner

    from budgetguard.cli import app

    env = _env(folder, sim, NOW_ISO, enabled, 300) | {
        "BUDGETGUARD_RULES": str(folder / "rules.yaml")
    }
    env.setdefault("BUDGETGUARD_ACTIONS", "")
    result = CliRunner().invoke(app, list(args), env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result.exit_code, result.stderr


def test_a_manual_action_waits_for_approve(tmp_path: Path, sim: SimulatorServer) -> None:
    folder = setup(tmp_path, rules(approval="manual"))
    cli(folder, sim, "check", "--notify")
    listed = cli(folder, sim, "actions", "list")[1]
    assert listed.split()[:2] == ["1", "pending_approval"] and sim.api.controls.writes == 0
    # bad input: one line, exit 2, nothing changed
    for args, why in (
        (("approve", "x1"), "is not an action id"),
        (("approve", "99"), "no action 99"),
        (("revert", "1"), "action 1 is pending_approval, not applied"),
        (("log", "1.5"), "is not an action id"),
    ):
        code, err = here(folder, sim, "actions", *args)
        assert code == 2 and why in err and len(err.strip().splitlines()) == 1, err
    code, err = here(folder, sim, "actions", "approve", "1", enabled=False)
    assert code == 2 and "BUDGETGUARD_ACTIONS=on" in err
    assert here(folder, sim, "actions", "off")[0] == 0  # the global kill switch
    code, err = here(folder, sim, "actions", "approve", "1")
    assert code == 2 and "the kill switch is on" in err
    assert here(folder, sim, "actions", "on")[0] == 0
    assert states(folder, sim) == ["pending_approval"] and sim.api.controls.writes == 0
    # its period over, an approval would write a stale limit: refused, nothing written
    code, _, err = cli(folder, sim, "actions", "approve", "1", now=NEXT_DAY)
    assert code == 2 and "planned for a period that ended" in err
    assert sim.api.controls.writes == 0
    code, out, err = cli(folder, sim, "actions", "approve", "1")
    assert code == 0, err
    assert out.splitlines()[-1] == "action 1: applied" and limit(sim) is not None
    assert "approved by cli:" in log_lines(folder, sim)[-2]
    assert here(folder, sim, "actions", "approve", "1")[0] == 2  # once
    code, out, err = cli(folder, sim, "actions", "revert", "1")
    assert (code, out.splitlines()[-1]) == (0, "action 1: reverted") and limit(sim) is None


def test_a_change_behind_budgetguards_back_is_drift_and_never_reverted_over(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    folder = setup(tmp_path, rules())
    cli(folder, sim, "check", "--notify")
    assert states(folder, sim) == ["applied"]
    # someone sets another limit in OpenAI's dashboard
    httpx.post(
        f"{sim.base_url}/organization/projects/{PROJECT}/spend_limit",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        json={"threshold_amount": 777_00, "currency": "USD", "interval": "month"},
        timeout=10,
    ).raise_for_status()
    writes = sim.api.controls.writes
    out = cli(folder, sim, "check", "--notify", "--offline")[1]
    assert states(folder, sim) == ["drifted"]
    assert "changed behind budgetguard's back" in out  # notified (critical)
    # the period ends: nothing is written back over the other person's limit
    cli(folder, sim, "check", "--notify", "--offline", now=NEXT_DAY)
    assert states(folder, sim) == ["drifted"]
    assert sim.api.controls.writes == writes and limit(sim) == 777_00
    assert cli(folder, sim, "actions", "revert", "1")[0] == 2


def test_two_replicas_apply_once(tmp_path: Path, sim: SimulatorServer) -> None:
    folder = setup(tmp_path, rules())
    assert cli(folder, sim, "collect")[0] == 0
    env = _env(folder, sim, NOW_ISO, True, 300)
    replicas = [
        subprocess.Popen(
            _command("check", "--notify", "--offline"),
            env=env,
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in replicas:
        _, err = process.communicate(timeout=120)
        assert "Traceback" not in err, err
    assert states(folder, sim) == ["applied"]
    assert sim.api.controls.writes == 1  # one POST of the limit, whatever the replicas
    assert sum("-> applied" in line for line in log_lines(folder, sim)) == 1


def test_a_process_killed_mid_write_never_applies_twice(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    folder = setup(tmp_path, rules())
    assert cli(folder, sim, "collect")[0] == 0
    # the read answers; the write lands, then its answer never comes
    sim.faults.script("slow", endpoint="controls", seconds=0)
    sim.faults.script("hang", endpoint="controls", seconds=30)
    first = subprocess.Popen(
        _command("check", "--notify", "--offline"),
        env=_env(folder, sim, NOW_ISO, True, 1),
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while sim.api.controls.writes == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sim.api.controls.writes == 1
    finally:
        first.kill()  # kill -9, mid-write
        first.wait(timeout=30)
    assert states(folder, sim) == ["applying"]
    time.sleep(1.1)  # the dead process's lease (1 s here) runs out
    cli(folder, sim, "check", "--notify", "--offline", lease=1)
    assert states(folder, sim) == ["applied"]
    assert sim.api.controls.writes == 1  # the write had landed: not written again
    assert "the write before a restart had landed" in log_lines(folder, sim)[-1]
    assert json.dumps(limit(sim)) != "null"


def _pending_link(db: Path) -> str | None:
    """The approval link the pending action's notification carries, once it is queued."""
    if not db.exists():
        return None
    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute("SELECT payload FROM bg_outbox").fetchall()
        except sqlite3.OperationalError:
            return None
    for (payload,) in rows:
        action = json.loads(payload).get("action") or {}
        if action.get("state") == "pending_approval" and action.get("approve_url"):
            return str(action["approve_url"])
    return None


def test_the_signed_approval_link_of_a_notification_approves_through_run(
    tmp_path: Path, sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "link-secret-0123456789"
    monkeypatch.setenv("BUDGETGUARD_ACTIONS", "on")
    monkeypatch.setenv("BUDGETGUARD_ACTION_LINK_SECRET", secret)
    monkeypatch.setenv("BUDGETGUARD_PUBLIC_URL", "https://guard.example")
    process, port, _ = start_run(tmp_path, sim.base_url, rules(approval="manual"))
    try:
        deadline = time.monotonic() + 60
        while (link := _pending_link(tmp_path / "run.db")) is None:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        while not (status := httpx.get(f"http://127.0.0.1:{port}/status", timeout=10).json()).get(
            "actions"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert [(a["id"], a["state"]) for a in status["actions"]] == [(1, "pending_approval")]
        assert link.startswith("https://guard.example/actions/1/approve?exp=")
        assert secret not in link
        local = link.replace("https://guard.example", f"http://127.0.0.1:{port}")
        forged = local[:-4] + ("0000" if not local.endswith("0000") else "1111")
        assert httpx.get(forged, timeout=10).status_code == 403
        assert httpx.post(forged, timeout=10).status_code == 403
        page = httpx.get(local, timeout=10)  # a preview of the link approves nothing
        assert page.status_code == 200 and "<form method=post" in page.text
        assert sim.api.controls.writes == 0 and secret not in page.text
        done = httpx.post(local, timeout=30)
        assert done.status_code == 200 and "action 1: applied" in done.text
        assert limit(sim) is not None and sim.api.controls.writes == 1
        assert httpx.post(local, timeout=10).status_code == 409  # once
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert secret not in err and "Traceback" not in err


def test_models_tools_and_rate_limits_are_cut_read_back_and_restored(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    folder = setup(
        tmp_path,
        f"""
version: 1
actions:
  deny: {{type: openai.model_deny, models: "gpt-4o*", approval: auto, enforce: true}}
  tools: {{type: openai.hosted_tools, tools: [web_search], approval: auto, enforce: true}}
  slow: {{type: openai.rate_limit, fraction: 0.5, models: "gpt-4o*", approval: auto,
         enforce: true, revert: {{after: 1h}}}}
budgets:
  - name: search-day
    match: {{project: {PROJECT}}}
    limit: 0.01
    period: day
    thresholds: [{{at: 100%, action: deny}}, {{at: 200%, action: tools}},
                 {{at: 300%, action: slow}}]
""",
    )
    controls = sim.api.controls
    limits_before = json.dumps(controls.rate_limits[PROJECT], sort_keys=True)
    cli(folder, sim, "check", "--notify")
    assert states(folder, sim) == ["applied", "applied", "applied"]
    denied = controls.permissions[PROJECT]
    assert denied["mode"] == "deny_list" and denied["model_ids"]
    assert all(m.startswith("gpt-4o") for m in denied["model_ids"])  # exact ids, no globs
    assert controls.tools[PROJECT]["web_search"] is False
    assert json.dumps(controls.rate_limits[PROJECT], sort_keys=True) != limits_before
    cli(folder, sim, "check", "--notify", "--offline", now="2026-11-22T11:30:00+00:00")
    assert states(folder, sim) == ["applied", "applied", "reverted"]  # its hour is up
    assert json.dumps(controls.rate_limits[PROJECT], sort_keys=True) == limits_before
    cli(folder, sim, "check", "--notify", "--offline", now=NEXT_DAY)
    assert states(folder, sim) == ["reverted", "reverted", "reverted"]
    assert PROJECT not in controls.permissions and controls.tools[PROJECT]["web_search"]
