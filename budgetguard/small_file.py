"""Read a small text file (the rules, ``.env``) within a size cap, and only a regular file.

``-r /dev/zero`` read until the kernel killed the process, and a FIFO blocked for ever: the
file is opened without blocking, must be a regular file, and is read up to its cap (one byte
more tells that it is larger). The errors are ``OSError``s whose ``strerror`` says what is
wrong, so every caller's "cannot read it: ..." line stays one line.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["NotSmallFile", "read_small_text"]


class NotSmallFile(OSError):
    """Not a regular file, or larger than the cap."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_small_text(path: str | Path, cap: int) -> str:
    """The UTF-8 text of the regular file at ``path`` (newlines as ``Path.read_text`` gives
    them), at most ``cap`` bytes; raises
    ``FileNotFoundError``, ``NotSmallFile`` (what it is instead), another ``OSError``, or
    ``UnicodeDecodeError``."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _kind(mode)
            raise NotSmallFile(0, f"{kind}: give a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= cap:
            chunk = os.read(fd, min(1 << 20, cap + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > cap:
            raise NotSmallFile(0, f"larger than {_size(cap)}: is it the right file?")
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as Path.read_text reads it


def _size(cap: int) -> str:
    return f"{cap // 2**20} MB" if cap >= 2**20 else f"{cap // 2**10} KB"
