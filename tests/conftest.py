"""Shared fixtures: a simulator on loopback with a frozen clock, and clients for it."""

from __future__ import annotations

import json
import os
import secrets
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


#: The PostgreSQL server of the tests (this machine runs one; elsewhere those tests skip).
_POSTGRES_SERVER = os.environ.get(
    "BUDGETGUARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
#: This run's own database on it (the server is shared: another run's tables, schema version
#: and advisory locks, which are per database, never meet this one's); created for the
#: session and dropped after it.
#: (The name lives in the environment: this file is imported twice, as pytest's conftest and as
#: ``tests.conftest``, and both must name the same database.)
_DATABASE = os.environ.setdefault("BUDGETGUARD_TEST_PG_DATABASE", f"bg_test_{secrets.token_hex(6)}")
POSTGRES_URL = _POSTGRES_SERVER.rsplit("/", 1)[0] + "/" + _DATABASE


def postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


needs_postgres = pytest.mark.skipif(not postgres_up(), reason="no PostgreSQL on 127.0.0.1:5432")


@pytest.fixture(scope="session", autouse=True)
def _own_postgres_database() -> Iterator[None]:
    if not postgres_up():
        yield
        return
    from sqlalchemy import create_engine, text

    from budgetguard.store import normalise_url

    admin = create_engine(normalise_url(_POSTGRES_SERVER), isolation_level="AUTOCOMMIT")
    name = _DATABASE
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield
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
