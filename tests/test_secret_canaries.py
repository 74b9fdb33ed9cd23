"""Every secret, pasted with a character that cannot be sent (a trailing no-break space, a
zero-width space, curly quotes), through every command and the service: no output, log,
endpoint or notification carries any of them, and nothing hangs or ends in a traceback.

The secrets are canaries (``CANARY``): the admin key, the Slack webhook URL and bot token,
the SMTP password, the webhook secret, the PagerDuty routing key, the Teams URL and the
secret that signs approval links."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from budgetguard.simulator import SimulatorServer, build_api
from tests.conftest import NOW, Receiver

aiosmtpd = pytest.importorskip("aiosmtpd.controller")

BUDGETGUARD = str(Path(sys.executable).with_name("budgetguard"))
NOW_ISO = datetime.fromtimestamp(NOW, UTC).isoformat()
#: Each secret as a copy-paste accident leaves it.
SECRETS = {
    "OPENAI_ADMIN_KEY": "sk-admin-CANARY0admin\u00a0",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/CANARY1slack\u200b",
    "SLACK_TOKEN": "\u201cxoxb-CANARY2token\u201d",
    "SMTP_PASSWORD": "CANARY3smtp\u00a0pass",
    "HOOK_SECRET": "CANARY4hook\u200bsecret",
    "PD_KEY": "CANARY5pagerduty\u00a0",
    "TEAMS_URL": "https://example.webhook.office.com/CANARY6teams\u201d",
    "BUDGETGUARD_ACTION_LINK_SECRET": "CANARY7link\u00a0secret",
}
NOTIFIERS = ["stdout", "slackhook", "slackbot", "mail", "hook", "pager", "teams"]
RULES = """
version: 1
schedule: {{interval: 1m}}
notifiers:
  stdout: {{type: console}}
  slackhook: {{type: slack, webhook_url: "${{SLACK_WEBHOOK_URL}}"}}
  slackbot: {{type: slack, token: "${{SLACK_TOKEN}}", channel: "#x", api_url: "{receiver}/"}}
  mail:
    type: email
    smtp_host: 127.0.0.1
    smtp_port: {smtp}
    starttls: false
    username: budgetguard
    password: "${{SMTP_PASSWORD}}"
    to: [oncall@example.com]
    timeout: 5
  hook: {{type: webhook, url: "{receiver}/hook", secret: "${{HOOK_SECRET}}", timeout: 5}}
  pager: {{type: pagerduty, routing_key: "${{PD_KEY}}", api_url: "{receiver}/pd", timeout: 5}}
  teams: {{type: teams, webhook_url: "${{TEAMS_URL}}", timeout: 5}}
defaults:
  notify: [stdout, slackhook, slackbot, mail, hook, pager, teams]
  max_staleness: 1m
digest: {{schedule: "0 9 * * mon", notify: [stdout, slackhook, slackbot, mail, hook, pager, teams]}}
actions:
  cap: {{type: openai.org_spend_limit, amount: 1, enforce: true}}
budgets:
  - {{name: org, limit: 1, period: month, thresholds: [80%, {{at: 100%, action: cap}}]}}
  - {{name: per-project, limit: 1, window: 24h, each: project, cost_source: estimate}}
"""


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(bytes(envelope.content))
        return "250 OK"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from aiosmtpd.controller import Controller

    base = tmp_path_factory.mktemp("canaries")
    receiver = Receiver()
    inbox = _Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    smtp = Controller(inbox, hostname="127.0.0.1", port=port, auth_require_tls=False)
    smtp.start()
    url = receiver.url.removesuffix("/hook")
    (base / "rules.yaml").write_text(RULES.format(receiver=url, smtp=port))
    with SimulatorServer(build_api(now=NOW, days=5)) as sim:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BUDGETGUARD_")},
            **SECRETS,
            "BUDGETGUARD_OPENAI_BASE_URL": sim.base_url,
            "BUDGETGUARD_NOW": NOW_ISO,
            "BUDGETGUARD_DATABASE_URL": f"sqlite:///{base / 'c.db'}",
            "BUDGETGUARD_RULES": str(base / "rules.yaml"),
            "BUDGETGUARD_NOTIFY_RETRY_WITHIN": "0",
            "BUDGETGUARD_COLLECT_DEADLINE": "10",
            "BUDGETGUARD_ACTIONS": "on",
            "BUDGETGUARD_PUBLIC_URL": "https://guard.example",
        }
        yield {"env": env, "base": base, "receiver": receiver, "inbox": inbox}
    smtp.stop()
    receiver.shutdown()


def leaks(text: str) -> list[str]:
    """Where a canary shows, in any form (repr, JSON, percent-encoding included)."""
    return [text[max(0, m.start() - 60) : m.end() + 20] for m in re.finditer("CANARY", text)]


def run(world: dict[str, Any], *argv: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    began = time.monotonic()
    done = subprocess.run(
        [BUDGETGUARD, *argv],
        env=world["env"],
        cwd=world["base"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    took = time.monotonic() - began
    output = done.stdout + done.stderr
    assert not leaks(output), (argv, leaks(output))
    assert "Traceback" not in output, (argv, output)
    assert took < 60, (argv, took)  # a key with a NBSP made every check take ~137 s
    return done


COMMANDS = [
    ["validate"],
    ["validate", "--strict"],
    ["collect", "--since", "2d", "-v"],
    ["check", "-v"],
    ["check", "-f", "json"],
    ["check", "-f", "markdown"],
    ["check", "-f", "github"],
    ["check", "--notify", "-v"],
    ["check", "--offline", "--notify", "-v"],
    ["backtest", "--from", "2026-11-20", "--to", "2026-11-22", "-v"],
    ["digest", "-v"],
    ["digest", "--send", "-v"],
    *(["notify-test", name, "-v"] for name in NOTIFIERS),
    ["plugins"],
    ["schema"],
    ["silence", "add", "budget=org", "--for", "1h", "--comment", "drill"],
    ["silence", "list", "--all"],
    ["actions", "list", "--all", "-v"],
    ["actions", "log", "-v"],
    ["actions", "approve", "1", "-v"],
    ["controls", "plan", "-v"],
    ["controls", "apply", "-v"],
    ["doctor", "--probe-writes", "-v"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_no_command_prints_a_secret(world: dict[str, Any], argv: list[str]) -> None:
    done = run(world, *argv)
    if argv[0] in ("collect", "check") and "--offline" not in argv:
        assert done.returncode in (2, 3), done.stderr  # the key cannot be sent: bad input
    if argv[0] == "notify-test" and argv[1] not in ("stdout", "hook"):  # (HMAC takes any)
        assert done.returncode != 0, done.stderr
        assert "cannot be sent" in done.stderr, done.stderr


def test_nothing_sent_carries_a_secret(world: dict[str, Any]) -> None:
    run(world, "check", "--offline", "--notify")
    bodies = json.dumps(world["receiver"].bodies)
    mails = b"".join(world["inbox"].messages).decode("utf-8", "replace")
    assert not leaks(bodies + mails)


def test_the_service_prints_and_serves_no_secret(world: dict[str, Any]) -> None:
    # the damaged admin key is bad input (the contract: exit 2, named without its value)
    refused = subprocess.run(
        [BUDGETGUARD, "run", "--port", "0"],
        env=world["env"],
        cwd=world["base"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert not leaks(refused.stdout + refused.stderr)
    # with a sound admin key it runs, and every notifier's damaged secret stays unseen
    env = {**world["env"], "OPENAI_ADMIN_KEY": SECRETS["OPENAI_ADMIN_KEY"].strip("\u00a0")}
    process = subprocess.Popen(
        [BUDGETGUARD, "run", "--port", "0", "-v"],
        env=env,
        cwd=world["base"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        port = None
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            seen.append(line)
            found = re.search(r"http://localhost:(\d+)/healthz", line)
            port = int(found.group(1)) if found else None
        assert port is not None, "".join(seen)
        served = ""
        deadline = time.monotonic() + 60
        while (not served or "starting" in served) and time.monotonic() < deadline:
            served = _get(port, "/healthz")
            time.sleep(0.2)
        time.sleep(2)  # the outbox pass after it
        served += _get(port, "/status") + _get(port, "/metrics") + _get(port, "/livez")
        assert not leaks(served), leaks(served)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    text = "".join(seen) + out + err
    assert not leaks(text), leaks(text)
    assert "Traceback" not in text, text


def _get(port: int, path: str) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return str(answer.read().decode())
    except urllib.error.HTTPError as exc:
        return str(exc.read().decode())
