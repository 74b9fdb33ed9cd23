"""Text from the data made inert for each sink it reaches: one module for every sink.

Names of projects, users, API keys and models, silence comments, API error messages and the
notes built from them come from people who are not the guard's operators (any project
member can name a key). Each sink interprets something:

- a terminal or a log: control characters (ESC and OSC sequences, a bare CR that rewrites
  the line, BEL) and bidirectional overrides; a newline starts a line a CI runner reads as a
  workflow command (``::error file=...``). ``plain_text`` removes them all, on one line.
- Rich (the text report, the digest panel): ``[bold]`` markup. The callers pass data as
  ``rich.text.Text`` (markup off) made from ``plain_text`` text.
- Markdown (PR comments, ``GITHUB_STEP_SUMMARY``): HTML, links, emphasis, table pipes.
  ``escape_markdown`` escapes every character that would start one, and breaks bare URLs.
- GitHub workflow commands: ``%``, CR and LF in a message, and ``:``, ``,`` in a property.
- Slack mrkdwn: ``&``, ``<`` and ``>`` (links, mentions, ``<!channel>``), which Slack asks
  to escape; newlines (a ``>`` quote block). ``escape_slack``.
- Teams Adaptive Cards: their Markdown subset (emphasis, lists, ``[link](url)``), whose
  escaping Teams does not document: ``escape_teams`` breaks each construct, leaving plain
  names be.
- HTML e-mail: ``html.escape`` of ``plain_text`` text (``escape_html``).

Plugins import these from ``budgetguard.notify``. The tests keep a corpus of hostile names
(``tests/hostile.py``) and pass it through every sink.
"""

from __future__ import annotations

import html as _html
import logging
import re

__all__ = [
    "escape_annotation",
    "escape_annotation_property",
    "escape_html",
    "escape_markdown",
    "escape_slack",
    "escape_teams",
    "plain_lines",
    "plain_logs",
    "plain_text",
]

#: C0 and C1 controls, DEL, and the bidirectional embeddings, overrides and isolates (text
#: that reads differently from how it is stored).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+")
#: the same, but newlines and tabs: the lines of a message keep their shape
_CONTROL_IN_LINES = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+"
)
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>|~&$])")
#: Adaptive Cards' Markdown: ``**bold**``, ``_italic_``, lists at a line's start, links
_EMPHASIS = re.compile(r"(?<![0-9A-Za-z])([*_])|([*_])(?![0-9A-Za-z])")
_LINK = re.compile(r"\](?=\()")
_LIST = re.compile(r"^(?=(?:[-+*]|[0-9]+[.)])(?:\s|$))")
#: ``://`` and ``www.``: where GitHub's Markdown would autolink a bare URL
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=\bwww)(?=\.)", re.IGNORECASE)
_ZWSP = "\u200b"


def plain_text(text: object) -> str:
    """``text`` on one line, with no control character: what a terminal or a log may show.
    Newlines, tabs and other whitespace become single spaces; ESC, BEL, CR and the like go."""
    return " ".join(_CONTROL.sub(" ", str(text)).split())


def plain_lines(text: object) -> str:
    """``text`` with no control character but its newlines and tabs (several lines for a
    terminal or a log, their indents and spacing kept)."""
    return _CONTROL_IN_LINES.sub("", str(text))


def escape_markdown(text: object) -> str:
    """``plain_text`` text with every Markdown and HTML metacharacter backslash-escaped, and
    bare URLs broken (a zero-width space after ``:``), so a name renders as itself."""
    escaped = _MARKDOWN.sub(r"\\\1", plain_text(text))
    return _AUTOLINK.sub(_ZWSP, escaped)


def escape_annotation(text: object) -> str:
    """The message of a GitHub workflow command (``::error ...::message``)."""
    return plain_text(text).replace("%", "%25")


def escape_annotation_property(text: object) -> str:
    """A property value of a GitHub workflow command (``title=...``)."""
    return escape_annotation(text).replace(":", "%3A").replace(",", "%2C")


def escape_slack(text: object) -> str:
    """``plain_text`` text escaped for Slack mrkdwn: ``&``, ``<`` and ``>``."""
    return plain_text(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_teams(text: object) -> str:
    """``plain_text`` text with the Markdown of Adaptive Cards made inert, touching only what
    would format: emphasis marks at a word's edge are backslash-escaped, a link's ``](`` and
    a bare URL's ``://`` are broken by a zero-width space, a list marker at the start too.
    A name like ``proj_abc [x]`` stays as it is."""
    inert = _EMPHASIS.sub(lambda m: "\\" + (m.group(1) or m.group(2)), plain_text(text))
    inert = _LINK.sub("]" + _ZWSP, inert)
    return _LIST.sub(_ZWSP, _AUTOLINK.sub(_ZWSP, inert))


def escape_html(text: object) -> str:
    """``plain_text`` text for HTML (an e-mail's body)."""
    return _html.escape(plain_text(text), quote=True)


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return plain_lines(super().format(record))


def plain_logs() -> None:
    """Every handler of the root logger writes its lines through ``plain_lines``: what a log
    line quotes (an API's message, a name) carries no control character to a terminal."""
    for handler in logging.getLogger().handlers:
        current = handler.formatter
        if isinstance(current, _PlainFormatter):
            continue
        fmt = current._fmt if current is not None else None
        datefmt = current.datefmt if current is not None else None
        handler.setFormatter(_PlainFormatter(fmt, datefmt))
