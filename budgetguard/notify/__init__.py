"""Delivery of notifications. For now the console notifier; the plugin API (Slack, email,
webhooks, third parties) comes with the notifier issue behind the same ``Sender`` interface."""

from budgetguard.notify.senders import DeliveryError, Sender, senders_for

__all__ = ["DeliveryError", "Sender", "senders_for"]
