"""genai-prices' OpenAI token prices, precomputed: a check prices its models without
importing genai-prices.

Importing genai-prices (its whole price snapshot, an HTTP client for its updates, package
metadata) was ~28 % of a cold ``check --offline``'s instructions, to read a few models'
prices. ``openai_prices.json`` holds genai-prices' OpenAI models in its order, each with
its match rule (equals, starts/ends with, contains, regex, and/or: genai-prices' own
clauses, matched here as it matches them, lower-cased, with its compact-date fallback) and
what ``Pricer`` takes from it: the standard prices and each service tier's, made by
``Pricer`` itself (``python -m budgetguard.evaluate.price_table`` writes it). It is used only
while the installed genai-prices is the version it was made from (read from the installed
package's metadata directory name, no import); after an upgrade, or for a model priced by
date, genai-prices is asked as before. So the table can make a check faster, never give it
other prices (``tests/test_price_table.py`` holds the two to the same answers).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, fields
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from budgetguard.evaluate.pricing import TokenPrices

__all__ = ["TIERS", "build", "installed_version", "lookup", "prices_of"]

TABLE = Path(__file__).with_name("openai_prices.json")
TIERS = ("batch", "flex", "priority")


def installed_version() -> str | None:
    """The installed genai-prices' version, from its metadata directory's name."""
    for entry in sys.path:
        try:
            names = Path(entry or ".").iterdir()
            for path in names:
                name = path.name
                if name.startswith("genai_prices-") and name.endswith(".dist-info"):
                    return name[len("genai_prices-") : -len(".dist-info")]
        except OSError:
            continue
    return None


@cache
def _table() -> list[tuple[Any, dict[str, Any] | None]]:
    try:
        data = json.loads(TABLE.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("genai_prices") != installed_version():
        return []
    return [(m["match"], m.get("prices")) for m in data.get("models", [])]


def _matches(clause: Any, text: str) -> bool:
    """genai-prices' ``MatchLogic.is_match`` of a clause as the table writes it."""
    kind, value = clause
    if kind == "equals":
        return bool(text == value.lower())
    if kind == "starts_with":
        return text.startswith(value.lower())
    if kind == "ends_with":
        return text.endswith(value.lower())
    if kind == "contains":
        return value.lower() in text
    if kind == "regex":
        return re.search(value, text) is not None
    if kind == "or":
        return any(_matches(c, text) for c in value)
    return all(_matches(c, text) for c in value)  # "and"


def _compact_dates(model: str) -> str:
    """genai-prices' fallback: ``-20251211`` read as ``-2025-12-11`` (a real date only)."""

    def replace(found: re.Match[str]) -> str:
        year, month, day = (int(found.group(i)) for i in range(2, 5))
        try:
            date(year, month, day)
        except ValueError:
            return found.group(0)
        return f"{found.group(1)}{year:04d}-{month:02d}-{day:02d}"

    return _COMPACT_DATE.sub(replace, model)


_COMPACT_DATE = re.compile(r"(-)(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)")


def lookup(model: str) -> dict[str, Any] | None:
    """What the table says of ``model``: ``{"base": prices or None, "batch": ...,
    "flex": ..., "priority": ...}`` (prices as ``TokenPrices`` fields, Decimals as text;
    all None: genai-prices has no price for it), or None when the table cannot answer."""
    table = _table()
    if not table:
        return None
    ref = model.lower()
    for text in (ref, _compact_dates(ref)):
        for clause, prices in table:
            if _matches(clause, text):
                return prices  # None: priced by date, genai-prices is asked
        if _compact_dates(ref) == ref:
            break
    return {"base": None, **dict.fromkeys(TIERS)}  # no OpenAI model of genai-prices


def prices_of(found: dict[str, Any] | None) -> TokenPrices | None:
    """``TokenPrices`` of a table entry's prices."""
    from budgetguard.evaluate.pricing import TokenPrices

    if found is None:
        return None
    values: dict[str, Any] = {f.name: found[f.name] for f in fields(TokenPrices) if f.name in found}
    for name, value in values.items():
        if name != "source":
            values[name] = Decimal(value)
    return TokenPrices(**values)


def _text(prices: TokenPrices | None) -> dict[str, Any] | None:
    if prices is None:
        return None
    return {
        k: (str(v) if isinstance(v, Decimal) else v)
        for k, v in asdict(prices).items()
        if v is not None
    }


def _clause(clause: Any) -> Any:
    """A genai-prices clause as the table writes it: ``[kind, value]``."""
    for kind in ("equals", "starts_with", "ends_with", "contains", "regex"):
        if getattr(clause, kind, None) is not None:
            return [kind, getattr(clause, kind)]
    if getattr(clause, "or_", None) is not None:
        return ["or", [_clause(c) for c in clause.or_]]
    return ["and", [_clause(c) for c in clause.and_]]


def build() -> dict[str, Any]:
    """The table, made by ``Pricer`` from genai-prices' own model entries (imports it)."""
    from types import SimpleNamespace

    from genai_prices import data

    from budgetguard.evaluate.pricing import Pricer

    openai = next(p for p in data.providers if p.id == "openai")
    if openai.fallback_model_providers:  # pragma: no cover - the table would be wrong
        raise SystemExit("genai-prices' OpenAI provider falls back to others: no table")
    models = []
    for model in openai.models:
        entry: dict[str, Any] = {"id": model.id, "match": _clause(model.match)}
        if isinstance(model.prices, data.ModelPrice):  # else priced by date: ask at the time
            pricer = Pricer(use_table=False)
            found = SimpleNamespace(model=model, model_price=model.prices)
            pricer.__dict__["_genai"] = lambda _name, found=found: found  # its entry
            entry["prices"] = {
                "base": _text(pricer.token_prices(model.id)),
                **{tier: _text(pricer.tier_prices(model.id, tier)) for tier in TIERS},
            }
        models.append(entry)
    return {"genai_prices": installed_version(), "models": models}


if __name__ == "__main__":
    TABLE.write_text(json.dumps(build(), sort_keys=True, separators=(",", ":")) + "\n")
    print(f"wrote {TABLE} ({len(json.loads(TABLE.read_text())['models'])} OpenAI models)")
