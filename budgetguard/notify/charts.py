"""A digest's charts, the same for every notifier (public plugin API): the period's daily
spend as bars and each top budget's burn-up, as PNG images (email: inline, by Content-ID)
and as text rows (Slack, Teams: no image hosting needed)."""

from __future__ import annotations

from dataclasses import dataclass

from budgetguard.charts import bar_chart, bar_lines, burn_line, burn_up
from budgetguard.charts.figure import COLOURS, Figure
from budgetguard.notify.messages import Digest, money

__all__ = ["Chart", "digest_chart_text", "digest_charts"]


@dataclass(frozen=True)
class Chart:
    """One figure of a digest: ``name`` (a Content-ID's local part), what it shows in
    words, and the figure itself (``png`` renders it)."""

    name: str
    caption: str
    figure: Figure

    def png(self) -> bytes:
        from budgetguard.charts import to_png  # numpy: only when an image is made

        return to_png(self.figure)


def digest_charts(digest: Digest) -> list[Chart]:
    """The daily bars of the period, then one burn-up per top budget."""
    charts = []
    if digest.daily:
        labels = [day.strftime("%a %d") for day, _ in digest.daily]
        values = [None if v is None else float(v) for _, v in digest.daily]
        last = digest.daily[-1][0].isoformat()
        caption = f"Daily spend, {digest.start.isoformat()} to {last} (costs)"
        figure = bar_chart(caption, labels, [("costs", COLOURS["costs"], values)], width=520)
        charts.append(Chart("daily", caption, figure))
    for i, b in enumerate(digest.burnup):
        days = max((b.end - b.start).days, 1)
        points = [(((d - b.start).days + 1) / days, float(v)) for d, v in b.points]
        ticks = [(0.0, b.start.strftime("%b %d")), (1.0, b.end.strftime("%b %d"))]
        caption = (
            f"{b.label}: {money(b.spend)} of {money(b.limit)} this period (pace {money(b.pace)})"
        )
        figure = burn_up(caption, ticks, points, float(b.limit), width=520, height=170)
        charts.append(Chart(f"burnup-{i + 1}", caption, figure))
    return charts


def digest_chart_text(digest: Digest) -> list[str]:
    """The same figures as monospace text rows (a chat message's code block)."""
    lines = []
    if digest.daily:
        rows = [
            (day.strftime("%a %d"), None if v is None else float(v), money(v))
            for day, v in digest.daily
        ]
        lines += ["Daily spend", *bar_lines(rows)]
    for b in digest.burnup:
        bar = burn_line(float(b.spend), float(b.limit), float(b.pace))
        lines.append(
            f"{b.label}: {bar} {money(b.spend)} of {money(b.limit)} (pace {money(b.pace)})"
        )
    return lines
