"""A figure as a list of shapes in pixels (origin top left), and the three charts budgetguard
draws: daily bars (stacked by source), a burn-up against the limit and the pace, and bars of
percent of limit. Values are plain floats: a chart is for the eye, its figures are in the text
beside it (always the report's own Decimals)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
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
]

#: One palette for every sink (severity colours as the notifiers use them).
COLOURS = {
    "costs": "#175cd3",
    "estimate": "#84adff",
    "usage": "#175cd3",
    "missing": "#d0d5dd",
    "axis": "#98a2b3",
    "grid": "#eaecf0",
    "text": "#344054",
    "limit": "#d92d20",
    "pace": "#667085",
    "spend": "#175cd3",
    "band": "#b2ccff",
    "ok": "#12b76a",
    "warning": "#f79009",
    "critical": "#d92d20",
    "unknown": "#98a2b3",
    "silenced": "#7a5af8",
    "fire": "#d92d20",
    "resolve": "#12b76a",
    "silence": "#7a5af8",
    "action": "#f79009",
}


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    title: str = ""


@dataclass(frozen=True)
class Line:
    points: tuple[tuple[float, float], ...]
    stroke: str
    width: float = 1.5
    dashed: bool = False
    title: str = ""


@dataclass(frozen=True)
class Band:
    """A filled polygon (the forecast's range)."""

    points: tuple[tuple[float, float], ...]
    fill: str
    title: str = ""


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    r: float
    fill: str
    title: str = ""


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # the baseline
    text: str
    size: float = 11
    fill: str = COLOURS["text"]
    anchor: str = "start"  # start | middle | end


Shape = Rect | Line | Band | Dot | Text


@dataclass
class Figure:
    width: int
    height: int
    title: str  # what the figure shows, in words (alt text, <title>)
    shapes: list[Shape] = field(default_factory=list)

    def add(self, *shapes: Shape) -> None:
        self.shapes.extend(shapes)


def compact_money(value: float) -> str:
    """``$1.2k``, ``$980``, ``$3.4M``: axis labels."""
    size = abs(value)
    if size >= 1e6:
        return f"${value / 1e6:.1f}M"
    if size >= 1e4:
        return f"${value / 1e3:.0f}k"
    if size >= 1e3:
        return f"${value / 1e3:.1f}k"
    return f"${value:.0f}" if size >= 10 or value == 0 else f"${value:.2f}"


_PAD_L, _PAD_R, _PAD_T, _PAD_B = 48, 12, 14, 22


def _top(values: Sequence[float]) -> float:
    """A round axis maximum over ``values`` (1, 2, 2.5 or 5 times a power of ten)."""
    peak = max([v for v in values if v > 0], default=1.0)
    scale = 10 ** len(str(int(peak))) / 10 if peak >= 1 else 1.0
    for step in (1, 2, 2.5, 5, 10):
        if peak <= step * scale:
            return step * scale
    return 10 * scale


def _axis(fig: Figure, top: float, fmt: Callable[[float], str]) -> Callable[[float], float]:
    """Horizontal grid lines and their labels; the function from a value to its y."""
    inner = fig.height - _PAD_T - _PAD_B

    def y(value: float) -> float:
        return _PAD_T + inner * (1 - min(max(value / top, 0.0), 1.15))

    for i in range(5):
        value = top * i / 4
        fig.add(
            Line(((_PAD_L, y(value)), (fig.width - _PAD_R, y(value))), COLOURS["grid"], 1),
            Text(_PAD_L - 4, y(value) + 4, fmt(value), 10, COLOURS["axis"], "end"),
        )
    return y


def bar_chart(
    title: str,
    labels: Sequence[str],
    stacks: Sequence[tuple[str, str, Sequence[float | None]]],
    *,
    width: int = 560,
    height: int = 180,
    fmt: Callable[[float], str] = compact_money,
) -> Figure:
    """Bars per label, stacked by series ``(name, colour, values)``; a label whose every
    value is None is drawn as missing (a grey stub), never as zero."""
    fig = Figure(width, height, title)
    totals = [sum(v or 0.0 for _, _, vs in stacks for v in [vs[i]]) for i in range(len(labels))]
    top = _top(totals)
    y = _axis(fig, top, fmt)
    slot = (width - _PAD_L - _PAD_R) / max(len(labels), 1)
    bar = max(2.0, slot * 0.7)
    every = max(1, len(labels) // 12)
    for i, label in enumerate(labels):
        x = _PAD_L + slot * i + (slot - bar) / 2
        values = [(name, colour, vs[i]) for name, colour, vs in stacks]
        if all(v is None for _, _, v in values):
            fig.add(Rect(x, y(0) - 3, bar, 3, COLOURS["missing"], f"{label}: no data"))
        base = 0.0
        for name, colour, value in values:
            if not value:
                continue
            fig.add(
                Rect(
                    x,
                    y(base + value),
                    bar,
                    y(base) - y(base + value),
                    colour,
                    f"{label}: {fmt(value)} {name}",
                )
            )
            base += value
        if i % every == 0:
            fig.add(Text(x + bar / 2, height - 6, label, 10, COLOURS["axis"], "middle"))
    return fig


def burn_up(
    title: str,
    ticks: Sequence[tuple[float, str]],
    spent: Sequence[tuple[float, float]],
    limit: float | None,
    *,
    band: tuple[float, float, float, float] | None = None,
    thresholds: Sequence[float] = (),
    markers: Sequence[tuple[float, str, str]] = (),
    width: int = 560,
    height: int = 200,
    fmt: Callable[[float], str] = compact_money,
) -> Figure:
    """Cumulative spend (``spent``: (fraction of the span, value)) against the limit, the
    pace that spends it exactly over the span, threshold lines, the forecast band ``(from
    fraction, from value, low, high)`` to the span's end, and markers ``(fraction, kind,
    title)`` (fire, resolve, silence, action)."""
    fig = Figure(width, height, title)
    peak = [v for _, v in spent] + ([limit * 1.05] if limit else []) + ([band[3]] if band else [])
    top = _top(peak)
    y = _axis(fig, top, fmt)
    left, right = _PAD_L, width - _PAD_R

    def x(fraction: float) -> float:
        return left + (right - left) * min(max(fraction, 0.0), 1.0)

    for fraction, label in ticks:
        anchor = "start" if fraction <= 0.02 else "end" if fraction >= 0.98 else "middle"
        fig.add(Text(x(fraction), height - 6, label, 10, COLOURS["axis"], anchor))
    if band is not None:
        f0, v0, low, high = band
        fig.add(
            Band(
                ((x(f0), y(v0)), (x(1), y(high)), (x(1), y(low))),
                COLOURS["band"],
                f"forecast {fmt(low)} to {fmt(high)}",
            )
        )
    for value in thresholds:
        fig.add(
            Line(
                ((left, y(value)), (right, y(value))),
                COLOURS["warning"],
                1,
                True,
                f"threshold {fmt(value)}",
            )
        )
    if limit:
        fig.add(
            Line(((left, y(0)), (right, y(limit))), COLOURS["pace"], 1.2, True, "pace"),
            Line(
                ((left, y(limit)), (right, y(limit))),
                COLOURS["limit"],
                1.5,
                False,
                f"limit {fmt(limit)}",
            ),
        )
    if spent:
        points = ((x(0), y(0)), *((x(f), y(v)) for f, v in spent))
        fig.add(Line(points, COLOURS["spend"], 2.5, False, f"spend {fmt(spent[-1][1])}"))
    for fraction, kind, label in markers:
        fig.add(
            Line(
                ((x(fraction), _PAD_T), (x(fraction), y(0))),
                COLOURS.get(kind, "#000"),
                1,
                True,
                label,
            ),
            Dot(x(fraction), _PAD_T + 4, 4, COLOURS.get(kind, "#000"), label),
        )
    return fig


def ratio_bars(
    title: str,
    rows: Sequence[tuple[str, float | None, str, str]],
    *,
    width: int = 560,
    row_height: int = 22,
    label_width: int = 220,
) -> Figure:
    """Horizontal bars of percent of limit ``(label, ratio, severity, text)``, a line at
    100 %; a ratio None (unknown) draws no bar."""
    height = row_height * len(rows) + 24
    fig = Figure(width, height, title)
    left, right = label_width, width - 60
    full = max([1.0, *(r for _, r, _, _ in rows if r is not None)])

    def x(ratio: float) -> float:
        return left + (right - left) * min(ratio / full, 1.0)

    for i, (label, ratio, severity, text) in enumerate(rows):
        top = 8 + i * row_height
        fig.add(Text(left - 6, top + 13, label, 11, COLOURS["text"], "end"))
        fig.add(Rect(left, top + 3, right - left, row_height - 8, COLOURS["grid"]))
        if ratio is not None:
            fig.add(
                Rect(
                    left,
                    top + 3,
                    max(x(ratio) - left, 1),
                    row_height - 8,
                    COLOURS.get(severity, COLOURS["unknown"]),
                    f"{label}: {text}",
                )
            )
        fig.add(Text(right + 4, top + 13, text, 10, COLOURS["text"]))
    fig.add(Line(((x(1.0), 4), (x(1.0), height - 12)), COLOURS["limit"], 1, True, "100%"))
    return fig


def spend_bar(
    title: str,
    ratio: float | None,
    severity: str,
    *,
    thresholds: Sequence[float] = (),
    forecast: float | None = None,
    width: int = 200,
    height: int = 18,
) -> Figure:
    """One budget's spend as a share of its limit (the scale reaches 120 %), ticks at its
    thresholds and a diamond at the forecast."""
    fig = Figure(width, height, title)
    scale = max(1.2, *(r for r in (ratio, forecast) if r is not None), 0)

    def x(value: float) -> float:
        return 1 + (width - 2) * min(value / scale, 1.0)

    fig.add(Rect(1, 4, width - 2, height - 8, COLOURS["grid"]))
    if ratio is not None:
        fig.add(
            Rect(
                1,
                4,
                max(x(ratio) - 1, 1),
                height - 8,
                COLOURS.get(severity, COLOURS["unknown"]),
                f"{ratio:.0%} of the limit",
            )
        )
    for t in thresholds:
        fig.add(
            Line(((x(t), 1), (x(t), height - 1)), COLOURS["text"], 1, False, f"threshold {t:.0%}")
        )
    fig.add(Line(((x(1.0), 0), (x(1.0), height)), COLOURS["limit"], 2, False, "limit"))
    if forecast is not None:
        at, mid = x(forecast), height / 2
        fig.add(
            Band(
                ((at, mid - 5), (at + 5, mid), (at, mid + 5), (at - 5, mid)),
                "#101828",
                f"forecast {forecast:.0%} of the limit",
            )
        )
    return fig
