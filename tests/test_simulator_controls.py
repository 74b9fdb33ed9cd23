"""The simulator's controls endpoints, checked with the official ``openai`` SDK's admin
resources as an independent client, and their answers against the spec's schemas: 404 when
no limit is set, cents, whole-list replacement, no rate-limit reset, late enforcement after
which the project's model requests answer 429 ``project_spend_limit_exceeded``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from importlib import resources
from typing import Any

import httpx
import pytest

from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.simulator.controls import month_start
from tests.conftest import ADMIN_KEY, NOW

openai = pytest.importorskip("openai")
jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    """A simulator of its own: the controls are state a test changes."""
    with SimulatorServer(build_api(now=NOW, days=40)) as server:
        yield server


def admin(sim: SimulatorServer) -> Any:
    client = openai.OpenAI(
        admin_api_key=ADMIN_KEY, api_key="unused", base_url=sim.base_url, max_retries=0
    )
    return client.admin.organization


def conforms(body: Any, schema: str) -> None:
    """``body`` is a ``schema`` of the controls spec (refs resolved against it)."""
    spec = json.loads(
        resources.files("budgetguard.simulator").joinpath("controls_openapi.json").read_text()
    )
    root = {"$ref": f"#/components/schemas/{schema}", "components": spec["components"]}
    jsonschema.Draft202012Validator(root).validate(body)


def raw(sim: SimulatorServer, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    return httpx.request(method, sim.base_url + path, headers=headers, json=body, timeout=10)


def test_spend_limits_answer_404_until_set_and_travel_in_cents(sim: SimulatorServer) -> None:
    org = admin(sim)
    with pytest.raises(openai.NotFoundError):
        org.spend_limit.retrieve()
    with pytest.raises(openai.NotFoundError):
        org.projects.spend_limit.retrieve("proj_search")
    made = org.spend_limit.update(threshold_amount=500_000, currency="USD", interval="month")
    assert made.threshold_amount == 500_000 and made.currency == "USD"
    assert made.enforcement.status in ("inactive", "enforcing")
    project = org.projects.spend_limit.update(
        "proj_search", threshold_amount=12_345, currency="USD", interval="month"
    )
    assert org.projects.spend_limit.retrieve("proj_search").threshold_amount == 12_345
    assert project.object == "project.spend_limit"
    conforms(raw(sim, "GET", "/organization/projects/proj_search/spend_limit").json(),
             "ProjectSpendLimitResource")  # fmt: skip
    conforms(raw(sim, "GET", "/organization/spend_limit").json(), "OrganizationSpendLimitResource")
    # dollars are refused: the amount is integer cents, at least one
    with pytest.raises(openai.BadRequestError):
        org.spend_limit.update(threshold_amount=12.5, currency="USD", interval="month")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        org.spend_limit.update(threshold_amount=0, currency="USD", interval="month")
    assert org.projects.spend_limit.delete("proj_search").deleted is True
    with pytest.raises(openai.NotFoundError):
        org.projects.spend_limit.delete("proj_search")
    with pytest.raises(openai.NotFoundError):
        org.projects.spend_limit.retrieve("proj_nope")


def test_model_permissions_replace_the_whole_list_with_exact_visible_ids(
    sim: SimulatorServer,
) -> None:
    permissions = admin(sim).projects.model_permissions
    with pytest.raises(openai.NotFoundError):
        permissions.retrieve("proj_chatbot")
    permissions.update("proj_chatbot", mode="deny_list", model_ids=["gpt-4o-2024-08-06", "o3"])
    permissions.update("proj_chatbot", mode="deny_list", model_ids=["gpt-4o-mini-2024-07-18"])
    now = permissions.retrieve("proj_chatbot")
    assert (now.mode, now.api_model_ids) == ("deny_list", ["gpt-4o-mini-2024-07-18"])
    conforms(raw(sim, "GET", "/organization/projects/proj_chatbot/model_permissions").json(),
             "ProjectModelPermissions")  # fmt: skip
    with pytest.raises(openai.BadRequestError):  # globs are not ids
        permissions.update("proj_chatbot", mode="deny_list", model_ids=["gpt-4o*"])
    assert permissions.delete("proj_chatbot").deleted is True
    with pytest.raises(openai.NotFoundError):
        permissions.retrieve("proj_chatbot")


def test_hosted_tools_update_partially(sim: SimulatorServer) -> None:
    tools = admin(sim).projects.hosted_tool_permissions
    assert tools.retrieve("proj_media").web_search.enabled is True
    after = tools.update("proj_media", web_search={"enabled": False})
    assert after.web_search.enabled is False and after.file_search.enabled is True
    conforms(raw(sim, "GET", "/organization/projects/proj_media/hosted_tool_permissions").json(),
             "ProjectHostedToolPermissions")  # fmt: skip


def test_rate_limits_are_written_back_never_reset(sim: SimulatorServer) -> None:
    limits = admin(sim).projects.rate_limits
    rows = list(limits.list_rate_limits("proj_chatbot"))
    assert {r.model for r in rows} >= {"gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18"}
    row = next(r for r in rows if r.model == "gpt-4o-2024-08-06")
    cut = limits.update_rate_limit(row.id, project_id="proj_chatbot", max_requests_per_1_minute=7)
    assert cut.max_requests_per_1_minute == 7
    assert cut.max_tokens_per_1_minute == row.max_tokens_per_1_minute
    listing = raw(sim, "GET", "/organization/projects/proj_chatbot/rate_limits").json()
    conforms(listing, "ProjectRateLimitListResponse")
    for method in ("DELETE", "GET"):  # there is no reset, nor a row of its own to read
        answer = raw(sim, method, f"/organization/projects/proj_chatbot/rate_limits/{row.id}")
        assert answer.status_code == 404 and "Invalid URL" in answer.json()["error"]["message"]


def test_spend_alerts_of_the_org_and_of_a_project(sim: SimulatorServer) -> None:
    org = admin(sim)
    channel = {"type": "email", "recipients": ["finops@example.com"]}
    made = org.spend_alerts.create(
        threshold_amount=100_000, currency="USD", interval="month", notification_channel=channel
    )
    mine = org.projects.spend_alerts.create(
        "proj_batch",
        threshold_amount=2_500,
        currency="USD",
        interval="month",
        notification_channel={**channel, "subject_prefix": "[batch]"},
    )
    assert [a.id for a in org.spend_alerts.list()] == [made.id]
    assert [a.id for a in org.projects.spend_alerts.list("proj_batch")] == [mine.id]
    changed = org.projects.spend_alerts.update(
        mine.id,
        project_id="proj_batch",
        threshold_amount=5_000,
        currency="USD",
        interval="month",
        notification_channel=channel,
    )
    assert changed.threshold_amount == 5_000
    conforms(
        raw(sim, "GET", "/organization/spend_alerts").json(), "OrganizationSpendAlertListResource"
    )
    assert org.spend_alerts.delete(made.id).deleted is True
    assert list(org.spend_alerts.list()) == []


def test_irreversible_levers(sim: SimulatorServer) -> None:
    org = admin(sim)
    assert org.projects.api_keys.delete("key_batch_runner", project_id="proj_batch").deleted
    with pytest.raises(openai.NotFoundError):  # no undo, and gone once gone
        org.projects.api_keys.delete("key_batch_runner", project_id="proj_batch")
    archived = org.projects.archive("proj_internal")
    assert archived.status == "archived" and archived.archived_at == NOW


def test_enforcement_is_late_and_then_refuses_the_projects_requests(sim: SimulatorServer) -> None:
    api = sim.api
    lag = api.controls.enforcement_lag
    spent_now = api.spend("proj_chatbot", month_start(NOW), NOW)
    spent_seen = api.spend("proj_chatbot", month_start(NOW), NOW - lag)
    assert spent_now > spent_seen
    # a limit between what was spent a moment ago and now: already passed, not yet enforced
    between = int((Decimal(spent_seen) + Decimal(spent_now)) / 2 * 100)
    limits = admin(sim).projects.spend_limit
    limits.update("proj_chatbot", threshold_amount=between, currency="USD", interval="month")
    assert limits.retrieve("proj_chatbot").enforcement.status == "inactive"
    chatbot = openai.OpenAI(
        api_key="sk-proj-chatbot", project="proj_chatbot", base_url=sim.base_url, max_retries=0
    )
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    assert chatbot.chat.completions.create(**ask).choices[0].message.content == "ok"

    api.controls.enforcement_lag = 0  # enforcement catches up
    assert limits.retrieve("proj_chatbot").enforcement.status == "enforcing"
    with pytest.raises(openai.RateLimitError) as refused:
        chatbot.chat.completions.create(**ask)
    assert refused.value.code == "project_spend_limit_exceeded"
    search = openai.OpenAI(
        api_key="sk-proj-search", project="proj_search", base_url=sim.base_url, max_retries=0
    )
    assert search.chat.completions.create(**ask).choices  # another project is not refused
    limits.delete("proj_chatbot")
    assert chatbot.chat.completions.create(**ask).choices


def test_auth_and_bodies_are_checked_like_the_rest(sim: SimulatorServer) -> None:
    denied = openai.OpenAI(
        admin_api_key="sk-proj-notadmin", api_key="unused", base_url=sim.base_url, max_retries=0
    )
    with pytest.raises(openai.PermissionDeniedError):
        denied.admin.organization.spend_limit.retrieve()
    answer = raw(sim, "POST", "/organization/spend_limit", {"threshold_amount": 100})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "Missing required parameter: 'currency'."
    assert answer.headers["x-request-id"].startswith("req_")
