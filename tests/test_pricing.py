"""Usage x prices: genai-prices, rules overrides, per-unit tables, and honest gaps."""

from __future__ import annotations

from decimal import Decimal

import pytest

from budgetguard.evaluate.pricing import Pricer
from budgetguard.rules import load_rules_text

M = 1_000_000


def pricer_with_overrides() -> Pricer:
    rules = load_rules_text("""
version: 1
pricing:
  models:
    ft:gpt-4o-mini:acme: {input: 0.30, cached_input: 0.15, output: 1.20}
    gpt-4o-audio-preview: {input: 2.50, output: 10, audio_input: 40, audio_output: 80}
    gpt-4o: {input: 5, output: 20}
""")
    return Pricer(rules.pricing.models)


def test_completions_split_input_cached_output_exactly() -> None:
    estimate = Pricer().estimate(
        "completions",
        {
            "model": "gpt-4o-2024-08-06",
            "input_tokens": 3 * M,
            "input_cached_tokens": M,
            "output_tokens": M,
        },
    )
    assert estimate.amount == Decimal("2.5") * 2 + Decimal("1.25") + Decimal(10)
    assert isinstance(estimate.amount, Decimal)
    assert estimate.note is None


def test_tiers_use_the_models_own_tier_prices() -> None:
    """genai-prices' per-model tier prices (gpt-4o-mini priority: $0.25 in, $1 out, not 2x);
    a multiplier, said in the note, only where a model has no tier price (an override)."""
    row = {"model": "gpt-4o-mini-2024-07-18", "input_tokens": M, "output_tokens": M}
    standard = Pricer().estimate("completions", row).amount
    assert standard == Decimal("0.75")
    assert Pricer().estimate("completions", {**row, "batch": True}).amount == standard / 2
    priority = Pricer().estimate("completions", {**row, "service_tier": "priority"})
    assert priority.amount == Decimal("1.25") and priority.note is None
    gpt4o = {**row, "model": "gpt-4o-2024-08-06", "service_tier": "priority"}
    assert Pricer().estimate("completions", gpt4o).amount == Decimal("4.25") + 17
    custom = {**row, "model": "ft:gpt-4o-mini:acme", "service_tier": "priority"}
    overridden = pricer_with_overrides()
    rates = overridden.rates("completions", "ft:gpt-4o-mini:acme", False, "priority")
    assert overridden.estimate("completions", custom).amount == Decimal("1.50") * 2
    assert rates.info == (
        "priority usage of ft:gpt-4o-mini:acme priced at 2x the standard price "
        "(no priority price known)"
    )


def test_overrides_win_by_exact_or_undated_name() -> None:
    pricer = pricer_with_overrides()
    ft = pricer.estimate(
        "completions",
        {
            "model": "ft:gpt-4o-mini:acme",
            "input_tokens": M,
            "input_cached_tokens": M // 2,
            "output_tokens": M,
        },
    )
    assert ft.amount == Decimal("0.15") + Decimal("0.075") + Decimal("1.2")
    dated = pricer.estimate(
        "completions", {"model": "gpt-4o-2024-08-06", "input_tokens": M, "output_tokens": 0}
    )
    assert dated.amount == Decimal(5)  # gpt-4o override beats the built-in price


def test_audio_tokens_use_audio_prices_when_known() -> None:
    row = {
        "model": "gpt-4o-audio-preview-2024-12-17",
        "input_tokens": 2 * M,
        "input_audio_tokens": M,
        "output_tokens": 2 * M,
        "output_audio_tokens": M,
    }
    with_prices = pricer_with_overrides().estimate("completions", row)
    assert with_prices.amount == Decimal("2.5") + 40 + 10 + 80
    assert with_prices.note is None
    without = Pricer().estimate("completions", row)
    assert without.amount == Decimal("2.5") * 2 + 10 * 2
    assert without.note is not None and "audio" in without.note


def test_an_unknown_model_is_no_estimate_not_zero() -> None:
    estimate = Pricer().estimate(
        "completions", {"model": "ft:gpt-4o-mini:acme", "input_tokens": 5, "output_tokens": 1}
    )
    assert estimate.amount is None
    assert estimate.note is not None and "ft:gpt-4o-mini:acme" in estimate.note
    ungrouped = Pricer().estimate("embeddings", {"input_tokens": 5})
    assert ungrouped.amount is None


@pytest.mark.parametrize(
    ("endpoint", "row", "expected"),
    [
        ("embeddings", {"model": "text-embedding-3-small", "input_tokens": M}, Decimal("0.02")),
        ("moderations", {"model": "omni-moderation-latest", "input_tokens": M}, Decimal(0)),
        ("images", {"model": "dall-e-3", "size": "1024x1792", "images": 10}, Decimal("0.8")),
        ("audio_speeches", {"model": "tts-1-hd", "characters": M}, Decimal(30)),
        ("audio_transcriptions", {"model": "whisper-1", "seconds": 600}, Decimal("0.06")),
        ("code_interpreter_sessions", {"num_sessions": 10}, Decimal("0.3")),
        ("file_search_calls", {"num_requests": 1000}, Decimal("2.5")),
        ("web_search_calls", {"model": "gpt-4o-mini", "num_requests": 1000}, Decimal(10)),
        ("vector_stores", {"usage_bytes": 24 * 10**9, "bucket_width": 3600}, Decimal("0.1")),
    ],
)
def test_every_endpoint_has_a_price(
    endpoint: str, row: dict[str, object], expected: Decimal
) -> None:
    assert Pricer().estimate(endpoint, row).amount == expected


def test_unknown_image_size_says_so() -> None:
    estimate = Pricer().estimate(
        "images", {"model": "gpt-image-1", "size": "1024x1024", "images": 3}
    )
    assert estimate.amount is None and "gpt-image-1" in (estimate.note or "")


def test_every_token_kind_has_its_own_price() -> None:
    """2026-07 fields: image input tokens at the image price (within input_tokens), cache
    writes at the input price where no cache-write price is known, and a kind with no price
    (gpt-image-1's output image tokens) priced as text with a note: a lower bound."""
    row = {
        "model": "gpt-image-1",
        "input_tokens": 3 * M,
        "input_image_tokens": M,
        "input_cache_write_tokens": M,
        "output_tokens": M,
        "output_image_tokens": M,
    }
    estimate = Pricer().estimate("completions", row)
    assert estimate.amount == 3 * 5 + (10 - 5) + 40
    assert estimate.note == (
        "image tokens of gpt-image-1 priced as text: add their prices under pricing.models"
    )
    rates = Pricer().rates("completions", "gpt-image-1")
    assert rates.per_unit is not None and "input_cached_image_tokens" in rates.per_unit
    assert rates.note_for({"input_tokens": 5}) is None
