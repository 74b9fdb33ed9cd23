"""``match`` globs on display names: names are for people, never for matching safety.

A glob on ``project``, ``user`` or ``api_key`` matches ids and the directory's display names.
Names come late (a fresh store, a directory call that failed), change (a rename) and vanish
(a listing that stopped showing an entry), so a glob meant for names could silently match
nothing and read $0 ``ok``. Here each glob is resolved against the current names and the
former ones (a renamed entry keeps matching by id once it matched, and its note says so);
a glob meant for names that matches no name is left ``unresolved``, for evaluation to make
the budget ``unknown`` unless it matches an id in the data.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

__all__ = ["ID_PREFIXES", "NameMatch", "is_id_glob", "literal", "resolve"]

#: How the admin API's ids begin, per ``match`` key that also matches names.
ID_PREFIXES = {"project": ("proj_",), "user": ("user-", "user_"), "api_key": ("key_",)}
_WILD = re.compile(r"[*?\[]")

Names = Mapping[str, Mapping[str, str]]
Former = Mapping[str, Mapping[str, tuple[str, ...]]]


def literal(value: str) -> str:
    """A glob that matches exactly ``value``."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in value)


def is_id_glob(key: str, pattern: str) -> bool:
    """A glob written for ids (``proj_abc``, ``proj_*``) or for everything (``*``): one that
    matches nothing is simply no spend. Any other (``Support chat*``) is meant for names."""
    head = _WILD.split(pattern, maxsplit=1)[0]
    if not head:
        return set(pattern) <= {"*"}
    return head.startswith(ID_PREFIXES.get(key, ()))


class NameMatch:
    """What resolving one budget's globs on names found."""

    def __init__(self) -> None:
        #: key -> ids matched by a current or former name
        self.ids: dict[str, set[str]] = {}
        #: for the budget's note: entries matched by a former name
        self.notes: list[str] = []
        #: (key, glob) pairs meant for names that matched no name known
        self.unresolved: list[tuple[str, str]] = []


def _hits(patterns: tuple[str, ...], name: str) -> bool:
    return bool(name) and any(fnmatch.fnmatchcase(name, p) for p in patterns)


def resolve(match: Mapping[str, tuple[str, ...]], names: Names, former: Former) -> NameMatch:
    """Resolve each glob of ``match`` (key -> globs) on ``names`` (kind -> id -> name) and
    ``former`` (kind -> id -> former names)."""
    found = NameMatch()
    for key, patterns in match.items():
        if key not in ID_PREFIXES:
            continue
        current, before = names.get(key) or {}, former.get(key) or {}
        ids = {i for i, name in current.items() if _hits(patterns, name)}
        for entry_id, olds in sorted(before.items()):
            if entry_id in ids:
                continue
            old = next((n for n in olds if _hits(patterns, n)), None)
            if old is not None:
                ids.add(entry_id)
                now = current.get(entry_id) or "no name"
                found.notes.append(
                    f"{key} {entry_id} matched by its former name '{old}' (now '{now}')"
                )
        if ids:
            found.ids[key] = ids
        known = [*current.values(), *(n for olds in before.values() for n in olds)]
        for pattern in patterns:
            if not is_id_glob(key, pattern) and not any(_hits((pattern,), n) for n in known):
                found.unresolved.append((key, pattern))
    return found
