from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from budgetguard.settings import Settings, parse_instant

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
    (tmp_path / ".env").write_text(
        f"OPENAI_ADMIN_KEY={SECRET}\nBUDGETGUARD_NOW=2026-01-02T00:00:00Z\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "")  # a compose file's ${OPENAI_ADMIN_KEY:-}
    monkeypatch.setenv("BUDGETGUARD_OPENAI_ADMIN_KEY", "  ")
    monkeypatch.setenv("BUDGETGUARD_NOW", "")
    s = Settings()
    assert s.openai_admin_key is not None
    assert s.openai_admin_key.get_secret_value() == SECRET
    assert s.now is not None and s.now.year == 2026
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
