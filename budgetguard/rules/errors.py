"""Errors of a rules file: each one says where (PATH:LINE:COL) and what."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["RuleError", "RulesError", "did_you_mean"]


@dataclass(frozen=True, order=True)
class RuleError:
    """One mistake in a rules file; line and column are 1-based."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class RulesError(Exception):
    """The rules file has mistakes; ``errors`` lists every one found, in file order."""

    def __init__(self, errors: Iterable[RuleError]):
        self.errors = tuple(sorted(set(errors), key=lambda e: (e.line, e.column, e.message)))
        super().__init__("\n".join(str(e) for e in self.errors))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` — did you mean 'x'?`` for the closest choice, or the list of choices."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f" — did you mean '{close[0]}'?"
    if len(options) <= 12:
        return f" (expected one of: {', '.join(options)})"
    return ""
