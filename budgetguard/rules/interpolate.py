"""``${VAR}`` and ``${VAR:-default}`` in the strings of a rules file; ``$$`` is a literal ``$``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["interpolate"]

_TOKEN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?")

Path = tuple[str | int, ...]
_CONTAINERS = (dict, list)


def interpolate(
    data: Any,
    env: Mapping[str, str],
    report: Callable[[Path, str], None],
    path: Path = (),
    unset: Callable[[Path, str], bool] | None = None,
) -> Any:
    """``data`` with every placeholder replaced (the same objects where none is); problems
    go to ``report(path, message)``.

    An unset variable without a default is first offered to ``unset(path, name)``: when it
    returns true (a notifier setting, resolved only when used) it is not an error, and the
    placeholder is kept as written. Messages name the variable, never its value.
    """
    if isinstance(data, _CONTAINERS):
        # only containers and text with a '$' are visited, and only what changes is copied:
        # most of a large file holds no placeholder, and walking it all was a tenth of a load
        out = data
        for key, value in data.items() if isinstance(data, dict) else enumerate(data):
            if isinstance(value, _CONTAINERS) or (isinstance(value, str) and "$" in value):
                new = interpolate(value, env, report, (*path, key), unset)
                if new is not value:
                    if out is data:
                        out = data.copy()
                    out[key] = new
        return out
    if not isinstance(data, str) or "$" not in data:
        return data

    def replace(match: re.Match[str]) -> str:
        placeholder = match.group(0)
        if placeholder == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name is None:
            report(
                path, f"malformed placeholder '{placeholder}': use ${{VAR}} or ${{VAR:-default}}"
            )
            return ""
        value = env.get(name)
        if value is not None and value != "":
            return value
        if default is not None:
            return default
        if unset is not None and unset(path, name):
            return placeholder
        report(
            path,
            f"environment variable '{name}' is not set; set it, or give a default with "
            f"${{{name}:-default}}",
        )
        return ""

    return _TOKEN.sub(replace, data)
