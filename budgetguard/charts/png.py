"""A figure as a PNG, drawn with numpy and encoded with zlib: shapes are rasterised at twice
the size and averaged down (anti-aliasing); labels use the 5x7 bitmap font (``font``)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

from budgetguard.charts.figure import Band, Dot, Figure, Line, Rect, Shape, Text
from budgetguard.charts.font import GLYPH_H, GLYPH_W, glyph

__all__ = ["to_png"]

_S = 2  # supersampling
Canvas = npt.NDArray[np.float32]


def _rgb(colour: str) -> npt.NDArray[np.float32]:
    value = colour.lstrip("#")
    return np.array([int(value[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float32)


def _blend(canvas: Canvas, y0: int, x0: int, cover: Canvas, colour: str, alpha: float) -> None:
    h, w = cover.shape
    region = canvas[y0 : y0 + h, x0 : x0 + w]
    cover = cover[: region.shape[0], : region.shape[1], None] * alpha
    region[...] = region * (1 - cover) + _rgb(colour) * cover


def _grid(
    canvas: Canvas, box: tuple[float, float, float, float]
) -> tuple[int, int, Canvas, Canvas]:
    """Pixel-centre coordinates (in figure units) of the canvas pixels inside ``box``."""
    height, width = canvas.shape[:2]
    x0, y0 = max(int(box[0] * _S), 0), max(int(box[1] * _S), 0)
    x1, y1 = min(int(box[2] * _S) + 2, width), min(int(box[3] * _S) + 2, height)
    ys, xs = np.mgrid[y0 : max(y1, y0), x0 : max(x1, x0)].astype(np.float32)
    return y0, x0, (xs + 0.5) / _S, (ys + 0.5) / _S


def _segment(
    canvas: Canvas, a: tuple[float, float], b: tuple[float, float], line: Line, offset: float
) -> float:
    (ax, ay), (bx, by) = a, b
    half = line.width / 2
    box = (min(ax, bx) - half, min(ay, by) - half, max(ax, bx) + half, max(ay, by) + half)
    y0, x0, xs, ys = _grid(canvas, box)
    dx, dy = bx - ax, by - ay
    length = float(np.hypot(dx, dy))
    t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / (length**2 or 1.0), 0, 1)
    distance = np.hypot(xs - (ax + t * dx), ys - (ay + t * dy))
    cover = np.clip(half - distance + 0.5 / _S, 0, 1)
    if line.dashed:
        cover = cover * (((offset + t * length) % 7) < 4)
    _blend(canvas, y0, x0, cover.astype(np.float32), line.stroke, 1.0)
    return offset + length


def _polygon(canvas: Canvas, points: tuple[tuple[float, float], ...]) -> tuple[int, int, Canvas]:
    xs_, ys_ = [p[0] for p in points], [p[1] for p in points]
    y0, x0, xs, ys = _grid(canvas, (min(xs_), min(ys_), max(xs_), max(ys_)))
    inside = np.zeros(xs.shape, dtype=bool)
    for (ax, ay), (bx, by) in zip(points, points[1:] + points[:1], strict=True):
        crosses = (ay > ys) != (by > ys)
        at = ax + (ys - ay) * (bx - ax) / ((by - ay) or 1e-9)
        inside ^= crosses & (xs < at)
    return y0, x0, inside.astype(np.float32)


def _text(canvas: Canvas, text: Text) -> None:
    scale = max(1, round(text.size / 11)) * _S
    advance = (GLYPH_W + 1) * scale
    width = advance * len(text.text)
    left = text.x * _S - {"start": 0, "middle": width / 2, "end": width}[text.anchor]
    top = int(text.y * _S) - GLYPH_H * scale
    for i, char in enumerate(text.text):
        rows = np.array(glyph(char), dtype=np.float32)
        block = np.kron(rows, np.ones((scale, scale), dtype=np.float32))
        x = int(left + i * advance)
        if x < 0 or top < 0:
            continue
        _blend(canvas, top, x, block, text.fill, 1.0)


def _draw(canvas: Canvas, shape: Shape) -> None:
    if isinstance(shape, Rect):
        y0, x0, xs, ys = _grid(canvas, (shape.x, shape.y, shape.x + shape.w, shape.y + shape.h))
        cover = (
            (xs >= shape.x) & (xs < shape.x + shape.w) & (ys >= shape.y) & (ys < shape.y + shape.h)
        )
        _blend(canvas, y0, x0, cover.astype(np.float32), shape.fill, 1.0)
    elif isinstance(shape, Line):
        offset = 0.0
        for a, b in zip(shape.points, shape.points[1:], strict=False):
            offset = _segment(canvas, a, b, shape, offset)
    elif isinstance(shape, Band):
        y0, x0, inside = _polygon(canvas, shape.points)
        _blend(canvas, y0, x0, inside, shape.fill, 0.6)
    elif isinstance(shape, Dot):
        r = shape.r
        y0, x0, xs, ys = _grid(canvas, (shape.x - r, shape.y - r, shape.x + r, shape.y + r))
        cover = np.clip(r - np.hypot(xs - shape.x, ys - shape.y) + 0.5 / _S, 0, 1)
        _blend(canvas, y0, x0, cover.astype(np.float32), shape.fill, 1.0)
    else:
        _text(canvas, shape)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def to_png(figure: Figure) -> bytes:
    """The figure as an 8-bit RGB PNG of ``figure.width`` x ``figure.height`` pixels."""
    canvas = np.full((figure.height * _S, figure.width * _S, 3), 255.0, dtype=np.float32)
    for shape in figure.shapes:
        _draw(canvas, shape)
    small = canvas.reshape(figure.height, _S, figure.width, _S, 3).mean(axis=(1, 3))
    pixels = np.clip(np.rint(small), 0, 255).astype(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", figure.width, figure.height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )
