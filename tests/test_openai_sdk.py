"""The official ``openai`` SDK, an independent client, reads the simulator."""

from __future__ import annotations

import pytest

from budgetguard.providers.openai import ENDPOINTS
from budgetguard.simulator import SimulatorServer
from tests.conftest import ADMIN_KEY, NOW

openai = pytest.importorskip("openai")
DAY = 86400
TODAY = NOW - NOW % DAY


def sdk(sim: SimulatorServer) -> object:
    return openai.OpenAI(
        admin_api_key=ADMIN_KEY, api_key="unused", base_url=sim.base_url, max_retries=0
    )


def test_sdk_reads_usage_and_costs(sim: SimulatorServer) -> None:
    client = sdk(sim)
    usage = client.admin.organization.usage  # type: ignore[attr-defined]
    page = usage.completions(
        start_time=TODAY - 2 * DAY,
        end_time=TODAY,
        bucket_width="1d",
        group_by=["project_id", "model"],
        limit=2,
    )
    assert len(page.data) == 2
    result = page.data[0].results[0]
    assert result.object == "organization.usage.completions.result"
    assert result.project_id and result.model
    costs = usage.costs(start_time=TODAY - 2 * DAY, end_time=TODAY, group_by=["line_item"])
    assert costs.data[0].results[0].amount.currency == "usd"
    for name in sorted(set(ENDPOINTS) - {"costs", "completions"}):
        page = getattr(usage, name)(start_time=TODAY - DAY, end_time=TODAY)
        assert page.data[0].results, name


def test_sdk_follows_the_simulators_cursors(sim: SimulatorServer) -> None:
    usage = sdk(sim).admin.organization.usage  # type: ignore[attr-defined]
    starts = []
    cursor = None
    while True:
        kwargs = {"page": cursor} if cursor else {}
        page = usage.embeddings(
            start_time=TODAY - 3 * DAY, end_time=TODAY, bucket_width="1h", limit=30, **kwargs
        )
        starts += [b.start_time for b in page.data]
        if not page.has_more:
            break
        cursor = page.next_page
    assert starts == list(range(TODAY - 3 * DAY, TODAY, 3600))


def test_sdk_sees_the_auth_errors(sim: SimulatorServer) -> None:
    client = openai.OpenAI(
        admin_api_key="sk-proj-nope", api_key="unused", base_url=sim.base_url, max_retries=0
    )
    with pytest.raises(openai.PermissionDeniedError):
        client.admin.organization.usage.costs(start_time=TODAY)
