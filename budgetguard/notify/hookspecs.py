"""The hooks a budgetguard plugin implements: the plugin API, one documented hook per
extension point (in the manner of datasette's hookspecs).

A plugin is a module registered under the entry-point group ``budgetguard``. It imports
only ``budgetguard.notify`` and implements any of these hooks with ``@hookimpl``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pluggy

from budgetguard.notify.messages import Alert, Message
from budgetguard.notify.settings import NotifierSettings

__all__ = ["Notifier", "NotifierType", "hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("budgetguard")
hookimpl = pluggy.HookimplMarker("budgetguard")


class Notifier(Protocol):
    """Delivers messages: an ``Alert`` or a ``Digest`` (check with ``isinstance``).

    Raise ``DeliveryError(retryable=...)`` when a delivery fails; any other exception counts
    as temporary and is retried. Never put a secret in an exception, a log line or a repr.
    ``send`` is called synchronously, one message at a time, and may block (use timeouts)."""

    def send(self, message: Message) -> None: ...


@dataclass(frozen=True)
class NotifierType:
    """A kind of notifier: ``type: <name>`` in the rules picks it.

    ``settings`` is the pydantic model of its settings (a ``NotifierSettings``), checked when
    the rules load; ``factory`` builds a ``Notifier`` from validated settings.
    """

    name: str
    settings: type[NotifierSettings]
    factory: Callable[[Any], Notifier]  # called with an instance of ``settings``
    description: str = ""


@hookspec
def budgetguard_notifier_types() -> list[NotifierType]:  # type: ignore[empty-body]
    """Return the notifier types this plugin provides.

    Called once when the plugin manager is built. Names must be unique across plugins; a
    duplicate name is reported by ``budgetguard plugins`` and the first one wins::

        @hookimpl
        def budgetguard_notifier_types():
            return [NotifierType("teams", TeamsSettings, TeamsNotifier, "Microsoft Teams")]
    """


@hookspec(firstresult=True)
def budgetguard_format_alert(alert: Alert, notifier_type: str) -> str | None:
    """Return a one-line text to use instead of ``alert.summary`` for ``notifier_type``, or
    ``None`` to leave it. The first plugin that answers wins::

        @hookimpl
        def budgetguard_format_alert(alert, notifier_type):
            if notifier_type == "slack" and alert.severity == "critical":
                return f"<!here> {alert.summary}"
            return None
    """
