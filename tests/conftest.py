"""Shared fixtures: a simulator on loopback with a frozen clock, and clients for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from budgetguard.simulator import SimulatorServer, build_api

#: 2026-11-22T10:17:31Z: a Sunday, deliberately not aligned to a minute, hour or day.
NOW = 1795342651
ADMIN_KEY = "sk-admin-test-0123456789abcdef"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sim_session() -> Iterator[SimulatorServer]:
    """One simulator for read-only tests (its faults are cleared between tests)."""
    with SimulatorServer(build_api(now=NOW, days=60)) as server:
        yield server


@pytest.fixture
def sim(sim_session: SimulatorServer) -> Iterator[SimulatorServer]:
    sim_session.faults.clear()
    sim_session.api.string_amounts = False
    yield sim_session
    sim_session.faults.clear()
    sim_session.api.string_amounts = False
