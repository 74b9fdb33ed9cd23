"""``budgetguard controls plan|apply``, the installed console script against the simulator
over loopback: plan exits 2 on a diff and 0 after apply; a change made behind budgetguard's
back shows again; a write that changes another object is caught by the re-read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from budgetguard.controls import plan
from budgetguard.controls.live import Live
from budgetguard.providers.openai import HostedTools, SpendAlert, SpendLimit
from budgetguard.rules import load_rules_text
from budgetguard.simulator import SimulatorServer, build_api
from tests.conftest import ADMIN_KEY, NOW, budgetguard_cli

RULES = """\
version: 1
controls:
  organization:
    spend_limit: 5000
    spend_alerts: [{at: 4000, email: finops@example.com}]
  projects:
    proj_chatbot:
      spend_limit: 1500.005
      model_permissions: {mode: deny_list, models: [o3, gpt-4.1]}
      hosted_tools: {web_search: false}
      spend_alerts: [{at: 1000, email: [oncall@example.com], subject_prefix: "[chatbot]"}]
    proj_media: {spend_limit: none, model_permissions: none}
"""


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(build_api(now=NOW, days=40)) as server:
        yield server


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "rules.yaml").write_text(RULES)
    return tmp_path


def cli(folder: Path, sim: SimulatorServer, *args: str) -> tuple[int, str, str]:
    return budgetguard_cli(folder, "controls", *args, base_url=sim.base_url)


def test_plan_exits_2_on_a_diff_and_0_after_apply(folder: Path, sim: SimulatorServer) -> None:
    code, out, _ = cli(folder, sim, "plan")
    assert code == 2
    lines = out.splitlines()
    assert lines[0] == "controls: 6 changes to apply"
    # the safe order: limits, then permissions and tools, then alerts
    assert lines[1:] == [
        "+ organization spend limit: (none) -> $5,000.00 a month",
        "+ project proj_chatbot spend limit: (none) -> $1,500.01 a month",
        "+ project proj_chatbot model permissions: (none) -> deny_list [gpt-4.1, o3]",
        "~ project proj_chatbot hosted tools: web_search on -> web_search off",
        "+ organization spend alert: at $4,000.00 to finops@example.com",
        "+ project proj_chatbot spend alert: at $1,000.00 to oncall@example.com "
        "subject '[chatbot]'",
    ]
    assert sim.api.controls.writes == 0  # a plan writes nothing

    code, out, err = cli(folder, sim, "apply", "--format", "json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["ok"] and not report["remaining"]
    assert all(a["held"] and a["status"] == 200 for a in report["applied"])
    assert all(a["request_id"].startswith("req_") for a in report["applied"])
    assert sim.api.controls.limits["proj_chatbot"] == 150001  # rounded up to the cent

    assert cli(folder, sim, "plan") == (
        0,
        "controls: in sync with the rules; nothing to change\n",
        "",
    )
    code, out, _ = cli(folder, sim, "apply")
    assert (code, out) == (0, "controls: in sync with the rules; nothing to apply\n")


def test_a_change_behind_budgetguards_back_is_a_diff_again(
    folder: Path, sim: SimulatorServer
) -> None:
    assert cli(folder, sim, "apply")[0] == 0
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    body = {"threshold_amount": 999_900, "currency": "USD", "interval": "month"}
    url = f"{sim.base_url}/organization/projects/proj_chatbot/spend_limit"
    assert httpx.post(url, json=body, headers=headers).status_code == 200
    code, out, _ = cli(folder, sim, "plan", "--format", "json")
    assert code == 2
    changes = json.loads(out)["changes"]
    assert changes == [
        {"scope": "proj_chatbot", "lever": "spend_limit", "op": "update", "before": 9999.0,
         "after": 1500.01, "alert_id": None}
    ]  # fmt: skip


def test_a_write_that_changes_another_object_is_caught(folder: Path, sim: SimulatorServer) -> None:
    """The reported quirk: writing a project's spend alert replaced its spend limit."""
    sim.api.controls.alert_replaces_limit = True
    code, out, _ = cli(folder, sim, "apply")
    assert code == 1
    assert out.splitlines()[-1] == (
        "still different after apply: ~ project proj_chatbot spend limit: "
        "$1,000.00 a month -> $1,500.01 a month"
    )


def test_errors_are_1_or_3_never_2(folder: Path, sim: SimulatorServer, tmp_path: Path) -> None:
    (folder / "rules.yaml").write_text(
        "version: 1\ncontrols: {projects: {proj_x: {spend_limit: 0}}}\n"
    )
    code, _, err = cli(folder, sim, "plan")
    assert code == 1 and "rules.yaml:2:" in err
    assert cli(folder, sim, "plan", "--bogus")[0] == 1
    (folder / "rules.yaml").write_text(
        "version: 1\ncontrols: {projects: {proj_nope: {spend_limit: 5}}}\n"
    )
    code, _, err = cli(folder, sim, "plan")
    assert code == 1 and "not found" in err and ADMIN_KEY not in err
    code, _, err = budgetguard_cli(folder, "controls", "plan", base_url="http://127.0.0.1:9/v1")
    assert code == 3 and "connection" in err


def test_plan_is_a_pure_diff() -> None:
    declared = load_rules_text(RULES).controls
    assert declared is not None
    live = Live(
        limits={
            None: SpendLimit(threshold_cents=500_000),
            "proj_chatbot": None,
            "proj_media": None,
        },
        alerts={
            None: [
                SpendAlert.model_validate(
                    {
                        "id": "a1",
                        "threshold_cents": 400_000,
                        "channel": {"recipients": ["old@example.com"]},
                    }
                ),
                SpendAlert.model_validate(
                    {"id": "a2", "threshold_cents": 7, "channel": {"recipients": ["x@example.com"]}}
                ),
            ],
            "proj_chatbot": [],
        },
        permissions={"proj_chatbot": None, "proj_media": None},
        tools={
            "proj_chatbot": HostedTools(project_id="proj_chatbot", enabled={"web_search": False})
        },
    )
    found = [(c.scope, c.lever, c.op, c.alert_id) for c in plan(declared, live)]
    assert found == [
        ("proj_chatbot", "spend_limit", "create", None),
        ("proj_chatbot", "model_permissions", "create", None),
        (None, "spend_alert", "update", "a1"),  # same amount, other recipients
        (None, "spend_alert", "delete", "a2"),  # not in the rules
        ("proj_chatbot", "spend_alert", "create", None),
    ]


def test_rules_without_controls_have_nothing_to_compare(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("version: 1\n")
    for command in ("plan", "apply"):
        code, out, _ = budgetguard_cli(tmp_path, "controls", command)  # no API is asked
        assert code == 0 and "nothing to compare" in out


def test_apply_stops_at_a_failed_write(folder: Path, sim: SimulatorServer) -> None:
    """A refused value is exit 1, an unavailable API exit 3; nothing after it is written."""
    rules = RULES.replace("[o3, gpt-4.1]", "[o3, gpt-9-imaginary]")
    (folder / "rules.yaml").write_text(rules)
    code, out, _ = cli(folder, sim, "apply")
    assert code == 1
    assert (
        "FAILED: POST /organization/projects/proj_chatbot/model_permissions: OpenAI refused" in out
    )
    assert "spend alert" not in out  # alerts come after permissions: never written
    assert not any(sim.api.controls.alerts.values())

    (folder / "rules.yaml").write_text(RULES)
    sim.faults.script("503", endpoint="controls", times=50)
    code, out, err = cli(folder, sim, "apply")
    assert code == 3 and "unavailable" in out + err
