"""Every kind of mistake in a rules file: exit 2, one line each, at the right line and column."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from budgetguard.cli import app

runner = CliRunner()

HEAD = """\
version: 1
notifiers:
  finops: {type: slack, webhook_url: "https://hooks.slack.com/services/T/B/X"}
  stdout: {type: console}
budgets:
"""  # budgets start on line 6

CASES: list[tuple[str, str, str]] = [
    (  # line items exist only in costs: each of these could only ever read $0
        "line-item-estimate",
        "  - name: a\n    limit: 5\n    period: day\n    cost_source: estimate\n"
        "    match: {line_item: 'gpt-4o*'}\n",
        "10:13: line_item with cost_source: estimate: line items exist only in the costs",
    ),
    (
        "line-item-endpoint",
        "  - name: a\n    limit: 5\n    period: day\n"
        "    match: {line_item: 'gpt-4o*', endpoint: completions}\n",
        "9:13: line_item with endpoint: line items exist only in the costs data",
    ),
    (
        "line-item-user",
        "  - name: a\n    limit: 5\n    period: day\n    each: line_item\n"
        "    match: {user: user-erin}\n",
        "9:11: line_item with user: line items exist only in the costs data",
    ),
    (
        "sub-day-costs-window",
        "  - name: a\n    limit: 5\n    window: 6h\n    cost_source: costs\n",
        "8:13: window: 6h is not a whole number of days, and costs are daily: "
        "use cost_source: auto or estimate",
    ),
    (  # the costs endpoint has no per-endpoint figures: costs alone could only read $0
        "endpoint-costs",
        "  - name: a\n    limit: 5\n    period: day\n    cost_source: costs\n"
        "    match: {endpoint: images}\n",
        "9:18: endpoint with cost_source: costs: the costs endpoint has no per-endpoint",
    ),
    (  # costs are daily: an anomaly window of costs alone under a day never sees a spike
        "anomaly-costs",
        "  - name: a\n    cost_source: costs\n    anomaly: {window: 1h, baseline: 7d, factor: 3}\n",
        "8:23: anomaly window: 1h is not a whole number of days, and costs are daily: use "
        "cost_source: auto or estimate",
    ),
    # (id, yaml after HEAD or a whole file, expected "LINE:COL: message fragment")
    (
        "unknown-key",
        "  - name: a\n    limit: 5\n    windw: 24h\n",
        "8:5: unknown key 'windw' — did you mean 'window'?",
    ),
    (
        "bad-name",
        "  - name: Bad Name\n    limit: 5\n    window: 1h\n",
        "6:11: name: budget names use only lower-case letters",
    ),
    (
        "negative-limit",
        "  - name: a\n    limit: -5\n    window: 1h\n",
        "7:12: limit: must be greater than 0",
    ),
    (
        "limit-not-number",
        "  - name: a\n    limit: lots\n    window: 1h\n",
        "7:12: limit: expected a number",
    ),
    (
        "bad-duration",
        "  - name: a\n    limit: 5\n    window: 24 hours\n",
        "8:13: window: not a duration",
    ),
    (
        "zero-duration",
        "  - name: a\n    limit: 5\n    window: 0h\n",
        "8:13: window: not a duration",
    ),
    (
        "bad-period",
        "  - name: a\n    limit: 5\n    period: montly\n",
        "8:13: period: expected 'day', 'week', 'month', 'quarter' or 'year'",
    ),
    (
        "window-and-period",
        "  - name: a\n    limit: 5\n    window: 1h\n    period: day\n",
        "9:5: give either window (rolling) or period (calendar), not both",
    ),
    ("neither-window-nor-period", "  - name: a\n    limit: 5\n", "6:5: budget 'a': needs a window"),
    (
        "missing-limit",
        "  - name: a\n    window: 1h\n",
        "6:5: budget 'a': missing required key 'limit'",
    ),
    ("missing-name", "  - limit: 5\n    window: 1h\n", "6:5: missing required key 'name'"),
    (
        "duplicate-name",
        "  - name: a\n    limit: 5\n    window: 1h\n  - name: a\n    limit: 6\n    window: 1h\n",
        "9:11: duplicate budget name 'a' (first used on line 6)",
    ),
    (
        "bad-metric",
        "  - name: a\n    limit: 5\n    window: 1h\n    metric: dollars\n",
        "9:13: metric: expected 'cost', 'input_tokens'",
    ),
    (
        "metric-vs-endpoint",
        "  - name: a\n    limit: 5\n    window: 1h\n    metric: images\n"
        "    match: {endpoint: embeddings}\n",
        "9:13: metric 'images' is not measured by embeddings",
    ),
    (
        "unknown-endpoint",
        "  - name: a\n    limit: 5\n    window: 1h\n    match: {endpoint: embedding}\n",
        "9:23: endpoint 'embedding' matches no endpoint — did you mean 'embeddings'?",
    ),
    (
        "unknown-match-key",
        "  - name: a\n    limit: 5\n    window: 1h\n    match: {projet: p}\n",
        "9:13: unknown key 'projet' — did you mean 'project'?",
    ),
    (
        "bad-each",
        "  - name: a\n    limit: 5\n    window: 1h\n    each: team\n",
        "9:11: each: expected 'project', 'model', 'user', 'api_key' or 'line_item'",
    ),
    (
        "duplicate-threshold",
        "  - name: a\n    limit: 5\n    window: 1h\n    thresholds: [80%, 80%]\n",
        "9:23: threshold repeats one at 80% of the limit",
    ),
    (
        "bad-threshold",
        "  - name: a\n    limit: 5\n    window: 1h\n    thresholds: [eighty]\n",
        "9:18: a threshold is a percentage of the limit",
    ),
    (
        "bad-severity",
        "  - name: a\n    limit: 5\n    window: 1h\n    thresholds: [{at: 90%, severity: fatal}]\n",
        "9:38: severity: expected 'warning' or",
    ),
    (
        "unknown-notifier",
        "  - name: a\n    limit: 5\n    window: 1h\n    notify: [finop]\n",
        "9:14: no notifier named 'finop' — did you mean 'finops'?",
    ),
    (
        "threshold-notifier",
        "  - name: a\n    limit: 5\n    window: 1h\n    thresholds: [{at: 90%, notify: pager}]\n",
        "9:36: no notifier named 'pager'",
    ),
    (
        "forecast-on-window",
        "  - name: a\n    limit: 5\n    window: 1h\n    forecast: true\n",
        "9:5: forecast: only period budgets",
    ),
    (
        "anomaly-baseline",
        "  - name: a\n    anomaly: {window: 1h, baseline: 1h, factor: 3}\n",
        "7:37: baseline: must be longer than the anomaly window",
    ),
    (
        "anomaly-factor",
        "  - name: a\n    anomaly: {window: 1h, baseline: 7d, factor: 1}\n",
        "7:49: factor: must be greater than 1",
    ),
    (
        "user-needs-estimate",
        "  - name: a\n    limit: 5\n    window: 1h\n    match: {user: u}\n    cost_source: costs\n",
        "10:18: cost_source: a budget by user can only use the usage",
    ),
    (
        "line-item-needs-cost",
        "  - name: a\n    limit: 5\n    window: 1h\n    metric: tokens\n"
        "    match: {line_item: 'x*'}\n",
        "10:13: line_item: only budgets of metric cost",
    ),
    (
        "bad-cost-source",
        "  - name: a\n    limit: 5\n    window: 1h\n    cost_source: invoice\n",
        "9:18: cost_source: expected 'costs', 'estimate' or 'auto'",
    ),
    (
        "list-for-mapping",
        "  - name: a\n    limit: 5\n    window: 1h\n    match: [project]\n",
        "9:12: match: expected a mapping (key: value), got a list",
    ),
    ("budget-not-mapping", "  - just-a-name\n", "6:5: budget 1: expected a mapping"),
    (
        "enabled-not-bool",
        "  - name: a\n    limit: 5\n    window: 1h\n    enabled: maybe\n",
        "9:14: enabled: expected true or false",
    ),
]

WHOLE_FILES: list[tuple[str, str, str]] = [
    ("empty", "", "1:1: the rules file is empty"),
    ("comments-only", "# nothing\n", "1:1: the rules file is empty"),
    ("top-level-list", "- version: 1\n", "1:1: the rules file must be a mapping"),
    ("yaml-syntax", "version: 1\nbudgets: [\n  - name: a\n", "YAML syntax error"),
    (
        "duplicate-key",
        "version: 1\ntimezone: UTC\ntimezone: Europe/Paris\nbudgets: []\n",
        "3:1: duplicate key 'timezone'",
    ),
    ("missing-version", "budgets: []\n", "1:1: missing required key 'version'"),
    ("wrong-version", "version: 2\nbudgets: []\n", "1:10: version: expected 1"),
    (
        "bad-timezone",
        "version: 1\ntimezone: Europe/Pariss\n",
        "2:11: unknown time zone 'Europe/Pariss' — did you mean 'Europe/Paris'?",
    ),
    (
        "unknown-top-key",
        "version: 1\nbudget: []\n",
        "2:1: unknown key 'budget' — did you mean 'budgets'?",
    ),
    (
        "unknown-notifier-type",
        "version: 1\nnotifiers:\n  x: {type: slak, webhook_url: 'https://x'}\n",
        "3:13: unknown notifier type 'slak' — did you mean 'slack'?",
    ),
    (
        "notifier-setting",
        "version: 1\nnotifiers:\n  m: {type: email, smtp_host: h, to: [a@b.co], pasword: p}\n",
        "3:48: unknown key 'pasword' — did you mean 'password'?",
    ),
    (
        "notifier-missing-type",
        "version: 1\nnotifiers:\n  m: {smtp_host: h}\n",
        "3:6: notifier 'm': missing required key 'type'",
    ),
    (
        "slack-needs-a-target",
        "version: 1\nnotifiers:\n  s: {type: slack}\n",
        "3:6: give either webhook_url, or token and channel",
    ),
    (
        "bad-cron",
        "version: 1\ndigest: {schedule: '0 25 * * mon'}\n",
        "2:20: schedule: not a valid cron expression",
    ),
    ("bad-interval", "version: 1\nschedule: {interval: often}\n", "2:22: interval: not a duration"),
    (
        "missing-env",  # outside notifiers (where it is a warning: see test_cli_hardening)
        "version: 1\ntimezone: '${NO_SUCH_VAR_X}'\n",
        "2:11: environment variable 'NO_SUCH_VAR_X' is not set",
    ),
    (
        "default-notify",
        "version: 1\ndefaults: {notify: [nobody]}\n",
        "2:21: no notifier named 'nobody'",
    ),
    (  # the same from defaults: at the budget's endpoint
        "endpoint-costs-defaults",
        "version: 1\ndefaults: {cost_source: costs}\nbudgets:\n"
        "  - {name: a, limit: 5, period: month, match: {endpoint: [embeddings, images]}}\n",
        "4:48: endpoint with cost_source: costs (from defaults): the costs endpoint has no",
    ),
    (
        "negative-price",
        "version: 1\npricing:\n  models:\n    m: {input: -1, output: 1}\n",
        "4:16: input: must be greater than or equal to 0",
    ),
]


def run_validate(tmp_path: Path, text: str) -> tuple[int, list[str]]:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["validate", "--rules", str(path)], env={"NO_SUCH_VAR_X": ""})
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    return result.exit_code, [line.removeprefix(f"{path}:") for line in lines]


@pytest.mark.parametrize(("case", "body", "expected"), CASES, ids=[c[0] for c in CASES])
def test_budget_mistakes(tmp_path: Path, case: str, body: str, expected: str) -> None:
    code, lines = run_validate(tmp_path, HEAD + body)
    assert code == 2, lines
    assert any(line.startswith(expected) for line in lines), lines


@pytest.mark.parametrize(("case", "text", "expected"), WHOLE_FILES, ids=[c[0] for c in WHOLE_FILES])
def test_file_mistakes(tmp_path: Path, case: str, text: str, expected: str) -> None:
    code, lines = run_validate(tmp_path, text)
    assert code == 2, lines
    assert any(expected in line for line in lines), lines


def test_all_errors_are_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = HEAD + textwrap.dedent("""\
          - name: a
            limit: -1
            window: 1h
          - name: b
            limit: 5
            period: montly
          - name: c
            limit: 5
            windw: 1h
    """)
    code, lines = run_validate(tmp_path, text)
    assert code == 2
    # one line per error and nothing else (no summary line)
    assert [line.split(": ", 1)[0] for line in lines] == ["7:10", "11:11", "14:3"]


def test_no_traceback_and_no_summary(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nbudgets: [{name: a}]\n")
    result = runner.invoke(app, ["validate", "-r", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr + result.stdout
    (line,) = result.stderr.splitlines()  # PATH:LINE:COL: message, and nothing else
    assert line.startswith(f"{path}:2:")


def test_a_missing_file_is_bad_input(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", "-r", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "missing.yaml:1:1: no such file" in result.stderr


def test_secrets_never_appear_in_errors(tmp_path: Path) -> None:
    secret = "https://hooks.slack.com/services/T0/B0/SUPERSECRET"
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent("""\
        version: 1
        notifiers:
          s: {type: slack, webhook_url: "${HOOK}", channel: 5, bogus: "${HOOK}"}
          m: {type: email, smtp_host: h, to: [a@b.co], password: "${HOOK}"}
          w: {type: webhook, url: "ftp://${HOOK}", secret: "${HOOK}"}
          w: {type: webhook, url: "https://x", secret: "${HOOK}"}
    """)
    )
    result = runner.invoke(app, ["validate", "-r", str(path)], env={"HOOK": secret})
    assert result.exit_code == 2
    assert secret not in result.stderr + result.stdout
    assert "SUPERSECRET" not in result.stderr + result.stdout


def test_costs_windows_must_be_whole_days(tmp_path: Path) -> None:
    """Costs are daily: a 36h window or a 1h anomaly window of costs (from defaults) is
    refused, 2d, 1d or auto are not."""
    text = "version: 1\ndefaults: {cost_source: costs}\nbudgets:\n"
    code, lines = run_validate(tmp_path, text + "  - {name: a, limit: 5, window: 36h}\n")
    assert code == 2 and lines[0] == (
        "4:33: window: 36h is not a whole number of days, and costs are daily: use "
        "cost_source: auto or estimate (usage x prices, per minute)"
    )
    fine = "  - {name: a, limit: 5, window: 2d}\n"
    fine += "  - {name: b, limit: 5, window: 6h, cost_source: auto}\n"
    fine += "  - {name: c, anomaly: {window: 1d, baseline: 14d, factor: 3}}\n"
    assert run_validate(tmp_path, text + fine) == (0, [])
    spike = (
        "  - {name: s, limit: 5, period: month, anomaly: {window: 1h, baseline: 7d, factor: 3}}\n"
    )
    code, lines = run_validate(tmp_path, text + spike)
    assert code == 2 and lines == [
        "4:58: anomaly window: 1h is not a whole number of days, and costs are daily: use "
        "cost_source: auto or estimate (usage x prices, per minute)"
    ]


def test_a_bad_notify_entry_is_one_error_about_what_is_wrong(tmp_path: Path) -> None:
    """``str | NotifyEntry``: a mapping's own mistake, not also "expected text" for it."""
    body = "  - {name: a, limit: 1, window: 1d, notify: [{name: finops, on: [explode]}]}\n"
    code, lines = run_validate(tmp_path, HEAD + body)
    assert code == 2
    assert lines == ["6:66: on (item 1): expected 'fire', 'resolve' or 'remind'"]
    body = "  - {name: a, limit: 1, window: 1d, notify: [5, {name: finops, on: []}]}\n"
    code, lines = run_validate(tmp_path, HEAD + body)
    assert lines == [
        "6:46: notify (item 1): expected text, got a number",
        "6:68: on: give at least 1",
    ]


def test_counts_are_whole_numbers(tmp_path: Path) -> None:
    body = (
        "  - {name: a, metric: input_tokens, limit: 1.5, window: 1d}\n"
        "  - {name: b, metric: requests, limit: 100, window: 1d, thresholds: [50.5, 80%]}\n"
        "  - {name: c, metric: requests, limit: 1e3, window: 1d, thresholds: [50, 80.5%]}\n"
        "  - {name: d, limit: 1.5, window: 1d, thresholds: [0.5]}\n"  # money has cents
    )
    code, lines = run_validate(tmp_path, HEAD + body)
    assert code == 2
    assert lines == [
        "6:44: limit: metric input_tokens counts whole units",
        "7:70: an absolute threshold of a count metric is a whole number",
    ]
