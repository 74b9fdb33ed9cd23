"""Usage x prices: an estimated USD figure for a usage row, or a note saying why there is none.

Token prices come from the rules' ``pricing.models`` overrides first (exact name, then the
name without its date suffix), then from genai-prices, with its per-model prices of each
service tier (batch, flex, priority); a tier multiplier only where no tier price is known,
and then the note says so. Per-unit prices of the non-token
endpoints (images, audio, sessions, storage, search calls) are OpenAI's list prices below.
A model nobody knows gets no estimate and a note: never a silent $0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from typing import Any

__all__ = ["TOKEN_KINDS", "Estimate", "Pricer", "Rates", "TokenPrices"]

_MILLION = Decimal(1_000_000)
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")
#: Multipliers of the standard price by service tier, where a model has no tier price.
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
    cache_write: Decimal | None = None
    cached_audio_input: Decimal | None = None
    image_input: Decimal | None = None
    cached_image_input: Decimal | None = None
    image_output: Decimal | None = None
    source: str = "genai-prices"


@dataclass(frozen=True)
class Rates:
    """USD per unit of each metric; ``per_unit`` is None when there is no price (``note``)."""

    per_unit: Mapping[str, Decimal] | None
    note: str | None = None
    #: Token kinds (audio, image tokens) the model has no price for, priced as text: where
    #: the usage has them, the figure is a lower bound and ``as_text_note`` says so.
    as_text: tuple[str, ...] = ()
    model: str = ""
    #: How the prices were made, where that is worth saying (a tier multiplier).
    info: str | None = None

    def as_text_note(self, used: Iterable[str]) -> str | None:
        kinds = sorted({m.split("_")[-2] for m in used if m in self.as_text})  # audio, image
        if not kinds:
            return None
        return (
            f"{' and '.join(kinds)} tokens of {self.model} priced as text: "
            "add their prices under pricing.models"
        )

    def note_for(self, metrics: Mapping[str, Any]) -> str | None:
        return self.note or self.as_text_note(m for m, v in metrics.items() if v)

    def apply(self, metrics: Mapping[str, Any]) -> Decimal:
        assert self.per_unit is not None
        return sum(
            (Decimal(int(metrics.get(m) or 0)) * p for m, p in self.per_unit.items()), Decimal(0)
        )


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


#: genai-prices' ModelPrice field of each optional ``TokenPrices`` field.
_KINDS = {
    "cached_input": "cache_read_mtok",
    "audio_input": "input_audio_mtok",
    "audio_output": "output_audio_mtok",
    "cache_write": "cache_write_mtok",
    "cached_audio_input": "cache_audio_read_mtok",
    "image_input": "input_image_mtok",
    "cached_image_input": "cache_image_read_mtok",
    "image_output": "output_image_mtok",
}


def _scaled(own: Decimal | None, standard: Decimal | None, multiplier: Decimal) -> Any:
    """A tier's own price, else the standard one x the tier's multiplier (None if neither)."""
    if own is not None:
        return own
    return None if standard is None else standard * multiplier


def _genai_prices(price: Any, input_price: Decimal) -> TokenPrices:
    kinds: dict[str, Any] = {n: _decimal(getattr(price, f, None)) for n, f in _KINDS.items()}
    output = _decimal(getattr(price, "output_mtok", None)) or Decimal(0)
    return replace(TokenPrices(input=input_price, output=output), **kinds)


#: Token metrics of completions -> (their price, the price already charged for them by
#: ``input_tokens``/``output_tokens``/``input_cached_tokens``, which include them).
_EXTRA = {
    "input_cache_write_tokens": ("cache_write", "input"),
    "input_audio_tokens": ("audio_input", "input"),
    "input_cached_audio_tokens": ("cached_audio_input", "cached_input"),
    "input_image_tokens": ("image_input", "input"),
    "input_cached_image_tokens": ("cached_image_input", "cached_input"),
    "output_audio_tokens": ("audio_output", "output"),
    "output_image_tokens": ("image_output", "output"),
}


#: The costs endpoint's line-item kind of each token price (``line_items``' grammar).
_KIND_NAMES = {
    "input": "input",
    "cached_input": "cached input",
    "output": "output",
    "cache_write": "cache write input",
    "audio_input": "audio input",
    "cached_audio_input": "cached audio input",
    "image_input": "image input",
    "cached_image_input": "cached image input",
    "audio_output": "audio output",
    "image_output": "image output",
}

#: The line-item kinds of token usage (``Pricer.line_rates``).
TOKEN_KINDS = frozenset(_KIND_NAMES.values())


class Pricer:
    """Prices usage rows. Build one per rules load; lookups are cached per model."""

    def __init__(self, overrides: Mapping[str, Any] | None = None, *, use_table: bool = True):
        self._overrides = dict(overrides or {})
        #: genai-prices' prices precomputed (``price_table``), where they answer
        self._use_table = use_table
        self.token_prices = lru_cache(maxsize=1024)(self._token_prices)

    def _table(self, model: str) -> dict[str, Any] | None:
        if not self._use_table:
            return None
        from budgetguard.evaluate.price_table import lookup

        return lookup(model)

    def _genai(self, model: str) -> Any:
        from genai_prices import Usage, calc_price

        try:
            return calc_price(Usage(input_tokens=0), model_ref=model, provider_id="openai")
        except LookupError:
            return None

    @lru_cache(maxsize=1024)  # noqa: B019 - one Pricer per rules load, kept for its life
    def tier_prices(self, model: str, tier: str) -> TokenPrices | None:
        """genai-prices' own prices of ``model`` on ``tier`` (``batch``, ``flex``,
        ``priority``), a field it lacks taken from the standard price x the multiplier; None
        when it has no such tier (or the rules price the model)."""
        base = self.token_prices(model)
        if base is None or base.source != "genai-prices":
            return None
        entry = self._table(model)
        if entry is not None:
            from budgetguard.evaluate.price_table import prices_of

            return prices_of(entry.get(tier))
        found = self._genai(model)
        when = {"processing": "batch"} if tier == "batch" else {"service_tier": tier}
        for variant in getattr(getattr(found, "model", None), "price_variants", None) or ():
            if dict(getattr(variant, "when", None) or {}) != when:
                continue
            prices = variant.prices
            input_price = _decimal(getattr(prices, "input_mtok", None))
            if input_price is None:
                return None
            m = TIER_MULTIPLIER.get(tier, Decimal(1))
            own = _genai_prices(prices, input_price)
            kinds = {name: _scaled(getattr(own, name), getattr(base, name), m) for name in _KINDS}
            output = own.output or base.output * m
            tiered = TokenPrices(input=input_price, output=output, source=f"genai-prices {tier}")
            return replace(tiered, **kinds)
        return None

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
        entry = self._table(model)
        if entry is not None:
            from budgetguard.evaluate.price_table import prices_of

            return prices_of(entry.get("base"))
        found = self._genai(model)
        if found is None:
            return None
        price = found.model_price
        input_price = _decimal(getattr(price, "input_mtok", None))
        if input_price is None:
            return None
        return _genai_prices(price, input_price)

    def estimate(self, endpoint: str, row: Mapping[str, Any]) -> Estimate:
        """USD for one usage row (dimensions and metrics as the store keeps them)."""
        rates = self.rates(
            endpoint,
            row.get("model"),
            bool(row.get("batch")),
            row.get("service_tier"),
            row.get("size"),
            int(row.get("bucket_width") or 3600),
        )
        if rates.per_unit is None:
            return Estimate(None, rates.note)
        return Estimate(rates.apply(row), rates.note_for(row))

    def rates(
        self,
        endpoint: str,
        model: str | None,
        batch: bool = False,
        service_tier: str | None = None,
        size: str | None = None,
        bucket_width: int = 3600,
    ) -> Rates:
        """USD per unit of each metric for usage with these dimensions (cached).

        Prices are linear in the metrics, so sums of usage can be priced after they are
        added up: exact, and the evaluator never prices row by row."""
        return self._rates(
            endpoint, model or "", batch, service_tier or "default", size or "", bucket_width
        )

    @lru_cache(maxsize=4096)  # noqa: B019 - one Pricer per rules load, kept for its life
    def _rates(
        self, endpoint: str, model: str, batch: bool, tier: str, size: str, bucket_width: int
    ) -> Rates:
        if endpoint in ("completions", "embeddings"):
            return self._token_rates(endpoint, model, batch, tier)
        if endpoint == "moderations":
            return Rates({})  # moderation is free
        if endpoint == "images":
            price = IMAGE_PRICES.get((model, size))
            if price is None:
                return Rates(
                    None,
                    f"no image price for {model or 'an unknown model'} "
                    f"at {size or 'an unknown size'}",
                )
            return Rates({"images": price})
        if endpoint == "audio_speeches":
            return self._unit_rates(CHARACTER_PRICES, model, "characters", _MILLION)
        if endpoint == "audio_transcriptions":
            return self._unit_rates(SECOND_PRICES, model, "seconds", Decimal(1))
        if endpoint == "code_interpreter_sessions":
            return Rates({"num_sessions": SESSION_PRICE})
        if endpoint == "file_search_calls":
            return Rates({"num_requests": FILE_SEARCH_CALL_PRICE})
        if endpoint == "web_search_calls":
            return Rates({"num_requests": WEB_SEARCH_CALL_PRICE})
        if endpoint == "vector_stores":
            hours = Decimal(bucket_width) / 3600
            return Rates(
                {"usage_bytes": STORAGE_PRICE_GB_DAY * hours / 24 / Decimal(1_000_000_000)}
            )
        return Rates(None, f"no prices for endpoint {endpoint}")

    @staticmethod
    def _unit_rates(table: Mapping[str, Decimal], model: str, metric: str, per: Decimal) -> Rates:
        price = table.get(model) or table.get(_DATE_SUFFIX.sub("", model))
        if price is None:
            return Rates(None, f"no price for model {model or '(unknown)'}")
        return Rates({metric: price / per})

    def _token_basis(
        self, model: str, batch: bool, tier: str
    ) -> tuple[TokenPrices, Decimal, str | None]:
        """The token prices of ``model`` on ``tier`` (or batch), the multiplier per token,
        and what a tier multiplier did (None where a tier price was known)."""
        prices = self.token_prices(model)
        assert prices is not None
        key = "batch" if batch else tier
        info = None
        tiered = self.tier_prices(model, key) if key in TIER_MULTIPLIER else None
        if tiered is not None:
            return tiered, 1 / _MILLION, None
        if key in TIER_MULTIPLIER:
            info = (
                f"{key} usage of {model} priced at {TIER_MULTIPLIER[key]}x the standard "
                f"price (no {key} price known)"
            )
        return prices, TIER_MULTIPLIER.get(key, Decimal(1)) / _MILLION, info

    @lru_cache(maxsize=4096)  # noqa: B019 - one Pricer per rules load, kept for its life
    def line_rates(
        self, endpoint: str, model: str | None, batch: bool, tier: str | None
    ) -> Mapping[str, Mapping[str, Decimal]] | None:
        """USD per unit of each usage metric, per token line-item kind (``input``, ``cached
        input``, ``output``, ``audio input``, ...) as the costs endpoint bills them: what
        each kind of a model's token usage costs (they add up to ``rates``). None where the
        usage is not tokens or the model has no price."""
        found = self.token_prices(model) if model else None
        if endpoint not in ("completions", "embeddings") or found is None or model is None:
            return None
        if endpoint == "embeddings":
            return {"input": {"input_tokens": found.input / _MILLION}}
        prices, multiplier, _ = self._token_basis(model, batch, tier or "default")
        cached = prices.cached_input if prices.cached_input is not None else prices.input
        base = {"input": prices.input, "cached_input": cached, "output": prices.output}
        kinds: dict[str, dict[str, Decimal]] = {
            "input": {"input_tokens": prices.input * multiplier},
            "cached input": {"input_cached_tokens": cached * multiplier},
            "output": {"output_tokens": prices.output * multiplier},
        }
        kinds["input"]["input_cached_tokens"] = -prices.input * multiplier
        for metric, (own, charged) in _EXTRA.items():
            price = getattr(prices, own)
            if price is None:
                continue  # priced as its charged kind (``rates`` says so)
            kinds.setdefault(_KIND_NAMES[own], {})[metric] = price * multiplier
            charged_kind = kinds[_KIND_NAMES[charged]]
            charged_kind[metric] = charged_kind.get(metric, Decimal(0)) - base[charged] * multiplier
        return kinds

    def _token_rates(self, endpoint: str, model: str, batch: bool, tier: str) -> Rates:
        prices = self.token_prices(model) if model else None
        if prices is None:
            return Rates(
                None,
                f"no price for model {model or '(not grouped by model)'}; "
                "add it under pricing.models",
            )
        if endpoint == "embeddings":
            return Rates({"input_tokens": prices.input / _MILLION})
        prices, multiplier, info = self._token_basis(model, batch, tier)
        cached = prices.cached_input if prices.cached_input is not None else prices.input
        base = {"input": prices.input, "cached_input": cached, "output": prices.output}
        # input_tokens includes cached, cache-write, audio and image tokens (output_tokens
        # audio and image ones): each kind adds its own price's difference.
        per_unit = {
            "input_tokens": prices.input * multiplier,
            "input_cached_tokens": (cached - prices.input) * multiplier,
            "output_tokens": prices.output * multiplier,
        }
        missing = []
        for metric, (own, charged) in _EXTRA.items():
            price = getattr(prices, own)
            if price is None:
                if metric != "input_cache_write_tokens":  # cache writes cost as input
                    missing.append(metric)
                continue
            per_unit[metric] = (price - base[charged]) * multiplier
        return Rates(per_unit, as_text=tuple(missing), model=model, info=info)
