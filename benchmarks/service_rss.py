"""Idle RSS of `budgetguard run` after its first tick's backfill.

Starts the simulator (its own process) and the service against it with a few budgets and a
console notifier, waits until /status shows the first tick done, lets it idle, and reads
the service's resident memory (VmRSS: its heap, RssAnon, and the pages of mapped files such
as its libraries, RssFile) and peak (VmHWM) from /proc. Each job runs in a worker process
of its own (``service/worker.py``): the highest peak seen of a worker while it ran is
printed too, for the memory a deployment must allow while a job runs (service + worker).
The service runs with bytecode available, as an installed package does
(PYTHONDONTWRITEBYTECODE is dropped).

Target (issue 16): idle RSS <= 80 MB after a backfill.

    python -m benchmarks.service_rss [--days 35] [--idle 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

RULES = """
version: 1
schedule: {interval: 1h}
notifiers: {stdout: {type: console}}
defaults: {notify: [stdout]}
budgets:
  - {name: org-month, limit: 5000, period: month, forecast: true}
  - {name: chat-day, limit: 150, window: 24h, match: {project: proj_chatbot}}
  - {name: per-project, limit: 100, period: day, each: project}
  - {name: per-user, limit: 50, window: 7d, each: user, cost_source: estimate}
  - {name: spike, each: project, anomaly: {window: 1h, baseline: 7d, factor: 3, min: 5}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:")):
            out[line.split(":")[0]] = int(line.split()[1]) // 1024
    return out


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # the thread ended
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _worker_peak(pid: int, seen: int) -> int:
    """The highest VmHWM (MB) of ``pid``'s children now alive, or ``seen``."""
    for child in _children(pid):
        with contextlib.suppress(OSError):  # it ended
            seen = max(seen, _status(child).get("VmHWM", 0))
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--idle", type=float, default=5.0)
    args = parser.parse_args()
    sim = subprocess.Popen(
        [sys.executable, "-m", "budgetguard", "simulate", "--port", "0", "--days", str(args.days)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sim.stdout is not None
        base_url = sim.stdout.readline().split(" on ", 1)[1].split(" ", 1)[0]
        with tempfile.TemporaryDirectory() as tmp:
            rules = Path(tmp) / "rules.yaml"
            rules.write_text(RULES)
            port = _free_port()
            env = {
                **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
                "OPENAI_ADMIN_KEY": "sk-admin-benchmark",
                "BUDGETGUARD_OPENAI_BASE_URL": base_url,
            }
            argv = [sys.executable, "-m", "budgetguard", "run", "--port", str(port)]
            argv += ["-r", str(rules), "--db", f"sqlite:///{Path(tmp) / 'svc.db'}"]
            service = subprocess.Popen(
                argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            worker = 0
            try:
                began = time.monotonic()
                while time.monotonic() - began < 300:
                    worker = _worker_peak(service.pid, worker)
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status") as r:
                            if b"evaluated_at" in r.read():
                                break
                    except OSError:
                        pass
                    time.sleep(0.05)
                tick = time.monotonic() - began
                time.sleep(args.idle)
                found = _status(service.pid)
            finally:
                service.terminate()
                service.wait(timeout=15)
        rss, peak = found["VmRSS"], found["VmHWM"]
        print(
            f"service after its first tick ({args.days} days backfilled, {tick:.1f} s) and "
            f"{args.idle:g} s idle: RSS {rss} MB ({found['RssAnon']} MB heap, "
            f"{found['RssFile']} MB mapped files), peak {peak} MB "
            f"({'OK' if rss <= 80 else 'MISS'}: idle <= 80 MB); the tick's worker process "
            f"peaked at {worker} MB or more (sampled every 50 ms)"
        )
    finally:
        sim.terminate()
        sim.wait(timeout=10)


if __name__ == "__main__":
    main()
