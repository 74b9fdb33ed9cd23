"""Jobs in worker processes (``budgetguard run``): the same outcome as in the service's own
process, a worker that dies or overstays is a failed job and never a stall, stop reaches
the worker, and the service itself never loads what the jobs use."""

from __future__ import annotations

import contextlib
import json
import os
import signal
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
from budgetguard.service import Service
from budgetguard.service.outcomes import (
    Gauge,
    JobOutcome,
    TickOutcome,
    attempt_line,
    collected_line,
    outcome_line,
    read_line,
)
from budgetguard.service.worker import STOP_GRACE, WorkerError, run_in_worker
from budgetguard.settings import Settings
from budgetguard.simulator import SimulatorServer, build_api
from tests.conftest import ADMIN_KEY, NOW, Receiver, start_run

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


class Heard:
    """A ``Progress`` that keeps what it hears."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, str]] = []
        self.stamps: dict[str, int] = {}

    def attempt(self, notifier: str, outcome: str) -> None:
        self.attempts.append((notifier, outcome))

    def collected(self, endpoint: str, stamp: int) -> None:
        self.stamps[endpoint] = stamp


def _plain(outcome: JobOutcome) -> dict[str, Any]:
    """The outcome as the service would serve it (``/status`` is JSON with default=str)."""
    return dict(json.loads(outcome_line(outcome)))


def test_a_job_in_a_worker_reports_its_progress_and_outcome(tmp_path: Path) -> None:
    with SimulatorServer(build_api(now=NOW, days=12)) as sim:
        settings, rules, receiver = _setup(tmp_path, sim.base_url, "there.db")
        heard = Heard()
        outcome = run_in_worker(
            "tick", (settings, rules, NOW_DT), deadline=300, stop=threading.Event(), progress=heard
        )
    receiver.shutdown()
    assert isinstance(outcome, TickOutcome)
    assert outcome.error is None and outcome.status is not None and outcome.gauges
    assert outcome.status["budgets"] and outcome.status["alerts"]
    assert ("hook", "delivered") in heard.attempts
    assert {"costs", "completions"} <= set(heard.stamps)
    assert len(receiver.bodies) == heard.attempts.count(("hook", "delivered"))
    assert _plain(read_line(outcome_line(outcome), Heard())) == _plain(outcome)  # type: ignore[arg-type]


def _children() -> list[int]:
    pid = os.getpid()
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended since the listing
            found += [int(p) for p in (task / "children").read_text().split()]
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


def _wait_for_child(timeout: float = 120.0) -> int:
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
        service = Service(settings, rules, clock=lambda: NOW_DT)
        try:
            ticking = threading.Thread(target=service.tick)
            ticking.start()
            worker = _wait_for_child()
            cmdline = Path(f"/proc/{worker}/cmdline").read_bytes()
            assert ADMIN_KEY.encode() not in cmdline  # the inputs go by a pipe
            os.kill(worker, 9)
            ticking.join(timeout=180)
            assert not ticking.is_alive()
            assert service.last_success is None
            expected = "tick failed: its worker process was ended by SIGKILL"
            assert service.last_error == expected
            code, body = service.health()
            assert code == 503 and "SIGKILL" in str(body["reasons"])
            service.tick()  # the next one, left alone, succeeds
            assert service.last_error is None and service.last_success is not None
            assert service.status["status"] in ("ok", "warning", "critical", "unknown")
            code, body = service.health()  # healthy but for the fixed past NOW it runs at
            assert code == 503 and len(body["reasons"]) == 1, body  # type: ignore[arg-type]
            assert "fixes the time at" in str(body["reasons"])
        finally:
            service.stop()
            receiver.shutdown()
    assert _workers() == []


def test_a_worker_past_its_deadline_is_killed(tmp_path: Path) -> None:
    with SimulatorServer(build_api(now=NOW, days=12, latency_ms=400)) as sim:
        settings, rules, receiver = _setup(tmp_path, sim.base_url, "late.db")
        began = time.monotonic()
        with pytest.raises(WorkerError, match="was killed: it did not end within 1s"):
            run_in_worker(
                "tick",
                (settings, rules, NOW_DT),
                deadline=1.0,
                stop=threading.Event(),
                progress=Heard(),
            )
        assert time.monotonic() - began < 1.0 + 10  # killed, not left to run (load: slack)
    receiver.shutdown()


def test_a_stop_reaches_the_worker_at_once(tmp_path: Path) -> None:
    with SimulatorServer(build_api(now=NOW, days=12, latency_ms=300)) as sim:
        settings, rules, receiver = _setup(tmp_path, sim.base_url, "stop.db")
        stop = threading.Event()
        threading.Timer(1.0, stop.set).start()
        began = time.monotonic()
        try:
            outcome: JobOutcome | None = run_in_worker(
                "tick", (settings, rules, NOW_DT), deadline=120, stop=stop, progress=Heard()
            )
        except WorkerError as exc:  # collecting: it ends at once (or, asked before it could
            # listen, the signal ended it)
            assert "stopped when asked" in str(exc) or "ended by SIGTERM" in str(exc), exc
            outcome = None
        assert time.monotonic() - began < 1.0 + STOP_GRACE + 8  # at once; slack for load
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
service = Service(settings, load_rules(settings.rules))
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
            timeout=300,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("BUDGETGUARD_")},
        )
    receiver.shutdown()
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"error": None, "status": found["status"], "loaded": []}
    assert found["status"] != "starting"


def test_progress_and_outcomes_cross_as_json_lines_and_anything_else_is_refused() -> None:
    tick = TickOutcome(
        gauges=[Gauge("b", "project=p", "project=P (p)", 1.5, None, None)],
        status={"status": "ok", "at": "2026-12-01 00:00:00+00:00"},
        problems=["query x failing"],
    )
    heard = Heard()
    assert read_line(attempt_line("hook", "delivered"), heard) is None
    assert read_line(collected_line("costs", 5), heard) is None
    assert (heard.attempts, heard.stamps) == ([("hook", "delivered")], {"costs": 5})
    assert read_line(outcome_line(tick), heard) == tick
    failed = JobOutcome(error="digest failed: x")
    assert read_line(outcome_line(failed), heard) == failed
    assert read_line(outcome_line(replace(tick, gauges=None, status=None)), heard) == (
        TickOutcome(problems=["query x failing"])
    )
    for bad in (b"[]", b'{"outcome": {"kind": "other"}}', b"{", b'{"a": 1, "b": 2}'):
        with pytest.raises(ValueError):
            read_line(bad, heard)


def test_a_worker_that_cannot_be_given_its_job_is_a_failed_job() -> None:
    """Inputs that do not pickle (a plugin's settings model made on the fly): WorkerError,
    so the service records the failure, and no worker is started."""
    with pytest.raises(WorkerError, match="could not be given its job"):
        run_in_worker(
            "tick",
            (lambda: None, None, NOW_DT),  # type: ignore[arg-type]
            deadline=5,
            stop=threading.Event(),
            progress=Heard(),
        )
    assert _workers() == []


def _run_service(
    tmp_path: Path, base_url: str, **popen: Any
) -> tuple[subprocess.Popen[str], Receiver]:
    """``budgetguard run``, installed, with ``tmp_path`` as its working directory."""
    receiver = Receiver()
    service, _, _ = start_run(
        tmp_path, base_url, RULES.format(url=receiver.url), installed=True, **popen
    )
    return service, receiver


def _workers_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found.append(int(child))
    return found


def _wait_for_worker_of(pid: int, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := _workers_of(pid):
            return found[0]
        time.sleep(0.01)
    raise AssertionError("the service started no worker")


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_worker_dies_with_its_service_and_never_imports_from_the_working_directory(
    tmp_path: Path,
) -> None:
    """kill -9 of the service takes its worker with it (no job runs on beside the next
    leader); a module in the working directory (the image's data volume) is never imported
    by a worker, which holds the admin key."""
    marker = tmp_path / "imported"
    (tmp_path / "msgspec.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    with SimulatorServer(build_api(now=NOW, days=12, latency_ms=300)) as sim:
        service, receiver = _run_service(tmp_path, sim.base_url)
        try:
            worker = _wait_for_worker_of(service.pid)
            time.sleep(1.0)  # well into its job: its imports are done
            service.kill()
            service.wait(timeout=30)
            deadline = time.monotonic() + 60
            while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
                status = Path(f"/proc/{worker}/status").read_text()
                if "State:\tZ" in status:
                    break  # ended, waiting for init to reap it
                time.sleep(0.05)
            alive = Path(f"/proc/{worker}/status")
            assert not alive.exists() or "State:\tZ" in alive.read_text()
        finally:
            if service.poll() is None:
                service.kill()
            receiver.shutdown()
    assert not marker.exists()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_ctrl_c_while_a_worker_starts_stops_the_service_in_one_line(tmp_path: Path) -> None:
    """The terminal's Ctrl-C reaches the service's process group; the worker is in its own,
    so it is asked to stop by the service, and nothing prints a traceback."""
    with SimulatorServer(build_api(now=NOW, days=12, latency_ms=100)) as sim:
        service, receiver = _run_service(tmp_path, sim.base_url, start_new_session=True)
        try:
            _wait_for_worker_of(service.pid)
            os.killpg(service.pid, signal.SIGINT)  # what the terminal does
            assert service.wait(timeout=60) == 0
            assert service.stderr is not None
            rest = service.stderr.read()
        finally:
            if service.poll() is None:
                service.kill()
            receiver.shutdown()
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest, rest


def test_a_failed_digest_is_counted_and_tried_again(tmp_path: Path) -> None:
    """The digest's worker finds no store (a path that cannot be one): the failure is
    counted, named in /healthz, and the digest that was due is tried again later."""
    with SimulatorServer(build_api(now=NOW, days=12)) as sim:
        settings, _, receiver = _setup(tmp_path, sim.base_url, "digest.db")
        rules_file = tmp_path / "rules.yaml"
        rules_file.write_text(
            rules_file.read_text().replace(
                "budgets:", 'digest: {schedule: "0 9 * * mon", notify: [hook]}\nbudgets:'
            )
        )
        rules = load_rules(rules_file)
        service = Service(settings, rules, clock=lambda: NOW_DT)
        service.start(port=0)
        try:
            away = "sqlite:////nonexistent-dir/budgetguard.db"
            service.settings = settings.model_copy(update={"database_url": away})
            service.send_digest()  # its worker cannot open the store
            failures = service.metrics.job_failures.labels("digest")._value.get()
            assert failures == 1
            code, body = service.health()
            assert code == 503 and "digest failed" in str(body["reasons"]), body
            retry = service.scheduler.get_job("digest-retry")
            assert retry is not None and retry.misfire_grace_time == 300
            assert list(retry.args) == [NOW_DT]  # the digest that was due, not a later one
            service.settings = settings
            service.send_digest()  # the retry, when it comes: it goes out
            assert service.metrics.job_failures.labels("digest")._value.get() == 1
            assert "digest failed" not in str(service.health()[1]["reasons"])
            assert any(body.get("type") == "budgetguard.digest" for body in receiver.bodies)
        finally:
            service.stop()
            receiver.shutdown()


def test_a_new_leader_sends_the_digest_its_predecessor_may_not_have_once(
    tmp_path: Path,
) -> None:
    """Becoming the leader, a service sends the digest whose cron time passed in the last day
    (the previous leader may have died over it), as of that time; a second start finds it
    queued under its key and sends nothing again."""
    receiver = Receiver()
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(
        RULES.format(url=receiver.url).replace(
            "budgets:", 'digest: {schedule: "0 */6 * * *", period: day, notify: [hook]}\nbudgets:'
        )
    )
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'lead.db'}", rules=rules_file)
    assert settings.now is None and settings.openai_admin_key is None
    try:
        for _ in range(2):
            service = Service(settings, load_rules(rules_file))
            service.start(port=0)
            try:
                digests = service.metrics.jobs.labels("digest")
                deadline = time.monotonic() + 300
                while digests._value.get() < 1:  # the catch-up's worker ran to its end
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            finally:
                service.stop()
        digests = [b for b in receiver.bodies if b.get("type") == "budgetguard.digest"]
        assert len(digests) == 1, digests
    finally:
        receiver.shutdown()
