"""Every command with a bad value of every option and setting: the right exit code, one line
on stderr, never a traceback. Store failures (2 for a URL that cannot be a store, 3 for one
that cannot be reached or written), notifier secrets resolved only when used, stdout that
carries only the report in machine formats."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from budgetguard.cli import run
from budgetguard.simulator import SimulatorServer
from tests.conftest import ADMIN_KEY, BOMB, MERGE_BOMB, NOW

ROOT = Path(__file__).resolve().parent.parent
NOW_ISO = datetime.fromtimestamp(NOW, UTC).isoformat()

RULES = """\
version: 1
notifiers:
  stdout: {type: console}
digest: {notify: [stdout]}
budgets:
  - {name: day, limit: 100, window: 24h, cost_source: estimate, notify: [stdout]}
"""

#: The contract's own example rules, as written there: its notifiers need SLACK_WEBHOOK_URL,
#: SMTP_HOST and HOOK_SECRET, which a CI job does not have.
CONTRACT_RULES = """\
version: 1
timezone: UTC                  # IANA zone of calendar periods and the digest schedule
schedule: {interval: 15m}      # cadence of `run`

notifiers:                     # name -> settings; `type` picks the plugin
  finops:  {type: slack, webhook_url: "${SLACK_WEBHOOK_URL}"}
  oncall:  {type: email, to: [oncall@example.com], smtp_host: "${SMTP_HOST}"}
  audit:   {type: webhook, url: "https://hooks.example.com/budget", secret: "${HOOK_SECRET}"}
  stdout:  {type: console}

defaults:                      # applies to every budget that does not say otherwise
  thresholds: [80%, 100%]
  notify: [finops]

pricing:                       # optional USD overrides and additions, per 1M tokens
  models:
    ft:gpt-4o-mini:acme: {input: 0.30, cached_input: 0.15, output: 1.20}

budgets:
  - name: org-month            # unique, [a-z0-9._-]
    limit: 5000                # USD for metric cost (the default metric)
    period: month              # calendar period to date, in `timezone`: day|week|month|quarter|year
    forecast: true             # also alert on the projected end-of-period spend
  - name: chatbot-gpt-4o
    match: {project: proj_chatbot, model: "gpt-4o*"}   # globs; a value may be a list
    limit: 150
    window: 24h                # rolling window ending now: Nm, Nh, Nd
    thresholds:
      - {at: 80%, severity: warning}
      - {at: 100%, severity: critical, notify: [finops, oncall]}
    repeat: 12h                # remind while still over; default: once per crossing
  - name: per-project-day
    match: {project: "*"}
    each: project              # one budget per project seen (or a list: [project, model])
    limit: 100
    period: day
  - name: search-embedding-tokens
    match: {project: proj_search, endpoint: embeddings}
    metric: input_tokens       # cost | input_tokens | output_tokens | ... (see the rules reference)
    limit: 200000000
    window: 7d
  - name: spend-spike
    each: project
    anomaly: {window: 1h, baseline: 7d, factor: 3, min: 5}
    notify: [oncall]

digest:
  schedule: "0 9 * * mon"      # cron in `timezone`
  period: week
  notify: [finops, oncall]
"""


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clean working directory and environment: the rules above, no budgetguard setting."""
    for key in list(os.environ):
        if key.startswith("BUDGETGUARD_") or key in ("OPENAI_ADMIN_KEY", "GITHUB_STEP_SUMMARY"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules.yaml").write_text(RULES)
    monkeypatch.setenv("BUDGETGUARD_DATABASE_URL", f"sqlite:///{tmp_path / 'spend.db'}")
    yield tmp_path


def bg(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    capsys.readouterr()
    code = run(argv)
    captured = capsys.readouterr()
    return code, captured.out, [line for line in captured.err.splitlines() if line.strip()]


STORE_COMMANDS = [
    ["collect"],
    ["check", "--offline"],
    ["backtest", "--from", "2026-11-20", "--to", "2026-11-21"],
    ["digest", "--offline"],
    ["run"],
]
ALL_COMMANDS = [
    ["validate"],
    *STORE_COMMANDS,
    ["notify-test", "stdout"],
    ["schema"],  # they need no store, rules or clock, and still check the flags and settings
    ["plugins"],
]

BAD_NOW = ["soon", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1969-12-31T00:00:00Z"]
BAD_FLAGS: list[tuple[list[str], str]] = [
    (["collect", "--since", "1969-06-01"], "--since"),
    (["collect", "--since", "99999999999d"], "--since"),
    (["collect", "--since", "whenever"], "--since"),
    (["collect", "--until", "later"], "--until"),
    (["collect", "--since", "2026-11-21", "--until", "2026-11-20"], "--since"),
    (["check", "--format", "xml"], "--format"),
    (["check", "--fail-on", "sometimes"], "--fail-on"),
    (["check", "--expect", "lots"], "--expect"),
    (["check", "--expect", "1e999999", "-f", "json"], "--expect"),
    (["check", "--expect", "nan"], "--expect"),
    (["check", "--expect", "colour=red=5"], "--expect"),
    (["backtest", "--from", "then", "--to", "2026-11-21"], "--from"),
    (["backtest", "--from", "2026-11-20", "--to", "then"], "--to"),
    (["backtest", "--from", "2026-11-20", "--to", "2026-11-21", "--step", "0m"], "--step"),
    (
        ["backtest", "--from", "2026-11-20", "--to", "2026-11-21", "--step", "99999999999d"],
        "--step",
    ),
    (["backtest", "--from", "2026-11-21", "--to", "2026-11-20"], "--from"),
    (["backtest", "--from", "2020-01-01", "--to", "2026-11-21", "--step", "1m"], "steps"),
    (["backtest", "--to", "2026-11-21"], "--from"),
    (["digest", "--period", "year"], "--period"),
    (["run", "--port", "-1"], "--port"),
    (["run", "--port", "65536"], "--port"),
    (["run", "--port", "http"], "--port"),
    (["notify-test", "nobody"], "nobody"),
    (["simulate", "--port", "-1"], "--port"),
    (["simulate", "--days", "0"], "--days"),
    (["simulate", "--seed", "-1"], "--seed"),
    (["simulate", "--fail-rate", "2"], "--fail-rate"),
    (["simulate", "--latency-ms", "-5"], "--latency-ms"),
    (["simulate", "--costs-delay-hours", "1e9"], "--costs-delay-hours"),
    (["simulate", "--now", "soon"], "--now"),
    (["simulate", "--now", "0001-01-01T00:00:00Z"], "--now"),
    (["demo", "--now", "9999-12-31T23:59:59Z"], "--now"),
    (["demo", "--rules", "no-such-rules.yaml"], "no-such-rules.yaml"),
    (["demo", "--db", "mysql://u@h/d"], "mysql"),
    *[([*command, "--no-such-flag"], "--no-such-flag") for command in ALL_COMMANDS],
]
BAD_SETTINGS: list[tuple[str, str, str]] = [
    ("BUDGETGUARD_NOW", "soon", "now"),
    ("BUDGETGUARD_NOW", "0001-01-01T00:00:00+14:00", "now"),
    ("BUDGETGUARD_HTTP_PORT", "-1", "http_port"),
    ("BUDGETGUARD_HTTP_PORT", "port", "http_port"),
    ("BUDGETGUARD_OPENAI_BASE_URL", "ftp://example.com/v1", "openai_base_url"),
    ("BUDGETGUARD_DATABASE_URL", "mysql://u@localhost/budgets", "mysql"),
    ("BUDGETGUARD_DATABASE_URL", "budgetguard.db", "not a store URL"),
    ("BUDGETGUARD_DATABASE_URL", "sqlite://", "BUDGETGUARD_DATABASE_URL: an in-memory"),
]


def assert_one_line(code: int, err: list[str], expected_code: int, mentions: str) -> None:
    assert code == expected_code, err
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    assert mentions.lower() in err[0].lower(), err


@pytest.mark.parametrize("argv", ALL_COMMANDS, ids=lambda a: a[0])
def test_a_bad_now_is_bad_input_everywhere(
    argv: list[str], cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for value in BAD_NOW:
        code, _, err = bg([*argv, "--now", value], capsys)
        assert_one_line(code, err, 2, "now")


@pytest.mark.parametrize(("argv", "mentions"), BAD_FLAGS, ids=lambda v: " ".join(v)[:60])
def test_a_bad_flag_is_one_line_and_exit_2(
    argv: list[str], mentions: str, cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = bg(argv, capsys)
    assert_one_line(code, err, 2, mentions)


@pytest.mark.parametrize("argv", ALL_COMMANDS, ids=lambda a: a[0])
def test_a_bad_setting_is_one_line_and_exit_2(
    argv: list[str], cwd: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value, mentions in BAD_SETTINGS:
        monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
        with monkeypatch.context() as patch:
            patch.setenv(variable, value)
            code, _, err = bg(argv, capsys)
        assert_one_line(code, err, 2, mentions)


STORES: list[tuple[str, int, str]] = [
    ("budgetguard.db", 2, "not a store URL"),
    ("mysql://u@localhost/budgets", 2, "unsupported database 'mysql'"),
    ("sqlite:////nonexistent-bg/dir/x.db", 2, "/nonexistent-bg/dir"),
    ("postgresql+asyncpg://u:hunter2@127.0.0.1/x", 2, "unsupported driver 'postgresql+asyncpg'"),
    ("postgresql://u:hunter2@127.0.0.1:99999/x", 2, "port 99999 is out of range"),
    ("sqlite://", 2, "in-memory"),
    ("sqlite:///", 2, "in-memory"),
    ("sqlite:///:memory:", 2, "in-memory"),
    ("sqlite:///spend.db?x=1", 2, "'x' are not accepted"),  # SQLAlchemy's warning, as the line
    ("sqlite:///.", 2, "is a directory"),
    ("postgresql://u:hunter2@127.0.0.1/x?sslmod=require", 2, 'invalid connection option "sslmod"'),
    ("postgresql://postgres:hunter2@127.0.0.1:1/x", 3, "unavailable"),  # nothing listens
    ("sqlite:////proc/budgetguard.db", 3, "unavailable"),  # cannot be written
]


@pytest.mark.parametrize("argv", STORE_COMMANDS, ids=lambda a: a[0])
def test_store_failures_are_2_or_3_in_one_line_and_never_exit_1(
    argv: list[str], cwd: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    for url, expected, mentions in STORES:
        code, _, err = bg([*argv, "--db", url, "--now", NOW_ISO], capsys)
        assert_one_line(code, err[-1:], expected, mentions)
        assert len(err) <= 2, err  # run and collect may say first that they start
        assert "hunter2" not in "\n".join(err)
    assert not Path("/nonexistent-bg").exists()  # never created


def test_the_entry_point_itself_never_prints_a_traceback(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"BUDGETGUARD_NOW=\xff\xfe2026\n")
    (tmp_path / "rules.yaml").write_text(RULES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUDGETGUARD_")}
    for argv, mentions in (
        (["validate"], ".env"),
        (["check", "--offline", "--db", "mysql://u@h/d"], ".env"),
    ):
        out = subprocess.run(
            [sys.executable, "-m", "budgetguard", *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 2, out.stderr
        assert out.stderr.count("\n") == 1 and mentions in out.stderr, out.stderr
    (tmp_path / ".env").unlink()
    out = subprocess.run(
        [sys.executable, "-m", "budgetguard", "check", "--offline", "--db", "mysql://u@h/d"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--offline", "-f", "text"],  # the fast path
        ["check", "--offline", "-ftext"],  # the same through typer
        ["schema"],  # a typer command with a long output
    ],
    ids=["fast", "typer", "schema"],
)
def test_a_reader_that_leaves_is_141_never_1_and_no_traceback(
    tmp_path: Path, argv: list[str]
) -> None:
    """`budgetguard check | head`: exit 1 would read as "over budget" under pipefail."""
    (tmp_path / "rules.yaml").write_text(RULES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUDGETGUARD_")}
    env["BUDGETGUARD_NOW"] = NOW_ISO
    child = subprocess.Popen(
        [sys.executable, "-m", "budgetguard", *argv],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # before the child (still importing) writes its report
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_started_with_stdout_closed_it_still_answers_with_its_code(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUDGETGUARD_")}
    env["BUDGETGUARD_NOW"] = NOW_ISO
    out = subprocess.run(
        [sys.executable, "-m", "budgetguard", "check", "--offline"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=lambda: os.close(1),
    )
    assert out.returncode == 3, out.stderr  # no data yet: unknown
    assert "internal error" not in out.stderr and out.stderr.count("\n") == 1, out.stderr


def test_ctrl_c_says_interrupted_on_either_path(
    cwd: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import budgetguard.cli.check as check_module
    from budgetguard.cli import run, run_typer

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(check_module, "command_context", interrupted)
    for runner, argv in ((run, ["check", "--offline"]), (run_typer, ["check", "--offline"])):
        assert runner(argv) == 130
        assert capsys.readouterr().err.strip().splitlines() == ["budgetguard: interrupted"]


def test_ctrl_c_while_the_cli_loads_is_one_line_not_a_traceback() -> None:
    """The console script's first import (budgetguard.cli) interrupted, as a Ctrl-C in the
    first milliseconds does: the same line and code as later."""
    script = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, *_):\n"
        "        if name == 'budgetguard.cli':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "from budgetguard.__main__ import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stderr) == (130, "budgetguard: interrupted\n")


def test_run_without_rules_exits_2_and_says_where_it_looked(
    cwd: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUDGETGUARD_RULES", str(cwd / "config" / "rules.yaml"))  # not mounted
    code, _, err = bg(["run", "--port", "0"], capsys)
    assert code == 2
    assert err[0].startswith(f"{cwd / 'config' / 'rules.yaml'}:1:1: no such file"), err


# -- rules that used to crash the loader --------------------------------------------------

HOSTILE: list[tuple[str, str, str]] = [
    ("alias-bomb", "version: 1\n" + BOMB, ": aliases expand to more than"),
    ("merge-bomb", "version: 1\n" + MERGE_BOMB, ": aliases expand to more than"),
    ("deep", "version: 1\nx: " + "[" * 200 + "]" * 200 + "\n", ":2:"),
    ("deep-block", "version: 1\nx:\n" + "".join("  " * i + "- \n" for i in range(1, 90)), ":"),
    ("nul", "version: 1\nbudgets: []\ntimezone: U\x00TC\n", ":3:12: control character U+0000"),
    ("escape", "version: 1\n\x1b[31mbudgets: []\n", ":2:1: control character U+001B"),
    ("python-tag", "version: 1\nx: !!python/object:os.system ls\n", ":2:4: unsupported tag"),
    ("merge-scalar", "version: 1\nbudgets:\n  - <<: 5\n", ":3:9: a merge key (<<)"),
    ("huge-window", "version: 1\nbudgets: [{name: a, limit: 1, window: 99999999999d}]\n", "3660d"),
    ("huge-limit", "version: 1\nbudgets: [{name: a, limit: 1e22, window: 1d}]\n", "limit"),
    (
        "long-number",
        "version: 1\nbudgets: [{name: a, limit: " + "9" * 5000 + ", window: 1d}]\n",
        "number too long",
    ),
    (
        "huge-threshold",
        "version: 1\nbudgets: [{name: a, limit: 5, window: 1d, thresholds: [1e20%]}]\n",
        "a threshold lies between",
    ),
    ("huge-price", "version: 1\npricing: {models: {m: {input: 1e30, output: 1}}}\n", "input"),
    (
        "huge-factor",
        "version: 1\nbudgets: [{name: a, anomaly: {window: 1h, baseline: 99999d, factor: 3}}]\n",
        "3660d",
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_rules_are_errors_with_their_place(
    case: str, text: str, expected: str, cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (cwd / "rules.yaml").write_text(text)
    code, _, err = bg(["validate"], capsys)
    assert code == 2, err
    assert "Traceback" not in "\n".join(err)
    assert err[0].startswith("rules.yaml:") and expected in err[0], err


def test_merge_keys_merge_and_yes_no_on_stay_text(
    cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (cwd / "rules.yaml").write_text(
        "version: 1\n"
        "notifiers: {stdout: {type: console}}\n"
        "x-base: &base {limit: 10, window: 1h, cost_source: estimate}\n"
        "budgets:\n"
        "  - {<<: *base, name: on, notify: [stdout]}\n"
        "  - {<<: *base, name: b, limit: 20}\n"
    )
    code, _, err = bg(["validate"], capsys)
    assert code == 2 and "unknown key 'x-base'" in err[0]  # the anchor's home is checked too
    text = (cwd / "rules.yaml").read_text().replace("x-base: &base", "defaults: &base")
    text = text.replace("{limit: 10, window: 1h, cost_source: estimate}", "{repeat: 1h}")
    text = text.replace("{<<: *base, name: on,", "{<<: *base, name: on, limit: 10, window: 1h,")
    text = text.replace(
        "{<<: *base, name: b, limit: 20}", "{<<: *base, name: b, limit: 20, period: day}"
    )
    (cwd / "rules.yaml").write_text(text)
    from budgetguard.rules import load_rules

    rules = load_rules(cwd / "rules.yaml")
    assert rules.budget("on").repeat == "1h" and rules.budget("b").repeat == "1h"
    assert rules.budget("b").limit == 20


def test_a_limit_at_the_bound_reports_as_json(
    cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (cwd / "rules.yaml").write_text(
        "version: 1\nbudgets: [{name: a, limit: 999999999999999, window: 3660d}]\n"
    )
    code, out, err = bg(["check", "--offline", "-f", "json", "--expect", "1e15"], capsys)
    assert code in (0, 1, 3), err
    report = json.loads(out)
    assert report["budgets"][0]["limit"] == 999999999999999


# -- notifier secrets are needed only to send ---------------------------------------------


def test_ci_needs_no_notifier_secrets(cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (cwd / "rules.yaml").write_text(CONTRACT_RULES)
    code, _, err = bg(["validate"], capsys)
    assert code == 0, err
    assert len(err) == 3 and all(": warning: notifier '" in line for line in err), err
    assert {"SLACK_WEBHOOK_URL", "SMTP_HOST", "HOOK_SECRET"} <= {
        line.split("variable '")[1].split("'")[0] for line in err
    }
    code, _, err = bg(["validate", "--strict"], capsys)
    assert code == 2 and len(err) == 3, err  # the same three lines, as errors
    assert all(": notifier '" in line and line.endswith("(--strict)") for line in err), err
    code, _, err = bg(["check", "--offline", "--now", NOW_ISO], capsys)
    assert code == 3 and not [e for e in err if "SLACK_WEBHOOK_URL" in e]  # unknown: no data
    code, _, err = bg(["digest", "--offline", "--now", NOW_ISO], capsys)
    assert code == 0, err
    for argv in (["collect"], ["backtest", "--from", "2d", "--to", "1d"]):  # they send nothing
        code, _, err = bg([*argv, "--now", NOW_ISO], capsys)
        assert code != 2 and not [e for e in err if "SLACK_WEBHOOK_URL" in e], (argv, err)
    code, _, err = bg(["notify-test", "stdout"], capsys)
    assert code == 0, err
    code, _, err = bg(["notify-test", "finops"], capsys)
    assert_one_line(code, err, 2, "'SLACK_WEBHOOK_URL' is not set")
    code, _, err = bg(["check", "--offline", "--notify", "--now", NOW_ISO], capsys)
    assert code == 2 and "SLACK_WEBHOOK_URL" in err[0]  # sending needs them, as before


def test_machine_readable_stdout_carries_only_the_report(
    cwd: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sim: SimulatorServer,
) -> None:
    (cwd / "rules.yaml").write_text(RULES.replace("limit: 100", "limit: 0.01"))
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("BUDGETGUARD_OPENAI_BASE_URL", sim.base_url)
    monkeypatch.setenv("BUDGETGUARD_NOW", NOW_ISO)
    code, out, err = bg(["check", "--notify", "-f", "json"], capsys)
    assert code == 1, err
    report = json.loads(out)  # nothing but the report
    assert report["status"] == "critical"
    assert any(line.startswith("[budgetguard] CRITICAL day") for line in err), err
    code, out, err = bg(["check", "--notify", "-f", "github", "--expect", "1"], capsys)
    assert all(line.startswith("::") for line in out.splitlines()), out


def test_a_store_that_cannot_save_the_alert_state_is_exit_3_in_one_line(
    cwd: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sim: SimulatorServer,
) -> None:
    """A read-only store (SQLite's mode=ro: read-only even for root): `check --offline
    --notify` must save the alert transitions, so it is exit 3 naming the store, never exit 1
    with a report that looks like it worked; without --notify, check writes nothing and
    reads it as any store."""
    (cwd / "rules.yaml").write_text(RULES.replace("limit: 100", "limit: 0.01"))
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("BUDGETGUARD_OPENAI_BASE_URL", sim.base_url)
    monkeypatch.setenv("BUDGETGUARD_NOW", NOW_ISO)
    code, _, err = bg(["collect"], capsys)
    assert code == 0, err
    read_only = f"sqlite:///file:{cwd / 'spend.db'}?mode=ro&uri=true"
    code, out, err = bg(["check", "--offline", "--notify", "--db", read_only], capsys)
    assert_one_line(code, err, 3, "cannot be written (the alert state and notifications not")
    assert "readonly" in err[0] and str(cwd / "spend.db") in err[0] and out == ""
    code, out, err = bg(["check", "--offline", "--db", read_only, "-f", "json"], capsys)
    assert code == 1 and json.loads(out)["status"] == "critical", err


def test_alerts_show_their_figures_as_the_budgets_do(
    cwd: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sim: SimulatorServer,
) -> None:
    """An alert's spend and limit are its budget's, written alike: money rounded to the
    micro-dollar, a limit of 1 as 1.0; token counts as integers."""
    (cwd / "rules.yaml").write_text(
        RULES.replace("limit: 100", "limit: 1")
        + "  - {name: tok, metric: tokens, limit: 1000, window: 24h, notify: [stdout]}\n"
    )
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("BUDGETGUARD_OPENAI_BASE_URL", sim.base_url)
    monkeypatch.setenv("BUDGETGUARD_NOW", NOW_ISO)
    code, out, err = bg(["check", "-f", "json"], capsys)
    assert code == 1, err
    report = json.loads(out)
    budgets = {b["name"]: b for b in report["budgets"]}
    assert {a["budget"] for a in report["alerts"]} == {"day", "tok"}
    for alert in report["alerts"]:
        budget = budgets[alert["budget"]]
        for figure in ("spend", "limit"):
            assert alert[figure] == budget[figure]
            assert type(alert[figure]) is type(budget[figure])
    assert type(budgets["day"]["limit"]) is float and type(budgets["tok"]["limit"]) is int
    assert all(f'"spend": {budgets["day"]["spend"]!r}' in line for line in out.splitlines()
               if '"budget": "day"' in line)  # fmt: skip


def test_a_future_now_is_named_where_it_came_from(
    cwd: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("BUDGETGUARD_NOW", "2199-01-01T00:00:00Z")
    code, _, err = bg(["collect"], capsys)
    assert_one_line(code, err, 2, "BUDGETGUARD_NOW 2199-01-01T00:00:00+00:00 is later than")
    code, _, err = bg(["collect", "--now", "2198-01-01T00:00:00Z"], capsys)
    assert_one_line(code, err, 2, "--now 2198-01-01T00:00:00+00:00 is later than")


def test_unparsable_env_lines_are_one_budgetguard_line_each(cwd: Path) -> None:
    """No python-dotenv log lines (timestamped, twice): one line per bad line, naming the
    file and line and never its text."""
    (cwd / ".env").write_text('FOO=1\nthis is not a NAME=value line\nSECRET="sk-unterminated\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUDGETGUARD_")}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("budgetguard")), "validate"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"budgetguard: .env:{n}: warning: not a NAME=value statement, ignored" for n in (2, 3)
    ]


def test_collect_until_a_later_time_than_now_is_a_plain_collect(
    cwd: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sim: SimulatorServer,
) -> None:
    """It re-reads the partial buckets up to now as a plain collect does (it skipped them:
    "0 requests")."""
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("BUDGETGUARD_OPENAI_BASE_URL", sim.base_url)
    monkeypatch.setenv("BUDGETGUARD_NOW", NOW_ISO)
    said = []
    for argv in (["collect"], ["collect"], ["collect", "--until", "2199-01-01"]):
        code, out, err = bg(argv, capsys)
        assert code == 0, err
        said.append(re.sub(r", [\d.]+s$", "", out.strip()))  # without its duration
    assert said[2] == said[1] and " 0 requests" not in said[2], said


def test_a_backtest_over_nothing_stored_is_exit_3_in_one_line(
    cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every step would be unknown: data unavailable, not exit 0 with no_data lines."""
    argv = ["backtest", "--offline", "--from", "2026-11-20", "--to", "2026-11-21"]
    code, out, err = bg([*argv, "--now", NOW_ISO], capsys)
    assert_one_line(code, err, 3, "nothing is stored from 2026-11-20T00:00:00Z to 2026-11-21")
    assert out == "" and "budgetguard collect --since 2026-11-20" in err[0]


def test_every_exit_3_says_in_one_line_what_is_unavailable(
    cwd: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUDGETGUARD_NOW", NOW_ISO)
    for output in ("text", "json"):
        code, _, err = bg(["check", "--offline", "-f", output], capsys)
        assert_one_line(code, err, 3, "1 budget unknown: ")
        assert "never collected" in err[0]  # which data is missing, and why


def test_stale_data_is_one_line_on_exit_3(
    cwd: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sim: SimulatorServer,
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("BUDGETGUARD_OPENAI_BASE_URL", sim.base_url)
    code, _, err = bg(["collect", "--now", NOW_ISO], capsys)
    assert code == 0, err
    later = datetime.fromtimestamp(NOW + 86400, UTC).isoformat()
    code, _, err = bg(["check", "--offline", "--now", later, "-f", "json"], capsys)
    assert_one_line(code, err, 3, "1 budget unknown: ")
    # the hole since the collection, named by its range
    assert f"no data for {NOW_ISO.replace('+00:00', 'Z')}" in err[0], err


def test_planned_spend_is_never_negative(cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for value in ("--expect=-5", "--expect=project=proj_a=-0.01"):
        code, _, err = bg(["check", "--offline", value], capsys)
        assert_one_line(code, err, 2, "cannot be negative")
    code, _, err = bg(["check", "--offline", "--now", NOW_ISO, "--expect=0"], capsys)
    assert code == 3, err  # zero is harmless: no data, so unknown


def test_backtest_prints_counts_as_integers_and_money_as_money(
    cwd: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sim: SimulatorServer,
) -> None:
    (cwd / "rules.yaml").write_text(
        "version: 1\nbudgets:\n"
        "  - {name: tok, metric: input_tokens, limit: 1, window: 24h}\n"
        "  - {name: usd, limit: 0.01, window: 24h, cost_source: estimate}\n"
    )
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("BUDGETGUARD_OPENAI_BASE_URL", sim.base_url)
    monkeypatch.setenv("BUDGETGUARD_NOW", NOW_ISO)
    code, _, err = bg(["check"], capsys)
    assert code == 1, err
    last = datetime.fromtimestamp(NOW, UTC)
    first = (last.replace(minute=0, second=0) - timedelta(hours=1)).isoformat()
    code, out, err = bg(["backtest", "--from", first, "--to", last.isoformat()], capsys)
    assert code == 0, err
    fired = {line.split()[2]: line.rsplit("spend ", 1)[1] for line in out.splitlines()}
    assert re.fullmatch(r"\d{1,3}(,\d{3})+", fired["tok"]), fired  # 14,400,000, not .00
    assert re.fullmatch(r"\$\d[\d,]*\.\d\d", fired["usd"]), fired


def test_an_unknown_budget_still_names_one_of_the_contracts_sources(
    cwd: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`auto` (the default cost_source) is a rule, not a source: unknown, it reads `mixed`."""
    monkeypatch.setenv("BUDGETGUARD_NOW", NOW_ISO)
    (cwd / "rules.yaml").write_text(
        "version: 1\nbudgets:\n  - {name: m, limit: 9, period: month}\n"
    )
    code, out, _ = bg(["check", "--offline", "-f", "json"], capsys)
    assert code == 3
    (budget,) = json.loads(out)["budgets"]
    assert budget["severity"] == "unknown" and budget["source"] == "mixed"


def test_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    from budgetguard.cli import run

    assert run(["--version"]) == 0
    assert capsys.readouterr().out == f"budgetguard {version('budgetguard-openai')}\n"
