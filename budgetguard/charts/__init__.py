"""Charts drawn in Python, with no plotting library: one figure model (``figure``), made into
SVG for the status page (``svg``), PNG for email (``png``: numpy and zlib, a bitmap font) and
text for chat (``text``), so every sink shows the same figure.

PNG rather than SVG for email because mail clients (Gmail, Outlook) do not show SVG images;
numpy is already a dependency, and a plotting library (matplotlib: ~40 MB, its own font
cache) would be the heaviest thing installed for two small charts.
"""

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
