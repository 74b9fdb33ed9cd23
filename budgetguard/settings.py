"""Process settings, through pydantic-settings (see the contract's settings table).

Precedence: command-line flags (given to ``Settings(...)``), then environment variables, then
``.env`` in the working directory, then files in the secrets directory (Docker and
Kubernetes secrets: ``BUDGETGUARD_SECRETS_DIR``, by default ``/run/secrets`` when it exists;
a file is named after its variable, ``OPENAI_ADMIN_KEY``), then the defaults below. Names
are matched in any case; a blank value counts as unset (a compose file's ``${KEY:-}``).
A ``.env`` may not set ``BUDGETGUARD_OPENAI_BASE_URL``, ``BUDGETGUARD_NOW`` or
``BUDGETGUARD_SECRETS_DIR``: a CI workspace's ``.env`` is not trusted to redirect the admin
key or the clock (``DotenvRefused``). Secrets are ``SecretStr`` so they never show in a
repr, a log line or an error (``hide_input_in_errors``); a key used in an HTTP header must be
printable ASCII (a pasted NBSP or curly quote is bad input, named without the key).

Importing pydantic-settings costs a cold ``check`` about a fifth of its time (it imports
asyncio), so this module is imported only when settings are built, never by ``--help``,
``--version`` or a module that only names ``Settings`` in a type.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DOTENV_REFUSED",
    "EARLIEST",
    "LATEST",
    "DotenvRefused",
    "Settings",
    "SettingsInputError",
    "parse_instant",
    "read_dotenv",
    "variable_name",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


#: Instants budgetguard can compute with (windows before, periods after): the API's data
#: starts in the 2020s, and the Unix epoch is the store's origin.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
#: A ``--now`` more than this many seconds before the wall clock is in the past (a bound).
PAST_AFTER = 3600


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
    from dotenv.parser import parse_stream

    from budgetguard.small_file import read_small_text

    text = read_small_text(path, MAX_DOTENV_BYTES)
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            _say_unparsable(path, binding.original.line)
    logging.getLogger("dotenv.main").addFilter(_not_a_parse_warning)  # said above, once
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}


#: (file, line) of the unparsable ``.env`` lines already said in this process
_SAID: set[tuple[str, int]] = set()


def _say_unparsable(path: str, line: int) -> None:
    """One ``budgetguard:`` line per unparsable line of a ``.env`` (read more than once per
    command), naming the file and line, never its text (it may hold a secret)."""
    if (path, line) not in _SAID:
        _SAID.add((path, line))
        sys.stderr.write(
            f"budgetguard: {path}:{line}: warning: not a NAME=value statement, ignored\n"
        )


def _not_a_parse_warning(record: logging.LogRecord) -> bool:
    """python-dotenv's own warning for such a line (a timestamped log line, twice)."""
    return not str(record.msg).startswith("python-dotenv could not parse")


#: The largest ``.env`` read.
MAX_DOTENV_BYTES = 1024 * 1024


#: Settings a ``.env`` may not set (by variable): where the admin key is sent, the clock,
#: and where secrets come from (which could set either).
DOTENV_REFUSED = (
    "BUDGETGUARD_OPENAI_BASE_URL",
    "BUDGETGUARD_NOW",
    "BUDGETGUARD_SECRETS_DIR",
)
_SECRETS_DIR_DEFAULT = Path("/run/secrets")
_PREFIX = "BUDGETGUARD_"
#: the admin key's variables, first match wins (the contract's name and its alias)
_ADMIN_KEY = AliasChoices("openai_admin_key", "budgetguard_openai_admin_key")


#: Queries a collection runs at once: every query of a backfill (11 endpoints, hourly and
#: daily, costs, minutes) is then in flight together, and one query asks one page at a time.
MAX_IN_FLIGHT = 24


class SettingsInputError(ValueError):
    """A setting's source is not usable (bad input, exit 2): the text says which and why."""


class DotenvRefused(SettingsInputError):
    """``.env`` sets what only the environment or a flag may set."""


def variable_name(field: str) -> str:
    """The environment variable of a setting (its field name, or an alias), for messages."""
    if field in _ADMIN_KEY.choices:
        return "OPENAI_ADMIN_KEY"
    name = field.upper()
    return name if name.startswith(_PREFIX) else _PREFIX + name


def _set(values: Mapping[str, str]) -> dict[str, str]:
    """Variables by lower-case name, blank ones left out (unset)."""
    return {k.lower(): v for k, v in values.items() if v.strip()}


class _Variables(EnvSettingsSource):
    """Variables from a mapping (the environment, or what ``.env`` sets), blank ones unset;
    the admin key is returned under its field name whichever name set it, so a source
    earlier in the precedence wins over a later one whatever the spelling."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, str]) -> None:
        self._values = _set(values)
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._values

    def __call__(self) -> dict[str, Any]:
        found = super().__call__()
        for alias in _ADMIN_KEY.choices[1:]:
            if isinstance(alias, str) and alias in found:
                found.setdefault("openai_admin_key", found.pop(alias))
        return found


def _secrets_dir(environ: Mapping[str, str]) -> Path | None:
    """``BUDGETGUARD_SECRETS_DIR`` from the environment (a directory), else ``/run/secrets``
    when it exists."""
    given = _set(environ).get("budgetguard_secrets_dir")
    if given is None:
        return _SECRETS_DIR_DEFAULT if _SECRETS_DIR_DEFAULT.is_dir() else None
    path = Path(given.strip())
    if not path.is_dir():
        raise SettingsInputError(f"BUDGETGUARD_SECRETS_DIR: {path} is not a directory")
    return path


def _header_safe(value: Any) -> Any:
    """A key that goes in an HTTP header: printable ASCII, no spaces inside (ASCII blanks
    around it, a file's trailing newline, are dropped). The error names the character and
    where it is (``header_safe``, shared with the client and the notifiers), never the key."""
    if value is None:
        return None
    text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    text = text.strip(" \t\r\n")
    if not text:
        return None
    from budgetguard.header_safe import header_problem

    problem = header_problem(text)
    if problem is not None:
        raise ValueError(f"{problem} (it goes in an HTTP header)")
    return SecretStr(text)


class Settings(BaseSettings):
    """budgetguard's settings; every field can be set by the variable named in the contract.
    ``Settings(**values)`` reads the environment, ``.env`` and the secrets directory;
    ``values`` (the command-line flags) win."""

    model_config = SettingsConfigDict(
        env_prefix=_PREFIX,
        case_sensitive=False,
        extra="ignore",
        hide_input_in_errors=True,  # a secret's value never reaches an error's text
        populate_by_name=True,
    )

    openai_admin_key: SecretStr | None = Field(
        default=None,
        validation_alias=_ADMIN_KEY,
        description="Admin key (sk-admin-...) with the api.usage.read scope.",
    )
    openai_base_url: str = Field(default=DEFAULT_BASE_URL, description="API base, ending in /v1.")
    rules: Path = Field(default=Path("rules.yaml"), description="The rules file.")
    database_url: str = Field(
        default="sqlite:///budgetguard.db", description="SQLAlchemy URL of the store."
    )
    http_port: int = Field(default=9464, ge=0, le=65535, description="Port of /healthz, /metrics.")
    http_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - for probes and scrapers, as the contract says
        min_length=1,
        description="Address run's HTTP port listens on.",
    )
    now: datetime | None = Field(default=None, description="Fixed 'now' (ISO 8601) for replays.")
    collect_deadline: float = Field(
        default=120.0,
        gt=0,
        description="Seconds one collection may take; unfinished queries then fail (exit 3).",
    )
    max_in_flight: int = Field(
        default=MAX_IN_FLIGHT,
        ge=1,
        le=64,
        description="Requests a collection has in flight at once (one per query): a backfill's "
        "queries all at once by default, within the API's politeness.",
    )
    notify_retry_within: float = Field(
        default=20.0,
        ge=0,
        le=600,
        description="Seconds check --notify, digest --send and notify-test retry temporary "
        "delivery failures before leaving them queued.",
    )
    secrets_dir: Path | None = Field(
        default=None,
        description="Directory of files named after settings (read from the environment only).",
    )
    actions: bool = Field(
        default=False, description="on: actions with enforce: true may write (else dry-run)."
    )
    openai_action_key: SecretStr | None = Field(
        default=None,
        description="Admin key used only for actions and controls apply (default: the admin key).",
    )
    action_lease: float = Field(
        default=300.0,
        ge=1,
        le=3600,
        description="Seconds a process holds an action it is applying; longer than its calls "
        "take, so a replica takes it over only from a process that died.",
    )
    action_link_secret: SecretStr | None = Field(
        default=None,
        description="Secret that signs the approval links of actions (none: no links).",
    )
    public_url: str | None = Field(
        default=None,
        description="Where people reach run's HTTP port (approval links start with it).",
    )

    #: field -> the command-line flag that set it (``given_by_flags``), for messages
    _flags: dict[str, str] = PrivateAttr(default_factory=dict)

    def given_by_flags(self, flags: Mapping[str, str]) -> Settings:
        """Record which fields the command line set (field -> its flag); ``self``."""
        self._flags = dict(flags)
        return self

    def source_name(self, field: str) -> str:
        """Where a field's value came from, for a message: its flag, else its variable."""
        return self._flags.get(field) or variable_name(field)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags, the environment, ``.env`` (minus what it may not set), the secrets."""
        dotenv = _set(read_dotenv())
        refused = [v for v in DOTENV_REFUSED if v.lower() in dotenv]
        if refused:
            raise DotenvRefused(
                f".env sets {', '.join(refused)}: a .env may not change where the admin key "
                "is sent or what time it is (a CI workspace is not trusted to); set it in the "
                "environment or with a flag"
            )
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            _Variables(settings_cls, os.environ),
            _Variables(settings_cls, dotenv),
        ]
        secrets = _secrets_dir(os.environ)
        if secrets is not None:
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=secrets))
        return tuple(sources)

    @field_validator("now", mode="before")
    @classmethod
    def _parse_now(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, str | datetime):
            return parse_instant(value)
        return value

    @field_validator("openai_admin_key", "openai_action_key", mode="before")
    @classmethod
    def _header_safe_key(cls, value: Any) -> Any:
        return _header_safe(value)

    @field_validator("openai_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL ending in /v1, got {value!r}")
        return value

    @property
    def action_key(self) -> SecretStr | None:
        """The key actions and ``controls apply`` write with: their own, else the admin key."""
        return self.openai_action_key or self.openai_admin_key

    def now_ahead_of_clock(self) -> bool:
        """A fixed ``now`` later than the wall clock: bad input for anything that collects
        (the future cannot be collected, and must never be marked as covered)."""
        return self.now is not None and self.now > datetime.now(UTC)

    def fixed_past(self, now: datetime) -> bool:
        """``now`` is a fixed ``--now`` more than an hour before the wall clock (CI,
        backtests): a bound that cuts its hour and its UTC day (``plan_queries(past=)``),
        where at the clock the API's own current bucket ends. One under an hour back is
        taken as the clock (a trial's frozen simulator just behind it; at most that hour's
        share of a costs day over-counts, never under, as ``evaluate.attribution`` says)."""
        if self.now is None or now > self.now:
            return False
        return now < datetime.now(UTC) - timedelta(seconds=PAST_AFTER)

    @property
    def clock_blocks_actions(self) -> bool:
        """A fixed ``--now`` (flag or ``BUDGETGUARD_NOW``) against OpenAI's own API: a
        made-up clock never writes or reverts a live control (actions stay dry-run). Against
        any other base (the simulator, a fake) the clock may be fixed, so that the whole life
        of an action can be tried and tested."""
        if self.now is None:
            return False
        host = (urlsplit(self.openai_base_url).hostname or "").lower()
        return host == "openai.com" or host.endswith(".openai.com")

    @property
    def actions_write(self) -> bool:
        """The environment's lock is open: ``BUDGETGUARD_ACTIONS=on`` and a real clock
        wherever the writes would go to OpenAI."""
        return self.actions and not self.clock_blocks_actions

    def clock(self) -> datetime:
        """The instant to evaluate at: the fixed ``now`` when set, else the wall clock (UTC)."""
        return self.now if self.now is not None else datetime.now(UTC)
