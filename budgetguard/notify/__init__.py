"""Delivery of notifications: console and signed webhooks today; Slack, email and the plugin
API for third parties come with the notifier issue, behind the same ``Sender`` interface."""

from budgetguard.notify.errors import DeliveryError
from budgetguard.notify.senders import Sender, senders_for

__all__ = ["DeliveryError", "Sender", "senders_for"]
