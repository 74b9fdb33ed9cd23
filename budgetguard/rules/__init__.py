"""The rules file: budgets, notifiers, digest. Knows nothing of HTTP or storage."""

from budgetguard.rules.errors import RuleError, RulesError
from budgetguard.rules.loader import load_rules, load_rules_text
from budgetguard.rules.model import Budget, Notifier, Rules, Threshold, alert_identity

__all__ = [
    "Budget",
    "Notifier",
    "RuleError",
    "Rules",
    "RulesError",
    "Threshold",
    "alert_identity",
    "load_rules",
    "load_rules_text",
]
