"""Names from the data reach every sink inert: the hostile corpus (``tests/hostile.py``) as
project, user and API key names from the directory, and as a silence comment, through the
text, Markdown and GitHub reports, the console notifier, `silence list`, the log, and each
notifier's own format (Slack mrkdwn, Teams cards, e-mail HTML)."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from budgetguard_email import render_email, subject
from budgetguard_slack import alert_blocks
from budgetguard_teams import card

from budgetguard.notify import Alert
from budgetguard.notify.escape import (
    escape_annotation,
    escape_html,
    escape_markdown,
    escape_slack,
    escape_teams,
    plain_lines,
    plain_text,
)
from budgetguard.simulator import SimulatorServer, build_api
from tests.conftest import ADMIN_KEY
from tests.hostile import CONTROLS, HOSTILE, NAMES
from tests.test_names_safety import Proxy

BUDGETGUARD = str(Path(sys.executable).with_name("budgetguard"))
RULES = """
version: 1
notifiers:
  stdout: {type: console}
budgets:
  - {name: per-project, limit: 0.01, period: month, each: project, notify: [stdout]}
  - {name: per-user, limit: 0.01, period: month, each: user, cost_source: estimate}
  - {name: per-key, limit: 0.01, period: month, each: api_key}
"""


_NAMES = itertools.cycle(NAMES)  # shared: each list gets the next ones


def hostile_directory(path: str, body: dict[str, Any]) -> tuple[int, Any]:
    names = _NAMES
    for item in body["data"]:
        if "name" in item:
            item["name"] = next(names)
    return 200, body


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("hostile")
    now = int(time.time()) - 5
    (base / "rules.yaml").write_text(RULES)
    with SimulatorServer(build_api(now=now, days=3, seed=5)) as sim:
        proxy = Proxy(sim.base_url)
        proxy.directory = hostile_directory
        env = {
            **os.environ,
            "OPENAI_ADMIN_KEY": ADMIN_KEY,
            "BUDGETGUARD_OPENAI_BASE_URL": proxy.base_url,
            "BUDGETGUARD_COLLECT_DEADLINE": "20",
            "BUDGETGUARD_NOW": datetime.fromtimestamp(now, UTC).isoformat(),
            "BUDGETGUARD_DATABASE_URL": f"sqlite:///{base / 'h.db'}",
            "BUDGETGUARD_RULES": str(base / "rules.yaml"),
        }
        world = {"env": env, "base": base}
        first = run(world, "check", "-f", "json", "--fail-on", "never")
        assert first.returncode == 0, first.stderr
        names = json.loads(first.stdout)["names"]
        assert len(set(names.values()) & set(NAMES)) >= 12  # hostile names are shown
        comment = " ".join(NAMES)
        added = run(world, "silence", "add", "budget=per-*", "--for", "1h", "--comment", comment)
        assert added.returncode == 0, added.stderr
        yield world
        proxy.shutdown()


def run(world: dict[str, Any], *argv: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [BUDGETGUARD, *argv, "-v"],
        env=world["env"],
        cwd=world["base"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert "internal error" not in done.stderr, done.stderr
    return done


def no_controls(text: str) -> None:
    for char in CONTROLS:
        assert char not in text, (char, text[max(0, text.find(char) - 80) : text.find(char) + 80])


def no_injected_lines(text: str) -> None:
    """No line of the output is a workflow command it did not mean to write."""
    for line in text.splitlines():
        assert not line.lstrip().startswith("::") or line.startswith(("::warning ", "::error "))


def test_the_text_report_shows_hostile_names_as_text(world: dict[str, Any]) -> None:
    done = run(world, "check", "--offline", "--fail-on", "never")
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    no_controls(out)
    no_injected_lines(out)
    assert "[/bold]" in done.stdout and "[red]x[/red]" in done.stdout  # markup shown, not run
    assert "silenced until" in done.stderr  # the comment is on one line, inert
    assert "[budgetguard]" not in done.stdout or "\x1b" not in done.stdout


def test_markdown_escapes_html_links_and_lines(world: dict[str, Any]) -> None:
    done = run(world, "check", "--offline", "-f", "markdown", "--fail-on", "never")
    out = done.stdout
    no_controls(out + done.stderr)
    no_injected_lines(out + done.stderr)
    ours = ("<details>", "</details>", "<summary>", "</summary>")  # the report's own folding
    data = "\n".join(line for line in out.splitlines() if not line.startswith(ours))
    assert not re.search(r"(?<!\\)[<>]", data), data  # no HTML from the data
    for raw in ("](", "http://evil", "www.evil"):
        assert raw not in out, raw
    table = [line for line in out.splitlines() if line.startswith("| per-")]
    assert table and all(line.count(" | ") == 8 for line in table)  # no pipe split a cell
    risky = [line for line in out.splitlines() if line.startswith("| 🔴")]
    assert risky and all(line.count(" | ") == 6 for line in risky)
    for line in table:
        group = line.split(" | ")[1]  # the names: every metacharacter escaped
        assert not re.search(r"(?<!\\)[\[\]|`*_~$]", group), group


def test_github_annotations_are_one_line_each(world: dict[str, Any]) -> None:
    done = run(world, "check", "--offline", "-f", "github", "--fail-on", "never")
    no_controls(done.stdout)
    lines = done.stdout.splitlines()
    assert lines and all(line.startswith(("::warning title=", "::error title=")) for line in lines)
    assert "%0A::error" not in done.stdout.replace("%250A", "")  # a pre-encoded %0A stays text


def test_the_console_notifier_the_log_and_silence_list(world: dict[str, Any]) -> None:
    done = run(world, "silence", "expire", _silence_id(world))
    assert done.returncode == 0, done.stderr
    done = run(world, "check", "--offline", "--notify", "--fail-on", "never")
    assert "[budgetguard] CRITICAL per-project" in done.stdout
    no_controls(done.stdout + done.stderr)
    no_injected_lines(done.stdout + done.stderr)
    listed = run(world, "silence", "list", "--all")
    no_controls(listed.stdout + listed.stderr)
    no_injected_lines(listed.stdout)


def _silence_id(world: dict[str, Any]) -> str:
    listed = run(world, "silence", "list")
    return listed.stdout.split()[0]


def hostile_alert(name: str) -> Alert:
    return Alert(
        key="k1",
        summary=f"CRITICAL per-project [project={name} (proj_x)]: $5.00 of $1.00",
        severity="critical",
        kind="threshold",
        budget="per-project",
        group={"project": "proj_x"},
        payload={"names": {"proj_x": name}, "group": {"project": "proj_x"}},
    )


@pytest.mark.parametrize("name", NAMES, ids=lambda n: HOSTILE[n])
def test_each_notifier_format_keeps_the_name_inert(name: str) -> None:
    alert = hostile_alert(name)
    text, attachments = alert_blocks(alert)
    no_controls(json.dumps([text, attachments], ensure_ascii=False))
    mrkdwn = " ".join([text, *_mrkdwn(attachments)])  # plain_text blocks are not parsed
    links = re.findall(r"<([^>]*)>", mrkdwn)
    assert all(link.startswith(("https://platform.openai.com", "!date")) for link in links), links
    teams = json.dumps(card(alert), ensure_ascii=False)
    no_controls(teams)
    assert "](" not in teams and "**" not in teams
    plain, html = render_email(alert)
    no_controls(plain + html + subject(alert))
    assert "<img" not in html and "<script" not in html
    no_injected_lines(plain)


def _mrkdwn(value: Any) -> list[str]:
    """Every mrkdwn text of Slack blocks."""
    if isinstance(value, dict):
        own = [str(value["text"])] if value.get("type") == "mrkdwn" else []
        return own + [t for v in value.values() for t in _mrkdwn(v)]
    if isinstance(value, list):
        return [t for v in value for t in _mrkdwn(v)]
    return []


@pytest.mark.parametrize("name", NAMES, ids=lambda n: HOSTILE[n])
def test_each_escape_keeps_what_a_person_reads(name: str) -> None:
    shown = plain_text(name)
    no_controls(shown)
    assert "\n" not in shown
    for escaped in (escape_markdown(name), escape_slack(name), escape_teams(name)):
        no_controls(escaped)
        assert "\n" not in escaped
    assert "<" not in escape_html(name) and "<" not in escape_slack(name)
    assert "%0A" not in escape_annotation(name).replace("%250A", "")
    assert plain_lines("a\x1b[31m\n  b\r") == "a[31m\n  b"
