"""Whether a worker's job is delivering, for the worker's stop handler.

Its own module, imported by the jobs and by the worker under their package names: the
worker runs as ``python -m budgetguard.service.worker``, so a flag kept in that module would
be ``__main__``'s copy, never the one the jobs set.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

__all__ = ["DELIVERING", "delivering"]

#: Set while the job queues or delivers notifications.
DELIVERING = threading.Event()


@contextlib.contextmanager
def delivering() -> Iterator[None]:
    """Mark a job's delivery (queueing included): a stop asked meanwhile lets it end cleanly
    (rows recorded or released) instead of ending the worker at once."""
    DELIVERING.set()
    try:
        yield
    finally:
        DELIVERING.clear()
