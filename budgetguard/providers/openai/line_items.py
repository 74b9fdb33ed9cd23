"""The costs endpoint's ``line_item`` free text, parsed leniently into model and kind.

It is the only per-model breakdown the costs endpoint has, but it is prose, not a grammar:
``gpt-4o-2024-08-06, input``, ``evals | gpt-4o-mini-2024-07-18, cached input``,
``assistants api | file search``, ``priority | gpt-5, output, long context``, ``Image models``.
Whatever is not understood stays in ``raw``; nothing here ever fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["LineItem", "parse_line_item"]

#: Prefixes before ``|`` that say which service tier processed the request.
_TIERS = frozenset({"batch", "priority", "flex", "scale", "default"})
#: Kinds of token line items, longest first so "cached input" wins over "input".
_KINDS = (
    "cached audio input",
    "cached image input",
    "cached input",
    "cache write input",
    "audio input",
    "audio output",
    "image input",
    "image output",
    "text input",
    "text output",
    "input",
    "output",
)
_MODEL_LIKE = re.compile(
    r"^(ft[-:])?(gpt|o\d|chatgpt|text-|tts|whisper|dall-e|davinci|babbage|omni|computer-use|"
    r"codex|sora|[a-z0-9]+-[a-z0-9])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class LineItem:
    raw: str
    model: str | None
    kind: str | None
    product: str | None  # "evals", "assistants api", ... (not a tier)
    tier: str | None  # "batch", "priority", "flex", ...
    detail: str | None  # what follows the kind, e.g. "long context"


def _usage_style(model: str) -> str:
    """Costs write fine-tuned models ``ft-gpt-4o-...``; usage writes ``ft:gpt-4o-...``."""
    return "ft:" + model[3:] if model.lower().startswith("ft-") else model


def parse_line_item(raw: str | None) -> LineItem:
    text = (raw or "").strip()
    if not text:
        return LineItem(raw or "", None, None, None, None, None)
    *prefixes, body = [part.strip() for part in text.split("|")]
    tier = next((p.lower() for p in prefixes if p.lower() in _TIERS), None)
    products = [p for p in prefixes if p.lower() not in _TIERS]
    product = " | ".join(p.lower() for p in products) or None
    parts = [p.strip() for p in body.split(",") if p.strip()]
    model = kind = detail = None
    if len(parts) >= 2 and _MODEL_LIKE.match(parts[0]):
        model = _usage_style(parts[0])
        kind = parts[1].lower()
        detail = ", ".join(parts[2:]) or None
    elif len(parts) == 1 and _MODEL_LIKE.match(parts[0]) and " " not in parts[0]:
        model = _usage_style(parts[0])
    else:
        kind = body.lower()
    if kind is not None:
        for known in _KINDS:
            if kind == known or kind.startswith(known + " "):
                if kind != known:
                    detail = ", ".join(x for x in (kind[len(known) + 1 :], detail) if x)
                kind = known
                break
    return LineItem(text, model, kind, product, tier, detail)
