"""Headless Chromium (Debian's ``chromium`` package; nothing downloaded) for the tests of
what people look at: the DOM after the page ran, what its console said, and screenshots.

Each call starts a fresh browser with an empty profile and no background networking, and
reads the console from Chromium's own log (``--enable-logging=stderr``: every console
message and uncaught error is a ``CONSOLE`` line)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

__all__ = ["CHROMIUM", "needs_chromium", "run_chromium", "similar"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (apt-get install chromium): the status page's "
    "browser tests need it",
)
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)


def run_chromium(
    url: str, *what: str, size: tuple[int, int] = (1280, 1000)
) -> tuple[str, list[str]]:
    """Chromium on ``url`` with ``what`` (``--dump-dom``, ``--screenshot=PATH``): its stdout
    and the console lines it logged."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="bg-chromium-") as profile:
        done = subprocess.run(
            [
                CHROMIUM,
                *_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={size[0]},{size[1]}",
                *what,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


def similar(a: Path, b: Path) -> float:
    """The share of pixels of two same-size screenshots that differ visibly (any channel by
    more than 48 of 255): 0.0 is identical."""
    from PIL import Image, ImageChops

    with Image.open(a) as left, Image.open(b) as right:
        if left.size != right.size:
            return 1.0
        diff = ImageChops.difference(left.convert("RGB"), right.convert("RGB"))
        visible = diff.point(lambda v: 255 if v > 48 else 0).convert("L")
        changed = visible.histogram()[255]
        return changed / (left.size[0] * left.size[1])
