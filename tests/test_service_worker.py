"""Jobs in worker processes (``budgetguard run``): the same outcome as in the service's own
process, a worker that dies or overstays is a failed job and never a stall, stop reaches
the worker, and the service itself never loads what the jobs use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from budgetguard.rules import load_rules
from budgetguard.service import Service, jobs
from budgetguard.service.outcomes import Gauge, JobOutcome, TickOutcome, from_json, to_json
from budgetguard.service.worker import STOP_GRACE, WorkerError, run_in_worker
from budgetguard.settings import Settings
from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.store import Store
from tests.conftest import ADMIN_KEY, NOW, Receiver

NOW_DT = datetime.fromtimestamp(NOW, UTC)
RULES = """
version: 1
schedule: {{interval: 1h}}
notifiers:
  hook: {{type: webhook, url: "{url}"}}
budgets:
  - {{name: org-week, limit: 100, period: week, notify: [hook]}}
  - {{name: per-project, limit: 1000000, window: 7d, each: project, notify: [hook]}}
  - {{name: per-user, limit: 5, window: 24h, each: user, cost_source: estimate}}
"""


def _setup(tmp_path: Path, base_url: str, name: str) -> tuple[Settings, Any, Receiver]:
    receiver = Receiver()
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES.format(url=receiver.url))
    settings = Settings(
        openai_admin_key=ADMIN_KEY,
        openai_base_url=base_url,
        database_url=f"sqlite:///{tmp_path / name}",
        rules=rules_file,
        now=NOW_DT,
    )
    return settings, load_rules(rules_file), receiver


def _plain(outcome: TickOutcome) -> dict[str, Any]:
    """The outcome as the service would serve it (``/status`` is JSON with default=str);
    the collection's wall-clock stamps by endpoint only."""
    found = json.loads(to_json(outcome))
    found["collected"] = sorted(found["collected"])
    return dict(found)


def test_a_job_in_a_worker_reports_what_it_reports_in_the_services_process(
    tmp_path: Path,
) -> None:
    with SimulatorServer(build_api(now=NOW, days=12)) as sim:
        settings, rules, receiver = _setup(tmp_path, sim.base_url, "here.db")
        store = Store.open(settings.database_url)
        try:
            here = jobs.tick(settings, rules, NOW_DT, threading.Event(), store=store)
        finally:
            store.close()
        there_settings = settings.model_copy(
            update={"database_url": f"sqlite:///{tmp_path / 'there.db'}"}
        )
        there = run_in_worker(
            "tick", (there_settings, rules, NOW_DT), deadline=120, stop=threading.Event()
        )
    receiver.shutdown()
    assert isinstance(there, TickOutcome)
    assert here.error is None and here.status is not None and here.gauges
    assert ("hook", "delivered") in here.attempts
    assert _plain(there) == _plain(here)


def _children() -> list[int]:
    pid = os.getpid()
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(p) for p in text]
    return found


def _workers() -> list[int]:
    """This process's worker processes alive now."""
    found = []
    for pid in _children():
        try:
            if b"budgetguard.service.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            pass  # it ended
    return found


def _wait_for_child(timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := _workers():
            return found[0]
        time.sleep(0.02)
    raise AssertionError("no worker process started")


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_killed_worker_is_a_failed_tick_and_the_next_tick_runs(tmp_path: Path) -> None:
    with SimulatorServer(build_api(now=NOW, days=12, latency_ms=200)) as sim:
        settings, rules, receiver = _setup(tmp_path, sim.base_url, "killed.db")
        service = Service(settings, rules, clock=lambda: NOW_DT, isolated=True)
        try:
            ticking = threading.Thread(target=service.tick)
            ticking.start()
            worker = _wait_for_child()
            cmdline = Path(f"/proc/{worker}/cmdline").read_bytes()
            assert ADMIN_KEY.encode() not in cmdline  # the inputs go by a pipe
            os.kill(worker, 9)
            ticking.join(timeout=30)
            assert not ticking.is_alive()
            assert service.last_success is None
            expected = "tick failed: its worker process was ended by SIGKILL"
            assert service.last_error == expected
            code, body = service.health()
            assert code == 503 and "SIGKILL" in str(body["reasons"])
            service.tick()  # the next one, left alone, succeeds
            assert service.last_error is None and service.last_success is not None
            assert service.status["status"] in ("ok", "warning", "critical", "unknown")
            assert service.health()[0] == 200, service.health()
        finally:
            service.stop()
            receiver.shutdown()
    assert _workers() == []


def test_a_worker_past_its_deadline_is_killed(tmp_path: Path) -> None:
    with SimulatorServer(build_api(now=NOW, days=12, latency_ms=400)) as sim:
        settings, rules, receiver = _setup(tmp_path, sim.base_url, "late.db")
        began = time.monotonic()
        with pytest.raises(WorkerError, match="was killed: it did not end within 1s"):
            run_in_worker("tick", (settings, rules, NOW_DT), deadline=1.0, stop=threading.Event())
        assert time.monotonic() - began < 5
    receiver.shutdown()


def test_a_stop_reaches_the_worker_at_once(tmp_path: Path) -> None:
    with SimulatorServer(build_api(now=NOW, days=12, latency_ms=300)) as sim:
        settings, rules, receiver = _setup(tmp_path, sim.base_url, "stop.db")
        stop = threading.Event()
        threading.Timer(1.0, stop.set).start()
        began = time.monotonic()
        try:
            outcome: JobOutcome | None = run_in_worker(
                "tick", (settings, rules, NOW_DT), deadline=120, stop=stop
            )
        except WorkerError as exc:  # killed after its grace: also a bounded stop
            assert "did not stop within" in str(exc)
            outcome = None
        assert time.monotonic() - began < 1.0 + STOP_GRACE + 2
    receiver.shutdown()
    if outcome is not None:  # it stopped by itself: nothing was delivered after the stop
        assert outcome.error is None or "tick failed" in outcome.error


def test_the_service_process_never_loads_what_its_jobs_use(tmp_path: Path) -> None:
    """A tick in a worker leaves the service without numpy, the pipeline, the collector's
    HTTP client or prices: idle, it holds the scheduler, its endpoints and the rules (with
    the notifier plugins' settings models that checked them)."""
    heavy = ["numpy", "budgetguard.pipeline", "httpx", "genai_prices", "msgspec"]
    with SimulatorServer(build_api(now=NOW, days=12)) as sim:
        settings, _, receiver = _setup(tmp_path, sim.base_url, "light.db")
        script = f"""
import json, sys
from budgetguard.rules import load_rules
from budgetguard.service import Service
from budgetguard.settings import Settings
settings = Settings.model_validate_json({settings.model_dump_json()!r})
settings = settings.model_copy(update={{"openai_admin_key": {ADMIN_KEY!r}}})
service = Service(settings, load_rules(settings.rules), isolated=True)
service.tick()
print(json.dumps({{
    "error": service.last_error, "status": service.status["status"],
    "loaded": [m for m in {heavy!r} if m in sys.modules],
}}))
service.stop()
"""
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("BUDGETGUARD_")},
        )
    receiver.shutdown()
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"error": None, "status": found["status"], "loaded": []}
    assert found["status"] != "starting"


def test_outcomes_cross_as_json_and_anything_else_is_refused() -> None:
    tick = TickOutcome(
        attempts=[("hook", "delivered")],
        collected={"costs": 5},
        gauges=[Gauge("b", "project=p", "project=P (p)", 1.5, None, None)],
        status={"status": "ok", "at": "2026-12-01 00:00:00+00:00"},
        problems=["query x failing"],
    )
    assert from_json(to_json(tick)) == tick
    assert from_json(to_json(JobOutcome(error="digest failed: x"))) == JobOutcome(
        error="digest failed: x"
    )
    assert from_json(to_json(replace(tick, gauges=None, status=None))).status is None
    for bad in (b"[]", b'{"kind": "other"}', b"{"):
        with pytest.raises(ValueError):
            from_json(bad)
