"""The directory client against the simulator (pagination, auth, the spec's shapes), `match`
on names, and per-notifier subscriptions in the rules."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx
import jsonschema
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from budgetguard.providers.openai import AuthError, PaginationError
from budgetguard.providers.openai import directory as client_module
from budgetguard.providers.openai.directory import DirectoryClient
from budgetguard.rules import RulesError, load_rules_text
from budgetguard.rules.model import NotifyEntry
from budgetguard.simulator import SimulatorServer
from budgetguard.simulator.directory import answer
from budgetguard.store import Store
from budgetguard.store.directory import DirectoryStore
from budgetguard.store.schema import SCHEMA_VERSION
from budgetguard.store.silences import SilenceStore
from tests.conftest import ADMIN_KEY

SPEC = json.load(open("/work/shared/reference/openai-admin-directory-openapi.json"))  # noqa: SIM115


def _schema(name: str) -> dict[str, object]:
    return {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]}


def test_the_simulator_serves_the_specs_shapes() -> None:
    for path, schema in (
        ("/organization/projects", "ProjectListResponse"),
        ("/organization/users", "UserListResponse"),
        ("/organization/projects/proj_chatbot/api_keys", "ProjectApiKeyListResponse"),
    ):
        status, body = answer(path, "limit=100") or (0, {})
        assert status == 200
        jsonschema.validate(body, _schema(schema))
    assert answer("/organization/projects", "limit=0") is not None
    assert (answer("/organization/projects", "limit=0") or (0,))[0] == 400
    assert (answer("/organization/projects/proj_nope/api_keys", "") or (0,))[0] == 404


def test_the_client_pages_through_the_directory(
    sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "PAGE_SIZE", 2)  # several pages per list

    async def fetch() -> client_module.Directory:
        async with DirectoryClient(SecretStr(ADMIN_KEY), sim.base_url) as client:
            return await client.directory()

    found = anyio.run(fetch)
    assert found.projects["proj_media"] == "Media studio" and len(found.projects) == 5
    assert len(found.users) == 5 and found.users["user-bob"] == "Bob Okafor"
    assert found.api_keys["key_search_svc"] == "search-svc"

    async def refused() -> None:
        async with DirectoryClient(SecretStr("sk-proj-nope"), sim.base_url) as client:
            await client.directory()

    with pytest.raises(AuthError, match="sk-admin-"):
        anyio.run(refused)


def test_a_cursor_that_does_not_advance_is_an_error() -> None:
    page = {"object": "list", "data": [], "has_more": True, "last_id": "same"}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=page)

    async def fetch() -> None:
        transport = httpx.MockTransport(handler)
        async with DirectoryClient(SecretStr(ADMIN_KEY), transport=transport) as client:
            await client.list("/organization/users", "organization.user")

    with pytest.raises(PaginationError):
        anyio.run(fetch)


def test_match_globs_match_names_and_subscriptions_load() -> None:
    rules = load_rules_text("""
version: 1
notifiers: {finops: {type: console}, pager: {type: console}}
budgets:
  - name: chat
    match: {project: "Support*", user: ["Erin*"]}
    limit: 10
    window: 1d
    notify: [{name: finops, on: [fire, resolve]}, pager]
""")
    named = rules.with_names(
        {
            "project": {"proj_chatbot": "Support chatbot", "proj_x": "Other"},
            "user": {"u[1]": "Erin"},
        }
    )
    match = named.budgets[0].match
    assert match.project == ("Support*", "proj_chatbot")
    assert match.user == ("Erin*", "u[[]1]")  # the id as a literal glob
    assert named.budgets[0].notify == (NotifyEntry(name="finops", on=("fire", "resolve")), "pager")
    with pytest.raises(RulesError, match="no notifier named 'nope'"):
        load_rules_text(
            rules_text := """
version: 1
notifiers: {finops: {type: console}}
budgets:
  - {name: a, limit: 1, window: 1d, notify: [{name: nope, on: [fire]}]}
"""
        )
    assert rules_text
    with pytest.raises(RulesError):
        load_rules_text("""
version: 1
notifiers: {finops: {type: console}}
budgets:
  - {name: a, limit: 1, window: 1d, notify: [{name: finops, on: [explode]}]}
""")


def test_a_version_2_store_gets_the_silence_and_name_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store.open(url)
    with store.engine.begin() as conn:  # as version 2 left it
        for table in ("bg_silences", "bg_silence_holds", "bg_directory"):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("UPDATE bg_schema_version SET version = 2"))
    store.close()
    store = Store.open(url)
    try:
        assert SilenceStore(store.engine).all() == []
        assert DirectoryStore(store.engine).names() == {}
        with store.engine.connect() as conn:
            version = conn.execute(text("SELECT version FROM bg_schema_version")).scalar()
            assert version == SCHEMA_VERSION
    finally:
        store.close()


def test_names_refresh_daily_and_on_an_unknown_id(sim: SimulatorServer, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from budgetguard import pipeline
    from budgetguard.settings import Settings
    from budgetguard.store.schema import cost_buckets

    settings = Settings(openai_admin_key=ADMIN_KEY, openai_base_url=sim.base_url)
    store = Store.open(f"sqlite:///{tmp_path / 'names.db'}")
    t0 = datetime(2026, 11, 22, 10, tzinfo=UTC)
    try:
        assert pipeline.refresh_names(settings, store, t0)  # never refreshed
        assert not pipeline.refresh_names(settings, store, t0 + timedelta(hours=5))
        with store.engine.begin() as conn:  # a project the directory has not listed yet
            conn.execute(
                cost_buckets.insert().values(
                    query_key="q", day_start=0, project_id="proj_new", amount="1", currency="usd"
                )
            )
        assert not pipeline.refresh_names(settings, store, t0 + timedelta(minutes=30))
        assert pipeline.refresh_names(settings, store, t0 + timedelta(hours=2))  # at most hourly
        assert pipeline.refresh_names(settings, store, t0 + timedelta(days=2))  # a day old
        broken = settings.model_copy(update={"openai_admin_key": SecretStr("sk-proj-nope")})
        assert not pipeline.refresh_names(broken, store, t0 + timedelta(days=4))  # logged only
        assert DirectoryStore(store.engine).names()["proj_chatbot"] == "Support chatbot"
    finally:
        store.close()
