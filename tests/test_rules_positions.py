"""Where every mistake in a rules file is reported, pinned to the byte.

Two files hold mistakes of every kind (the models', the cross-key checks', ${ENV}'s, merge
keys and aliases pointing into their anchors, odd keys), once more with unset notifier
variables as warnings, and every refusal of hostile YAML has its own case. Each expected line
is what the loader printed while it still recorded a position for every key and value as it
built the data; it now finds them only when something is reported, and these lines keep the
two the same. Beside them, what plain YAML loads as.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from budgetguard.rules import RuleError, RulesError, load_rules_text
from budgetguard.rules.yamlio import load_yaml
from tests.conftest import BOMB, MERGE_BOMB

MISTAKES = """\
version: 1
timezone: Europe/Pariss
schedule: {interval: often}
budget: []
notifiers:
  finops: {type: slack, webhook_url: "https://hooks.slack.com/services/T/B/X"}
  stdout: {type: console}
  typo: {type: slak, webhook_url: 'https://x'}
  mail: {type: email, smtp_host: h, to: [a@b.co], pasword: p}
  untyped: {smtp_host: h}
  empty-slack: {type: slack}
  listed: [type, console]
defaults: {notify: [nobody], repeat: 5 minutes}
pricing:
  models:
    m: {input: -1, output: 1}
    n: {input: 1}
digest: {schedule: '0 25 * * mon', notify: [stdout, pager]}
x-base: &base
  limit: -3
  window: 1h
  colour: red
budgets:
  - name: Bad Name
    limit: 5
    windw: 24h
  - name: limits
    limit: lots
    window: 24 hours
  - name: zero
    limit: 0
    window: 0h
    period: montly
  - name: both
    limit: 5
    window: 1h
    period: day
    forecast: true
  - name: ok
    limit: 5
    window: 1h
  - name: ok
    limit: 5
    window: 2h
  - name: neither
    limit: 5
  - window: 1h
  - name: dup
    limit: 5
    window: 1h
  - name: dup
    limit: 6
    window: 1h
    metric: dollars
    each: [project, team, project]
  - name: endpoints
    limit: 5
    window: 1h
    metric: images
    match: {endpoint: [embeddings, embedding], projet: p, model: ""}
  - name: thresholds
    limit: 5
    window: 1h
    thresholds:
      - 80%
      - 80%
      - eighty
      - {at: 90%, severity: fatal}
      - {at: 95%, notify: pager}
      - {at: 0%}
      - 1e20%
      - {at: 50%, notify: [{name: finops, on: [never]}, {nme: stdout}, 7]}
  - name: anomaly
    anomaly: {window: 1h, baseline: 1h, factor: 1}
    window: 1h
  - name: users
    limit: 5
    window: 1h
    match: {user: u, line_item: 'x*'}
    metric: tokens
    cost_source: costs
  - name: costs
    limit: 5.5
    window: 6h
    cost_source: costs
    metric: requests
    enabled: maybe
  - just-a-name
  - [a, list]
  - name: merged
    <<: *base
  - {<<: *base, name: merged-ok, limit: 7, colour: blue}
  - name: labels
    limit: 5
    window: 1h
    labels: {team: 5, tier: [a]}
    runbook_url: not-a-url
    description: 7
    notify: [finop, {name: stdout, on: []}, "${NO_SUCH_VAR}"]
  - name: env
    limit: 5
    window: "${BROKEN"
    description: "\\x24{ESCAPED_MISSING}"
    repeat: ${NO_SUCH_VAR:-1h}
  - name: keys
    limit: 5
    window: 1h
    1: one
    true: yes
    ~: null
    'quoted': on
  - name: huge
    limit: 1e22
    window: 99999999999d
    max_staleness: 7x
    anomaly: {window: 1h, baseline: 99999d, factor: 3, min: -1, extra: 1}
"""

MISTAKES_REPORTED = [
    "2:11: unknown time zone 'Europe/Pariss' — did you mean 'Europe/Paris'?",
    "3:22: interval: not a duration: use Nm, Nh or Nd with N >= 1 (e.g. 15m, 24h, 7d)",
    "4:1: unknown key 'budget' — did you mean 'budgets'?",
    "8:16: unknown notifier type 'slak' — did you mean 'slack'?",
    "9:51: unknown key 'pasword' — did you mean 'password'?",
    (
        "10:12: notifier 'untyped': missing required key 'type' (console, email, pagerduty, slack, "
        "teams, webhook)"
    ),
    "11:16: give either webhook_url, or token and channel",
    (
        "12:11: notifier 'listed': expected a mapping with a 'type' (console, email, pagerduty, "
        "slack, teams, webhook)"
    ),
    "13:38: repeat: not a duration: use Nm, Nh or Nd with N >= 1 (e.g. 15m, 24h, 7d)",
    "16:16: input: must be greater than or equal to 0",
    "17:8: missing required key 'output'",
    (
        "19:1: unknown key 'x-base' (expected one of: action_limits, actions, budgets, "
        "controls, defaults, digest, notifiers, pricing, schedule, timezone, version)"
    ),
    "20:10: limit: must be greater than 0",
    "22:3: unknown key 'colour'",
    "24:11: name: budget names use only lower-case letters, digits, '.', '_' and '-'",
    "26:5: unknown key 'windw' — did you mean 'window'?",
    "28:12: limit: expected a number",
    "29:13: window: not a duration: use Nm, Nh or Nd with N >= 1 (e.g. 15m, 24h, 7d)",
    "31:12: limit: must be greater than 0",
    "32:13: window: not a duration: use Nm, Nh or Nd with N >= 1 (e.g. 15m, 24h, 7d)",
    "33:13: period: expected 'day', 'week', 'month', 'quarter' or 'year'",
    "37:5: give either window (rolling) or period (calendar), not both",
    "42:11: duplicate budget name 'ok' (first used on line 39)",
    (
        "45:5: budget 'neither': needs a window (rolling, e.g. 24h) or a period (day, week, month, "
        "quarter or year)"
    ),
    "47:5: missing required key 'name'",
    (
        "54:13: metric: expected 'cost', 'input_tokens', 'output_tokens', 'cached_tokens', "
        "'tokens', 'requests', 'images', 'characters', 'seconds', 'usage_bytes' or 'sessions'"
    ),
    "55:21: each (item 2): expected 'project', 'model', 'user', 'api_key' or 'line_item'",
    "60:48: unknown key 'projet' — did you mean 'project'?",
    "60:66: model: String should have at least 1 character",
    "66:9: threshold repeats one at 80% of the limit",
    (
        "67:9: a threshold is a percentage of the limit (80%), an absolute amount above 0 (120), "
        "or {at: ..., severity: ..., notify: [...]}"
    ),
    "68:29: severity: expected 'warning' or 'critical'",
    (
        "69:27: no notifier named 'pager' (expected one of: empty-slack, finops, listed, mail, "
        "stdout, typo, untyped)"
    ),
    (
        "70:14: a threshold is a percentage of the limit (80%), an absolute amount above 0 (120), "
        "or {at: ..., severity: ..., notify: [...]}"
    ),
    "71:9: a threshold lies between 0.0001% and 100000% of the limit",
    "72:48: on (item 1): expected 'fire', 'resolve' or 'remind'",
    "72:57: missing required key 'name'",
    "72:58: unknown key 'nme' — did you mean 'name'?",
    "72:72: notify (item 3): expected text, got a number",
    "74:49: factor: must be greater than 1",
    (
        "79:22: line_item: only budgets of metric cost can match line items (they exist only in "
        "the costs data)"
    ),
    "87:14: enabled: expected true or false",
    "88:5: budget 16: expected a mapping (name:, limit:, ...), got a single value",
    "89:5: budget 17: expected a mapping (name:, limit:, ...), got a list",
    "92:44: unknown key 'colour'",
    "96:20: team: expected text, got a number",
    "96:29: tier: expected text, got a list",
    "97:18: runbook_url: not in the expected form",
    "98:18: description: expected text, got a number",
    "99:40: on: give at least 1",
    (
        "99:45: environment variable 'NO_SUCH_VAR' is not set; set it, or give a default with "
        "${NO_SUCH_VAR:-default}"
    ),
    "102:13: malformed placeholder '${BROKEN': use ${VAR} or ${VAR:-default}",
    (
        "103:18: environment variable 'ESCAPED_MISSING' is not set; set it, or give a default with "
        "${ESCAPED_MISSING:-default}"
    ),
    "108:5: unknown key '1'",
    "109:5: unknown key 'true'",
    "110:5: unknown key 'None'",
    "111:5: unknown key 'quoted'",
    "113:12: limit: must be less than or equal to 1E+15",
    "114:13: window: a duration is at most 3660d (ten years)",
    "115:20: max_staleness: not a duration: use Nm, Nh or Nd with N >= 1 (e.g. 15m, 24h, 7d)",
    "116:37: baseline: a duration is at most 3660d (ten years)",
    "116:61: min: must be greater than or equal to 0",
    "116:65: unknown key 'extra' (expected one of: baseline, factor, min, seasonal, window)",
]

CHECKS = """\
version: 1
notifiers:
  finops: {type: slack, webhook_url: "${SLACK_URL}"}
  mail:
    type: email
    smtp_host: ${SMTP_HOST}
    to: [a@b.co]
    password: "${SMTP_PASSWORD:-}"
  stdout: {type: console}
defaults:
  notify: [stdout, nobody]
  thresholds: [50%, 0.5%, 2.5]
digest: {schedule: '0 25 * * mon', notify: [stdout, pager]}
budgets:
  - {name: a, limit: 5, window: 6h, cost_source: costs}
  - {name: a, limit: 5, window: 1d}
  - {name: users, limit: 5, window: 1h, match: {user: u}, cost_source: costs}
  - {name: images, limit: 5, window: 1h, metric: images, match: {endpoint: embeddings}}
  - {name: endpoints, limit: 5, window: 1h, match: {endpoint: [embeddings, embedding]}}
  - {name: forecast, limit: 5, window: 1h, forecast: true}
  - {name: nolimit, window: 1h, thresholds: [80%]}
  - {name: spike, anomaly: {window: 1h, baseline: 1h, factor: 3}}
  - {name: counts, limit: 5.5, window: 1h, metric: requests}
  - {name: count-thresholds, limit: 10, window: 1h, metric: requests, thresholds: [2.5, {at: 3.5}]}
  - {name: each, limit: 5, window: 1h, metric: tokens, each: [line_item, project, project]}
  - name: routed
    limit: 5
    window: 1h
    notify: [finops, {name: pager}]
    thresholds: [{at: 50%, notify: [mail, nobody]}, {at: 50%}]
"""

CHECKS_REPORTED = [
    (
        "3:38: environment variable 'SLACK_URL' is not set; set it, or give a default with "
        "${SLACK_URL:-default}"
    ),
    (
        "6:16: environment variable 'SMTP_HOST' is not set; set it, or give a default with "
        "${SMTP_HOST:-default}"
    ),
    "11:20: no notifier named 'nobody' (expected one of: finops, mail, stdout)",
    "12:27: an absolute threshold of a count metric is a whole number",
    "12:27: threshold repeats one at 50% of the limit",
    (
        "13:20: schedule: not a valid cron expression (Error validating expression '25': the last "
        "value (25) is higher than the maximum value (23)); five fields: minute hour day-of-month "
        "month day-of-week, e.g. '0 9 * * mon'"
    ),
    "13:53: no notifier named 'pager' (expected one of: finops, mail, stdout)",
    (
        "15:33: window: 6h is not a whole number of days, and costs are daily: use cost_source: "
        "auto or estimate (usage x prices, per minute)"
    ),
    "16:12: duplicate budget name 'a' (first used on line 15)",
    (
        "17:37: window: 1h is not a whole number of days, and costs are daily: use cost_source: "
        "auto or estimate (usage x prices, per minute)"
    ),
    (
        "17:72: cost_source: a budget by user can only use the usage estimate (the costs endpoint "
        "has no per-user figures); use cost_source: estimate"
    ),
    "18:50: metric 'images' is not measured by embeddings (it is measured by: images)",
    "19:76: endpoint 'embedding' matches no endpoint — did you mean 'embeddings'?",
    "20:44: forecast: only period budgets have an end to forecast (use period:, not window:)",
    (
        "21:5: budget 'nolimit': missing required key 'limit' (or an 'anomaly' section for a "
        "spike-only budget)"
    ),
    "21:21: window: needs a limit (an anomaly-only budget has neither window nor period)",
    "21:33: thresholds: needs a limit (an anomaly-only budget has neither window nor period)",
    (
        "22:51: baseline: must be longer than the anomaly window (it is the history the window is "
        "compared with)"
    ),
    "23:27: limit: metric requests counts whole units",
    "24:84: an absolute threshold of a count metric is a whole number",
    "24:94: an absolute threshold of a count metric is a whole number",
    "25:62: each: line_item needs metric cost",
    "25:62: each: lists a key twice",
    "29:22: no notifier named 'pager' (expected one of: finops, mail, stdout)",
    "30:43: no notifier named 'nobody' (expected one of: finops, mail, stdout)",
    "30:58: threshold repeats one at 50% of the limit",
]

WARNINGS = [
    (
        "3:38: warning: notifier 'finops': environment variable 'SLACK_URL' is not set; it is "
        "needed when the notifier sends (check --notify, digest --send, notify-test, run)"
    ),
    (
        "6:16: warning: notifier 'mail': environment variable 'SMTP_HOST' is not set; it is needed "
        "when the notifier sends (check --notify, digest --send, notify-test, run)"
    ),
]

HOSTILE: list[tuple[str, str, str]] = [
    ("alias-bomb", "version: 1\n" + BOMB, "2:4: aliases expand to more than 100,000 values"),
    ("merge-bomb", "version: 1\n" + MERGE_BOMB, "2:6: aliases expand to more than 100,000 values"),
    (
        "deep-flow",
        "version: 1\nx: " + "[" * 200 + "]" * 200 + "\n",
        "2:67: nested too deeply (more than 64 levels)",
    ),
    (
        "deep-block",
        "version: 1\nx:\n" + "".join("  " * i + "- \n" for i in range(1, 90)),
        "66:129: nested too deeply (more than 64 levels)",
    ),
    (
        "deep-alias",
        "version: 1\na: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n",
        "2:40: nested too deeply (more than 64 levels)",
    ),
    (
        "nul",
        "version: 1\nbudgets: []\ntimezone: U\x00TC\n",
        "3:12: control character U+0000 is not allowed in YAML",
    ),
    (
        "escape",
        "version: 1\n\x1b[31mbudgets: []\n",
        "2:1: control character U+001B is not allowed in YAML",
    ),
    (
        "c1-control",
        "version: 1\nbudgets: []\n# caf\x85e \x9b\n",  # NEL breaks the line, as libyaml counts
        "4:3: control character U+009B is not allowed in YAML",
    ),
    (
        "python-tag",
        "version: 1\nx: !!python/object:os.system ls\n",
        "2:4: unsupported tag 'tag:yaml.org,2002:python/object:os.system'",
    ),
    ("local-tag", "version: 1\nbudgets: !custom []\n", "2:10: unsupported tag '!custom'"),
    (
        "binary-tag",
        "version: 1\nx: !!binary aGk=\n",
        "2:4: unsupported tag 'tag:yaml.org,2002:binary'",
    ),
    ("bad-bool", "version: 1\nx: !!bool maybe\n", "2:4: expected true or false"),
    ("bad-int", "version: 1\nx: !!int twelve\n", "2:4: not a number"),
    ("bad-float", "version: 1\nx: !!float 1.2.3\n", "2:4: not a number"),
    (
        "long-number",
        "version: 1\nbudgets: [{name: a, limit: " + "9" * 5000 + ", window: 1d}]\n",
        "2:28: number too long (more than 40 characters)",
    ),
    (
        "long-float",
        "version: 1\nx: 0." + "1" * 41 + "\n",
        "2:4: number too long (more than 40 characters)",
    ),
    (
        "duplicate-key",
        "version: 1\nbudgets:\n  - name: a\n    limit: 1\n    'name': b\n",
        "5:5: duplicate key 'name' (each key may appear once per mapping)",
    ),
    (
        "duplicate-bool-key",
        "version: 1\nx: {true: 1, 'true': 2}\n",
        "2:14: duplicate key 'true' (each key may appear once per mapping)",
    ),
    (
        "mapping-key",
        "version: 1\nx: {[a]: 1}\n",
        "2:5: a key must be plain text, not a mapping or a list",
    ),
    (
        "complex-key",
        "version: 1\n? {a: 1}\n: 2\n",
        "2:3: a key must be plain text, not a mapping or a list",
    ),
    (
        "merge-scalar",
        "version: 1\nbudgets:\n  - <<: 5\n",
        "3:9: a merge key (<<) takes a mapping or a list of mappings",
    ),
    (
        "merge-list-of-scalars",
        "version: 1\nb: &b {a: 1}\nx: {<<: [*b, 3]}\n",
        "3:14: a merge key (<<) takes a mapping or a list of mappings",
    ),
    (
        "syntax",
        "version: 1\nbudgets: [\n  - name: a\n",
        "3:3: YAML syntax error: did not find expected node content",
    ),
    (
        "syntax-indent",
        "version: 1\n  budgets: []\n",
        "2:10: YAML syntax error: mapping values are not allowed in this context",
    ),
    (
        "tab",
        "version: 1\nbudgets:\n\t- name: a\n",
        "3:1: YAML syntax error: found character that cannot start any token",
    ),
    (
        "undefined-alias",
        "version: 1\nbudgets: *nothing\n",
        "2:10: YAML syntax error: found undefined alias",
    ),
    (
        "two-documents",
        "version: 1\n---\nversion: 1\n",
        "2:1: YAML syntax error: but found another document",
    ),
    ("duplicate-anchor", "a: &x 1\nb: &x 2\n", "2:4: YAML syntax error: second occurrence"),
    (
        "bad-escape",
        'version: 1\nx: "\\q"\n',
        "2:5: YAML syntax error: found unknown escape character",
    ),
]


def reported(text: str, warnings: list[RuleError] | None = None) -> list[str]:
    try:
        load_rules_text(text, source="rules.yaml", env={}, notifier_warnings=warnings)
    except RulesError as exc:
        return [str(e).removeprefix("rules.yaml:") for e in exc.errors]
    return []


def test_every_kind_of_mistake_is_reported_where_it_was_written() -> None:
    assert reported(MISTAKES) == MISTAKES_REPORTED


def test_cross_key_checks_are_reported_where_they_were_written() -> None:
    assert reported(CHECKS) == CHECKS_REPORTED


def test_unset_notifier_variables_warn_where_they_were_written() -> None:
    warnings: list[RuleError] = []
    assert reported(CHECKS, warnings) == CHECKS_REPORTED[2:]  # the first two are warnings now
    assert [str(w).removeprefix("rules.yaml:") for w in warnings] == WARNINGS


@pytest.mark.parametrize(("case", "text", "expected"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_yaml_is_refused_where_it_was_written(case: str, text: str, expected: str) -> None:
    assert reported(text) == [expected]


def test_plain_yaml_loads_as_yaml_1_2_core_with_exact_numbers_and_merge_keys() -> None:
    data = load_yaml(
        "a: on\nb: yes\nc: 1.50\nd: 0x1F\ne: 0o17\nf: 1_000\ng: ~\nh: .inf\ni: 2024-01-01\n"
        "j: '5'\nk: !!str 5\nl: !!int '7'\nm: True\nn: null\no: -2.5e3\n"
        "base: &base {x: 1, y: 2}\n"
        "p: {<<: *base, y: 3}\n"
        "q: {<<: [{x: 0, z: 4}, *base], w: *base}\n"
        "1: one\ntrue: t\n"
    ).data
    assert data == {
        "a": "on",
        "b": "yes",
        "c": Decimal("1.50"),
        "d": 31,
        "e": 15,
        "f": 1000,
        "g": None,
        "h": ".inf",
        "i": "2024-01-01",
        "j": "5",
        "k": "5",
        "l": 7,
        "m": True,
        "n": None,
        "o": Decimal("-2.5e3"),
        "base": {"x": 1, "y": 2},
        "p": {"y": 3, "x": 1},
        "q": {"w": {"x": 1, "y": 2}, "x": 0, "z": 4, "y": 2},
        "1": "one",
        "true": "t",
    }
    assert [type(v) for v in (data["c"], data["d"], data["m"])] == [Decimal, int, bool]
    assert list(data["p"]) == ["y", "x"]  # the mapping's own keys first, then merged ones
    assert data["q"]["w"] is not data["base"]  # each alias is built again (and counted)


def test_chained_merges_are_followed_and_placed_where_they_were_written() -> None:
    """A merged mapping's own ``<<`` merges in turn (its own keys first, as YAML says);
    later merges of the file stay merges; a value that came through two merges is reported
    where it was written."""
    text = (
        "version: 1\nbudgets:\n"
        "  - &t\n    <<: {period: day}\n    name: a\n    limit: 1\n"
        "  - <<: *t\n    name: b\n"
        "  - <<: {period: day, limit: 3}\n    name: c\n"
    )
    loaded = load_rules_text(text, env={})
    assert [(b.name, b.limit, b.period) for b in loaded.budgets] == [
        ("a", 1, "day"),
        ("b", 1, "day"),
        ("c", 3, "day"),
    ]
    layered = (
        "version: 1\nbudgets:\n"
        "  - &base\n    name: a\n    limit: 1\n    window: 1d\n"
        "  - &team\n    <<: *base\n    name: b\n    limit: -5\n"
        "  - <<: *team\n    name: c\n"
        "  - <<: *team\n    name: d\n    limit: 4\n"
    )
    assert reported(layered) == ["10:12: limit: must be greater than 0"]
    data = load_yaml("a: &a {x: 1, y: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: *b, z: 3}\n").data
    assert data["c"] == {"x": 1, "y": 2, "z": 3}  # b's own y wins over what b merged


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r", "\x85", "\u2028", "\u2029"])
def test_a_control_character_is_placed_after_any_yaml_line_break(newline: str) -> None:
    assert reported(f"version: 1{newline}x: \x01\n") == [
        "2:4: control character U+0001 is not allowed in YAML"
    ]
