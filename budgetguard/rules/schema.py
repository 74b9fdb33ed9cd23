"""The JSON Schema of the rules file, for editors (``# yaml-language-server: $schema=...``).

Built from the same models the loader uses, with the notifier union made from the notifier
types the caller knows (each discriminated by its ``type``).
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, create_model

from budgetguard.rules.model import RawBudget, RawRules, ThresholdInput
from budgetguard.rules.notifiers import NotifierTypes, installed_notifier_types

__all__ = ["SCHEMA_ID", "rules_json_schema"]

SCHEMA_ID = "https://budgetguard.dev/schema/rules-v1.json"


def rules_json_schema(
    notifier_types: NotifierTypes | None = None,
) -> dict[str, Any]:
    types = tuple((notifier_types or installed_notifier_types()).values())
    notifier: Any = (
        Annotated[Union[types], Field(discriminator="type")]  # noqa: UP007
        if len(types) > 1
        else types[0]
    )
    thresholds = (tuple[ThresholdInput, ...] | None, None)
    budget = create_model("Budget", __base__=RawBudget, thresholds=thresholds)  # type: ignore[arg-type]
    rules = create_model(
        "BudgetguardRules",
        __base__=RawRules,
        notifiers=(dict[str, notifier], Field(default_factory=dict)),
        budgets=(tuple[budget, ...], ()),
    )
    schema = rules.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "budgetguard rules"
    schema["description"] = (
        "Budgets, notifiers and the digest of budgetguard. Strings may hold ${VAR} or "
        "${VAR:-default} placeholders, filled from the environment."
    )
    return schema
