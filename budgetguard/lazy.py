"""Package exports imported on first use: a cold `check --offline` imports only what it uses
(DESIGN: "the check path imports only what it uses"), while callers still import the names
from the package, as its ``__all__`` says."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, home: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports each name of ``home`` (name ->
    submodule) when first asked for, and keeps it."""
    namespace = import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        where = home.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{where}"), name)
        namespace[name] = value
        return value

    return __getattr__
