"""Usage x prices: an estimated USD figure for a usage row, or a note saying why there is none.

Token prices come from the rules' ``pricing.models`` overrides first (exact name, then the
name without its date suffix), then from genai-prices. Per-unit prices of the non-token
endpoints (images, audio, sessions, storage, search calls) are OpenAI's list prices below.
A model nobody knows gets no estimate and a note: never a silent $0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

__all__ = ["Estimate", "Pricer", "TokenPrices"]

_MILLION = Decimal(1_000_000)
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")
#: Multipliers of the standard price by service tier (batch is half, as the API bills it).
TIER_MULTIPLIER = {"batch": Decimal("0.5"), "flex": Decimal("0.5"), "priority": Decimal(2)}
#: USD per image by (model, size).
IMAGE_PRICES: dict[tuple[str, str], Decimal] = {
    ("dall-e-3", "1024x1024"): Decimal("0.040"),
    ("dall-e-3", "1024x1792"): Decimal("0.080"),
    ("dall-e-3", "1792x1024"): Decimal("0.080"),
    ("dall-e-2", "256x256"): Decimal("0.016"),
    ("dall-e-2", "512x512"): Decimal("0.018"),
    ("dall-e-2", "1024x1024"): Decimal("0.020"),
}
#: USD per 1M characters of speech.
CHARACTER_PRICES = {"tts-1": Decimal(15), "tts-1-hd": Decimal(30)}
#: USD per second of transcription.
SECOND_PRICES = {
    "whisper-1": Decimal("0.0001"),
    "gpt-4o-transcribe": Decimal("0.0001"),
    "gpt-4o-mini-transcribe": Decimal("0.00005"),
}
SESSION_PRICE = Decimal("0.03")
FILE_SEARCH_CALL_PRICE = Decimal("0.0025")
WEB_SEARCH_CALL_PRICE = Decimal("0.010")
STORAGE_PRICE_GB_DAY = Decimal("0.10")


@dataclass(frozen=True)
class TokenPrices:
    """USD per 1M tokens; ``None`` where the model has no such price."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    audio_input: Decimal | None = None
    audio_output: Decimal | None = None
    source: str = "genai-prices"


@dataclass(frozen=True)
class Estimate:
    """An estimated amount, or ``None`` with the reason in ``note``."""

    amount: Decimal | None
    note: str | None = None


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    base = getattr(value, "base", None)  # genai-prices TieredPrices: the base tier
    return base if isinstance(base, Decimal) else None


class Pricer:
    """Prices usage rows. Build one per rules load; lookups are cached per model."""

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        self._overrides = dict(overrides or {})
        self.token_prices = lru_cache(maxsize=1024)(self._token_prices)

    def _token_prices(self, model: str) -> TokenPrices | None:
        for name in (model, _DATE_SUFFIX.sub("", model)):
            override = self._overrides.get(name)
            if override is not None:
                return TokenPrices(
                    input=override.input,
                    output=override.output,
                    cached_input=override.cached_input,
                    audio_input=override.audio_input,
                    audio_output=override.audio_output,
                    source="rules pricing",
                )
        from genai_prices import Usage, calc_price

        try:
            found = calc_price(Usage(input_tokens=0), model_ref=model, provider_id="openai")
        except LookupError:
            return None
        price = found.model_price
        input_price = _decimal(getattr(price, "input_mtok", None))
        if input_price is None:
            return None
        return TokenPrices(
            input=input_price,
            output=_decimal(getattr(price, "output_mtok", None)) or Decimal(0),
            cached_input=_decimal(getattr(price, "cache_read_mtok", None)),
            audio_input=_decimal(getattr(price, "input_audio_mtok", None)),
            audio_output=_decimal(getattr(price, "output_audio_mtok", None)),
        )

    def estimate(self, endpoint: str, row: Mapping[str, Any]) -> Estimate:
        """USD for one usage row (dimensions and metrics as the store keeps them)."""
        model = row.get("model") or ""
        if endpoint in ("completions", "embeddings"):
            return self._tokens(endpoint, model, row)
        if endpoint == "moderations":
            return Estimate(Decimal(0))  # moderation is free
        if endpoint == "images":
            price = IMAGE_PRICES.get((model, str(row.get("size"))))
            if price is None:
                return Estimate(
                    None,
                    f"no image price for {model or 'an unknown model'} "
                    f"at {row.get('size') or 'an unknown size'}",
                )
            return Estimate(price * int(row.get("images") or 0))
        if endpoint == "audio_speeches":
            return self._per_unit(CHARACTER_PRICES, model, row, "characters", _MILLION)
        if endpoint == "audio_transcriptions":
            return self._per_unit(SECOND_PRICES, model, row, "seconds", Decimal(1))
        if endpoint == "code_interpreter_sessions":
            return Estimate(SESSION_PRICE * int(row.get("num_sessions") or 0))
        if endpoint == "file_search_calls":
            return Estimate(FILE_SEARCH_CALL_PRICE * int(row.get("num_requests") or 0))
        if endpoint == "web_search_calls":
            return Estimate(WEB_SEARCH_CALL_PRICE * int(row.get("num_requests") or 0))
        if endpoint == "vector_stores":
            hours = Decimal(int(row.get("bucket_width") or 3600)) / 3600
            gigabytes = Decimal(int(row.get("usage_bytes") or 0)) / Decimal(1_000_000_000)
            return Estimate(gigabytes * STORAGE_PRICE_GB_DAY * hours / 24)
        return Estimate(None, f"no prices for endpoint {endpoint}")

    @staticmethod
    def _per_unit(
        table: Mapping[str, Decimal], model: str, row: Mapping[str, Any], metric: str, per: Decimal
    ) -> Estimate:
        price = table.get(model) or table.get(_DATE_SUFFIX.sub("", model))
        if price is None:
            return Estimate(None, f"no price for model {model or '(unknown)'}")
        return Estimate(price * int(row.get(metric) or 0) / per)

    def _tokens(self, endpoint: str, model: str, row: Mapping[str, Any]) -> Estimate:
        prices = self.token_prices(model) if model else None
        if prices is None:
            return Estimate(
                None,
                f"no price for model {model or '(not grouped by model)'}; "
                "add it under pricing.models",
            )
        input_tokens = int(row.get("input_tokens") or 0)
        if endpoint == "embeddings":
            return Estimate(input_tokens * prices.input / _MILLION)
        cached = int(row.get("input_cached_tokens") or 0)
        audio_in = int(row.get("input_audio_tokens") or 0)
        output = int(row.get("output_tokens") or 0)
        audio_out = int(row.get("output_audio_tokens") or 0)
        note = None
        if (audio_in or audio_out) and (prices.audio_input is None or prices.audio_output is None):
            note = f"audio tokens of {model} priced as text: add audio prices under pricing.models"
            audio_in = audio_out = 0  # priced with the text below, as the contract's formula
        amount = (
            (input_tokens - cached - audio_in) * prices.input
            + cached * (prices.cached_input if prices.cached_input is not None else prices.input)
            + (output - audio_out) * prices.output
            + audio_in * (prices.audio_input or Decimal(0))
            + audio_out * (prices.audio_output or Decimal(0))
        ) / _MILLION
        tier = "batch" if row.get("batch") else str(row.get("service_tier") or "default")
        return Estimate(amount * TIER_MULTIPLIER.get(tier, Decimal(1)), note)
