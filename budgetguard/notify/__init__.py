"""The notify layer and the public plugin API.

A notifier plugin imports only this package: ``hookimpl`` and ``NotifierType`` to register,
``NotifierSettings`` for its settings model, ``Alert``/``Digest`` to read, and
``DeliveryError``/``check_status`` to report failures. The plugin manager and the routing of
the core live in ``budgetguard.notify.manager``, which plugins do not need.
"""

from budgetguard.notify.errors import DeliveryError, parse_retry_after
from budgetguard.notify.hookspecs import Notifier, NotifierType, hookimpl
from budgetguard.notify.http_status import check_status, post
from budgetguard.notify.messages import (
    USAGE_DASHBOARD,
    Alert,
    Digest,
    DigestBudget,
    DigestLine,
    Message,
    money,
    signed_percent,
)
from budgetguard.notify.settings import NotifierSettings, http_url

__all__ = [
    "USAGE_DASHBOARD",
    "Alert",
    "DeliveryError",
    "Digest",
    "DigestBudget",
    "DigestLine",
    "Message",
    "Notifier",
    "NotifierSettings",
    "NotifierType",
    "check_status",
    "hookimpl",
    "http_url",
    "money",
    "parse_retry_after",
    "post",
    "signed_percent",
]
