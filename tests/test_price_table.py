"""The precomputed genai-prices table gives exactly what genai-prices gives.

``openai_prices.json`` lets a check price its models without importing genai-prices: it
holds genai-prices' OpenAI models, their match rules and their prices as ``Pricer`` takes
them. It is used only with the genai-prices version it was made from; with it, every name
(exact, dated, by prefix, compact dates, fine-tunes, unknown) must be priced as genai-prices
itself prices it, standard and per tier.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from budgetguard.evaluate import price_table
from budgetguard.evaluate.pricing import Pricer


def names() -> list[str]:
    """Every name genai-prices' OpenAI models name, and their neighbours."""
    from genai_prices import data

    found: set[str] = set()

    def walk(clause: Any) -> None:
        for kind in ("equals", "starts_with", "ends_with", "contains"):
            value = getattr(clause, kind, None)
            if value is not None:
                found.update({value, value + "-2025-01-01", value.upper(), value + "x"})
        for part in (getattr(clause, "or_", None) or []) + (getattr(clause, "and_", None) or []):
            walk(part)

    for provider in data.providers:
        if provider.id == "openai":
            for model in provider.models:
                walk(model.match)
    extra = {"ft:gpt-4o-mini:acme::abc", "gpt-5.2-20251211", "gpt-4o-20240806", "claude-3", ""}
    return sorted(found | extra | {"dall-e-3", "omni-moderation-latest", "whisper-1"})


def test_the_table_prices_every_name_as_genai_prices_does() -> None:
    data = json.loads(price_table.TABLE.read_text())
    if data["genai_prices"] != price_table.installed_version():
        pytest.skip("another genai-prices: the table stands aside (tested below)")
    table, genai = Pricer(), Pricer(use_table=False)
    answered = 0
    for name in names():
        answered += price_table.lookup(name) is not None
        assert table.token_prices(name) == genai.token_prices(name), name
        for tier in price_table.TIERS:
            assert table.tier_prices(name, tier) == genai.tier_prices(name, tier), (name, tier)
    assert answered > len(names()) * 0.9  # the table answers, genai-prices is rarely asked


def test_the_table_is_ignored_for_another_genai_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(price_table, "installed_version", lambda: "0.0.0-other")
    price_table._table.cache_clear()
    try:
        assert price_table.lookup("gpt-4o-2024-08-06") is None
    finally:
        monkeypatch.undo()
        price_table._table.cache_clear()
    assert price_table.lookup("gpt-4o-2024-08-06") is not None or (
        json.loads(price_table.TABLE.read_text())["genai_prices"] != price_table.installed_version()
    )
