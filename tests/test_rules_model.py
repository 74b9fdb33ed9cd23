"""Loading valid rules: the example, the contract's sample, defaults, thresholds, identity,
immutability, ${ENV}, the JSON Schema, and a round-trip property."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from typer.testing import CliRunner

from budgetguard.cli import app
from budgetguard.rules import Rules, alert_identity, load_rules, load_rules_text
from budgetguard.rules.dump import rules_to_yaml
from budgetguard.rules.schema import rules_json_schema
from budgetguard.rules.yamlio import dump_yaml

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT.parent / "shared" / "CONTRACT.md"
runner = CliRunner()


def test_the_example_validates_and_shows_every_feature() -> None:
    rules = load_rules(ROOT / "rules.example.yaml", env={})
    kinds = {b.kind for b in rules.budgets}
    assert kinds == {"rolling", "period", "anomaly"}
    assert {b.period for b in rules.budgets} >= {"day", "week", "month", "quarter"}
    assert {n.type for n in rules.notifiers} == {"console", "slack", "email", "webhook"}
    assert any(b.each for b in rules.budgets)
    assert any(b.forecast for b in rules.budgets)
    assert any(b.repeat for b in rules.budgets)
    assert any(not b.enabled for b in rules.budgets)
    assert any(b.metric != "cost" for b in rules.budgets)
    assert {b.cost_source for b in rules.budgets} == {"auto", "estimate", "costs"}
    assert rules.digest is not None and rules.pricing.models


def test_validate_command_on_the_example() -> None:
    result = runner.invoke(app, ["validate", "-r", str(ROOT / "rules.example.yaml")])
    assert result.exit_code == 0, result.stderr
    assert "ok — 10 budgets (1 disabled), 4 notifiers, weekly digest" in result.stdout


@pytest.mark.skipif(not CONTRACT.exists(), reason="shared/CONTRACT.md not beside the checkout")
def test_the_contracts_sample_validates() -> None:
    text = CONTRACT.read_text()
    sample = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    env = {
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/x",
        "SMTP_HOST": "mail",
        "HOOK_SECRET": "s",
    }
    rules = load_rules_text(sample, env=env)
    assert [b.name for b in rules.budgets] == [
        "org-month",
        "chatbot-gpt-4o",
        "per-project-day",
        "search-embedding-tokens",
        "spend-spike",
    ]


def test_defaults_merge_and_thresholds_normalise() -> None:
    rules = load_rules_text("""
version: 1
notifiers: {a: {type: console}, b: {type: console}}
defaults: {thresholds: [100%, 50%], notify: [a], repeat: 2h, max_staleness: 1h,
           cost_source: costs}
budgets:
  - {name: one, limit: 200, window: 1d}
  - {name: two, limit: 200, period: day, notify: [b], thresholds: [150, 300, 100%],
     cost_source: estimate, repeat: 30m}
  - {name: three, limit: 10, window: 1h, match: {user: u1}}
""")
    one, two, three = rules.budgets
    assert [(t.key, t.severity) for t in one.thresholds] == [("0.5", "warning"), ("1", "critical")]
    assert one.notify == ("a",) and one.repeat == "2h" and one.max_staleness == "1h"
    assert one.cost_source == "costs"
    assert [(t.key, t.severity, t.at) for t in two.thresholds] == [
        ("0.75", "warning", Decimal(150)),
        ("1", "critical", "100%"),
        ("1.5", "critical", Decimal(300)),
    ]
    assert two.notify == ("b",) and two.repeat == "30m" and two.cost_source == "estimate"
    assert three.cost_source == "estimate"  # a user budget can only be estimated
    assert three.match.user == ("u1",)


def test_loaded_rules_are_immutable() -> None:
    rules = load_rules(ROOT / "rules.example.yaml", env={})
    with pytest.raises(Exception, match=r"frozen|immutable"):
        rules.budgets[0].limit = Decimal(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        rules.pricing.models["x"] = rules.pricing.models["ft:gpt-4o-mini:acme"]
    with pytest.raises(AttributeError):
        rules.budgets.append(rules.budgets[0])  # type: ignore[attr-defined]


def test_alert_identity_is_stable_and_distinct() -> None:
    key = alert_identity("org-month", {"project": "p1"}, "threshold", "0.8")
    assert key == alert_identity("org-month", {"project": "p1"}, "threshold", "0.8")
    assert len(key) == 32
    others = {
        alert_identity("org-month", {"project": "p2"}, "threshold", "0.8"),
        alert_identity("org-month", {}, "threshold", "0.8"),
        alert_identity("org-month", {"project": "p1"}, "forecast", "0.8"),
        alert_identity("org-month", {"project": "p1"}, "threshold", "1"),
        alert_identity("org-week", {"project": "p1"}, "threshold", "0.8"),
    }
    assert key not in others and len(others) == 5


def test_env_placeholders() -> None:
    rules = load_rules_text(
        """
version: 1
timezone: "${TZ_NAME:-Europe/Paris}"
notifiers:
  w: {type: webhook, url: "https://${HOST}/hook?a=$$1", secret: "${SECRET}"}
""",
        env={"HOST": "hooks.example.com", "SECRET": "s3"},
    )
    assert rules.timezone == "Europe/Paris"
    settings_ = rules.notifier("w").settings
    assert settings_.url == "https://hooks.example.com/hook?a=$1"  # type: ignore[attr-defined]
    assert settings_.secret.get_secret_value() == "s3"  # type: ignore[attr-defined]
    assert "s3" not in repr(rules)


def test_dotenv_feeds_placeholders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DOTENV_ONLY_HOOK", raising=False)
    (tmp_path / ".env").write_text("DOTENV_ONLY_HOOK=https://hooks.example.com/x\n")
    (tmp_path / "rules.yaml").write_text(
        "version: 1\nnotifiers:\n  w: {type: webhook, url: '${DOTENV_ONLY_HOOK}'}\n"
    )
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.stderr


def test_schema_command_prints_a_valid_schema_that_accepts_the_example() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    data = YAML(typ="safe").load((ROOT / "rules.example.yaml").read_text())
    jsonschema.Draft202012Validator(schema).validate(data)
    data["budgets"][0]["windw"] = "1h"
    assert not jsonschema.Draft202012Validator(schema).is_valid(data)


def test_the_committed_schema_is_current() -> None:
    committed = json.loads((ROOT / "rules.schema.json").read_text())
    from budgetguard.notify.manager import load_plugins

    builtin = load_plugins(autoload=False).settings_models()  # the built-in notifiers only
    current = rules_json_schema(builtin)
    # the time zones are the machine's tz database's: another one may know a few more
    zones = next(c for c in committed["properties"]["timezone"]["anyOf"] if "enum" in c)
    assert {"UTC", "Europe/Paris", "America/Los_Angeles", "Asia/Kolkata"} <= set(zones["enum"])
    current["properties"]["timezone"]["anyOf"][0] = zones
    assert committed == current, (
        "run: BUDGETGUARD_DISABLE_PLUGIN_AUTOLOAD=1 budgetguard schema > rules.schema.json"
    )


# -- round trip: any valid model dumped to YAML loads back equal ------------------------------

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=12)
globs = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-*?", min_size=1, max_size=10)
durations = st.builds(lambda n, u: f"{n}{u}", st.integers(1, 400), st.sampled_from("mhd"))
money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2)
percents = st.integers(1, 300).map(lambda p: f"{p}%")
NOTIFIERS = {
    "out": {"type": "console"},
    "hook": {"type": "webhook", "url": "https://h.example.com/x", "secret": "k"},
    "chat": {"type": "slack", "webhook_url": "https://hooks.slack.com/s/1"},
}


@st.composite
def budgets(draw: st.DrawFn, name: str) -> dict[str, object]:
    budget: dict[str, object] = {"name": name}
    shape = draw(st.sampled_from(["rolling", "period", "anomaly"]))
    match = draw(
        st.dictionaries(
            st.sampled_from(["project", "model", "api_key", "user"]),
            st.one_of(globs, st.lists(globs, min_size=1, max_size=3)),
            max_size=3,
        )
    )
    if match:
        budget["match"] = match
    each = draw(st.lists(st.sampled_from(["project", "model", "api_key"]), unique=True, max_size=2))
    if each:
        budget["each"] = each
    if shape == "anomaly":
        window = draw(st.integers(1, 48))
        budget["anomaly"] = {
            "window": f"{window}h",
            "baseline": f"{window * 7}h",
            "factor": draw(st.decimals(Decimal("1.1"), Decimal(20), places=1)),
            "min": draw(money),
        }
        return budget
    budget["limit"] = draw(money)
    if shape == "rolling":
        budget["window"] = draw(durations)
    else:
        budget["period"] = draw(st.sampled_from(["day", "week", "month", "quarter", "year"]))
        budget["forecast"] = draw(st.booleans())
    if draw(st.booleans()):
        budget["thresholds"] = draw(
            st.lists(
                st.one_of(
                    percents,
                    st.fixed_dictionaries(
                        {"at": percents},
                        optional={
                            "severity": st.sampled_from(["warning", "critical"]),
                            "notify": st.lists(
                                st.sampled_from(sorted(NOTIFIERS)),
                                min_size=1,
                                max_size=2,
                                unique=True,
                            ),
                        },
                    ),
                ),
                min_size=1,
                max_size=4,
                unique_by=lambda t: t if isinstance(t, str) else t["at"],
            )
        )
    if draw(st.booleans()):
        budget["repeat"] = draw(durations)
    if draw(st.booleans()):
        budget["notify"] = draw(st.lists(st.sampled_from(sorted(NOTIFIERS)), unique=True))
    budget["enabled"] = draw(st.booleans())
    return budget


@st.composite
def rules_data(draw: st.DrawFn) -> dict[str, object]:
    budget_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    return {
        "version": 1,
        "timezone": draw(st.sampled_from(["UTC", "Europe/Paris", "America/New_York"])),
        "schedule": {"interval": draw(durations)},
        "notifiers": NOTIFIERS,
        "defaults": {"thresholds": ["50%", "100%"], "notify": ["out"]},
        "budgets": [draw(budgets(n)) for n in budget_names],
        "digest": {"schedule": "0 9 * * mon", "period": "week", "notify": ["chat"], "top": 3},
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules_data())
def test_dump_and_load_round_trip(data: dict[str, object]) -> None:
    loaded: Rules = load_rules_text(dump_yaml(data), env={})
    again = load_rules_text(rules_to_yaml(loaded, reveal_secrets=True), env={})
    assert again == loaded


def test_dump_masks_secrets_unless_asked() -> None:
    rules = load_rules_text(dump_yaml({"version": 1, "notifiers": NOTIFIERS}), env={})
    assert "hooks.slack.com/s/1" not in rules_to_yaml(rules)
    assert "hooks.slack.com/s/1" in rules_to_yaml(rules, reveal_secrets=True)
