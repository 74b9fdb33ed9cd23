"""The service with the rules users write: the shipped ``rules.example.yaml`` and rules that
use every key of the contract go to ``run``'s worker processes and come back as collected,
alerted and digested; a worker that cannot load its job says why, at once, and fails
``/livez`` when it keeps happening."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from budgetguard.rules import Rules, load_rules
from budgetguard.rules.actions import Action, ActionLimits, Revert
from budgetguard.rules.controls import (
    AlertSpec,
    Controls,
    HostedToolsSpec,
    ModelPermissionsSpec,
    OrganisationControls,
    ScopeControls,
)
from budgetguard.rules.model import (
    Anomaly,
    BurnRatePair,
    Defaults,
    Digest,
    Match,
    ModelPrice,
    NotifyEntry,
    RawBudget,
    RawRules,
    RawThreshold,
    Schedule,
)
from budgetguard.service import Service
from budgetguard.service.health import BROKEN_WORKERS_FATAL
from budgetguard.service.worker import WorkerError, run_in_worker
from budgetguard.settings import Settings
from budgetguard.simulator import SimulatorServer, build_api
from tests.conftest import ADMIN_KEY, NOW, Receiver

ROOT = Path(__file__).resolve().parents[1]
NOW_DT = datetime.fromtimestamp(NOW, UTC)

#: Every key the rules file has, each used at least once (notifier types: every built-in).
EVERY_KEY = """
version: 1
timezone: Europe/Paris
schedule: {{interval: 30m}}
notifiers:
  stdout: {{type: console}}
  hook: {{type: webhook, url: "{hook}", secret: s3cret, signing: budgetguard, timeout: 5}}
  std: {{type: webhook, url: "{hook}", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
         signing: standard}}
  chat: {{type: slack, webhook_url: "{hook}", username: budgetguard}}
  bot: {{type: slack, token: xoxb-0, channel: "#finops", api_url: "{closed}"}}
  mail: {{type: email, smtp_host: 127.0.0.1, smtp_port: 1, username: u, password: p,
          starttls: true, ssl: false, from: bg@example.com, to: [a@example.com],
          ca_file: /nonexistent/ca.pem, timeout: 2}}
  pager: {{type: pagerduty, routing_key: R0UTING, api_url: "{closed}", source: bg, timeout: 2}}
  teams: {{type: teams, webhook_url: "{closed}", timeout: 2}}
defaults:
  thresholds: [80%, 100%]
  notify: [hook]
  cost_source: auto
  repeat: 12h
  max_staleness: 6h
  mismatch_factor: 4
  burn_rate: default
pricing:
  models:
    ft:gpt-4o-mini:acme: {{input: 0.30, cached_input: 0.15, output: 1.20,
                          audio_input: 1, audio_output: 2}}
budgets:
  - name: everything
    description: All of it.
    runbook_url: https://runbooks.example.com/spend
    labels: {{team: finops, env: prod}}
    match: {{project: "*", model: "*", api_key: "*", line_item: "*"}}
    each: [project, model]
    metric: cost
    limit: 100
    period: month
    thresholds:
      - {{at: 50%, forecast: true}}
      - 1000
      - {{at: 100%, severity: critical, notify: [hook, {{name: pager, on: [fire, resolve]}}]}}
      - {{at: 150%, action: freeze}}
    forecast: true
    repeat: 6h
    notify: [hook, stdout, std, chat, bot, mail, teams]
    cost_source: costs
    max_staleness: 12h
    enabled: true
  - name: tokens
    match: {{endpoint: completions, user: "*"}}
    metric: input_tokens
    limit: 1000
    window: 24h
    cost_source: estimate
    burn_rate: [{{long: 1h, short: 15m, factor: 6, severity: critical, min_spend: 5,
                 notify: [hook]}}]
  - name: spike
    each: project
    anomaly: {{window: 1h, baseline: 7d, factor: 3, min: 5, seasonal: false}}
  - {{name: off, limit: 1, window: 1h, enabled: false, mismatch_factor: 5}}
digest: {{schedule: "0 9 * * mon", period: week, notify: [hook, chat], top: 3}}
actions:
  freeze: {{type: openai.project_spend_limit, margin: 5, approval: auto, enforce: false,
           revert: period_end, protect: ["proj_prod*"]}}
  cap: {{type: openai.org_spend_limit, amount: 500, revert: {{after: 6h}}}}
  deny: {{type: openai.model_deny, models: ["gpt-4o*"], project: proj_chatbot, revert: manual}}
  tools: {{type: openai.hosted_tools, tools: [web_search]}}
  slow: {{type: openai.rate_limit, fraction: 0.5, models: "gpt-4o*"}}
  drop: {{type: openai.delete_key, key: key_abc, irreversible: true, approval: manual}}
action_limits: {{per_tick: 2, per_day: 5, protect: ["proj_prod*"]}}
controls:
  watch: true
  notify: [hook]
  organization:
    spend_limit: 100000
    spend_alerts: [{{at: 50000, email: [a@example.com], subject_prefix: "[org]"}}]
  projects:
    proj_chatbot:
      spend_limit: 5000
      spend_alerts: []
      model_permissions: {{mode: deny_list, models: [o3]}}
      hosted_tools: {{file_search: true, web_search: false, image_generation: true, mcp: true,
                     code_interpreter: true}}
    proj_media: {{spend_limit: none, model_permissions: none}}
"""

#: The models whose keys EVERY_KEY must use, and keys of theirs it need not (none yet).
_MODELS: tuple[type[BaseModel], ...] = (
    RawRules,
    Action,
    ActionLimits,
    Revert,
    Schedule,
    Defaults,
    ModelPrice,
    RawBudget,
    Match,
    RawThreshold,
    BurnRatePair,
    Anomaly,
    NotifyEntry,
    Digest,
    Controls,
    OrganisationControls,
    ScopeControls,
    AlertSpec,
    ModelPermissionsSpec,
    HostedToolsSpec,
)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.shutdown()


def _settings(tmp_path: Path, base_url: str, rules: Path) -> Settings:
    return Settings(
        openai_admin_key=ADMIN_KEY,
        openai_base_url=base_url,
        database_url=f"sqlite:///{tmp_path / 'service.db'}",
        rules=rules,
        now=NOW_DT,
    )


def _example_env(hook: str) -> dict[str, str]:
    """The example's notifier variables: Slack and the audit webhook at a local receiver,
    email at a port where nothing listens (it stays queued)."""
    return {"SLACK_WEBHOOK_URL": hook, "AUDIT_WEBHOOK_URL": hook, "SMTP_HOST": "127.0.0.1"}


def test_every_key_of_the_rules_is_used_by_the_every_key_rules(receiver: Receiver) -> None:
    text = EVERY_KEY.format(hook=receiver.url, closed="http://127.0.0.1:9/x")
    for model in _MODELS:
        for name, field in model.model_fields.items():
            assert f"{field.alias or name}:" in text, (model.__name__, name)
    rules = load_rules_of(text)
    assert rules.pricing.models and any(b.labels for b in rules.budgets)
    assert pickle.loads(pickle.dumps(rules)) == rules


def load_rules_of(text: str) -> Rules:
    from budgetguard.rules import load_rules_text

    return load_rules_text(text, env={})


@pytest.mark.parametrize("which", ["rules.example.yaml", "every key"])
def test_rules_survive_the_hand_off_and_the_tick_collects_and_alerts_in_a_worker(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    """The bug of issue 23: a worker could not unpickle rules with ``pricing.models`` or
    ``labels``, so ``run`` with the shipped example never completed a job."""
    rules_file = tmp_path / "rules.yaml"
    if which == "rules.example.yaml":
        for name, value in _example_env(receiver.url).items():
            monkeypatch.setenv(name, value)
        rules_file.write_text((ROOT / "rules.example.yaml").read_text())
    else:
        rules_file.write_text(EVERY_KEY.format(hook=receiver.url, closed="http://127.0.0.1:9/x"))
    rules = load_rules(rules_file)
    before = len(receiver.bodies)
    with SimulatorServer(build_api(now=NOW, days=40)) as sim:
        service = Service(
            _settings(tmp_path, sim.base_url, rules_file), rules, clock=lambda: NOW_DT
        )
        try:
            service.tick()
            assert service.last_error is None, service.last_error
            assert service.last_success is not None
            status = service.status
            assert status["collect_problems"] == []
            assert {b["name"] for b in status["budgets"]} >= {
                b.name for b in rules.budgets if b.enabled
            }
            assert status["alerts"], "the simulator's organisation is over some budget"
            delivered = [
                b for b in receiver.bodies[before:] if b.get("type") == "budgetguard.alert"
            ]
            slack = [b for b in receiver.bodies[before:] if "attachments" in b or "blocks" in b]
            assert delivered or slack, receiver.bodies[before:]
            service.send_digest(NOW_DT)
            assert "digest" not in service.state.job_errors, service.state.job_errors
            digests = [b for b in receiver.bodies[before:] if b.get("type") == "budgetguard.digest"]
            if which == "every key":
                assert len(digests) == 1  # the webhook; Slack's digest is blocks
            assert any("digest" in str(b).lower() for b in receiver.bodies[before:])
        finally:
            service.stop()


class _Unloadable:
    """Pickles, but cannot be unpickled: what a worker makes of inputs it cannot load. The
    service reads what it wraps (``rules``) as it would read the rules themselves."""

    def __init__(self, wrapped: object = None) -> None:
        self.wrapped = wrapped

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["wrapped"], name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (int, ("not a number",))


def test_a_worker_that_cannot_load_its_job_says_why_in_one_line() -> None:
    with pytest.raises(WorkerError) as caught:
        run_in_worker(
            "tick",
            (_Unloadable(), None, NOW_DT),  # type: ignore[arg-type]
            deadline=120,
            stop=threading.Event(),
            progress=_Deaf(),
        )
    assert caught.value.broken
    assert str(caught.value) == (
        "its worker process could not load its job: ValueError: invalid literal for int() "
        "with base 10: 'not a number'"
    )


class _Deaf:
    def attempt(self, notifier: str, outcome: str) -> None:
        pass

    def collected(self, endpoint: str, stamp: int) -> None:
        pass


def test_workers_that_keep_failing_to_load_fail_livez_and_name_the_cause(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = load_rules_of("version: 1\nbudgets: [{name: b, limit: 5, window: 1h}]\n")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'broken.db'}", now=NOW_DT)
    service = Service(settings, rules, clock=lambda: NOW_DT)
    from apscheduler.schedulers.background import BackgroundScheduler

    service.scheduler = BackgroundScheduler()  # alive, with no job of its own: the ticks
    service.scheduler.start()  # below are the only ones, so each is counted
    try:
        service.rules = _Unloadable(rules)  # type: ignore[assignment]
        for count in range(1, BROKEN_WORKERS_FATAL + 1):
            service.tick()
            code, body = service.health()
            assert code == 503
            assert body["reasons"][0] == (
                "tick failed: its worker process could not load its job: ValueError: invalid "
                "literal for int() with base 10: 'not a number'"
            )
            alive = service.liveness()[0]
            assert alive == (503 if count >= BROKEN_WORKERS_FATAL else 200), count
        assert "jobs in a row could not start or load their job" in str(service.liveness()[1])
        critical = [r for r in caplog.records if r.levelname == "CRITICAL"]
        assert len(critical) == BROKEN_WORKERS_FATAL
        service.rules = rules  # fixed (a reload): the next job loads, /livez is 200 again
        service.tick()
        assert service.liveness()[0] == 200 and service.last_error is None
    finally:
        service.stop()
