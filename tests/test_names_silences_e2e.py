"""Names and silences end to end, as a user runs them against the simulator: `collect` keeps
the directory's names, `match` globs match them, reports and notifications show
``Name (id)``; `silence add|list|expire` hold a firing back and release it when it ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from budgetguard.cli import app
from budgetguard.simulator import SimulatorServer
from budgetguard.store import Store
from budgetguard.store.directory import DirectoryStore
from tests.conftest import ADMIN_KEY, NOW, Receiver

RULES = """
version: 1
notifiers:
  hook: {{type: webhook, url: "{url}"}}
budgets:
  - name: chatbot-day
    description: The support chatbot, per project, a day
    runbook_url: https://wiki.example.com/chatbot
    labels: {{team: chat}}
    match: {{project: "Support*"}}
    each: project
    limit: 1
    window: 24h
    cost_source: estimate
    thresholds: [50%, 75%, 100%]
    notify: [hook]
  - name: nobody
    match: {{project: "proj_nobody*"}}
    limit: 1
    window: 24h
    cost_source: estimate
    notify: [hook]
"""


def test_names_and_silences_end_to_end(sim: SimulatorServer, tmp_path: Path) -> None:
    receiver = Receiver()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.format(url=receiver.url))
    db = f"sqlite:///{tmp_path / 'e2e.db'}"
    now = datetime.fromtimestamp(NOW, UTC).isoformat()
    env = {
        "BUDGETGUARD_OPENAI_BASE_URL": sim.base_url,
        "OPENAI_ADMIN_KEY": ADMIN_KEY,
        "BUDGETGUARD_NOW": now,
    }
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, [*args, "-r", str(rules), "--db", db], env=env)
        assert "Traceback" not in result.stderr, result.stderr
        return result.exit_code, result.stdout, result.stderr

    code, _, err = run("collect", "--since", "2d")
    assert code == 0, err
    store = Store.open(db)
    names = DirectoryStore(store.engine).names()
    store.close()
    assert names["proj_chatbot"] == "Support chatbot"
    assert names["user-erin"] == "Erin Diaz"
    assert names["key_chatbot_prod"] == "chatbot-prod"

    code, out, err = run("silence", "add", "budget=chatbot-*", "project=Support*", "--for", "2h",
                         "--comment", "load test")  # fmt: skip
    assert code == 0, err
    assert out.startswith("matches 3 alerts firing now:\n"), out  # the preview
    assert "chatbot-day [project=Support chatbot (proj_chatbot)] threshold 100%" in out
    silence_id = out.splitlines()[-1].split()[1]
    code, out, _ = run("silence", "list")
    assert silence_id in out and "load test" in out

    code, out, err = run("check", "--offline", "--notify", "--format", "json", "--fail-on", "never")
    assert code == 0, err
    report = json.loads(out)
    mine = [a for a in report["alerts"] if a["budget"] == "chatbot-day"]
    assert mine and all(a["silenced"] for a in mine)
    assert [b["group"] for b in report["budgets"] if b["name"] == "chatbot-day"] == [
        {"project": "proj_chatbot"}  # the name glob matched the project's id
    ]
    assert [s["id"] for s in report["silences"]] == [silence_id]
    assert report["names"] == {"proj_chatbot": "Support chatbot"}
    assert "silenced until" in err
    assert not [b for b in receiver.bodies if b["budget"] == "chatbot-day"]

    code, out, _ = run("check", "--offline", "--fail-on", "never")
    assert "Support chatbot (proj_chatbot)" in out

    code, out, err = run("silence", "expire", silence_id)
    assert code == 0, err
    assert run("silence", "expire", silence_id)[0] == 2
    code, _, err = run("check", "--offline", "--notify", "--fail-on", "never")
    assert code == 0, err
    sent = [b for b in receiver.bodies if b["budget"] == "chatbot-day"]
    assert len(sent) == 1  # one notification for the three thresholds, released now
    (body,) = sent
    assert body["severity"] == "critical" and len(body["thresholds"]) == 3
    assert body["names"] == {"proj_chatbot": "Support chatbot"}
    assert "chatbot-day [project=Support chatbot (proj_chatbot)]" in body["message"]
    assert body["runbook_url"] == "https://wiki.example.com/chatbot"
    assert body["labels"] == {"team": "chat"}
    code, _, _ = run("check", "--offline", "--notify", "--fail-on", "never")
    assert len([b for b in receiver.bodies if b["budget"] == "chatbot-day"]) == 1  # once
    receiver.shutdown()
    receiver.server_close()
