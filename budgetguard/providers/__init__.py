"""Providers: one package per provider's admin API (``openai``), each knowing nothing of
budgets, behind the small interface of ``providers.base``: a reader of the queries a budget
needs (-> pages) and a writer of the provider's own controls, each built from a key, a base
URL and an injected transport (tests pass ``httpx.MockTransport`` or the simulator's URL)."""

from budgetguard.providers.base import ControlError, ErrorKind, Provider, Reply

__all__ = ["ControlError", "ErrorKind", "Provider", "Reply"]
