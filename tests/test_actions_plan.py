"""Budget actions without HTTP: the rules' checks, the pure planner, what an action wants over
a live state, the signed links, and the state machine's locks and limits over an in-memory
provider (the end-to-end proofs over the simulator are ``test_budget_actions.py``)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from budgetguard.actions import (
    Facts,
    Gate,
    Observed,
    Runner,
    approve_url,
    change,
    plan_actions,
    step_notes,
    triggers,
    verify,
)
from budgetguard.evaluate.evaluator import Finding
from budgetguard.evaluate.windows import Window
from budgetguard.providers.base import ControlError
from budgetguard.rules import Rules, RulesError, load_rules_text
from budgetguard.store import Store

NOW = datetime(2026, 11, 22, 10, 17, 31, tzinfo=UTC)

BASE = """
version: 1
actions:
  freeze: {type: openai.project_spend_limit, margin: 5, approval: auto, enforce: true}
  deny: {type: openai.model_deny, models: "gpt-4o*", approval: auto, enforce: true}
budgets:
  - name: per-project
    each: project
    limit: 10
    period: day
    thresholds: [80%, {at: 100%, action: freeze}, {at: 150%, action: deny}]
"""


def errors(text: str) -> list[str]:
    with pytest.raises(RulesError) as caught:
        load_rules_text(text)
    return [f"{e.line}:{e.column}: {e.message}" for e in caught.value.errors]


def test_the_rules_refuse_what_cannot_be_acted_on_where_it_is_written() -> None:
    found = errors(
        """
version: 1
actions:
  nuke: {type: openai.delete_key, approval: auto}
  gone: {type: openai.archive, irreversible: true}
  deny: {type: openai.model_deny}
  cut: {type: openai.rate_limit, fraction: 0.5, margin: 3}
budgets:
  - name: a
    limit: 10
    period: day
    thresholds: [{at: 100%, action: freez}, {at: 90%, action: gone}]
"""
    )
    assert found == [
        "4:16: action 'nuke': openai.delete_key cannot be undone; write irreversible: true "
        "(and approval: manual) to allow it",
        "4:45: action 'nuke': openai.delete_key cannot be undone, so it needs approval: manual",
        "6:9: openai.model_deny needs 'models'",
        "7:49: margin: openai.rate_limit has no such setting",
        "12:37: unknown action 'freez' (expected one of: cut, deny, gone, nuke)",
        "12:63: action 'gone' acts on one project: split the budget by project (each: "
        "project), match one project id, or give the action a project",
    ]


def finding(rules: Rules, project: str, spend: str | None, *, complete: bool = True) -> Finding:
    budget = rules.budget("per-project")
    start = NOW.replace(hour=0, minute=0, second=0)
    value = None if spend is None else Decimal(spend)
    crossed = tuple(
        t for t in budget.thresholds if value is not None and value >= t.ratio * Decimal(10)
    )
    return Finding(
        budget=budget,
        group={"project": project},
        window=Window(start, NOW, "period", start + timedelta(days=1)),
        spend=value,
        limit=Decimal(10),
        forecast=None,
        severity="critical" if value is not None else "unknown",
        source="costs",
        complete=complete,
        note=None,
        crossed=crossed,
    )


def test_the_plan_is_pure_keyed_once_per_period_and_never_on_unknown_data() -> None:
    rules = load_rules_text(BASE)
    facts = Facts(
        month_spend={"proj_a": Decimal("123.451"), "proj_b": None},
        models=("gpt-4o", "gpt-4o-mini", "o3"),
        installation="inst",
    )
    found = triggers(
        [
            finding(rules, "proj_a", "16"),  # 100% and 150%: freeze and deny
            finding(rules, "proj_b", "12"),  # freeze, but its month is not known
            finding(rules, "proj_c", None),  # unknown: nothing
            finding(rules, "proj_d", "11", complete=False),  # incomplete: nothing
        ]
    )
    plan = plan_actions(rules, found, facts)
    assert [(a.target["project"], a.action_name) for a in plan.new] == [
        ("proj_a", "freeze"),
        ("proj_a", "deny"),
    ]
    freeze, deny = plan.new
    assert freeze.params == {"cents": 12846}  # 123.451 + 5, rounded up to the cent
    assert deny.params == {"models": ["gpt-4o", "gpt-4o-mini"]}  # globs -> exact ids
    assert freeze.revert_at == int(datetime(2026, 11, 23, tzinfo=UTC).timestamp())
    assert len(plan.skipped) == 2 and "not known" in plan.skipped[0]
    assert "incomplete" in plan.skipped[1]
    again = plan_actions(rules, found, facts)
    assert [a.action_key for a in again.new] == [a.action_key for a in plan.new]
    tomorrow = [finding(rules, "proj_a", "16")]
    later = NOW + timedelta(days=1)
    moved = [
        Finding(
            **{
                **f.__dict__,
                "window": Window(
                    f.window.start + timedelta(days=1), later, "period", f.window.period_end
                ),
            }
        )
        for f in tomorrow
    ]
    next_day = plan_actions(rules, triggers(moved), facts)
    assert next_day.new[0].action_key != freeze.action_key


def test_an_action_never_loosens_and_keeps_what_it_does_not_touch() -> None:
    limit = "openai.project_spend_limit"
    assert change(limit, {"cents": 500}, None).state == {"cents": 500}  # type: ignore[union-attr]
    assert change(limit, {"cents": 500}, {"cents": 900}).state == {"cents": 500}  # type: ignore[union-attr]
    assert change(limit, {"cents": 500}, {"cents": 300}) is None  # already stricter
    deny = "openai.model_deny"
    allow = {"mode": "allow_list", "model_ids": ["gpt-4o", "o3"]}
    assert change(deny, {"models": ["gpt-4o"]}, allow).state == {  # type: ignore[union-attr]
        "mode": "allow_list",
        "model_ids": ["o3"],
    }
    listed = {"mode": "deny_list", "model_ids": ["o1"]}
    assert change(deny, {"models": ["gpt-4o"]}, listed).state["model_ids"] == ["gpt-4o", "o1"]  # type: ignore[union-attr]
    tools = {"web_search": True, "mcp": True}
    wanted = change("openai.hosted_tools", {"tools": ["mcp"]}, tools)
    assert wanted is not None and wanted.state == {"web_search": True, "mcp": False}
    rows = {"rl_1": {"model": "gpt-4o", "max_requests_per_1_minute": 101}}
    cut = change("openai.rate_limit", {"fraction": "0.5", "models": None}, rows)
    assert cut is not None and cut.state["rl_1"]["max_requests_per_1_minute"] == 50


def test_an_approval_link_is_signed_for_one_action_and_expires() -> None:
    url = approve_url("https://g.example/", "s3cret", "inst", 7, "key7", 1000)
    assert url.startswith("https://g.example/actions/7/approve?exp=") and "s3cret" not in url
    query = url.split("?", 1)[1]
    assert verify("s3cret", "inst", 7, "key7", query, 1000) is None
    assert verify("s3cret", "inst", 8, "key7", query, 1000) == "the link is not valid"
    assert verify("other", "inst", 7, "key7", query, 1000) == "the link is not valid"
    assert verify("s3cret", "inst", 7, "key7", query, 1000 + 2 * 86400) == "the link has expired"
    assert verify("s3cret", "inst", 7, "key7", "exp=1", 0) == "the link is incomplete"


class FakeControls:
    """An in-memory provider: the states it holds, the writes it took, a failure to raise."""

    def __init__(self) -> None:
        self.states: dict[str, Any] = {}
        self.writes = 0
        self.fail: ControlError | None = None
        self.tamper: Any = "unset"
        self.fail_reads: ControlError | None = None
        self.lost_answer = False

    def read(self, kind: str, target: Mapping[str, str]) -> Observed:
        if self.fail_reads is not None:
            raise self.fail_reads
        return Observed(self.states.get(target.get("project", "")), 200, "req_read")

    def write(self, kind: str, target: Mapping[str, str], state: Any, before: Any) -> Observed:
        if self.fail is not None:
            raise self.fail
        self.writes += 1
        self.states[target.get("project", "")] = state if self.tamper == "unset" else self.tamper
        if self.lost_answer:  # it landed, and then the answer never came
            raise ControlError("timed out", kind="unavailable")
        return Observed(state, 200, f"req_{self.writes}")


def run_pass(
    tmp_path: Path,
    text: str,
    projects: list[str],
    *,
    enabled: bool = True,
    controls: FakeControls | None = None,
) -> tuple[Store, FakeControls, Runner]:
    rules = load_rules_text(text)
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    facts = Facts(month_spend=dict.fromkeys(projects, Decimal(50)), installation="i")
    plan = plan_actions(rules, triggers([finding(rules, p, "12") for p in projects]), facts)
    notes = step_notes(rules, "i", enabled=enabled)
    fake = controls or FakeControls()
    runner = Runner(store.actions, rules, fake, Gate(enabled), notes, NOW, "test")
    store.actions.plan(plan.new, int(NOW.timestamp()), "test", notes)
    runner.run()
    return store, fake, runner


def test_protected_projects_wait_for_a_person_and_the_limits_hold(tmp_path: Path) -> None:
    text = BASE + "action_limits: {per_tick: 1, protect: [proj_prod*]}\n"
    store, fake, runner = run_pass(tmp_path, text, ["proj_prod1", "proj_a", "proj_b"])
    states = {r.target["project"]: r.state for r in store.actions.all()}
    assert states == {"proj_prod1": "pending_approval", "proj_a": "applied", "proj_b": "planned"}
    assert fake.writes == 1 and any("blast-radius" in h for h in runner.report.held)
    store.close()


def test_the_kill_switch_and_the_environment_lock_stop_every_write(tmp_path: Path) -> None:
    store, fake, _ = run_pass(tmp_path, BASE, ["proj_a"], enabled=False)
    assert [r.state for r in store.actions.all()] == ["planned"] and fake.writes == 0
    store.actions.switch(True, "test", 0)
    runner = Runner(
        store.actions,
        load_rules_text(BASE),
        fake,
        Gate(True),
        step_notes(load_rules_text(BASE), "i"),
        NOW,
        "t",
    )
    assert runner.run().held == ["the kill switch is on: no action moves"]
    assert fake.writes == 0
    store.close()


def test_a_refused_write_fails_and_a_read_back_that_differs_is_drift(tmp_path: Path) -> None:
    refused = FakeControls()
    refused.fail = ControlError("forbidden", kind="auth", status=403, request_id="req_x")
    store, _, _ = run_pass(tmp_path, BASE, ["proj_a"], controls=refused)
    (row,) = store.actions.all()
    assert row.state == "failed"
    last = store.actions.log(row.id)[-1]
    assert (last.http_status, last.request_id, last.note) == (403, "req_x", "forbidden")
    store.close()
    other = tmp_path / "other"
    other.mkdir()
    lying = FakeControls()
    lying.tamper = {"cents": 1}  # the provider changed something else than what was written
    store, _, _ = run_pass(other, BASE, ["proj_a"], controls=lying)
    assert [r.state for r in store.actions.all()] == ["drifted"]
    store.close()


def test_a_revert_that_cannot_be_done_now_stays_owed_and_is_done_later(tmp_path: Path) -> None:
    store, fake, _ = run_pass(tmp_path, BASE, ["proj_a"])
    assert fake.states == {"proj_a": {"cents": 5500}}
    rules = load_rules_text(BASE)
    later = NOW + timedelta(days=1)
    notes = step_notes(rules, "i", enabled=True)
    fake.fail_reads = ControlError("unavailable", kind="unavailable", status=503)
    Runner(store.actions, rules, fake, Gate(True), notes, later, "t").run()  # ends: no loop
    assert [r.state for r in store.actions.all()] == ["applied"]
    assert "revert not done" in store.actions.log()[-1].note
    fake.fail_reads = None
    Runner(store.actions, rules, fake, Gate(True), notes, later, "t").run()
    assert [r.state for r in store.actions.all()] == ["reverted"] and fake.states == {
        "proj_a": None
    }
    store.close()


def test_a_write_whose_answer_is_lost_is_finished_from_what_is_live(tmp_path: Path) -> None:
    fake = FakeControls()
    fake.lost_answer = True
    store, _, runner = run_pass(tmp_path, BASE, ["proj_a"], controls=fake)
    assert [r.state for r in store.actions.all()] == ["applying"] and fake.writes == 1
    assert any("not known whether it landed" in h for h in runner.report.held)
    fake.lost_answer = False
    rules = load_rules_text(BASE)
    Runner(store.actions, rules, fake, Gate(True), step_notes(rules, "i"), NOW, "t").run()
    assert [r.state for r in store.actions.all()] == ["applied"] and fake.writes == 1
    store.close()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_concurrent_passes_on_one_store_plan_and_write_once(
    tmp_path: Path, dialect: str, request: pytest.FixtureRequest
) -> None:
    """Eight passes at once, each with its own connection pool (as replicas have), on
    SQLite (IMMEDIATE + owner token) and PostgreSQL (FOR UPDATE SKIP LOCKED)."""
    url = (
        f"sqlite:///{tmp_path / 's.db'}"
        if dialect == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    rules = load_rules_text(BASE)
    Store.open(url).close()  # created once: the replicas find it made
    fake = FakeControls()
    lock = threading.Lock()
    original = fake.write

    def write(kind: str, target: Mapping[str, str], state: Any, before: Any) -> Observed:
        with lock:
            return original(kind, target, state, before)

    fake.write = write  # type: ignore[method-assign]
    facts = Facts(month_spend={"proj_a": Decimal(50)}, installation="i")
    found = triggers([finding(rules, "proj_a", "12")])
    barrier = threading.Barrier(8)

    def replica() -> None:
        store = Store.open(url)
        try:
            notes = step_notes(rules, "i", enabled=True)
            plan = plan_actions(rules, found, facts)
            barrier.wait(timeout=30)
            store.actions.plan(plan.new, int(NOW.timestamp()), "r", notes)
            Runner(store.actions, rules, fake, Gate(True), notes, NOW, "r").run()
        finally:
            store.close()

    threads = [threading.Thread(target=replica) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    store = Store.open(url)
    try:
        assert [r.state for r in store.actions.all()] == ["applied"]
        steps = [e.to_state for e in store.actions.log()]
        assert steps == ["planned", "applying", "applied"]
    finally:
        store.close()
    assert fake.writes == 1


def test_a_firing_burn_rate_pair_names_an_action_as_a_threshold_does() -> None:
    from dataclasses import replace

    from budgetguard.evaluate.burn_rate import BurnRate

    text = BASE.replace(
        "    thresholds: [80%, {at: 100%, action: freeze}, {at: 150%, action: deny}]\n",
        "    thresholds: [80%]\n"
        "    burn_rate: [{long: 1h, short: 15m, factor: 6, action: freeze},"
        " {long: 4h, short: 30m, factor: 3}]\n",
    )
    rules = load_rules_text(text)
    fast, slow = rules.budget("per-project").burn_rate
    base = finding(rules, "proj_a", "5")
    firing = replace(base, burn=(BurnRate(fast, holds=True), BurnRate(slow, holds=True)))
    quiet = replace(base, burn=(BurnRate(fast, holds=False),))
    found = triggers([firing, quiet])
    assert [(t.kind, t.threshold, t.action) for t in found] == [("burn_rate", "1h/15m", "freeze")]
    facts = Facts(month_spend={"proj_a": Decimal("40")}, installation="inst")
    (planned,) = plan_actions(rules, found, facts).new
    assert planned.action_name == "freeze" and planned.params == {"cents": 4500}
    (refused,) = errors(text.replace("action: freeze}", "action: freez}"))
    assert refused.startswith("12:59: unknown action 'freez'")


def test_the_locks_and_switches_are_booleans_never_text_that_reads_as_one() -> None:
    """YAML 1.2: ``on``, ``yes``, ``1`` are not ``true``; a safety lock is never opened by
    a word that reads as one (the same for every switch of the rules)."""
    for word in ("on", "yes", "1", '"true"'):
        text = BASE.replace("approval: auto, enforce: true}", f"approval: auto, enforce: {word}}}")
        assert any("enforce: expected true or false" in e for e in errors(text)), word
    refused = errors(BASE + "    forecast: yes\ncontrols:\n  watch: 'off'\n")
    assert any("forecast: expected true or false" in e for e in refused)
    assert any("watch: expected true or false" in e for e in refused)


def test_a_fixed_clock_never_writes_to_openais_live_controls(tmp_path: Path) -> None:
    """``--now`` is for CI and backtests: against OpenAI's own API it leaves every action a
    dry-run (the lock stays shut); against the simulator or a fake it may drive the whole
    life of an action, so that it can be tried."""
    from budgetguard.settings import Settings

    def lock(**given: Any) -> tuple[bool, bool]:
        settings = Settings(actions=True, database_url=f"sqlite:///{tmp_path}/s.db", **given)
        return settings.actions_write, settings.clock_blocks_actions

    assert lock() == (True, False)
    assert lock(now=NOW) == (False, True)
    assert lock(now=NOW, openai_base_url="https://eu.api.openai.com/v1") == (False, True)
    assert lock(now=NOW, openai_base_url="http://127.0.0.1:8080/v1") == (True, False)


def test_an_action_with_its_own_mistakes_is_not_also_unknown_where_it_is_named() -> None:
    found = errors(BASE.replace("margin: 5,", "margin: -5, bogus: 1,"))
    assert len(found) == 2 and not any("unknown action" in e for e in found), found


def test_settings_that_could_never_act_are_refused() -> None:
    found = errors(
        BASE.replace("margin: 5,", 'margin: 5, project: "proj_*",').replace(
            'models: "gpt-4o*"', "models: []"
        )
    )
    assert any("project: one project id, not a glob" in e for e in found), found
    assert any("models: an empty list acts on nothing" in e for e in found), found


def test_a_word_or_a_mapping_is_told_in_the_files_words() -> None:
    found = errors(
        BASE.replace("approval: auto, enforce: true}", "approval: auto, revert: sometimes}", 1)
        + 'controls:\n  projects:\n    "proj_*": {spend_limit: 5}\n'
    )
    assert any(e.endswith("revert: expected 'period_end' or 'manual', or a mapping") for e in found)
    assert any("key 'proj_*': " in e for e in found), found
    assert not any("Revert" in e or "[key]" in e or "literal[" in e for e in found), found
