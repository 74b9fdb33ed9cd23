"""Charts drawn in Python, with no plotting library: one figure model (``figure``), made into
SVG for the status page (``svg``), PNG for email (``png``: numpy and zlib, a bitmap font) and
text for chat (``text``), so every sink shows the same figure.

PNG rather than SVG for email because mail clients (Gmail, Outlook) do not show SVG images;
numpy is already a dependency, and a plotting library (matplotlib: ~40 MB, its own font
cache) would be the heaviest thing installed for two small charts. Each name is imported on
first use: the service's status page draws SVG without loading numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from budgetguard.lazy import lazy_exports

if TYPE_CHECKING:
    from budgetguard.charts.figure import (
        COLOURS,
        Band,
        Dot,
        Figure,
        Line,
        Rect,
        Text,
        bar_chart,
        burn_up,
        compact_money,
        ratio_bars,
        spend_bar,
    )
    from budgetguard.charts.png import to_png
    from budgetguard.charts.svg import to_svg
    from budgetguard.charts.text import bar_lines, burn_line

__all__ = [
    "COLOURS",
    "Band",
    "Dot",
    "Figure",
    "Line",
    "Rect",
    "Text",
    "bar_chart",
    "bar_lines",
    "burn_line",
    "burn_up",
    "compact_money",
    "ratio_bars",
    "spend_bar",
    "to_png",
    "to_svg",
]

_HOME = {
    **dict.fromkeys(
        (
            "COLOURS",
            "Band",
            "Dot",
            "Figure",
            "Line",
            "Rect",
            "Text",
            "bar_chart",
            "burn_up",
            "compact_money",
            "ratio_bars",
            "spend_bar",
        ),
        "figure",
    ),
    "to_png": "png",
    "to_svg": "svg",
    "bar_lines": "text",
    "burn_line": "text",
}

__getattr__ = lazy_exports(__name__, _HOME)
