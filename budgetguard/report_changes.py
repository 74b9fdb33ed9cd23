"""The short part of the Markdown report a CI step summary and a pull-request comment lead
with: what changed since a previous JSON report (``check --compare``), what the plan adds
(``--expect``) and the budgets at risk; the full table comes folded after it (``report``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from budgetguard.notify.escape import escape_markdown

__all__ = ["changes", "md_text"]

_ICON = {"ok": "✅", "warning": "⚠️", "critical": "🔴", "unknown": "❔"}
_ORDER = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}


def md_text(text: str) -> str:
    """Text from the data made inert in a Markdown table cell or line: one line, no HTML,
    no table pipes, no links or emphasis (``notify.escape.escape_markdown``: one escaping
    module for every sink)."""
    return escape_markdown(text)


Key = tuple[str, tuple[tuple[str, str], ...]]


def _key(budget: Mapping[str, Any]) -> Key:
    return str(budget.get("name")), tuple(sorted((budget.get("group") or {}).items()))


def changes(
    now: Sequence[Mapping[str, Any]],
    previous: Mapping[str, Any],
    label: Callable[[Mapping[str, Any]], str],
    show: Callable[[Any, str], str],
) -> list[str]:
    """Markdown lines: severities that changed, budgets new and gone, since ``previous``."""
    before = {_key(b): b for b in previous.get("budgets") or () if isinstance(b, Mapping)}
    current = {_key(b): b for b in now}
    lines = []
    for key, b in current.items():
        was = before.get(key)
        metric = str(b.get("metric") or "cost")
        if was is None:
            lines.append(
                f"- new: {label(b)} — {_ICON.get(b['severity'], '')} {b['severity']}, "
                f"{show(b.get('spend'), metric)}"
            )
        elif was.get("severity") != b.get("severity"):
            worse = _ORDER.get(str(b.get("severity")), 3) > _ORDER.get(str(was.get("severity")), 3)
            lines.append(
                f"- {'⬆️' if worse else '⬇️'} {label(b)}: {was.get('severity')} → "
                f"**{b.get('severity')}** ({show(was.get('spend'), metric)} → "
                f"{show(b.get('spend'), metric)})"
            )
    gone = [b for key, b in before.items() if key not in current]
    lines += [f"- gone: {label(b)}" for b in gone]
    when = md_text(str(previous.get("evaluated_at") or "the last run"))
    head = f"**Since the last run** ({when}, status {md_text(str(previous.get('status')))}):"
    return [head, *(lines or ["- no budget changed severity"])]
