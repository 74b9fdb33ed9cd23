"""Where the rules get their notifier types: type name -> pydantic model of its settings.

The rules know no notifier themselves: the notify layer's plugins register the types. A caller
may pass its own mapping; by default the installed plugins are asked (once, lazily).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

__all__ = ["NotifierTypes", "installed_notifier_types"]

#: type name -> settings model (each with a ``type`` field ``Literal[<name>]``).
NotifierTypes = Mapping[str, type[BaseModel]]


def installed_notifier_types() -> NotifierTypes:
    """The settings models of the notifier types of the installed plugins."""
    from budgetguard.notify.manager import default_plugins

    return default_plugins().settings_models()
