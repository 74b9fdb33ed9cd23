"""``check --offline`` without typer: importing typer and building its commands is a
quarter of a cold offline check (issue 16), so a plain command line is read here.

Only what is certainly plain is taken: ``check``, ``--offline``, no ``--notify``, and each
other word one of the check options below, as ``--name value``, ``--name=value``, ``-r
value`` or a flag, with no value that starts with ``-``. Anything else — ``--help``, a
mistake, an unusual spelling — returns None and goes through typer, which says what it
says. A test holds this table to typer's own definition of ``check``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from budgetguard.cli.check import CheckOptions

__all__ = ["FLAGS", "VALUES", "offline_check"]

#: spelling -> CheckOptions field, for the options that take no value
FLAGS = {"--offline": "offline", "--notify": "notify", "--verbose": "verbose", "-v": "verbose"}
#: spelling -> CheckOptions field, for the options that take one (``--expect``: repeatable)
VALUES = {
    "--format": "output",
    "-f": "output",
    "--fail-on": "fail_on",
    "--expect": "expect",
    "--rules": "rules",
    "-r": "rules",
    "--db": "db",
    "--now": "now",
    "--compare": "compare",
}


def offline_check(argv: list[str]) -> CheckOptions | None:
    """The options of ``argv`` when it is a plain ``check --offline``, else None."""
    if not argv or argv[0] != "check":
        return None
    found: dict[str, Any] = {}
    words = iter(argv[1:])
    for word in words:
        if word in FLAGS:
            found[FLAGS[word]] = True
            continue
        name, equals, value = word.partition("=")
        if not equals:
            if word not in VALUES:
                return None
            name, value = word, next(words, "-")
        if name not in VALUES or (equals and not name.startswith("--")):
            return None
        if value.startswith("-"):
            return None
        field = VALUES[name]
        if field == "expect":
            found.setdefault("expect", []).append(value)
        else:
            found[field] = Path(value) if field in ("rules", "compare") else value
    if not found.get("offline") or found.get("notify"):
        return None
    from budgetguard.cli.check import CheckOptions

    return CheckOptions(**found)
