"""Collector throughput and memory: a backfill of N usage rows from a local server.

A plain HTTP server in its own process serves hourly completions pages (GROUPS project x
model x user groups per bucket, the API's page size and cursor) as fast as it can; this
process runs the real collector (client, page checks, store writes) for one query over the
whole range into a fresh store, then one steady tick. Reported: collector CPU per row (this
process's CPU time: the server's is not counted), rows/s of that CPU, this process's peak
RSS above what it held before the backfill, the store's size, and the tick's requests.

Targets (issue 16): >= 100k rows/s of collector CPU and <= 500 MB peak RSS for 1M rows; a
steady tick makes one request per query.

    python -m benchmarks.collect_throughput [--rows 1000000] [--groups 700] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

NOW = int(datetime(2026, 11, 22, 10, 0, tzinfo=UTC).timestamp())
HOUR = 3600
KEY = "sk-admin-benchmark"
OBJECT = "organization.usage.completions.result"


def _bucket(start: int, groups: int) -> str:
    hour = start // HOUR
    results = []
    for g in range(groups):
        tokens = (g * 7919 + hour * 104729) % 90_000 + 10
        results.append(
            f'{{"object":"{OBJECT}","project_id":"proj_{g % 40:03d}",'
            f'"model":"gpt-4o-{g % 7}","user_id":"user-{g:05d}","api_key_id":null,'
            f'"batch":false,"service_tier":"default","input_tokens":{tokens},'
            f'"output_tokens":{tokens // 3},"input_cached_tokens":{tokens // 5},'
            f'"input_audio_tokens":0,"output_audio_tokens":0,'
            f'"num_model_requests":{tokens // 900 + 1}}}'
        )
    head = f'{{"object":"bucket","start_time":{start},"end_time":{start + HOUR}'
    return f'{head},"results":[{",".join(results)}]}}'


def serve(groups: int) -> None:
    """Serve ``/v1/organization/usage/completions`` until killed; print the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            q = parse_qs(urlparse(self.path).query)
            start = int(q["page"][0]) if "page" in q else int(q["start_time"][0])
            start -= start % HOUR
            end = min(int(q.get("end_time", [NOW])[0]), NOW)
            limit = int(q.get("limit", ["168"])[0])
            stop = min(end, start + limit * HOUR)
            more = stop < end
            cursor = json.dumps(str(stop)) if more else "null"
            # written a bucket at a time (a page at 12,000 groups is ~700 MB), the body
            # ending when the connection closes (HTTP/1.0)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b'{"object":"page","data":[')
            for s in range(start, stop, HOUR):
                comma = "," if s > start else ""
                self.wfile.write((comma + _bucket(s, groups)).encode())
            tail = f'],"has_more":{"true" if more else "false"},"next_page":{cursor}}}'
            self.wfile.write(tail.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}/v1", flush=True)
    server.serve_forever()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def create_database() -> str:
    import uuid

    import psycopg

    name = f"bg_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_SERVER, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return _SERVER.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    import psycopg

    with psycopg.connect(_SERVER, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=700)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="store in a fresh database on the local PostgreSQL (dropped after)",
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return

    from budgetguard.collect import Collector
    from budgetguard.providers.openai import AdminClient
    from budgetguard.rules.needs import PlannedQuery
    from budgetguard.store import Store

    hours = -(-args.rows // args.groups)
    start = NOW - NOW % HOUR - hours * HOUR
    query = PlannedQuery(
        "completions",
        "1h",
        ("project_id", "model", "batch", "service_tier", "user_id"),
        datetime.fromtimestamp(start, UTC),
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.collect_throughput", "--serve", str(args.groups)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            url = create_database() if args.postgres else f"sqlite:///{Path(tmp) / 'bench.db'}"
            now = datetime.fromtimestamp(NOW, UTC)
            store: Store | None = None
            try:  # the database is dropped whatever happens
                store = Store.open(url)

                async def collect(store: Store) -> tuple[int, int]:
                    # a throughput figure, not a deadline's: a loaded machine takes its time
                    # over 10M rows (a page of 12,000 groups is ~700 MB)
                    async with AdminClient(
                        KEY, base_url, clock=lambda: float(NOW), request_deadline=900
                    ) as client:
                        collector = Collector(client, store, deadline=3600)
                        report = await collector.collect([query], now)
                        assert not report.failed, report.summary()
                        return report.requests, sum(o.rows for o in report.outcomes)

                base = current_rss_mb()
                cpu, wall = time.process_time(), time.perf_counter()
                requests, rows = asyncio.run(collect(store))
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                peak = rss_mb()
                tick_requests, _ = asyncio.run(collect(store))
            finally:
                if store is not None:
                    store.close()
                if args.postgres:
                    drop_database(url)
            files = Path(tmp).glob("bench.db*")  # the WAL too
            size = sum(f.stat().st_size for f in files)
        print(
            f"backfill: {rows:,} rows ({hours} hours x {args.groups} groups) in {requests} "
            f"requests, {wall:.1f} s wall"
        )
        rate = rows / cpu
        print(
            f"  collector CPU: {cpu:.1f} s = {1e6 * cpu / rows:.1f} us/row = {rate:,.0f} rows/s "
            f"({'OK' if rate >= 100_000 else 'MISS'} >= 100k)"
        )
        print(
            f"  peak RSS: {peak:.0f} MB ({peak - base:.0f} MB above the {base:.0f} MB before; "
            f"{'OK' if peak <= 500 else 'MISS'} <= 500 MB)"
        )
        if size:
            print(f"  store: {size / 2**20:.1f} MB ({size / rows:.1f} bytes/row)")
        print(
            f"steady tick: {tick_requests} request(s) for 1 query "
            f"({'OK' if tick_requests == 1 else 'MISS'})"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
