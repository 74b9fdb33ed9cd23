"""`budgetguard silence` as users run it, on a store the simulator filled with the shipped
``rules.example.yaml``: the README's own example silences the chatbot alerts, `add`
previews what it matches (and warns when nothing), `--dry-run` adds nothing, a long or
match-all silence needs `--force`, rows are checked when written, and a malformed row in
the store is skipped with a warning instead of stopping a check."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import budgetguard_cli

ROOT = Path(__file__).resolve().parents[1]
#: When the simulator's chatbot runs hot: chatbot-gpt-4o is at 98 % of its 24 h limit.
HOT = "2026-11-21T06:00:00Z"


def _readme_silence() -> list[str]:
    """The README's `silence add` example, as written."""
    readme = (ROOT / "README.md").read_text()
    (line,) = [x for x in readme.splitlines() if x.startswith("$ budgetguard silence add ")]
    return shlex.split(line.removeprefix("$ budgetguard "))


def bg(folder: Path, *args: str, now: str | None = None) -> tuple[int, str, str]:
    return budgetguard_cli(folder, *args, now=now)


def here(folder: Path, *args: str) -> tuple[int, str, str]:
    """The same command in this process (typer's runner): for the many bad-input cases,
    which the console script tests above cover end to end."""
    from typer.testing import CliRunner

    from budgetguard.cli import app

    env = {
        "BUDGETGUARD_DATABASE_URL": f"sqlite:///{folder / 'store.db'}",
        "BUDGETGUARD_RULES": str(folder / "rules.yaml"),
        "BUDGETGUARD_NOW": "2026-11-22T10:17:31Z",
        "SLACK_WEBHOOK_URL": "",
        "SMTP_HOST": "",
    }
    result = CliRunner().invoke(app, list(args), env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def store(example_store: Path, tmp_path: Path) -> Path:
    shutil.copy(example_store / "store.db", tmp_path / "store.db")
    shutil.copy(example_store / "rules.yaml", tmp_path / "rules.yaml")
    return tmp_path


def _silences(folder: Path) -> list[tuple[str, ...]]:
    with sqlite3.connect(folder / "store.db") as conn:
        return conn.execute("SELECT id, matchers FROM bg_silences").fetchall()


def test_the_readmes_silence_example_silences_the_chatbot_alerts(store: Path) -> None:
    """Issue 23: `budget='chatbot-*' project='Support*'` matched nothing, because group
    matchers saw only `each` budgets' groups; chatbot-gpt-4o pins its project to
    proj_chatbot, whose name is "Support chatbot"."""
    code, out, err = bg(store, *_readme_silence(), now=HOT)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "matches 1 alert firing now:", out
    assert lines[1] == "  WARNING chatbot-gpt-4o threshold 80%"
    assert re.fullmatch(r"silence [0-9a-f]{8} until 2026-11-21T10:00:00\+00:00", lines[2])
    assert "warning" not in err
    code, out, err = bg(store, "check", "--offline", "--notify", "-f", "json", now=HOT)
    assert code in (0, 3), err
    alerts = json.loads(out)["alerts"]
    chatbot = [a for a in alerts if a["budget"] == "chatbot-gpt-4o"]
    assert chatbot and all(a["silenced"] for a in chatbot)
    assert not any(a["silenced"] for a in alerts if a["budget"] != "chatbot-gpt-4o")
    # the console notifier (stderr with -f json) told of the others, never of the chatbot
    assert "erin-week" in err and "chatbot-gpt-4o" not in err.replace("budget=chatbot-*", "")


def test_add_warns_when_it_matches_nothing_and_dry_run_adds_nothing(store: Path) -> None:
    code, out, err = bg(store, "silence", "add", "project=Nobody*", "--for", "1h", "--dry-run")
    assert code == 0, err
    assert out.splitlines() == ["matches 0 alerts firing now:", "dry run: no silence added"]
    assert "warning: this silence matches no alert firing now" in err
    assert _silences(store) == []
    code, out, err = here(store, "silence", "add", "budget=erin-*", "--for", "1h", "--dry-run")
    assert code == 0 and "  WARNING erin-week threshold 90%" in out, out
    assert _silences(store) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["budget=erin-week", "--for", "31d"],
        ["budget=erin-week", "--until", "2027-01-01T00:00:00Z"],
        ["budget=*", "--for", "1h"],
        ["budget=*", "severity=**", "--for", "1h"],
    ],
    ids=["31 days", "until next year", "match all", "match all twice"],
)
def test_a_long_or_match_all_silence_needs_force(store: Path, argv: list[str]) -> None:
    code, out, err = here(store, "silence", "add", *argv)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and "add --force if you mean it" in err, err
    assert _silences(store) == []
    code, out, err = here(store, "silence", "add", *argv, "--force")
    assert code == 0, err
    assert len(_silences(store)) == 1


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["budget=x", "--for", "1h", "--comment", "x" * 1001], "a comment is at most 1000"),
        (["budget=a\x07b", "--for", "1h"], "printable characters"),
        (["budget=" + "x" * 201, "--for", "1h"], "a glob of 1 to 200"),
        (["colour=red", "--for", "1h"], "KEY is one of"),
    ],
    ids=["long comment", "control character", "long glob", "unknown key"],
)
def test_a_silence_is_checked_before_it_is_written(store: Path, argv: list[str], says: str) -> None:
    code, _, err = here(store, "silence", "add", *argv)
    assert code == 2 and err.count("\n") == 1 and says in err, err
    assert _silences(store) == []


def test_a_malformed_stored_silence_is_skipped_with_a_warning_and_never_stops_a_check(
    store: Path,
) -> None:
    code, clean, _ = bg(store, "check", "--offline", "-f", "json", now=HOT)
    with sqlite3.connect(store / "store.db") as conn:
        for row in (
            ("bad-json", "[[", 0, 4102444800, "", 0),
            ("bad-key", '[["colour", "red"]]', 0, 4102444800, "", 0),
            ("bad-shape", '{"budget": "*"}', 0, 4102444800, "", 0),
            ("backwards", '[["budget", "*"]]', 4102444800, 5, "", 0),
            ("good", '[["budget", "chatbot-*"]]', 0, 4102444800, "kept", 0),
        ):
            conn.execute("INSERT INTO bg_silences VALUES (?, ?, ?, ?, ?, ?)", row)
    for argv in (["check", "--offline", "-f", "json"], ["check", "--offline", "--notify"]):
        again, out, err = bg(store, *argv, now=HOT)
        assert again == code, err
        for bad in ("bad-json", "bad-key", "bad-shape"):
            assert f"silence '{bad}' skipped: not a valid silence" in err, err
        if argv[-1] == "json":
            report = json.loads(out)
            assert [s["id"] for s in report["silences"]] == ["good"]
            assert len(report["alerts"]) == len(json.loads(clean)["alerts"])
    code, out, err = bg(store, "silence", "list", "--all")
    assert code == 0 and out.split()[0] == "good", (out, err)


def test_without_usable_rules_a_silence_is_still_added_and_says_it_cannot_preview(
    store: Path,
) -> None:
    """In an incident, on a machine pointed at the shared store without the rules file."""
    (store / "rules.yaml").unlink()
    code, out, err = bg(store, "silence", "add", "budget=chatbot-*", "--for", "1h")
    assert code == 0, err
    assert "warning: cannot preview what the silence matches" in err and "rules.yaml" in err
    assert out.startswith("silence ") and len(_silences(store)) == 1
