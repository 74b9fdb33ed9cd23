"""The same figures as text, for chat (Slack, Teams): a row of block characters per day, and
a burn-up as a bar with the pace marked."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["bar_lines", "burn_line"]

_FULL, _EMPTY = "█", "░"
_EIGHTHS = " ▏▎▍▌▋▊▉"


def _bar(fraction: float, width: int) -> str:
    cells = max(0.0, min(fraction, 1.0)) * width
    whole = int(cells)
    part = _EIGHTHS[int((cells - whole) * 8)] if whole < width else ""
    return (_FULL * whole + part.strip()).ljust(width, _EMPTY)[:width]


def bar_lines(rows: Sequence[tuple[str, float | None, str]], width: int = 20) -> list[str]:
    """One line per ``(label, value, shown)``: ``Mon 16 ████████░░░░ $512.30``; a value
    None is missing data, shown as such (never as an empty bar)."""
    top = max([v for _, v, _ in rows if v is not None and v > 0], default=0.0)
    pad = max((len(label) for label, _, _ in rows), default=0)
    out = []
    for label, value, shown in rows:
        if value is None:
            out.append(f"{label.ljust(pad)} {'·' * width} no data")
        else:
            out.append(f"{label.ljust(pad)} {_bar(value / top if top else 0, width)} {shown}")
    return out


def burn_line(spent: float, limit: float, pace: float, width: int = 20) -> str:
    """``█████████│░░░░░░`` with ``│`` where the pace is: spend ahead of it shows past it."""
    bar = list(_bar(spent / limit if limit else 0, width))
    at = min(width - 1, max(0, round(pace / limit * width) - 1)) if limit else 0
    bar[at] = "│" if bar[at] == _EMPTY else "┃"
    return "".join(bar)
