"""A job in a process of its own: the service stays small while idle, whatever a job used.

The service (``run``) starts ``python -P -m budgetguard.service.worker FD PID`` for each job
(in its own process group: a terminal's Ctrl-C is the service's to handle) and hands it the
job's name and inputs (settings, the rules in force, the instant) pickled on its stdin,
never on its command line. The worker runs the job (``service/jobs.py``) and writes JSON
lines to the pipe ``FD``: each delivery attempt and collection as it happens, then the
outcome; its log lines and a console notifier's output go to the service's own stderr and
stdout. When the job ends its process ends, and every page it touched (the evaluation's
arrays, the collector's pages, the price tables, the heap they fragmented) goes back to the
system: idle, the service holds only its scheduler, its endpoints, the rules and the store
it asks for the leader lock.

Every wait is bounded: a worker that outlives ``deadline`` is killed (a hung job no longer
waits for the liveness probe to restart the whole service); on stop it is asked to stop
(SIGTERM): outside a delivery it ends at once (a collection or an evaluation has nothing to
finish: what it wrote is in transactions), in one its deliveries stop claiming and record
what they sent, as in the service itself; it is killed after ``STOP_GRACE``; if the
service itself dies, the worker is killed with it (Linux), so no job runs on beside the
next leader. A worker killed mid-delivery loses nothing: the outbox and
the alert state are written in transactions, and a leased notification is sent again later
under its key. A worker that fails to start, dies or writes no outcome is a failed job,
with the reason (``WorkerError``); one that could not start or load its job says so
(``WorkerError.broken``: the deployment is broken, not the data), with the cause in one
line — the worker writes it on the pipe before anything else could fail.
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
from typing import TYPE_CHECKING, BinaryIO

from budgetguard.service.outcomes import (
    LOADED,
    JobOutcome,
    Progress,
    Unloadable,
    attempt_line,
    collected_line,
    outcome_line,
    read_line,
    unloadable_line,
)
from budgetguard.service.phase import DELIVERING

if TYPE_CHECKING:
    from budgetguard.rules import Rules
    from budgetguard.settings import Settings

__all__ = ["STOP_GRACE", "WorkerError", "run_in_worker"]

log = logging.getLogger("budgetguard.service")

#: How long a worker asked to stop may take before it is killed.
STOP_GRACE = 3.0
_PR_SET_PDEATHSIG = 1
MODULE = "budgetguard.service.worker"
#: The exit code of a worker that stopped, when asked, outside a delivery.
STOPPED = 3


class WorkerError(RuntimeError):
    """The worker ended without an outcome (killed, crashed, timed out): the job failed.
    ``broken``: it could not even start or load its job (a deployment fault: the same
    will happen to every job until something changes)."""

    def __init__(self, message: str, *, broken: bool = False) -> None:
        super().__init__(message)
        self.broken = broken


def run_in_worker(
    job: str,
    inputs: tuple[Settings, Rules, datetime],
    *,
    deadline: float,
    stop: threading.Event,
    progress: Progress,
) -> JobOutcome:
    """Run ``jobs.JOBS[job](settings, rules, now, stop, progress)`` in a worker process; its
    outcome. ``progress`` hears the worker's attempts and collections as they happen.
    ``WorkerError`` for any way the worker failed, starting it included."""
    try:
        payload = pickle.dumps((job, inputs, _log_setup()))
    except Exception as exc:  # e.g. a plugin's settings model that cannot be pickled
        raise WorkerError(
            f"its worker process could not be given its job: {_cause(exc)}", broken=True
        ) from None
    try:
        read_end, write_end = os.pipe()
    except OSError as exc:
        raise WorkerError(f"its worker process could not be started: {exc}", broken=True) from None
    try:
        worker = subprocess.Popen(  # noqa: S603 - our own module, with this interpreter
            # -P: never import from the working directory (in the image, the data volume)
            [sys.executable, "-P", "-m", MODULE, str(write_end), str(os.getpid())],
            stdin=subprocess.PIPE,
            pass_fds=(write_end,),
            process_group=0,  # a terminal's Ctrl-C or hangup is the service's to handle
        )
    except OSError as exc:
        os.close(read_end)
        raise WorkerError(f"its worker process could not be started: {exc}", broken=True) from None
    finally:
        os.close(write_end)
    found: list[JobOutcome] = []
    faults: list[str] = []  # lines that are not a job's; "unloadable" first when it said so
    loaded = threading.Event()
    threads = [
        threading.Thread(
            target=_read, args=(read_end, progress, found, faults, loaded), daemon=True
        ),
        threading.Thread(target=_write_all, args=(worker, payload), daemon=True),
    ]  # a worker that never reads is bounded by the deadline, not by a write
    try:
        for thread in threads:
            thread.start()
        why = _wait(worker, deadline, stop)
    except Exception as exc:  # a thread that cannot start: the worker must not outlive us
        why = f"could not be watched: {type(exc).__name__}: {exc}"
    finally:
        if worker.poll() is None:  # overstayed, or we could not watch it
            worker.kill()
            worker.wait()
    if threads[0].ident is not None:
        threads[0].join(timeout=5.0)
    else:  # the reader never started: its end of the pipe is still ours
        os.close(read_end)
    if why is None and worker.returncode == 0 and found and not faults:
        return found[-1]
    code = worker.returncode
    if not loaded.is_set() and why is None and code is not None and code >= 0:
        # it ended by itself before it got as far as its job (a signal is someone else's)
        said = faults[0] if faults else f"{_ended(code)} (its stderr says why)"
        raise WorkerError(f"its worker process could not load its job: {said}", broken=True)
    if why is None and worker.returncode == 0:
        why = "wrote no outcome" + (f" ({faults[0]})" if faults else "")
    raise WorkerError(f"its worker process {why or _ended(worker.returncode)}")


def _cause(exc: BaseException) -> str:
    """``Type: message`` on one line, bounded (no value of the inputs is in either)."""
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _wait(worker: subprocess.Popen[bytes], deadline: float, stop: threading.Event) -> str | None:
    """Wait for the worker, asking it to stop on ``stop``; None when it ended by itself, else
    why it must be killed (the caller kills it)."""
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
            return f"was killed: it did not stop within {STOP_GRACE:g}s of being asked"
        if now > until:
            return f"was killed: it did not end within {deadline:.0f}s"


def _ended(code: int | None) -> str:
    if code == STOPPED:
        return "stopped when asked, its job unfinished"
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"was ended by {signal.Signals(-code).name}"
    return f"ended with exit code {code} and no outcome"


def _write_all(worker: subprocess.Popen[bytes], payload: bytes) -> None:
    assert worker.stdin is not None
    with contextlib.suppress(OSError):  # it died first: its exit code says why
        worker.stdin.write(payload)
        worker.stdin.close()


def _read(
    fd: int,
    progress: Progress,
    found: list[JobOutcome],
    faults: list[str],
    loaded: threading.Event,
) -> None:
    """The worker's lines as they come: progress passed on, the outcome kept, whether it
    loaded its job (or why it could not) noted."""
    with open(fd, "rb", closefd=True) as pipe:
        for line in pipe:
            if line == LOADED:
                loaded.set()
                continue
            try:
                outcome = read_line(line, progress)
            except Unloadable as exc:
                faults.insert(0, str(exc))
                continue
            except (ValueError, TypeError, KeyError) as exc:
                faults.append(f"{type(exc).__name__}: {exc}")
                continue
            if outcome is not None:
                found.append(outcome)


class _PipeProgress:
    """The worker's side of ``Progress``: a line on the pipe per event (deliveries report
    from their own threads, so one writer at a time)."""

    def __init__(self, pipe: BinaryIO) -> None:
        self._pipe = pipe
        self._lock = threading.Lock()

    def write(self, line: bytes) -> None:
        with self._lock:
            self._pipe.write(line)
            self._pipe.flush()

    def attempt(self, notifier: str, outcome: str) -> None:
        self.write(attempt_line(notifier, outcome))

    def collected(self, endpoint: str, stamp: int) -> None:
        self.write(collected_line(endpoint, stamp))


def _log_setup() -> tuple[int, int, str | None]:
    """The service's log levels (its own, httpx's) and line format, for the worker."""
    root = logging.getLogger()
    formats = [h.formatter._fmt for h in root.handlers if h.formatter is not None]
    return root.level, logging.getLogger("httpx").level, (formats or [None])[0]


def main(argv: list[str]) -> int:
    """The worker: run the job read from stdin, its progress and outcome on the pipe
    ``argv[0]``; ``argv[1]`` is the service's process id."""
    stop = threading.Event()

    def ask_to_stop(_signum: int, _frame: object) -> None:
        stop.set()
        if not DELIVERING.is_set():  # a collection or an evaluation: nothing to finish
            os._exit(STOPPED)

    signal.signal(signal.SIGTERM, ask_to_stop)  # the service's stop: deliveries stop claiming
    signal.signal(signal.SIGINT, ask_to_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload is the service's
    _die_with_the_service(int(argv[1]))
    try:
        os.set_inheritable(int(argv[0]), False)  # a plugin's own child must not hold it open
        with open(int(argv[0]), "wb", closefd=True) as pipe:
            progress = _PipeProgress(pipe)
            try:
                # S301: what the service itself wrote, on a pipe only it and this process hold
                job, (settings, rules, now), logs = pickle.load(sys.stdin.buffer)  # noqa: S301
                level, httpx_level, line_format = logs
                from budgetguard.service.jobs import JOBS

                run = JOBS[job]
            except Exception as exc:  # one line to the service, which says it at once
                print(f"budgetguard worker: cannot load its job: {_cause(exc)}", file=sys.stderr)
                progress.write(unloadable_line(_cause(exc)))
                return 2
            progress.write(LOADED)
            logging.basicConfig(level=level, format=line_format, stream=sys.stderr)
            logging.getLogger("httpx").setLevel(httpx_level)
            from budgetguard.notify.escape import plain_logs

            plain_logs()
            progress.write(outcome_line(run(settings, rules, now, stop, progress)))
    except OSError:  # the service went away: nobody is left to tell
        return 1
    return 0


def _die_with_the_service(service: int) -> None:
    """Linux: be killed when the service goes away (its job would otherwise run on beside
    the next leader; whatever it wrote is in transactions, and a leased notification is sent
    again later under its key)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != service:  # it went away before we asked
        os._exit(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
