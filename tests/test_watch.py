"""The service's watch on OpenAI's own state: a spend limit enforcing while the month's spend
has reached it is a critical alert (never on the status alone), and controls that drift from
the rules are a ``drift`` alert; both resolve. The tick job in-process (the function a worker
runs), the simulator over loopback, a webhook receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from budgetguard.evaluate.evaluator import Finding
from budgetguard.evaluate.windows import Window
from budgetguard.providers.openai import SpendLimit
from budgetguard.rules import load_rules_text
from budgetguard.service.jobs import tick
from budgetguard.settings import Settings
from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.simulator.controls import month_start
from budgetguard.watch import SPEND_LIMIT, limit_findings, watched_rules
from tests.conftest import ADMIN_KEY, NOW, Receiver

RULES = """
version: 1
notifiers:
  hook: {{type: webhook, url: "{url}"}}
defaults: {{notify: [hook]}}
budgets: []
controls:
  projects:
    proj_search: {{spend_limit: 900}}
"""


class _Progress:
    def attempt(self, notifier: str, outcome: str) -> None:
        pass

    def collected(self, endpoint: str, stamp: int) -> None:
        pass


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    receiver = Receiver()
    with SimulatorServer(build_api(now=NOW, days=40)) as sim:
        settings = Settings(
            openai_admin_key=ADMIN_KEY,
            openai_base_url=sim.base_url,
            database_url=f"sqlite:///{tmp_path / 'store.db'}",
        )
        rules = load_rules_text(RULES.format(url=receiver.url))
        yield {"sim": sim, "settings": settings, "rules": rules, "receiver": receiver}
    receiver.shutdown()


def run_tick(world: dict[str, Any]) -> dict[str, Any]:
    now = datetime.fromtimestamp(NOW, UTC)
    outcome = tick(world["settings"], world["rules"], now, threading.Event(), _Progress())
    assert outcome.error is None, outcome.error
    return outcome.status


def test_an_enforcing_limit_reached_and_drift_fire_then_resolve(world: dict[str, Any]) -> None:
    sim: SimulatorServer = world["sim"]
    sim.api.controls.enforcement_lag = 0
    spent = Decimal(repr(sim.api.spend("proj_chatbot", month_start(NOW), NOW)))
    sim.api.controls.limits["proj_chatbot"] = int(spent * 100) - 500  # $5 under its spend
    sim.api.controls.limits["proj_search"] = 50_000  # the rules say $900: drift

    status = run_tick(world)
    fired = {(a["budget"], a["kind"], a["severity"]) for a in status["alerts"]}
    assert fired == {("openai:spend-limit", "threshold", "critical"),
                     ("openai:controls", "drift", "warning")}  # fmt: skip
    assert [a["group"] for a in status["alerts"] if a["kind"] == "threshold"] == [
        {"project": "proj_chatbot"}
    ]
    sent = {b["kind"]: b for b in world["receiver"].bodies}
    assert sent["threshold"]["limit"] == float(Decimal(int(spent * 100) - 500) / 100)
    assert (
        "CRITICAL openai:spend-limit [project=Support chatbot (proj_chatbot)]"
        in (sent["threshold"]["message"])
    )
    assert sent["drift"]["message"] == (
        "DRIFT openai:controls [project=Semantic search (proj_search)]: OpenAI's controls "
        "differ from the rules: ~ project proj_search spend limit: $500.00 a month -> "
        "$900.00 a month"
    )
    assert all(b["budget"] != SPEND_LIMIT or b["group"] for b in world["receiver"].bodies)
    # the status page's series keep to the user's budgets (there are none here)
    assert status["series"] == []

    world["receiver"].bodies.clear()
    sim.api.controls.limits["proj_chatbot"] = int(spent * 100) + 100_000  # raised
    sim.api.controls.limits["proj_search"] = 90_000  # as the rules say
    status = run_tick(world)
    assert {(a["budget"], a["kind"]) for a in status["alerts"]} == {
        (SPEND_LIMIT, "resolved"),
        ("openai:controls", "resolved"),
    }  # this tick's resolutions, each with its key; nothing firing
    resolved = sorted(b["message"].split(":")[0] for b in world["receiver"].bodies)
    assert resolved == ["RESOLVED openai", "RESOLVED openai"]


def test_never_on_the_status_alone_nor_on_unknown_spend() -> None:
    rules = watched_rules(load_rules_text("version: 1\ncontrols: {}\n"))
    budget = rules.budget(SPEND_LIMIT)
    at = datetime.fromtimestamp(NOW, UTC)

    def finding(project: str, spend: Decimal | None, severity: str = "ok") -> Finding:
        window = Window(at.replace(day=1), at, "period")
        return Finding(budget, {"project": project}, window, spend, Decimal(1), None, severity,
                       "costs", True, None)  # fmt: skip

    enforcing = SpendLimit(project_id="p", threshold_cents=10_000, enforcement="enforcing")
    found = limit_findings(
        [
            finding("under", Decimal(99)),  # enforcing, but $99 of $100: not refused yet
            finding("over", Decimal(100)),
            finding("unknown", None, "unknown"),
            finding("unread", Decimal(500)),
        ],
        {"under": enforcing, "over": enforcing, "unknown": enforcing},
    )
    assert [(f.group["project"], f.severity, f.limit) for f in found] == [
        ("under", "ok", Decimal(100)),
        ("over", "critical", Decimal(100)),
    ]
    inactive = SpendLimit(project_id="p", threshold_cents=10_000, enforcement="inactive")
    assert limit_findings([finding("over", Decimal(150))], {"over": inactive})[0].severity == "ok"
    unknown = SpendLimit(project_id="p", threshold_cents=10_000, enforcement="throttling")
    assert limit_findings([finding("over", Decimal(150))], {"over": unknown}) == []
