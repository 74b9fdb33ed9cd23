"""The simulator's HTTP server: stdlib ``ThreadingHTTPServer`` around ``SimulatedAPI``.

Threads let concurrent client queries overlap their (injected) latency the way a real API
does. ``SimulatorServer`` runs in a background thread for the demo and the tests, or in the
foreground for ``budgetguard simulate``.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from budgetguard.simulator.api import Response, SimulatedAPI
from budgetguard.simulator.faults import FaultPlan
from budgetguard.simulator.org import Organisation

__all__ = ["SimulatorServer", "build_api"]

log = logging.getLogger("budgetguard.simulator")
#: the largest request body read (the controls' bodies are a few hundred bytes)
_MAX_REQUEST = 1 << 20


def build_api(
    *,
    seed: int = 7,
    days: int = 40,
    now: int | None = None,
    latency_ms: float = 0,
    fail_rate: float = 0.0,
    rate_limit_rate: float = 0.0,
    malformed_rate: float = 0.0,
    string_amounts: bool = False,
    costs_delay_hours: float = 3.0,
    enforcement_lag_minutes: float = 15.0,
) -> SimulatedAPI:
    """A simulated API for a fresh org; ``now`` fixes the clock (Unix seconds)."""
    start_now = int(time.time()) if now is None else now
    org = Organisation.create(seed, start_now, days)
    clock = (lambda: int(time.time())) if now is None else (lambda: start_now)
    faults = FaultPlan(
        fail_rate=fail_rate,
        rate_limit_rate=rate_limit_rate,
        malformed_rate=malformed_rate,
        seed=seed,
    )
    return SimulatedAPI(
        org,
        clock=clock,
        faults=faults,
        latency=latency_ms / 1000,
        string_amounts=string_amounts,
        costs_delay=int(costs_delay_hours * 3600),
        cache_pages=now is not None,
        enforcement_lag=int(enforcement_lag_minutes * 60),
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without NODELAY, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, _MAX_REQUEST)) if length else b""
        if length > _MAX_REQUEST:
            self.close_connection = True  # the rest of the body is never read
        response = self.server.api.handle(method, self.path, dict(self.headers.items()), body)
        if response.fault is not None and self._transport_fault(response):
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def _transport_fault(self, response: Response) -> bool:
        """Carry out a fault below HTTP; True when the answer is done (or never comes)."""
        fault = response.fault
        assert fault is not None
        if fault.kind == "reset":  # RST instead of an answer
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return True
        if fault.kind == "hang":  # accept, read the request, never answer
            self.server.stopping.wait(fault.seconds or 30.0)
            self.close_connection = True
            return True
        self.send_response(response.status)  # trickle: a byte every ``seconds``
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.flush()
        try:
            for at in range(len(response.body)):
                if self.server.stopping.wait(fault.seconds):
                    break
                self.wfile.write(response.body[at : at + 1])
                self.wfile.flush()
        except OSError:  # the client gave up: what a deadline is for
            pass
        self.close_connection = True
        return True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: SimulatedAPI) -> None:
        super().__init__(address, _Handler)
        self.api = api
        self.stopping = threading.Event()  # ends hanging and trickling answers

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a deadline, a cancelled query) is not a server error."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("client %s hung up", client_address)
            return
        super().handle_error(request, client_address)


class SimulatorServer:
    """``with SimulatorServer(api) as sim: AdminClient(key, sim.base_url)``."""

    def __init__(
        self, api: SimulatedAPI | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.api = api or build_api()
        self._server = _Server((host, port), self.api)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}/v1"

    @property
    def faults(self) -> FaultPlan:
        return self.api.faults

    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="budgetguard-simulator", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
