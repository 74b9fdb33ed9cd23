"""Process settings from the environment and ``.env`` (see the contract's settings table).

Precedence: command-line flags (applied by the CLI on top), then environment variables, then
``.env`` in the working directory, then the defaults below; variable names are matched
without regard to case, as pydantic-settings does. The variables are gathered here and
checked by a plain pydantic model: pydantic-settings did the same with a third of a cold
``check``'s overhead (its import pulls in asyncio and its cloud sources). Secrets are
``SecretStr`` so they never show in a repr, a log line or an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = [
    "DEFAULT_BASE_URL",
    "EARLIEST",
    "LATEST",
    "Settings",
    "parse_instant",
    "read_dotenv",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


#: Instants budgetguard can compute with (windows before, periods after): the API's data
#: starts in the 2020s, and the Unix epoch is the store's origin.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def parse_instant(value: str | datetime) -> datetime:
    """Parse an ISO 8601 instant; a value without an offset is taken as UTC. Returns UTC,
    between 1970 and 2200 (ValueError otherwise)."""
    if isinstance(value, datetime):
        parsed = value
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(
                f"not an ISO 8601 date or time: {value!r} (example: 2026-11-22T10:00:00Z)"
            ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        parsed = LATEST  # year 1 or 9999 with an offset: out of range, as said below
    if not EARLIEST <= parsed < LATEST:
        raise ValueError(f"{value!s} is out of range: use a time between 1970 and 2200")
    return parsed


def read_dotenv(path: str = ".env") -> dict[str, str]:
    """The variables ``.env`` sets (none when there is no such file); ``OSError`` or
    ``UnicodeDecodeError`` when it cannot be read (a FIFO, a device, or larger than
    ``MAX_DOTENV_BYTES``: ``small_file``)."""
    if not os.path.exists(path):
        return {}
    import io

    from dotenv import dotenv_values

    from budgetguard.small_file import read_small_text

    text = io.StringIO(read_small_text(path, MAX_DOTENV_BYTES))
    return {k: v for k, v in dotenv_values(stream=text).items() if v is not None}


#: The largest ``.env`` read.
MAX_DOTENV_BYTES = 1024 * 1024


#: The variables of each setting, first match wins (the admin key has two names).
_VARIABLES = {
    "openai_admin_key": ("openai_admin_key", "budgetguard_openai_admin_key"),
}


#: Settings an empty value leaves unset: an empty ``OPENAI_ADMIN_KEY=`` (a compose file's
#: ``${KEY:-}``) does not hide the key ``.env`` sets.
_EMPTY_IS_UNSET = frozenset({"openai_admin_key", "now"})


def _from_environment(environ: Mapping[str, str], dotenv: Mapping[str, str]) -> dict[str, str]:
    """Each setting's value from the environment, else from ``.env`` (names in any case)."""
    sources = [{k.lower(): v for k, v in source.items()} for source in (environ, dotenv)]
    found: dict[str, str] = {}
    for name in Settings.model_fields:
        variables = _VARIABLES.get(name, (f"budgetguard_{name}",))
        skip_empty = name in _EMPTY_IS_UNSET
        value = next(
            (
                s[v]
                for s in sources
                for v in variables
                if v in s and not (skip_empty and not s[v].strip())
            ),
            None,
        )
        if value is not None:
            found[name] = value
    return found


class Settings(BaseModel):
    """budgetguard's settings; every field can be set by the variable named in the contract.
    ``Settings(**values)`` reads the environment and ``.env``; ``values`` win."""

    model_config = ConfigDict(extra="ignore")

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**_from_environment(os.environ, read_dotenv()), **values})

    openai_admin_key: SecretStr | None = Field(
        default=None, description="Admin key (sk-admin-...) with the api.usage.read scope."
    )
    openai_base_url: str = Field(default=DEFAULT_BASE_URL, description="API base, ending in /v1.")
    rules: Path = Field(default=Path("rules.yaml"), description="The rules file.")
    database_url: str = Field(
        default="sqlite:///budgetguard.db", description="SQLAlchemy URL of the store."
    )
    http_port: int = Field(default=9464, ge=0, le=65535, description="Port of /healthz, /metrics.")
    http_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - probes and scrapers reach it from outside
        min_length=1,
        description="Address the HTTP port listens on (127.0.0.1: this host only).",
    )
    now: datetime | None = Field(default=None, description="Fixed 'now' (ISO 8601) for replays.")
    collect_deadline: float = Field(
        default=120.0,
        gt=0,
        description="Seconds one collection may take; unfinished queries then fail (exit 3).",
    )
    notify_retry_within: float = Field(
        default=20.0,
        ge=0,
        le=600,
        description="Seconds check --notify, digest --send and notify-test retry temporary "
        "delivery failures before leaving them queued.",
    )

    @field_validator("now", mode="before")
    @classmethod
    def _parse_now(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, str | datetime):
            return parse_instant(value)
        return value

    @field_validator("openai_admin_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value is None or (isinstance(value, str) and not value.strip()) else value

    @field_validator("openai_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL ending in /v1, got {value!r}")
        return value

    def now_ahead_of_clock(self) -> bool:
        """A fixed ``now`` later than the wall clock: bad input for anything that collects
        (the future cannot be collected, and must never be marked as covered)."""
        return self.now is not None and self.now > datetime.now(UTC)

    def clock(self) -> datetime:
        """The instant to evaluate at: the fixed ``now`` when set, else the wall clock (UTC)."""
        return self.now if self.now is not None else datetime.now(UTC)
