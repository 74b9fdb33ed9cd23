"""Shared fixtures: a simulator on loopback with a frozen clock, and clients for it."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.store import normalise_url

#: 2026-11-22T10:17:31Z: a Sunday, deliberately not aligned to a minute, hour or day.
NOW = 1795342651
ADMIN_KEY = "sk-admin-test-0123456789abcdef"

#: Rules that must be refused fast: a billion-laughs alias bomb, and one through merge keys
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)
MERGE_BOMB = (
    "big: &big {" + ", ".join(f"k{i}: {i}" for i in range(2000)) + "}\n"
    "m0: &m0 {<<: *big}\n"
    + "".join(f"m{i + 1}: &m{i + 1} [{', '.join(['*m' + str(i)] * 9)}]\n" for i in range(6))
)


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
#: It is shared with other users, so each test run works in a database of its own, with a
#: unique name, created for the run and dropped after it (advisory locks, such as the
#: leader's, are per database too): runs never see each other's tables or locks.
POSTGRES_SERVER_URL = os.environ.get(
    "BUDGETGUARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
#: (kept in the environment: pytest may import this module twice, as conftest and as
#: tests.conftest, and both must name the same database)
POSTGRES_DATABASE = os.environ.setdefault(
    "BUDGETGUARD_TEST_POSTGRES_DATABASE", f"budgetguard_test_{uuid.uuid4().hex[:16]}"
)
POSTGRES_URL = (
    make_url(POSTGRES_SERVER_URL)
    .set(database=POSTGRES_DATABASE)
    .render_as_string(hide_password=False)
)


def postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


needs_postgres = pytest.mark.skipif(not postgres_up(), reason="no PostgreSQL on 127.0.0.1:5432")


@pytest.fixture(scope="session", autouse=True)
def _postgres_database_of_this_run() -> Iterator[None]:
    """Create this run's PostgreSQL database (when the server answers); drop it after."""
    if not postgres_up():
        yield
        return
    server = create_engine(normalise_url(POSTGRES_SERVER_URL), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{POSTGRES_DATABASE}"'))
    try:
        yield
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{POSTGRES_DATABASE}" WITH (FORCE)'))
        server.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test's own (a unique name), dropped after it: the
    server is shared, and advisory-lock keys derive from the database's name."""
    if not postgres_up():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    name = f"bg_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(POSTGRES_SERVER_URL), isolation_level="AUTOCOMMIT")
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


def start_run(
    tmp_path: Path, base_url: str, rules_text: str, *, installed: bool = False, **popen: Any
) -> tuple[subprocess.Popen[str], int, Path]:
    """``budgetguard run`` as a real process on a fresh SQLite store at ``NOW``, against
    ``base_url``: the process, its HTTP port (read from its start-up line), the rules file.
    ``installed``: through the console script (nothing of the working directory on its
    path), not ``python -m``; ``popen``: more ``Popen`` arguments."""
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(rules_text)
    env = dict(
        os.environ,
        OPENAI_ADMIN_KEY=ADMIN_KEY,
        BUDGETGUARD_OPENAI_BASE_URL=base_url,
        BUDGETGUARD_DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}",
        BUDGETGUARD_RULES=str(rules_file),
        BUDGETGUARD_NOW=datetime.fromtimestamp(NOW, UTC).isoformat(),
    )
    command = (
        [str(Path(sys.executable).with_name("budgetguard"))]
        if installed
        else [sys.executable, "-m", "budgetguard"]
    )
    process = subprocess.Popen(
        [*command, "run", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
        **popen,
    )
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"http://localhost:(\d+)/healthz", line)
        if found:
            return process, int(found.group(1)), rules_file
    raise AssertionError(f"budgetguard run did not start (exit {process.wait()})")


def budgetguard_cli(
    folder: Path, *args: str, base_url: str = "http://127.0.0.1:9/v1", now: str | None = None
) -> tuple[int, str, str]:
    """The installed console script, as a user runs it in ``folder`` (its rules.yaml and
    store.db), at ``now`` (default NOW), against ``base_url``, with no other setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGETGUARD_", "OPENAI"))}
    env = {k: v for k, v in env.items() if k not in ("SLACK_WEBHOOK_URL", "SMTP_HOST")}
    env |= {
        "OPENAI_ADMIN_KEY": ADMIN_KEY,
        "BUDGETGUARD_OPENAI_BASE_URL": base_url,
        "BUDGETGUARD_NOW": now or datetime.fromtimestamp(NOW, UTC).isoformat(),
        "BUDGETGUARD_DATABASE_URL": f"sqlite:///{folder / 'store.db'}",
    }
    done = subprocess.run(
        [str(Path(sys.executable).with_name("budgetguard")), *args],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="session")
def example_store(sim_session: SimulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the shipped rules.example.yaml as rules.yaml and a store the session's
    simulator filled for it (copy it before writing: it is shared)."""
    import shutil

    folder = tmp_path_factory.mktemp("example")
    shutil.copy(Path(__file__).resolve().parents[1] / "rules.example.yaml", folder / "rules.yaml")
    code, _, err = budgetguard_cli(folder, "collect", base_url=sim_session.base_url)
    assert code == 0, err
    return folder


#: How long a test that installs for real may take, its install included (a loaded 2-core
#: machine: minutes, not seconds).
INSTALL_TIMEOUT = 900


@pytest.fixture(scope="session")
def quick_start(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checkout after the README's quick start's first two steps, run as
    written (`python3 -m venv .venv && . .venv/bin/activate`, then `pip install .`): once
    per session, however many tests use it (the install takes minutes under load)."""
    import shutil

    root = Path(__file__).resolve().parents[1]
    folder = tmp_path_factory.mktemp("checkout")
    for name in ("pyproject.toml", "README.md", "rules.example.yaml"):
        shutil.copy(root / name, folder / name)
    for name in ("budgetguard", "plugins"):
        shutil.copytree(root / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        ["bash", "-euc", "python3 -m venv .venv && . .venv/bin/activate\npip install -q ."],
        cwd=folder,
        env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT - 60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return folder
