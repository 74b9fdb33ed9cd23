"""The plugin manager: finds notifier plugins, collects their types, routes messages to them.

Plugins come from the entry-point group ``budgetguard`` — the built-ins exactly like a third
party's. ``BUDGETGUARD_DISABLE_PLUGIN_AUTOLOAD=1`` skips the entry points and registers only
the built-ins (as pytest's ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``). A plugin that fails to import,
implements an unknown hook, or returns nonsense is reported in ``problems`` and left out; it
never stops the others. Each call of ``load_plugins`` builds a fresh manager.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy
from pydantic import BaseModel

from budgetguard.notify import hookspecs
from budgetguard.notify.errors import DeliveryError
from budgetguard.notify.hookspecs import Notifier, NotifierType
from budgetguard.notify.messages import Alert, Message

__all__ = [
    "AUTOLOAD_ENV",
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginProblem",
    "Plugins",
    "RegisteredType",
    "default_plugins",
    "load_plugins",
]

log = logging.getLogger("budgetguard.plugins")

ENTRY_POINT_GROUP = "budgetguard"
AUTOLOAD_ENV = "BUDGETGUARD_DISABLE_PLUGIN_AUTOLOAD"
#: entry-point name -> module of the plugins shipped in budgetguard's wheel.
BUILTIN_PLUGINS = {
    "console": "budgetguard_console",
    "webhook": "budgetguard_webhook",
    "slack": "budgetguard_slack",
    "email": "budgetguard_email",
    "pagerduty": "budgetguard_pagerduty",
    "teams": "budgetguard_teams",
}
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class RegisteredType:
    """A notifier type and the plugin it comes from (``source``: distribution and module)."""

    type: NotifierType
    plugin: str
    source: str


@dataclass(frozen=True)
class PluginProblem:
    """A plugin left out, and why (shown by ``budgetguard plugins``)."""

    plugin: str
    source: str
    error: str


@dataclass
class Plugins:
    """The loaded plugins: their notifier types, and what went wrong on the way."""

    manager: pluggy.PluginManager
    sources: dict[str, str] = field(default_factory=dict)  # plugin name -> source
    types: dict[str, RegisteredType] = field(default_factory=dict)
    problems: list[PluginProblem] = field(default_factory=list)

    def settings_models(self) -> dict[str, type[BaseModel]]:
        """type name -> settings model, what the rules loader checks notifiers against."""
        return {name: t.type.settings for name, t in self.types.items()}

    def notifiers(self, configured: Iterable[Any]) -> dict[str, Notifier]:
        """A ready notifier per configured one (objects with ``name``, ``type``,
        ``settings``, as the rules give them), with the format hook applied."""
        out: dict[str, Notifier] = {}
        for item in configured:
            registered = self.types.get(item.type)
            if registered is None:
                out[item.name] = _Unavailable(item.type)
                continue
            out[item.name] = _Routed(item.type, registered.type, item.settings, self.manager)
        return out


class _Unavailable:
    """A notifier whose type no loaded plugin provides (uninstalled since the rules loaded)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def send(self, message: Message) -> None:
        raise DeliveryError(f"no plugin provides the notifier type '{self.kind}'", retryable=False)


class _Routed:
    """The core's side of one notifier: builds it on first use, applies the format hook."""

    def __init__(
        self, kind: str, notifier_type: NotifierType, settings: Any, pm: pluggy.PluginManager
    ) -> None:
        self.kind = kind
        self._type = notifier_type
        self._settings = settings
        self._pm = pm
        self._built: Notifier | None = None

    def __repr__(self) -> str:
        return f"<notifier type={self.kind!r}>"

    def send(self, message: Message) -> None:
        if isinstance(message, Alert):
            message = self._formatted(message)
        if self._built is None:
            self._built = self._type.factory(self._settings)
        self._built.send(message)

    def _formatted(self, alert: Alert) -> Alert:
        try:
            text = self._pm.hook.budgetguard_format_alert(alert=alert, notifier_type=self.kind)
        except Exception as exc:  # a formatting plugin's bug must not block delivery
            log.warning(
                "budgetguard_format_alert failed (%s); default text used", type(exc).__name__
            )
            return alert
        return replace(alert, summary=text) if isinstance(text, str) and text else alert


def _autoload(env: Mapping[str, str]) -> bool:
    return env.get(AUTOLOAD_ENV, "").strip().lower() in ("", "0", "false", "no")


def _register(plugins: Plugins, plugin: object, name: str, source: str) -> None:
    try:
        plugins.manager.register(plugin, name=name)
    except Exception as exc:
        plugins.problems.append(PluginProblem(name, source, _why(exc)))
        return
    plugins.sources[name] = source


def _why(exc: BaseException) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _load_entry_points(plugins: Plugins) -> None:
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "?"
        source = f"{dist} ({ep.value})"
        if plugins.manager.has_plugin(ep.name):
            plugins.problems.append(
                PluginProblem(ep.name, source, "another plugin already has this name; skipped")
            )
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            plugins.problems.append(PluginProblem(ep.name, source, _why(exc)))
            continue
        _register(plugins, plugin, ep.name, source)


def _load_builtins(plugins: Plugins) -> None:
    """Register the built-ins the entry points did not (a source checkout, autoload off)."""
    for name, module_name in BUILTIN_PLUGINS.items():
        module: ModuleType = importlib.import_module(module_name)
        if not plugins.manager.is_registered(module) and not plugins.manager.has_plugin(name):
            _register(plugins, module, name, f"budgetguard (built-in, {module_name})")


def _drop_unknown_hooks(plugins: Plugins) -> None:
    while True:
        try:
            plugins.manager.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = plugins.manager.get_name(exc.plugin) or "?"
            plugins.manager.unregister(exc.plugin)
            plugins.problems.append(PluginProblem(name, plugins.sources.pop(name, "?"), _why(exc)))


def _check_type(item: object) -> str | None:
    if not isinstance(item, NotifierType):
        return f"returned {type(item).__name__}, not a NotifierType"
    if not _TYPE_NAME.match(item.name):
        return f"type name '{item.name}' must match [a-z][a-z0-9_-]*"
    if not (isinstance(item.settings, type) and issubclass(item.settings, BaseModel)):
        return f"type '{item.name}': settings must be a pydantic model class"
    if "type" not in item.settings.model_fields:
        return f"type '{item.name}': its settings model needs a field type: Literal['{item.name}']"
    if not callable(item.factory):
        return f"type '{item.name}': factory is not callable"
    return None


def _collect_types(plugins: Plugins) -> None:
    builtin = set(BUILTIN_PLUGINS)
    impls = plugins.manager.hook.budgetguard_notifier_types.get_hookimpls()
    # built-ins first, then third parties by name: the first to claim a type name keeps it
    impls = sorted(impls, key=lambda i: (i.plugin_name not in builtin, i.plugin_name))
    for impl in impls:
        source = plugins.sources.get(impl.plugin_name, "?")
        try:
            result: Any = impl.function()
            items = list(result or ())
        except Exception as exc:
            plugins.problems.append(PluginProblem(impl.plugin_name, source, _why(exc)))
            continue
        for item in items:
            problem = _check_type(item)
            if problem is None and item.name in plugins.types:
                owner = plugins.types[item.name].plugin
                problem = f"type '{item.name}' is already provided by plugin '{owner}'; skipped"
            if problem is not None:
                plugins.problems.append(PluginProblem(impl.plugin_name, source, problem))
                continue
            plugins.types[item.name] = RegisteredType(item, impl.plugin_name, source)


def load_plugins(
    *,
    autoload: bool | None = None,
    extra: Iterable[object] = (),
    env: Mapping[str, str] | None = None,
) -> Plugins:
    """A fresh plugin manager with the entry-point plugins (unless autoload is off), the
    built-ins, and ``extra`` plugin objects (tests register theirs this way)."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    plugins = Plugins(pm)
    if autoload is None:
        autoload = _autoload(os.environ if env is None else env)
    if autoload:
        _load_entry_points(plugins)
    _load_builtins(plugins)
    for index, plugin in enumerate(extra):
        name = getattr(plugin, "__name__", None) or f"extra-{index}"
        _register(plugins, plugin, name, f"registered by the caller ({name})")
    _drop_unknown_hooks(plugins)
    _collect_types(plugins)
    for problem in plugins.problems:
        log.warning("plugin %s (%s) left out: %s", problem.plugin, problem.source, problem.error)
    return plugins


@cache
def default_plugins() -> Plugins:
    """The plugins of this process, loaded once on first use (the CLI and the service)."""
    return load_plugins()
