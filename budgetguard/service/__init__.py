"""The long-running service (``budgetguard run``): the scheduler and endpoints (``core``),
the jobs it runs (``jobs``), the worker process each job runs in (``worker``) and what a
job reports back (``outcomes``)."""

from budgetguard.service.core import Service

__all__ = ["Service"]
