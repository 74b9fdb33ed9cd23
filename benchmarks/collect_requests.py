"""Requests and wall time of a 90-day hourly backfill of every endpoint.

Runs the simulator in its own process (as a real API would be) with injected latency, then
fetches 90 days of hourly buckets from all 11 endpoints (costs at its only width, daily)
concurrently through ``AdminClient``, and reports:

- requests made vs the minimum (sum over queries of ceil(buckets / max limit));
- wall time vs the critical path (most pages of any one query x latency) and vs fetching
  the same queries one after another.

Targets: requests == minimum; concurrent wall <= 1.3 x critical path.

    python -m benchmarks.collect_requests [--latency-ms 50] [--days 90]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime

from budgetguard.openai_admin import ENDPOINTS, AdminClient, Query

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    qs = queries(args.days)
    proc, base_url = start_simulator(args.days, args.latency_ms)
    try:
        asyncio.run(run(base_url, qs, concurrent=True))  # warm the simulator's page cache
        wall, requests, buckets = asyncio.run(run(base_url, qs, concurrent=True))
        seq_wall, _, _ = asyncio.run(run(base_url, qs, concurrent=False))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
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
    print(
        f"wall: {wall:.3f} s concurrent | critical path {critical:.3f} s "
        f"({wall / critical:.2f}x, target <= 1.3x {'OK' if wall <= 1.3 * critical else 'MISS'})"
        f" | sequential {seq_wall:.3f} s ({seq_wall / wall:.1f}x slower)"
    )


if __name__ == "__main__":
    main()
