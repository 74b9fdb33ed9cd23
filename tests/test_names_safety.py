"""Names are for people, never for matching safety: a budget whose ``match`` glob is meant for
display names (``project: "Support chat*"``) is never $0 ``ok`` because the names are missing.

Real `budgetguard check` processes against the simulator, its directory behind a proxy that
fails, hangs, refuses the key, lists nothing, stops listing a project or renames it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from budgetguard.rules import load_rules_text
from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.store import Store
from budgetguard.store.directory import DirectoryStore
from tests.conftest import ADMIN_KEY

BUDGETGUARD = str(Path(sys.executable).with_name("budgetguard"))
RULES = """
version: 1
budgets:
  - {name: by-name, limit: 10000000, period: month, match: {project: "Support chat*"}}
  - {name: by-id, limit: 10000000, period: month, match: {project: proj_chatbot}}
  - {name: each, limit: 10000000, period: month, match: {project: "*"}, each: project}
"""
#: What the directory proxy does to a list answer: the body in, (status, body) out.
Directory = Callable[[str, dict[str, Any]], tuple[int, Any]]


def as_is(path: str, body: dict[str, Any]) -> tuple[int, Any]:
    return 200, body


class Proxy(ThreadingHTTPServer):
    """Forwards to the simulator; the directory's lists go through ``self.directory``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.directory: Directory = as_is
        self.hang = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                request = urllib.request.Request(
                    outer.upstream + self.path.removeprefix("/v1"),
                    headers={"Authorization": self.headers.get("Authorization", "")},
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        status, body = answer.status, answer.read()
                except urllib.error.HTTPError as exc:
                    status, body = exc.code, exc.read()
                listing = self.path.startswith(
                    ("/v1/organization/projects", "/v1/organization/users")
                )
                if listing and status == 200:
                    if outer.hang.is_set():
                        time.sleep(30)
                        return
                    status, data = outer.directory(self.path, json.loads(body))
                    body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.daemon_threads = True
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("names-safety")
    now = int(time.time()) - 5
    rules = base / "rules.yaml"
    rules.write_text(RULES)
    with SimulatorServer(build_api(now=now, days=3, seed=5)) as sim:
        proxy = Proxy(sim.base_url)
        env = {
            **os.environ,
            "OPENAI_ADMIN_KEY": ADMIN_KEY,
            "BUDGETGUARD_OPENAI_BASE_URL": proxy.base_url,
            "BUDGETGUARD_COLLECT_DEADLINE": "20",
            "BUDGETGUARD_NOW": datetime.fromtimestamp(now, UTC).isoformat(),
        }
        yield {"proxy": proxy, "env": env, "rules": rules}
        proxy.shutdown()


@pytest.fixture
def proxy(world: dict[str, Any]) -> Iterator[Proxy]:
    found: Proxy = world["proxy"]
    yield found
    found.directory = as_is
    found.hang.clear()


def check(world: dict[str, Any], db: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    command = [BUDGETGUARD, "check", "-r", str(world["rules"]), "--db", f"sqlite:///{db}"]
    done = subprocess.run(
        [*command, "-f", "json", *extra],
        check=False,
        env=world["env"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def finding(report: dict[str, Any], name: str, group: dict[str, str] | None = None) -> Any:
    return next(b for b in report["budgets"] if b["name"] == name and b["group"] == (group or {}))


def refused(status: int) -> Directory:
    def answer(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return status, {"error": {"message": "no", "type": "x", "param": None, "code": None}}

    return answer


@pytest.mark.parametrize(
    "fault", ["500", "401", "403", "hang", "empty"], ids=lambda f: f"directory-{f}"
)
def test_on_a_fresh_store_a_name_glob_without_names_is_unknown_never_zero_ok(
    world: dict[str, Any], proxy: Proxy, tmp_path: Path, fault: str
) -> None:
    if fault == "hang":
        proxy.hang.set()
    elif fault == "empty":
        proxy.directory = lambda path, body: (200, {**body, "data": [], "has_more": False})
    else:
        proxy.directory = refused(int(fault))
    code, report, _ = check(world, tmp_path / "fresh.db")
    named = finding(report, "by-name")
    assert named["severity"] == "unknown" and named["spend"] is None
    assert (
        "Support chat*" in named["data"]["note"] and "matches no project" in named["data"]["note"]
    )
    assert code == 3
    # what matches ids is counted as ever
    assert finding(report, "by-id")["severity"] == "ok" and finding(report, "by-id")["spend"] > 0
    each = finding(report, "each", {"project": "proj_chatbot"})
    assert each["spend"] == finding(report, "by-id")["spend"]


def test_names_once_known_are_kept_through_empty_failing_and_partial_listings(
    world: dict[str, Any], proxy: Proxy, tmp_path: Path
) -> None:
    db = tmp_path / "warm.db"
    code, report, _ = check(world, db)
    truth = finding(report, "by-id")["spend"]
    assert code == 0 and finding(report, "by-name")["spend"] == truth and truth > 0

    def forget_chatbot(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        data = [i for i in body["data"] if i.get("id") != "proj_chatbot"]
        return 200, {**body, "data": data}

    for directory in (
        lambda path, body: (200, {**body, "data": [], "has_more": False}),
        refused(500),
        forget_chatbot,
    ):
        proxy.directory = directory
        _expire_names(db)
        code, report, _ = check(world, db)
        assert finding(report, "by-name")["spend"] == truth, report
        assert finding(report, "by-name")["severity"] == "ok"
    names = _names(db)
    assert names["proj_chatbot"] == "Support chatbot" and names["proj_search"] == "Semantic search"


def test_a_renamed_project_keeps_matching_by_id_and_the_note_says_so(
    world: dict[str, Any], proxy: Proxy, tmp_path: Path
) -> None:
    db = tmp_path / "renamed.db"
    check(world, db)

    def rename(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        for item in body["data"]:
            if item.get("id") == "proj_chatbot":
                item["name"] = "Helpdesk"
        return 200, body

    proxy.directory = rename
    _expire_names(db)
    code, report, _ = check(world, db)
    named = finding(report, "by-name")
    assert named["spend"] == finding(report, "by-id")["spend"] and named["spend"] > 0
    assert "matched by its former name 'Support chatbot' (now 'Helpdesk')" in named["data"]["note"]
    assert report["names"]["proj_chatbot"] == "Helpdesk"
    assert code == 0


def _expire_names(db: Path) -> None:
    """Make the stored names a day old, so the next check refreshes them."""
    store = Store.open(f"sqlite:///{db}")
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE bg_directory SET refreshed_at = refreshed_at - 90000")
    finally:
        store.close()


def _names(db: Path) -> dict[str, str]:
    store = Store.open(f"sqlite:///{db}")
    try:
        return DirectoryStore(store.engine).names()
    finally:
        store.close()


def test_refresh_adds_renames_and_forgets_nothing(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'd.db'}")
    names = DirectoryStore(store.engine)
    names.refresh("project", {"proj_a": "Alpha", "proj_b": "Beta"}, 100)
    names.refresh("project", {}, 200)  # listed nothing
    assert names.names() == {"proj_a": "Alpha", "proj_b": "Beta"}
    names.refresh("project", {"proj_a": "Alpha two", "proj_b": ""}, 300)  # renamed; unnamed
    assert names.names() == {"proj_a": "Alpha two", "proj_b": "Beta"}
    assert names.former_by_kind() == {"project": {"proj_a": ("Alpha",)}}
    names.refresh("project", {"proj_a": "Alpha"}, 400)  # and back
    assert names.former_by_kind() == {"project": {"proj_a": ("Alpha two",)}}
    assert names.refreshed_at() == 400
    store.close()


def test_which_globs_are_meant_for_names() -> None:
    rules = load_rules_text(
        """
version: 1
budgets:
  - {name: a, limit: 1, period: day, match: {project: ["proj_x", "proj_*", "*"]}}
  - {name: b, limit: 1, period: day, match: {project: "Support*", user: "Erin*"}}
  - {name: c, limit: 1, period: day, match: {api_key: ["key_*", "*prod*"]}}
"""
    )
    named = rules.with_names({"project": {"proj_s": "Support chatbot"}}, {})
    a, b, c = named.budgets
    assert a.names is None  # ids and match-all: nothing is resolved by name
    assert b.names is not None and b.names.unresolved == (("user", "Erin*"),)
    assert "[p]roj_s" in "".join(b.match.project or ()) or "proj_s" in (b.match.project or ())
    assert c.names is not None and c.names.unresolved == (("api_key", "*prod*"),)
