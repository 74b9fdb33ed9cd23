"""The plugin API: entry points, built-ins as plugins, broken plugins, the hooks, the README's
example plugin installed and run for real."""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest

from budgetguard.alerts import deliver
from budgetguard.notify import (
    Alert,
    DeliveryError,
    Message,
    NotifierSettings,
    NotifierType,
    hookimpl,
)
from budgetguard.notify import hookspecs as specs
from budgetguard.notify.manager import AUTOLOAD_ENV, BUILTIN_PLUGINS, load_plugins
from budgetguard.rules import RulesError, load_rules_text
from budgetguard.store import Store
from budgetguard.store.alerts import AlertStore

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def install(site: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> None:
    """Install a distribution the way pip leaves it: modules plus a .dist-info with
    METADATA and entry_points.txt (importlib.metadata reads exactly these)."""
    site.mkdir(parents=True, exist_ok=True)
    for name, code in modules.items():
        (site / f"{name}.py").write_text(code)
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[budgetguard]\n{lines}")


def readme_block(kind: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- plugin-example:{kind} -->\n```{kind}\n(.*?)```", text, re.S)
    assert match, f"README lost its {kind} plugin example"
    return match.group(1)


# -- built-ins are plugins -------------------------------------------------------------------


def test_builtins_register_through_the_entry_point_group() -> None:
    plugins = load_plugins(autoload=True, env={})
    assert set(plugins.types) >= {"console", "slack", "email", "webhook"}
    for name, module in BUILTIN_PLUGINS.items():
        assert plugins.types[name].plugin == name
        source = plugins.types[name].source
        assert source.startswith("budgetguard-openai "), source
        assert module in plugins.types[name].source
    assert not plugins.problems


def test_autoload_switch_loads_only_the_builtins(tmp_path: Path, monkeypatch: Any) -> None:
    install(
        tmp_path, "acme-off", {"acme_off": PLUGIN_TEMPLATE.format(name="off")}, {"off": "acme_off"}
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "off" in load_plugins(env={}).types
    plugins = load_plugins(env={AUTOLOAD_ENV: "1"})
    assert set(plugins.types) == set(BUILTIN_PLUGINS)
    assert all("built-in" in t.source for t in plugins.types.values())


def test_each_manager_is_fresh() -> None:
    a, b = load_plugins(), load_plugins()
    assert a.manager is not b.manager


# -- third-party plugins ----------------------------------------------------------------------

PLUGIN_TEMPLATE = """
from typing import Literal
from budgetguard.notify import NotifierSettings, NotifierType, hookimpl

class Settings(NotifierSettings):
    type: Literal["{name}"] = "{name}"
    room: str

class Notifier:
    sent = []
    def __init__(self, settings):
        self.settings = settings
    def send(self, message):
        Notifier.sent.append((self.settings.room, message.key))

@hookimpl
def budgetguard_notifier_types():
    return [NotifierType("{name}", Settings, Notifier, "test notifier {name}")]
"""


def test_a_third_party_plugin_is_found_and_its_settings_checked(
    tmp_path: Path, monkeypatch: Any
) -> None:
    install(
        tmp_path,
        "acme-teams",
        {"acme_teams": PLUGIN_TEMPLATE.format(name="teams")},
        {"teams": "acme_teams"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins = load_plugins(env={})
    assert plugins.types["teams"].source == "acme-teams 1.0 (acme_teams)"
    types = plugins.settings_models()
    rules = load_rules_text(
        "version: 1\nnotifiers:\n  ops: {type: teams, room: finops}\n", notifier_types=types
    )
    (ops,) = rules.notifiers
    assert ops.type == "teams"
    with pytest.raises(RulesError) as caught:
        load_rules_text(
            "version: 1\nnotifiers:\n  ops: {type: teams, rooom: finops}\n", notifier_types=types
        )
    text = str(caught.value)
    assert "<rules>:3:" in text and "rooom" in text and "did you mean 'room'" in text

    notifier = plugins.notifiers(rules.notifiers)["ops"]
    notifier.send(Alert(key="k1", summary="s", severity="warning", kind="threshold", budget="b"))
    module = sys.modules["acme_teams"]
    assert module.Notifier.sent == [("finops", "k1")]


BROKEN = {
    "acme_import": "raise ImportError('no module named acme_sdk')\n",
    "acme_unknown_hook": (
        "from budgetguard.notify import hookimpl\n"
        "@hookimpl\ndef budgetguard_send_everything(alert):\n    pass\n"
    ),
    "acme_raises": (
        "from budgetguard.notify import hookimpl\n"
        "@hookimpl\ndef budgetguard_notifier_types():\n    raise RuntimeError('boom')\n"
    ),
    "acme_nonsense": (
        "from budgetguard.notify import hookimpl\n"
        "@hookimpl\ndef budgetguard_notifier_types():\n    return ['slack']\n"
    ),
    "acme_bad_signature": (
        "from budgetguard.notify import hookimpl\n"
        "@hookimpl\ndef budgetguard_notifier_types(extra):\n    return []\n"
    ),
    "acme_dup": PLUGIN_TEMPLATE.format(name="slack"),
}


def test_broken_plugins_are_reported_not_fatal(tmp_path: Path, monkeypatch: Any) -> None:
    modules = dict(BROKEN, acme_good=PLUGIN_TEMPLATE.format(name="good"))
    install(tmp_path, "acme-broken", modules, {m.removeprefix("acme_"): m for m in modules})
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins = load_plugins(env={})
    problems = {p.plugin: p.error for p in plugins.problems}
    assert set(problems) == {m.removeprefix("acme_") for m in BROKEN}, problems
    assert "no module named acme_sdk" in problems["import"]
    assert "budgetguard_send_everything" in problems["unknown_hook"]
    assert "boom" in problems["raises"]
    assert "not a NotifierType" in problems["nonsense"]
    assert "extra" in problems["bad_signature"]
    assert "already provided by plugin 'slack'" in problems["dup"]
    assert "good" in plugins.types
    assert plugins.types["slack"].plugin == "slack"  # the built-in keeps its name

    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    env.pop(AUTOLOAD_ENV, None)
    listed = subprocess.run(
        [sys.executable, "-m", "budgetguard", "plugins"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^good\s+good\s+acme-broken 1\.0 \(acme_good\)", listed.stdout, re.M)
    assert "plugin 'import' (acme-broken 1.0 (acme_import)) left out" in listed.stderr
    assert "Traceback" not in listed.stderr


class Flaky(NotifierSettings):
    type: Literal["flaky"] = "flaky"


class FlakyNotifier:
    """Raises a plain exception (a plugin bug) on its first send, then works."""

    calls: ClassVar[list[str]] = []

    def __init__(self, settings: Flaky) -> None:
        self.settings = settings

    def send(self, message: Message) -> None:
        FlakyNotifier.calls.append(message.key)
        if len(FlakyNotifier.calls) == 1:
            raise RuntimeError("connection reset mid-send")


class FlakyPlugin:
    __name__ = "flaky-plugin"

    @hookimpl
    def budgetguard_notifier_types(self) -> list[NotifierType]:
        return [NotifierType("flaky", Flaky, FlakyNotifier)]


def test_a_plugin_raising_mid_send_is_retried_and_others_still_deliver(
    tmp_path: Path, capsys: Any
) -> None:
    plugins = load_plugins(autoload=False, extra=[FlakyPlugin()])
    rules = load_rules_text(
        "version: 1\nnotifiers:\n  flaky: {type: flaky}\n  out: {type: console}\n",
        notifier_types=plugins.settings_models(),
    )
    alerts = AlertStore(Store.open(f"sqlite:///{tmp_path / 'a.db'}").engine)
    payload = {
        "type": "budgetguard.alert",
        "budget": "b",
        "group": {},
        "kind": "threshold",
        "severity": "critical",
        "threshold": 1.0,
        "spend": 12.5,
        "limit": 10.0,
        "key": "key-1",
        "message": "CRITICAL b: $12.50 of $10.00 (125%)",
    }
    rows = [("key-1", name, json.dumps(payload)) for name in ("flaky", "out")]
    alerts.apply([], rows, int(NOW.timestamp()))
    FlakyNotifier.calls = []
    notifiers = plugins.notifiers(rules.notifiers)
    first = deliver(alerts, notifiers, NOW)
    assert (first.delivered, first.retrying, first.failed) == (1, 1, 0)
    assert "[budgetguard] CRITICAL b: $12.50 of $10.00 (125%)" in capsys.readouterr().out
    second = deliver(alerts, notifiers, NOW + timedelta(minutes=5))
    assert (second.delivered, second.retrying) == (1, 0)
    assert FlakyNotifier.calls == ["key-1", "key-1"]  # same idempotency key on the retry
    assert deliver(alerts, notifiers, NOW + timedelta(hours=2)).delivered == 0


class Formatter:
    __name__ = "formatter"

    @hookimpl
    def budgetguard_format_alert(self, alert: Alert, notifier_type: str) -> str | None:
        if notifier_type == "console" and alert.severity == "critical":
            return f"<!here> {alert.summary}"
        return None


class BrokenFormatter:
    __name__ = "broken-formatter"

    @hookimpl(tryfirst=True)
    def budgetguard_format_alert(self, alert: Alert, notifier_type: str) -> str | None:
        if alert.budget == "explode":
            raise ValueError("formatter bug")
        return None


def test_the_format_hook_changes_the_text_and_a_failing_one_is_ignored(capsys: Any) -> None:
    plugins = load_plugins(autoload=False, extra=[Formatter(), BrokenFormatter()])
    rules = load_rules_text(
        "version: 1\nnotifiers:\n  out: {type: console}\n",
        notifier_types=plugins.settings_models(),
    )
    out = plugins.notifiers(rules.notifiers)["out"]
    out.send(
        Alert(key="k", summary="CRITICAL b", severity="critical", kind="threshold", budget="b")
    )
    out.send(Alert(key="k", summary="WARNING b", severity="warning", kind="threshold", budget="b"))
    out.send(
        Alert(key="k", summary="boom", severity="critical", kind="threshold", budget="explode")
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "[budgetguard] <!here> CRITICAL b",
        "[budgetguard] WARNING b",
        "[budgetguard] boom",
    ]


def test_an_uninstalled_type_fails_delivery_permanently() -> None:
    plugins = load_plugins(autoload=False)

    class Configured:
        name, type, settings = "gone", "opsgenie", None

    with pytest.raises(DeliveryError) as caught:
        plugins.notifiers([Configured()])["gone"].send(
            Alert(key="k", summary="s", severity="ok", kind="test", budget="b")
        )
    assert not caught.value.retryable and "opsgenie" in str(caught.value)


# -- the README's example, installed and run for real ----------------------------------------


def test_the_readme_example_plugin_installs_and_delivers(tmp_path: Path) -> None:
    site = tmp_path / "site"
    entry_points = tomllib.loads(readme_block("toml"))["project"]["entry-points"]["budgetguard"]
    install(site, "acme-jsonl", {"acme_jsonl": readme_block("python")}, entry_points)
    log = tmp_path / "budgets.jsonl"
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"version: 1\nnotifiers:\n  audit-file: {{type: jsonl, path: '{log}'}}\n")
    env = dict(
        os.environ, PYTHONPATH=str(site), BUDGETGUARD_DATABASE_URL=f"sqlite:///{tmp_path}/s.db"
    )
    env.pop(AUTOLOAD_ENV, None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "budgetguard", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )

    listed = run("plugins")
    assert re.search(r"^jsonl\s+jsonl\s+acme-jsonl 1\.0 \(acme_jsonl\)", listed.stdout, re.M)
    sent = run("notify-test", "audit-file", "-r", str(rules))
    assert sent.returncode == 0, sent.stderr
    (line,) = [json.loads(x) for x in log.read_text().splitlines()]
    assert line["key"].startswith("test-") and "delivery works" in line["summary"]

    rules.write_text("version: 1\nnotifiers:\n  audit-file: {type: jsonl, paht: x}\n")
    bad = run("validate", "-r", str(rules))
    assert bad.returncode == 2 and f"{rules}:3:" in bad.stderr and "paht" in bad.stderr


# -- meta-tests: the hooks are documented and exercised; plugins use only the public API ------


def test_every_hook_is_documented_with_an_example_and_exercised() -> None:
    hooks = [n for n in dir(specs) if n.startswith("budgetguard_")]
    assert hooks == ["budgetguard_format_alert", "budgetguard_notifier_types"]
    readme = (ROOT / "README.md").read_text()
    this_file = Path(__file__).read_text()
    for name in hooks:
        function = getattr(specs, name)
        doc = inspect.getdoc(function) or ""
        assert "@hookimpl" in doc and f"def {name}(" in doc, f"{name}: document with an example"
        assert name in readme, f"{name}: the README's plugin section must mention it"
        assert f"def {name}(" in this_file, f"{name}: no test implements it"


def test_builtin_plugins_import_only_the_public_plugin_api() -> None:
    for package in sorted((ROOT / "plugins").glob("budgetguard_*")):
        for source in package.rglob("*.py"):
            tree = ast.parse(source.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for name in names:
                    if name.split(".")[0] == "budgetguard":
                        assert name == "budgetguard.notify", f"{source}: imports {name}"


def test_the_public_plugin_api_is_pinned() -> None:
    import budgetguard.notify as api

    assert sorted(api.__all__) == sorted(
        [
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
    )
    for name in api.__all__:
        assert getattr(api, name) is not None


def test_rules_without_notifiers_never_ask_the_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading plugins costs a cold ``check`` about 0.1 s: only rules with notifiers pay it."""
    from budgetguard.rules import loader

    asked: list[bool] = []

    def installed() -> Any:
        asked.append(True)
        return {}

    monkeypatch.setattr(loader, "installed_notifier_types", installed)
    load_rules_text("version: 1\nbudgets:\n  - {name: b, limit: 1, window: 1d}\n")
    assert asked == []
    with pytest.raises(RulesError, match="console"):
        load_rules_text("version: 1\nnotifiers:\n  out: {type: console}\nbudgets: []\n")
    assert asked == [True]
