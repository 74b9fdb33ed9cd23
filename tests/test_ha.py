"""Two replicas of the service on one PostgreSQL store: one leader at a time, takeover when
the leader is killed, and no notification sent twice over many ticks."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from pathlib import Path

import pytest

from budgetguard.simulator import SimulatorServer, build_api
from tests.conftest import NOW, Receiver, needs_postgres

#: One replica: ticks its own Service with a clock one simulated hour apart per tick, and
#: prints "tick <i> leader=<0|1>" after each, until it has led the number of ticks asked.
REPLICA = r"""
import sys, time
from datetime import UTC, datetime, timedelta
from budgetguard.rules import load_rules
from budgetguard.service import Service
from budgetguard.settings import Settings

db, base, rules_path, start, ticks = sys.argv[1:6]
start = datetime.fromtimestamp(int(start), UTC)
moment = [start]
settings = Settings(openai_admin_key="sk-admin-test", openai_base_url=base, database_url=db,
                    rules=rules_path)
# as `run` does: each job in a worker process, on its own connections to the store
service = Service(settings, load_rules(rules_path), clock=lambda: moment[0])
led = 0
for i in range(1000):  # until it has led `ticks` ticks: a standby waits as long as it takes
    if led >= int(ticks):
        break
    moment[0] = start + timedelta(hours=min(i, 29))  # never past the simulated now
    service.tick()
    led += int(service.metrics.leader._value.get())
    print(f"tick {i} leader={int(service.metrics.leader._value.get())} "
          f"error={service.last_error}", flush=True)
    time.sleep(0.1)
service.stop()
"""

RULES = """
version: 1
schedule: {{interval: 1m}}
notifiers:
  hook: {{type: webhook, url: "{url}"}}
defaults: {{thresholds: [50%, 100%], notify: [hook], cost_source: estimate}}
budgets:
  - {{name: hourly, limit: 2, window: 1h, each: project}}
  - {{name: two-hours, limit: 6, window: 2h}}
"""


@needs_postgres
@pytest.mark.timeout(900)  # every tick starts a worker process: minutes on a loaded machine
def test_two_replicas_one_leader_takeover_and_no_duplicates(tmp_path: Path, pg_url: str) -> None:
    receiver = Receiver()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.format(url=receiver.url))
    start = NOW - 30 * 3600
    env = dict(os.environ)
    with SimulatorServer(build_api(now=NOW, days=4)) as sim:
        argv = [sys.executable, "-c", REPLICA, pg_url, sim.base_url, str(rules), str(start)]
        first = subprocess.Popen([*argv, "30"], stdout=subprocess.PIPE, text=True, env=env)
        assert first.stdout is not None
        line = first.stdout.readline()
        assert line.startswith("tick 0 leader=1"), line
        second = subprocess.Popen([*argv, "4"], stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert second.stdout is not None
            for _ in range(6):
                line = first.stdout.readline()
                assert "leader=1" in line, line
            standby = [second.stdout.readline() for _ in range(3)]
            assert all("leader=0" in s for s in standby), standby
            sent_before_kill = len(receiver.bodies)
            first.kill()  # the leader dies without a goodbye
            first.wait()
            lines = second.stdout.read().splitlines()
            assert second.wait(timeout=600) == 0  # it took over and led 4 ticks
        finally:
            for p in (first, second):
                if p.poll() is None:
                    p.kill()
    took_over = [line for line in lines if "leader=1" in line]
    assert took_over, lines
    assert all("error=None" in line for line in took_over), took_over
    assert sent_before_kill > 0
    assert len(receiver.bodies) > sent_before_kill  # the new leader kept alerting
    keys = collections.Counter(body["key"] for body in receiver.bodies)
    duplicates = {k: n for k, n in keys.items() if n > 1}
    assert not duplicates, duplicates
    receiver.shutdown()
