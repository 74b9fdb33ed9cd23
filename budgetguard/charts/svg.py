"""A figure as inline SVG: every text escaped (a name from the API is text, never markup)."""

from __future__ import annotations

from html import escape

from budgetguard.charts.figure import Band, Dot, Figure, Line, Rect, Shape, Text

__all__ = ["to_svg"]


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _title(text: str) -> str:
    return f"<title>{escape(text)}</title>" if text else ""


def _shape(shape: Shape) -> str:
    if isinstance(shape, Rect):
        return (
            f'<rect x="{_n(shape.x)}" y="{_n(shape.y)}" width="{_n(shape.w)}" '
            f'height="{_n(max(shape.h, 0))}" fill="{shape.fill}">{_title(shape.title)}</rect>'
        )
    if isinstance(shape, Line):
        points = " ".join(f"{_n(x)},{_n(y)}" for x, y in shape.points)
        dash = ' stroke-dasharray="4 3"' if shape.dashed else ""
        return (
            f'<polyline points="{points}" fill="none" stroke="{shape.stroke}" '
            f'stroke-width="{_n(shape.width)}"{dash}>{_title(shape.title)}</polyline>'
        )
    if isinstance(shape, Band):
        points = " ".join(f"{_n(x)},{_n(y)}" for x, y in shape.points)
        return (
            f'<polygon points="{points}" fill="{shape.fill}" fill-opacity="0.6">'
            f"{_title(shape.title)}</polygon>"
        )
    if isinstance(shape, Dot):
        return (
            f'<circle cx="{_n(shape.x)}" cy="{_n(shape.y)}" r="{_n(shape.r)}" '
            f'fill="{shape.fill}">{_title(shape.title)}</circle>'
        )
    assert isinstance(shape, Text)
    return (
        f'<text x="{_n(shape.x)}" y="{_n(shape.y)}" font-size="{_n(shape.size)}" '
        f'fill="{shape.fill}" text-anchor="{shape.anchor}">{escape(shape.text)}</text>'
    )


def to_svg(figure: Figure, css_class: str = "chart") -> str:
    """The figure as an ``<svg>`` element (responsive: it scales to its container)."""
    body = "".join(_shape(s) for s in figure.shapes)
    return (
        f'<svg class="{css_class}" role="img" viewBox="0 0 {figure.width} {figure.height}" '
        f'width="{figure.width}" height="{figure.height}" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="system-ui, sans-serif" aria-label="{escape(figure.title)}">'
        f"<title>{escape(figure.title)}</title>{body}</svg>"
    )
