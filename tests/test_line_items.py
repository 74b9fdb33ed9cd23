"""The costs ``line_item`` free text, parsed leniently: every example of the reference notes
and more seen in the wild."""

from __future__ import annotations

import pytest

from budgetguard.providers.openai.line_items import parse_line_item

CASES = [
    # raw, model, kind, product, tier, detail
    ("gpt-4o-2024-08-06, input", "gpt-4o-2024-08-06", "input", None, None, None),
    (
        "gpt-4o-mini-2024-07-18, cached input",
        "gpt-4o-mini-2024-07-18",
        "cached input",
        None,
        None,
        None,
    ),
    ("ft-gpt-4o-2024-08-06, output", "ft:gpt-4o-2024-08-06", "output", None, None, None),
    (
        "evals | gpt-4o-mini-2024-07-18, input",
        "gpt-4o-mini-2024-07-18",
        "input",
        "evals",
        None,
        None,
    ),
    ("assistants api | file search", None, "file search", "assistants api", None, None),
    ("web search tool calls", None, "web search tool calls", None, None, None),
    ("Image models", None, "image models", None, None, None),
    ("priority | gpt-5, output, long context", "gpt-5", "output", None, "priority", "long context"),
    (
        "batch | gpt-4o-mini-2024-07-18, input",
        "gpt-4o-mini-2024-07-18",
        "input",
        None,
        "batch",
        None,
    ),
    ("flex | o3-2025-04-16, cached input", "o3-2025-04-16", "cached input", None, "flex", None),
    (
        "gpt-4o-audio-preview-2024-12-17, audio input",
        "gpt-4o-audio-preview-2024-12-17",
        "audio input",
        None,
        None,
        None,
    ),
    ("o1-mini, output", "o1-mini", "output", None, None, None),
    ("text-embedding-3-small, input", "text-embedding-3-small", "input", None, None, None),
    ("tts-1, characters", "tts-1", "characters", None, None, None),
    ("whisper-1, audio", "whisper-1", "audio", None, None, None),
    ("assistants api | code interpreter", None, "code interpreter", "assistants api", None, None),
    ("vector store storage", None, "vector store storage", None, None, None),
    ("ft-gpt-4o-mini:acme, cached input", "ft:gpt-4o-mini:acme", "cached input", None, None, None),
    (
        "gpt-4.1-2025-04-14, input, long context",
        "gpt-4.1-2025-04-14",
        "input",
        None,
        None,
        "long context",
    ),
    ("evals | priority | gpt-5, input", "gpt-5", "input", "evals", "priority", None),
    ("gpt-image-1, image output", "gpt-image-1", "image output", None, None, None),
    ("input_tokens", None, "input_tokens", None, None, None),  # the spec's own example
    ("Fine-tuning training", None, "fine-tuning training", None, None, None),
]


@pytest.mark.parametrize(
    ("raw", "model", "kind", "product", "tier", "detail"), CASES, ids=[c[0] for c in CASES]
)
def test_line_items(
    raw: str,
    model: str | None,
    kind: str | None,
    product: str | None,
    tier: str | None,
    detail: str | None,
) -> None:
    item = parse_line_item(raw)
    assert item.raw == raw
    assert (item.model, item.kind, item.product, item.tier, item.detail) == (
        model,
        kind,
        product,
        tier,
        detail,
    )


@pytest.mark.parametrize("raw", [None, "", "   ", "|", ", ,", "a | | b", "∑ weird ∑"])
def test_anything_parses(raw: str | None) -> None:
    item = parse_line_item(raw)
    assert item.raw == (raw or "").strip() or item.raw == (raw or "")
