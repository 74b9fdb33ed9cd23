"""Requests and wall time of a 90-day hourly backfill of every endpoint.

Runs the simulator in its own process (as a real API would be) with injected latency, then
fetches 90 days of hourly buckets from all 11 endpoints (costs at its only width, daily)
concurrently through ``AdminClient``, and reports:

- requests made vs the minimum (sum over queries of ceil(buckets / max limit));
- wall time vs the critical path (most pages of any one query x latency) and vs fetching
  the same queries one after another.

Targets: requests == minimum; concurrent wall <= 1.3 x critical path.

Then the collector itself (plan, fetch, store in a temporary SQLite file) for rules that need
90 days: requests of the backfill against the minimum for its planned ranges, its wall time
against its critical path (the most pages of any one query x latency; target <= 1.3x, with
every query in flight at once: ``--max-in-flight``, the ``max_in_flight`` setting), and the
requests of a steady-state tick (target: at most one request per query).

    python -m benchmarks.collect_requests [--latency-ms 50] [--days 90] [--max-in-flight 24]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime

from budgetguard.providers.openai import ENDPOINTS, AdminClient, Query

NOW = int(datetime(2026, 11, 22, 10, 0, tzinfo=UTC).timestamp())
KEY = "sk-admin-benchmark"
GROUP_BY: tuple[str, ...] = ("project_id", "model")


def start_simulator(days: int, latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "budgetguard",
            "simulate",
            "--port",
            "0",
            "--days",
            str(days + 1),
            "--now",
            datetime.fromtimestamp(NOW, UTC).isoformat(),
            "--latency-ms",
            str(latency_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    base_url = line.split(" on ", 1)[1].split(" ", 1)[0]
    return proc, base_url


def queries(days: int) -> list[Query]:
    start = NOW - days * 86400
    out = []
    for name, ep in sorted(ENDPOINTS.items()):
        width = "1d" if ep.is_costs else "1h"
        groups = [g for g in GROUP_BY if g in ep.group_by]
        out.append(
            Query.build(name, start_time=start, end_time=NOW, bucket_width=width, group_by=groups)
        )
    return out


def minimum_requests(q: Query) -> int:
    assert q.end_time is not None
    width = 86400 if q.bucket_width == "1d" else 3600
    first = q.start_time - q.start_time % 86400 if q.endpoint.is_costs else q.start_time
    buckets = -(-(q.end_time - first) // width)
    return -(-buckets // q.endpoint.max_limit(q.bucket_width))


async def run(base_url: str, qs: list[Query], concurrent: bool) -> tuple[float, int, int]:
    async with AdminClient(KEY, base_url) as client:
        started = time.perf_counter()
        if concurrent:
            results = await client.fetch_many(qs, concurrency=len(qs))
            failures = [r for r in results if not isinstance(r, list)]
            assert not failures, failures
        else:
            for q in qs:
                await client.fetch(q)
        return time.perf_counter() - started, client.stats.requests, client.stats.buckets


RULES_90_DAYS = """
version: 1
budgets:
  - {name: ninety, limit: 100000, window: 90d}
  - {name: per-user, limit: 100, window: 7d, each: user, cost_source: estimate}
"""


def collector_figures(base_url: str, tmp: str, latency_ms: float, in_flight: int) -> None:
    from budgetguard.collect import Collector
    from budgetguard.rules import load_rules_text
    from budgetguard.rules.needs import plan_queries
    from budgetguard.store import Store

    now = datetime.fromtimestamp(NOW, UTC)
    queries = plan_queries(load_rules_text(RULES_90_DAYS), now)
    store = Store.open(f"sqlite:///{tmp}/bench.db")

    def minimum() -> tuple[int, int]:
        """Pages needed for the ranges the collector plans from the store's coverage, and
        the most of any one query (its critical path, in pages)."""
        client = AdminClient(KEY, base_url)
        total = longest = 0
        for outcome in Collector(client, store).plan_ranges(queries, NOW):
            q = outcome.query
            pages = 0
            for lo, hi in outcome.ranges:
                width = q.width_seconds
                buckets = -(-(hi - (lo - lo % width)) // width)
                pages += -(-buckets // ENDPOINTS[q.endpoint].max_limit(q.width))
            total, longest = total + pages, max(longest, pages)
        asyncio.run(client.aclose())
        return total, longest

    async def tick() -> tuple[int, float]:
        async with AdminClient(KEY, base_url, max_connections=in_flight) as client:
            collector = Collector(client, store, concurrency=in_flight)
            report = await collector.collect(queries, now)
            assert not report.failed, report.summary()
            return report.requests, report.seconds

    need, longest = minimum()
    backfill, backfill_s = asyncio.run(tick())
    need_tick, _ = minimum()
    steady, steady_s = asyncio.run(tick())
    store.close()
    critical = longest * latency_ms / 1000
    print(
        f"collector: {len(queries)} queries for 90 days (1h for 35 days, 1d before, costs 1d), "
        f"{in_flight} in flight at most"
    )
    print(
        f"  backfill: {backfill} requests (minimum {need}) "
        f"{'OK' if backfill == need else 'ABOVE MINIMUM'}; wall {backfill_s:.2f} s | critical "
        f"path {critical:.2f} s ({longest} pages x {latency_ms:.0f} ms): "
        f"{backfill_s / critical:.2f}x ({'OK' if backfill_s <= 1.3 * critical else 'MISS'} "
        "<= 1.3x; store writes included)"
    )
    print(
        f"  steady tick: {steady} requests for {len(queries)} queries (minimum {need_tick}) "
        f"{'OK' if steady <= len(queries) and steady == need_tick else 'MISS'}, "
        f"{steady_s:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--max-in-flight", type=int, default=24)
    args = parser.parse_args()
    qs = queries(args.days)
    proc, base_url = start_simulator(args.days, args.latency_ms)
    try:
        asyncio.run(run(base_url, qs, concurrent=True))  # warm the simulator's page cache
        wall, requests, buckets = asyncio.run(run(base_url, qs, concurrent=True))
        seq_wall, _, _ = asyncio.run(run(base_url, qs, concurrent=False))
        minimum = sum(minimum_requests(q) for q in qs)
        critical = max(max(minimum_requests(q) for q in qs) * args.latency_ms / 1000, 1e-9)
        print(
            f"backfill: {args.days} days hourly, {len(qs)} queries, {buckets} buckets, "
            f"latency {args.latency_ms:.0f} ms"
        )
        print(
            f"requests: {requests} (minimum {minimum}) "
            f"{'OK' if requests == minimum else 'ABOVE MINIMUM'}"
        )
        ratio = wall / critical
        verdict = "OK" if wall <= 1.3 * critical else "MISS"
        print(
            f"wall: {wall:.3f} s concurrent | critical path {critical:.3f} s "
            f"({ratio:.2f}x, target <= 1.3x {verdict}) | sequential {seq_wall:.3f} s "
            f"({seq_wall / wall:.1f}x slower)"
        )
        with tempfile.TemporaryDirectory() as tmp:
            collector_figures(base_url, tmp, args.latency_ms, args.max_in_flight)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
