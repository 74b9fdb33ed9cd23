"""Shared fixtures: a simulator on loopback with a frozen clock, and clients for it."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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


#: The PostgreSQL of the tests (this machine runs one; elsewhere those tests skip).
POSTGRES_URL = os.environ.get(
    "BUDGETGUARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


needs_postgres = pytest.mark.skipif(not postgres_up(), reason="no PostgreSQL on 127.0.0.1:5432")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test's own (a unique name), dropped after it: the
    server is shared, and advisory-lock keys derive from the database's name."""
    if not postgres_up():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    import uuid

    from sqlalchemy import create_engine, text

    from budgetguard.store import normalise_url

    name = f"bg_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on loopback that keeps every JSON body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers["Content-Length"])
                outer.bodies.append(json.loads(self.rfile.read(size)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"
