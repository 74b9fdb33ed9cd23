"""Rules back to the file's own shape, for ``to_yaml`` and round-trip tests.

Secrets are masked unless ``reveal_secrets`` is asked for explicitly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

from budgetguard.rules.yamlio import dump_yaml

if TYPE_CHECKING:
    from budgetguard.rules.model import Budget, Rules

__all__ = ["rules_to_data", "rules_to_yaml"]


def _plain(value: Any, reveal: bool) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value() if reveal else "**********"
    if isinstance(value, BaseModel):
        return {
            (field.alias or name): _plain(getattr(value, name), reveal)
            for name, field in type(value).model_fields.items()
            if getattr(value, name) is not None
        }
    if isinstance(value, dict):
        return {k: _plain(v, reveal) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v, reveal) for v in value]
    return value


def _budget(budget: Budget) -> dict[str, Any]:
    data: dict[str, Any] = _plain(budget, False)
    data["match"] = {k: list(v) for k, v in budget.match.items()}
    if not data["match"]:
        del data["match"]
    if not budget.each:
        del data["each"]
    if not budget.labels:
        del data["labels"]
    data["thresholds"] = [
        {
            "at": t.at,
            "severity": t.severity,
            **({"notify": list(t.notify)} if t.notify else {}),
            **({"forecast": True} if t.forecast else {}),
            **({"action": t.action} if t.action else {}),
        }
        for t in budget.thresholds
    ]
    if not budget.burn_rate:
        del data["burn_rate"]
    if budget.limit is None:  # an anomaly-only budget has no thresholds or forecast
        del data["thresholds"], data["forecast"]
    return data


def rules_to_data(rules: Rules, *, reveal_secrets: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": rules.version,
        "timezone": rules.timezone,
        "schedule": _plain(rules.schedule, False),
        "notifiers": {n.name: _plain(n.settings, reveal_secrets) for n in rules.notifiers},
        "defaults": _plain(rules.defaults, False),
        "pricing": {"models": {k: _plain(v, False) for k, v in rules.pricing.models.items()}},
        "budgets": [_budget(b) for b in rules.budgets],
    }
    if rules.digest is not None:
        data["digest"] = _plain(rules.digest, False)
    if rules.actions:
        data["actions"] = {name: _plain(a, False) for name, a in rules.actions.items()}
        data["action_limits"] = _plain(rules.action_limits, False)
    if rules.controls is not None:
        data["controls"] = _plain(rules.controls, False)
    return data


def rules_to_yaml(rules: Rules, *, reveal_secrets: bool = False) -> str:
    return dump_yaml(rules_to_data(rules, reveal_secrets=reveal_secrets))
