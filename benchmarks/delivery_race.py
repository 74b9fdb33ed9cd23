"""Deliverers racing on one store: every key must reach the receiver exactly once.

``P`` real processes open one empty store at the same moment (schema creation races too),
then run ``R`` synchronised rounds: in each, every process records the same alert states
and queues the same ``K`` notifications (upserts: no process may crash on the other's rows),
then delivers everything due to a local webhook receiver that counts each key. Reports
rounds, deliveries, duplicates and losses; the target is 0 duplicates and 0 losses.

Then kill -9 trials: a deliverer is killed at a random moment mid-delivery to a slow
receiver, and a second one (after the lease) finishes; every key must arrive (0 lost), and a
key may arrive twice only when it was in flight at the kill (the receiver can drop it: it
carries the same key).

The test suite runs reduced counts (``tests/test_delivery_processes.py``); the full ones are

    python -m benchmarks.delivery_race [--processes 4] [--rounds 50] [--keys 17]
        [--kills 30] [--postgres]
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["CountingReceiver", "KillResult", "RaceResult", "kill_trials", "race"]

NOW = 1795342651


class CountingReceiver(ThreadingHTTPServer):
    """A webhook receiver on loopback that counts each idempotency key it is sent."""

    daemon_threads = True

    def __init__(self, delay: float = 0.0) -> None:
        self.keys: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.headers["X-BudgetGuard-Key"] == body["key"]
                time.sleep(delay)
                with outer._lock:
                    outer.keys[str(body["key"])] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


@dataclass(frozen=True)
class RaceResult:
    processes: int
    rounds: int
    keys: int
    deliveries: int
    duplicates: int
    lost: int
    crashed: int
    seconds: float

    def line(self) -> str:
        return (
            f"{self.processes} deliverers x {self.rounds} rounds x {self.keys} keys: "
            f"{self.deliveries} deliveries of {self.rounds * self.keys} keys, "
            f"{self.duplicates} duplicates, {self.lost} lost, {self.crashed} crashed "
            f"({self.seconds:.1f}s)"
        )


def _payload(key: str) -> str:
    return json.dumps(
        {
            "type": "budgetguard.alert",
            "budget": "race",
            "group": {},
            "kind": "threshold",
            "severity": "warning",
            "threshold": 0.8,
            "spend": 1.0,
            "limit": 1.0,
            "key": key,
            "fired_at": "2026-11-22T10:00:00Z",
            "message": f"WARNING race {key}",
        }
    )


def _deliverer(url: str, hook: str, rounds: int, keys: int, barrier: Any, index: int) -> None:
    from budgetguard_webhook import WebhookNotifier, WebhookSettings

    from budgetguard.alerts import deliver
    from budgetguard.store import Store
    from budgetguard.store.alerts import StoredAlert

    barrier.wait()  # every process opens the empty store at once
    store = Store.open(url)
    notifiers = {"hook": WebhookNotifier(WebhookSettings(url=hook))}
    now = datetime.fromtimestamp(NOW, UTC)
    for r in range(rounds):
        barrier.wait()
        states = [
            StoredAlert(f"id-{k}", "race", "[]", "threshold", "80%", "firing", None, NOW, NOW, r)
            for k in range(keys)
        ]
        rows = [(f"r{r}-k{k}", "hook", _payload(f"r{r}-k{k}")) for k in range(keys)]
        store.alerts.apply(states, rows, NOW)
        deliver(store.alerts, notifiers, now)
    store.close()


def race(url: str, processes: int = 4, rounds: int = 50, keys: int = 17) -> RaceResult:
    """Run the race on the (empty) store at ``url``."""
    receiver = CountingReceiver()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    began = time.monotonic()
    workers = [
        context.Process(target=_deliverer, args=(url, receiver.url, rounds, keys, barrier, i))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)
    crashed = sum(1 for w in workers if w.exitcode != 0)
    for worker in workers:
        if worker.is_alive():
            worker.kill()
    receiver.shutdown()
    receiver.server_close()
    expected = {f"r{r}-k{k}" for r in range(rounds) for k in range(keys)}
    got = receiver.keys
    return RaceResult(
        processes=processes,
        rounds=rounds,
        keys=keys,
        deliveries=sum(got.values()),
        duplicates=sum(n - 1 for n in got.values() if n > 1),
        lost=len(expected - set(got)),
        crashed=crashed,
        seconds=time.monotonic() - began,
    )


@dataclass(frozen=True)
class KillResult:
    trials: int
    keys: int
    lost: int
    duplicates: int
    duplicates_not_in_flight: int

    def line(self) -> str:
        return (
            f"{self.trials} kill -9 trials x {self.keys} keys: {self.lost} lost, "
            f"{self.duplicates} sent twice (in flight at the kill), "
            f"{self.duplicates_not_in_flight} other duplicates"
        )


DELIVER_ONCE = """
import sys
from datetime import UTC, datetime
from budgetguard_webhook import WebhookNotifier, WebhookSettings
from budgetguard.alerts import deliver
from budgetguard.store import Store
url, hook, at = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = Store.open(url)
deliver(store.alerts, {"hook": WebhookNotifier(WebhookSettings(url=hook))},
        datetime.fromtimestamp(at, UTC))
print("done", flush=True)
"""


def kill_trials(url_for: Any, trials: int = 30, keys: int = 12, seed: int = 7) -> KillResult:
    """``trials`` rounds of: queue ``keys`` rows, start a deliverer, kill -9 it after a
    random number of deliveries, run a second one past the lease; count at the receiver.
    ``url_for(i)`` gives trial ``i`` an empty store."""
    import random
    import signal
    import subprocess
    import sys

    from budgetguard.alerts import DEFAULT_POLICY
    from budgetguard.store import Store

    rng = random.Random(seed)
    lost = twice = other = 0
    for trial in range(trials):
        url = url_for(trial)
        receiver = CountingReceiver(delay=0.05)
        store = Store.open(url)
        names = [f"t{trial}-k{k}" for k in range(keys)]
        store.alerts.outbox.queue([(k, "hook", _payload(k)) for k in names], NOW)
        store.close()
        argv = [sys.executable, "-c", DELIVER_ONCE, url, receiver.url]
        first = subprocess.Popen([*argv, str(NOW)], stdout=subprocess.DEVNULL)
        kill_after = rng.randint(1, keys - 1)
        deadline = time.monotonic() + 60
        while sum(receiver.keys.values()) < kill_after and time.monotonic() < deadline:
            time.sleep(0.002)
        first.send_signal(signal.SIGKILL)
        first.wait()
        in_flight = _claimed(url)  # leased at the kill: the one row it may send again
        later = NOW + DEFAULT_POLICY.lease + 1
        subprocess.run([*argv, str(later)], stdout=subprocess.DEVNULL, check=True, timeout=120)
        receiver.shutdown()
        receiver.server_close()
        lost += sum(1 for k in names if receiver.keys[k] == 0)
        doubles = [k for k, n in receiver.keys.items() if n > 1]
        twice += len(doubles)
        # a resend is only of the row that was in flight: at most one per kill
        other += max(0, len(doubles) - 1) + sum(1 for k in doubles if k not in in_flight)
    return KillResult(trials, keys, lost, twice, other)


def _claimed(url: str) -> set[str]:
    """The keys of rows leased to a deliverer and not recorded (what a kill left in flight):
    read from the store, not guessed from the receiver's clock."""
    from sqlalchemy import select

    from budgetguard.store import Store
    from budgetguard.store.schema import outbox

    store = Store.open(url)
    try:
        query = select(outbox.c.idempotency_key).where(
            outbox.c.status == "pending", outbox.c.claimed_by.is_not(None)
        )
        with store.engine.connect() as conn:
            return {str(k) for k in conn.execute(query).scalars()}
    finally:
        store.close()


def _postgres_database() -> tuple[str, Any]:
    import uuid

    from sqlalchemy import create_engine, text

    base = "postgresql+psycopg://postgres@127.0.0.1:5432"
    name = f"bg_race_{uuid.uuid4().hex[:10]}"
    admin = create_engine(f"{base}/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return f"{base}/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--keys", type=int, default=17)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--postgres", action="store_true", help="also on the local PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'race.db'}"
        print("sqlite:", race(url, args.processes, args.rounds, args.keys).line())
        killed = kill_trials(lambda i: f"sqlite:///{Path(folder) / f'kill{i}.db'}", args.kills)
        print("sqlite:", killed.line())
    if args.postgres:
        pg, drop = _postgres_database()
        try:
            print("postgresql:", race(pg, args.processes, args.rounds, args.keys).line())
            print("postgresql:", kill_trials(lambda i: pg, args.kills).line())
        finally:
            drop()


if __name__ == "__main__":
    main()
