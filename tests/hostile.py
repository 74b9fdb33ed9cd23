"""The corpus of hostile names the tests keep: what any project member can name a project or
a key, or write in a silence comment, aimed at each sink the guard writes to."""

from __future__ import annotations

#: name -> what it attacks
HOSTILE = {
    "[/bold]": "Rich markup (killed the text report)",
    "[red]x[/red] [link=https://evil.example]y[/link]": "Rich markup and links",
    "a\n::error file=evil.py,line=1::pwned": "a workflow command on its own line",
    "b\r::warning::carriage": "a bare CR (a workflow command after it)",
    "<img src=x onerror=alert(1)>": "HTML in Markdown",
    "<script>alert(1)</script>": "HTML in Markdown",
    "[click](https://evil.example)": "a Markdown link",
    "\x1b[31mred\x1b[0m": "ANSI colours",
    "\x1b]8;;https://evil.example\x07hyperlink\x1b]8;;\x07": "an OSC 8 terminal hyperlink",
    "\x1b]0;owned title\x07": "an OSC terminal title",
    "*bold* _italic_ ~strike~ `code` **b**": "emphasis in Slack, Teams, Markdown",
    "<!channel> <@U123> <https://evil.example|click> &amp;": "Slack mentions and links",
    "|cell|": "a Markdown table's pipes",
    "$x^2$ :rocket:": "GitHub math and emoji",
    "\u202eevil\u202c": "a bidirectional override",
    "www.evil.example http://evil.example/x": "bare URLs (autolinks)",
    "%0A::error::encoded": "a pre-encoded workflow command",
    "- list item": "a list marker at the start",
}
NAMES = list(HOSTILE)
#: what no output may carry, whatever the names hold
CONTROLS = ("\x1b", "\x07", "\r", "\u202e", "\x00")
