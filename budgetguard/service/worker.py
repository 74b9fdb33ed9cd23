"""A job in a process of its own: the service stays small while idle, whatever a job used.

The service (``run``) starts ``python -m budgetguard.service.worker FD`` for each job and
hands it the job's name and inputs (settings, the rules in force, the instant) pickled on
its stdin; the worker runs the job (``service/jobs.py``) and writes its outcome as JSON to
the pipe ``FD``, while its log lines and a console notifier's output go to the service's own
stderr and stdout. When the job ends its process ends, and every page it touched (the
evaluation's arrays, the collector's pages, the price tables, the heap they fragmented) goes
back to the system: idle, the service holds only its scheduler, its endpoints and the store
it asks for the leader lock.

Every wait is bounded: a worker that outlives ``deadline`` is killed (a hung job no longer
waits for the liveness probe to restart the whole service); on stop it is asked to stop
(SIGTERM: deliveries stop claiming, as in the service itself) and killed after
``STOP_GRACE``. A worker killed mid-delivery loses nothing: the outbox and the alert state
are written in transactions, and a leased notification is sent again later under its key.
A worker that dies without an outcome is a failed job, with the reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING

from budgetguard.service.outcomes import JobOutcome, from_json, to_json

if TYPE_CHECKING:
    from budgetguard.rules import Rules
    from budgetguard.settings import Settings

__all__ = ["STOP_GRACE", "WorkerError", "run_in_worker"]

log = logging.getLogger("budgetguard.service")

#: How long a worker asked to stop may take before it is killed.
STOP_GRACE = 3.0
_PR_SET_PDEATHSIG = 1


class WorkerError(RuntimeError):
    """The worker ended without an outcome (killed, crashed, timed out): the job failed."""


def run_in_worker(
    job: str, inputs: tuple[Settings, Rules, datetime], *, deadline: float, stop: threading.Event
) -> JobOutcome:
    """Run ``jobs.JOBS[job](settings, rules, now, stop)`` in a worker process; its outcome."""
    read_end, write_end = os.pipe()
    try:
        worker = subprocess.Popen(  # noqa: S603 - our own module, with this interpreter
            [sys.executable, "-m", "budgetguard.service.worker", str(write_end), str(os.getpid())],
            stdin=subprocess.PIPE,
            pass_fds=(write_end,),
        )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    chunks: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(read_end, chunks), daemon=True)
    reader.start()
    payload = pickle.dumps((job, inputs, _log_setup()))
    writer = threading.Thread(target=_write_all, args=(worker, payload), daemon=True)
    writer.start()  # a worker that never reads is bounded by the deadline, not by a write
    try:
        why = _wait(worker, deadline, stop)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    reader.join(timeout=5.0)
    data = b"".join(chunks)
    if why is None and worker.returncode == 0 and data:
        try:
            return from_json(data)
        except ValueError:
            why = "wrote no outcome"
    raise WorkerError(f"its worker process {why or _ended(worker.returncode)}")


def _wait(worker: subprocess.Popen[bytes], deadline: float, stop: threading.Event) -> str | None:
    """Wait for the worker, asking it to stop on ``stop`` and killing it when it overstays;
    why it was killed, or None when it ended by itself."""
    until = time.monotonic() + deadline
    asked: float | None = None
    while True:
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=0.2)
            return None
        now = time.monotonic()
        if stop.is_set() and asked is None:
            worker.terminate()
            asked = now
        if asked is not None and now - asked > STOP_GRACE:
            worker.kill()
            worker.wait()
            return f"was killed: it did not stop within {STOP_GRACE:g}s of being asked"
        if now > until:
            worker.kill()
            worker.wait()
            return f"was killed: it did not end within {deadline:.0f}s"


def _ended(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"was ended by {signal.Signals(-code).name}"
    return f"ended with exit code {code} and no outcome"


def _write_all(worker: subprocess.Popen[bytes], payload: bytes) -> None:
    assert worker.stdin is not None
    with contextlib.suppress(OSError):  # it died first: its exit code says why
        worker.stdin.write(payload)
        worker.stdin.close()


def _read_all(fd: int, chunks: list[bytes]) -> None:
    with open(fd, "rb", closefd=True) as pipe:
        while chunk := pipe.read(65536):
            chunks.append(chunk)


def _log_setup() -> tuple[int, int, str | None]:
    """The service's log levels (its own, httpx's) and line format, for the worker."""
    root = logging.getLogger()
    formats = [h.formatter._fmt for h in root.handlers if h.formatter is not None]
    return root.level, logging.getLogger("httpx").level, (formats or [None])[0]


def main(argv: list[str]) -> int:
    """The worker: run the job read from stdin, write its outcome to the pipe ``argv[0]``;
    ``argv[1]`` is the service's process id."""
    stop = threading.Event()

    def ask_to_stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, ask_to_stop)
    signal.signal(signal.SIGINT, ask_to_stop)  # a Ctrl-C reaches the whole process group
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload is the service's
    _die_with_the_service(int(argv[1]))
    try:
        # S301: what the service itself wrote, on a pipe only it and this process hold
        job, (settings, rules, now), logs = pickle.load(sys.stdin.buffer)  # noqa: S301
        level, httpx_level, line_format = logs
    except Exception as exc:
        print(f"budgetguard worker: no job to run: {type(exc).__name__}", file=sys.stderr)
        return 2
    logging.basicConfig(level=level, format=line_format, stream=sys.stderr)
    logging.getLogger("httpx").setLevel(httpx_level)
    from budgetguard.service.jobs import JOBS

    outcome = JOBS[job](settings, rules, now, stop)
    try:
        with open(int(argv[0]), "wb", closefd=True) as pipe:
            pipe.write(to_json(outcome))
    except OSError:  # the service went away: nobody is left to tell
        return 1
    return 0


def _die_with_the_service(service: int) -> None:
    """Linux: be asked to stop (SIGTERM) when the service's process goes away."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != service:  # it went away before we asked
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
