from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from budgetguard.settings import DotenvRefused, Settings, SettingsInputError, parse_instant

SECRET = "sk-admin-very-secret-value"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "OPENAI_ADMIN_KEY",
        "BUDGETGUARD_OPENAI_ADMIN_KEY",
        "BUDGETGUARD_NOW",
        "BUDGETGUARD_RULES",
        "BUDGETGUARD_DATABASE_URL",
        "BUDGETGUARD_HTTP_PORT",
        "BUDGETGUARD_OPENAI_BASE_URL",
        "BUDGETGUARD_SECRETS_DIR",
        "BUDGETGUARD_OPENAI_ACTION_KEY",
        "BUDGETGUARD_ACTIONS",
        "BUDGETGUARD_HTTP_HOST",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_match_the_contract() -> None:
    s = Settings()
    assert s.openai_admin_key is None
    assert s.openai_base_url == "https://api.openai.com/v1"
    assert s.rules == Path("rules.yaml")
    assert s.database_url.startswith("sqlite:///")
    assert s.http_port == 9464
    assert s.now is None
    assert s.http_host == "0.0.0.0"
    assert s.actions is False and s.openai_action_key is None and s.action_key is None


@pytest.mark.parametrize("var", ["OPENAI_ADMIN_KEY", "BUDGETGUARD_OPENAI_ADMIN_KEY"])
def test_admin_key_from_either_name_is_secret(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, SECRET)
    s = Settings()
    assert s.openai_admin_key is not None
    assert s.openai_admin_key.get_secret_value() == SECRET
    assert SECRET not in repr(s)
    assert SECRET not in str(s)
    assert SECRET not in s.model_dump_json()


def test_environment_then_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "BUDGETGUARD_HTTP_PORT=9999\nBUDGETGUARD_RULES=from-dotenv.yaml\n"
        f"OPENAI_ADMIN_KEY={SECRET}\n"
    )
    monkeypatch.setenv("BUDGETGUARD_RULES", "from-env.yaml")
    s = Settings()
    assert s.http_port == 9999
    assert s.rules == Path("from-env.yaml")
    assert s.openai_admin_key is not None


def test_now_is_aware_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUDGETGUARD_NOW", "2026-11-22T11:00:00+01:00")
    s = Settings()
    assert s.now == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert s.clock() == s.now


def test_naive_and_z_instants_are_utc() -> None:
    assert parse_instant("2026-11-22T10:00:00") == datetime(2026, 11, 22, 10, tzinfo=UTC)
    assert parse_instant("2026-11-22T10:00:00Z") == datetime(2026, 11, 22, 10, tzinfo=UTC)
    assert parse_instant("2026-11-22") == datetime(2026, 11, 22, tzinfo=UTC)


def test_bad_values_say_what(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUDGETGUARD_NOW", "yesterday")
    with pytest.raises(ValidationError, match="ISO 8601"):
        Settings()
    monkeypatch.delenv("BUDGETGUARD_NOW")
    monkeypatch.setenv("BUDGETGUARD_OPENAI_BASE_URL", "api.openai.com")
    with pytest.raises(ValidationError, match="http"):
        Settings()


def test_base_url_trailing_slash_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUDGETGUARD_OPENAI_BASE_URL", "http://127.0.0.1:8787/v1/")
    assert Settings().openai_base_url == "http://127.0.0.1:8787/v1"


def test_names_in_any_case_and_the_environment_before_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("OPENAI_ADMIN_KEY=from-dotenv\nbudgetguard_http_port=1234\n")
    monkeypatch.setenv("BUDGETGUARD_OPENAI_ADMIN_KEY", SECRET)
    monkeypatch.setenv("budgetguard_database_url", "sqlite:///lower.db")
    s = Settings()
    assert s.openai_admin_key is not None
    assert s.openai_admin_key.get_secret_value() == SECRET  # any name in the environment wins
    assert s.http_port == 1234
    assert s.database_url == "sqlite:///lower.db"


def test_an_empty_key_in_the_environment_does_not_hide_the_dotenv_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(f"OPENAI_ADMIN_KEY={SECRET}\nBUDGETGUARD_HTTP_PORT=1234\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "")  # a compose file's ${OPENAI_ADMIN_KEY:-}
    monkeypatch.setenv("BUDGETGUARD_OPENAI_ADMIN_KEY", "  ")
    monkeypatch.setenv("BUDGETGUARD_HTTP_PORT", "")
    monkeypatch.setenv("BUDGETGUARD_NOW", "")
    s = Settings()
    assert s.openai_admin_key is not None
    assert s.openai_admin_key.get_secret_value() == SECRET
    assert s.http_port == 1234 and s.now is None
    (tmp_path / ".env").unlink()
    assert Settings().openai_admin_key is None  # empty and nothing else: unset, as before


def test_values_given_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUDGETGUARD_DATABASE_URL", "sqlite:///env.db")
    monkeypatch.setenv("BUDGETGUARD_HTTP_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="http_port"):
        Settings()
    s = Settings(database_url="sqlite:///flag.db", http_port=1)
    assert s.database_url == "sqlite:///flag.db"
    assert s.http_port == 1


@pytest.mark.parametrize(
    "variable", ["BUDGETGUARD_OPENAI_BASE_URL", "BUDGETGUARD_NOW", "budgetguard_secrets_dir"]
)
def test_a_dotenv_may_not_redirect_the_key_or_the_clock(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    """A CI workspace's .env must not send the admin key elsewhere or move the clock; the
    same variables in the environment (or as flags) are fine."""
    values = {
        "budgetguard_openai_base_url": "http://attacker.example/v1",
        "budgetguard_now": "2026-11-01T00:00:00Z",
        "budgetguard_secrets_dir": str(tmp_path),
    }
    (tmp_path / ".env").write_text(f"{variable}={values[variable.lower()]}\n")
    with pytest.raises(DotenvRefused, match=rf"^\.env sets {variable.upper()}: a \.env may not"):
        Settings()
    (tmp_path / ".env").write_text(f"{variable}=\n")  # blank: unset, not refused
    assert Settings().openai_base_url == "https://api.openai.com/v1"
    (tmp_path / ".env").unlink()
    monkeypatch.setenv(variable, values[variable.lower()])
    Settings()  # from the environment: taken


def _secrets(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir(exist_ok=True)
    for name, value in files.items():
        (folder / name).write_text(value)
    return folder


def test_a_secrets_directory_sets_what_the_environment_and_dotenv_do_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = _secrets(
        tmp_path,
        OPENAI_ADMIN_KEY=SECRET + "\n",  # a file's trailing newline is not the key's
        budgetguard_database_url="sqlite:///secret.db",
        BUDGETGUARD_HTTP_PORT="7000",
        BUDGETGUARD_OPENAI_ACTION_KEY="sk-admin-writer",
    )
    monkeypatch.setenv("BUDGETGUARD_SECRETS_DIR", str(folder))
    (tmp_path / ".env").write_text("BUDGETGUARD_HTTP_PORT=7001\n")
    s = Settings()
    assert s.openai_admin_key is not None and s.openai_admin_key.get_secret_value() == SECRET
    assert s.database_url == "sqlite:///secret.db"
    assert s.http_port == 7001  # .env before the secrets
    assert s.action_key is not None and s.action_key.get_secret_value() == "sk-admin-writer"
    monkeypatch.setenv("BUDGETGUARD_DATABASE_URL", "sqlite:///env.db")
    assert Settings().database_url == "sqlite:///env.db"  # the environment before them
    assert SECRET not in repr(Settings())


def test_a_secrets_directory_that_is_not_one_is_bad_input(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BUDGETGUARD_SECRETS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(SettingsInputError, match=r"BUDGETGUARD_SECRETS_DIR: .* not a directory"):
        Settings()


def test_the_action_key_defaults_to_the_admin_key_and_actions_are_on_or_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", SECRET)
    s = Settings()
    assert s.action_key is not None and s.action_key.get_secret_value() == SECRET
    for value, expected in (("on", True), ("off", False), ("ON", True)):
        monkeypatch.setenv("BUDGETGUARD_ACTIONS", value)
        assert Settings().actions is expected
    monkeypatch.setenv("BUDGETGUARD_ACTIONS", "maybe")
    with pytest.raises(ValidationError, match="actions"):
        Settings()
    monkeypatch.setenv("BUDGETGUARD_HTTP_HOST", "127.0.0.1")
    monkeypatch.setenv("BUDGETGUARD_ACTIONS", "off")
    assert Settings().http_host == "127.0.0.1"


#: Copy-paste accidents: each makes a key that cannot go in an HTTP header.
BAD_KEYS = {
    "nbsp": SECRET + "\u00a0",
    "zero-width space": SECRET[:10] + "\u200b" + SECRET[10:],
    "curly quotes": "\u201c" + SECRET + "\u201d",
    "inner space": SECRET[:10] + " " + SECRET[10:],
    "newline inside": SECRET[:10] + "\n" + SECRET[10:],
    "control": SECRET + "\x07",
}


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
@pytest.mark.parametrize("where", ["environment", "dotenv", "secrets", "action key"])
def test_a_key_that_cannot_go_in_a_header_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, key: str, where: str
) -> None:
    if where == "environment":
        monkeypatch.setenv("OPENAI_ADMIN_KEY", key)
    elif where == "dotenv":
        (tmp_path / ".env").write_text(f'OPENAI_ADMIN_KEY="{key}"\n')
    elif where == "secrets":
        monkeypatch.setenv("BUDGETGUARD_SECRETS_DIR", str(_secrets(tmp_path, OPENAI_ADMIN_KEY=key)))
        if key == BAD_KEYS["nbsp"]:  # a secret file is stripped (pydantic-settings): usable
            found = Settings().openai_admin_key
            assert found is not None and found.get_secret_value() == SECRET
            return
    else:
        monkeypatch.setenv("BUDGETGUARD_OPENAI_ACTION_KEY", key)
    with pytest.raises(ValidationError) as caught:
        Settings()
    shown = str(caught.value) + repr(caught.value.errors(include_input=False))
    assert "holds a character that cannot be sent" in shown and "HTTP header" in shown
    assert SECRET[10:] not in shown and SECRET[:10] not in shown


def test_the_command_line_says_which_variable_in_one_line_and_never_the_key(
    tmp_path: Path,
) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGETGUARD_", "OPENAI"))}
    (tmp_path / "rules.yaml").write_text("version: 1\nbudgets: []\n")
    for variable, argv in (
        ("OPENAI_ADMIN_KEY", ["check", "--offline"]),
        ("OPENAI_ADMIN_KEY", ["collect"]),
        ("OPENAI_ADMIN_KEY", ["run"]),
        ("BUDGETGUARD_OPENAI_ACTION_KEY", ["check"]),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "budgetguard", *argv],
            env={**env, variable: "\u201c" + SECRET + "\u201d"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, (argv, done.stderr)
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith(
            f"budgetguard: bad setting: {variable}: it holds a character that cannot be sent "
            "(U+201C LEFT DOUBLE QUOTATION MARK) at its start"
        ), done.stderr
        assert SECRET[10:] not in done.stdout + done.stderr
    (tmp_path / ".env").write_text("BUDGETGUARD_OPENAI_BASE_URL=http://attacker.example/v1\n")
    done = subprocess.run(
        [sys.executable, "-m", "budgetguard", "check"],
        env={**env, "OPENAI_ADMIN_KEY": SECRET},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "budgetguard: .env sets BUDGETGUARD_OPENAI_BASE_URL" in done.stderr
