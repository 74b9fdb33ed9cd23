"""The notify layer and the public plugin API.

A notifier plugin imports only this package: ``hookimpl`` and ``NotifierType`` to register,
``NotifierSettings`` for its settings model, ``Alert``/``Digest`` to read,
``DeliveryError``/``check_status``/``post``/``secret_problem`` to report failures, and
``plain_text``/``escape_*`` to make names from the data inert in its format. The plugin
manager and the routing of the core live in ``budgetguard.notify.manager``, which plugins
do not need. Each name is imported on first use, so the report's message texts
(``notify.alert_text``) do not bring pluggy and httpx onto a cold check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from budgetguard.lazy import lazy_exports

if TYPE_CHECKING:
    from budgetguard.notify.charts import digest_chart_text, digest_charts
    from budgetguard.notify.errors import DeliveryError, parse_retry_after
    from budgetguard.notify.escape import (
        escape_html,
        escape_markdown,
        escape_slack,
        escape_teams,
        plain_text,
    )
    from budgetguard.notify.hookspecs import Notifier, NotifierType, hookimpl
    from budgetguard.notify.http_status import check_status, post, secret_problem
    from budgetguard.notify.messages import (
        USAGE_DASHBOARD,
        Alert,
        Digest,
        DigestBudget,
        DigestBurnup,
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
    "DigestBurnup",
    "DigestLine",
    "Message",
    "Notifier",
    "NotifierSettings",
    "NotifierType",
    "check_status",
    "digest_chart_text",
    "digest_charts",
    "escape_html",
    "escape_markdown",
    "escape_slack",
    "escape_teams",
    "hookimpl",
    "http_url",
    "money",
    "parse_retry_after",
    "plain_text",
    "post",
    "secret_problem",
    "signed_percent",
]

_HOME = {
    "DeliveryError": "errors",
    "parse_retry_after": "errors",
    "escape_html": "escape",
    "escape_markdown": "escape",
    "escape_slack": "escape",
    "escape_teams": "escape",
    "plain_text": "escape",
    "Notifier": "hookspecs",
    "NotifierType": "hookspecs",
    "hookimpl": "hookspecs",
    "check_status": "http_status",
    "post": "http_status",
    "secret_problem": "http_status",
    "USAGE_DASHBOARD": "messages",
    "Alert": "messages",
    "Digest": "messages",
    "DigestBudget": "messages",
    "DigestBurnup": "messages",
    "digest_charts": "charts",
    "digest_chart_text": "charts",
    "DigestLine": "messages",
    "Message": "messages",
    "money": "messages",
    "signed_percent": "messages",
    "NotifierSettings": "settings",
    "http_url": "settings",
}

__getattr__ = lazy_exports(__name__, _HOME)
