"""Whether a secret can go in an HTTP header (or a URL, or an SMTP login) as it is.

A key pasted with a trailing no-break space, a zero-width space or curly quotes cannot be
encoded into a header: the HTTP libraries then raise an encoding error whose repr holds the
whole header value, the key included. So every sender asks this first and reports what is
wrong without the value: which character (by its Unicode name) and where (start, end or
inside), never the secret itself. Shared by the admin API client and the notifiers; it
imports nothing of budgetguard.
"""

from __future__ import annotations

import unicodedata

__all__ = ["header_problem"]


def header_problem(value: str, *, spaces: bool = False) -> str | None:
    """None when ``value`` is printable ASCII without spaces (what a key, token or URL is;
    ``spaces``: inner spaces allowed, as in a password); else what is wrong, naming the
    first bad character but never the value."""
    for index, char in enumerate(value):
        if "!" <= char <= "~" or (spaces and char == " " and 0 < index < len(value) - 1):
            continue
        where = "at its start" if index == 0 else "at its end" if index == len(value) - 1 else ""
        where = where or "inside it"
        name = unicodedata.name(char, "a control character")
        return (
            f"it holds a character that cannot be sent (U+{ord(char):04X} {name}) {where}: "
            "a copy-paste accident? Set it again without it"
        )
    return None
