"""Configuration: one TOML file, with secrets optionally taken from the environment.

The file is named by ``--config PATH`` or ``COACHBRIDGE_CONFIG``. Every key has a
default, so an empty file (or none) runs the embedded default: an SQLite state
database in the working directory and no WordPress connection. Unknown keys and
invalid values are rejected at start with a message that names the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bridge.errors import ConfigError

CONFIG_ENV = "COACHBRIDGE_CONFIG"

# Secrets that may come from the environment instead of the file. A variable that
# is set wins over the file, so a deployment can keep the file free of secrets.
SECRET_ENV = {
    "COACHBRIDGE_STATE_DATABASE_URL": ("state", "database_url"),
    "COACHBRIDGE_WORDPRESS_DATABASE_URL": ("wordpress", "database_url"),
    "COACHBRIDGE_WEBHOOK_KEYS": ("webhooks", "keys"),
    "COACHBRIDGE_API_SECRETS": ("api", "secrets"),
}
LIST_ENV = {"COACHBRIDGE_WEBHOOK_KEYS", "COACHBRIDGE_API_SECRETS"}

DATABASE_URL_PATTERN = re.compile(r"^(sqlite(\+\w+)?|(mysql|mariadb)\+pymysql)://")
MIN_SECRET_LENGTH = 16
# config.example.toml's secrets start with this, so a copy that kept them is
# rejected instead of running with keys that everyone can read.
PLACEHOLDER_PREFIX = "replace-with-"
GENERATE_HINT = (
    "generate one, for example with: python3 -c "
    "'import secrets; print(secrets.token_urlsafe(32))'"
)
WEBHOOK_KEY_PATTERN = re.compile(r"[\x21-\x7e]+")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_database_url(value: str | None) -> str | None:
    if value is None:
        return value
    if not DATABASE_URL_PATTERN.match(value):
        raise ValueError(
            "expected an SQLAlchemy URL starting with sqlite://, mysql+pymysql:// "
            "or mariadb+pymysql:// (PyMySQL is the MySQL driver installed)"
        )
    # The parser's own message can quote parts of the URL, password included.
    try:
        make_url(value)
    except (ArgumentError, ValueError):
        raise ValueError(
            "the URL cannot be parsed: check that the port is a number and that "
            "special characters in the user name and password are percent-encoded"
        ) from None
    return value


def _check_state_database_url(value: str) -> str:
    # Each connection to an in-memory SQLite database gets a new, empty one, so
    # the tables that 'coachbridge db upgrade' creates would be gone at once.
    url = make_url(value)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise ValueError(
            "an in-memory SQLite database loses its tables when the connection "
            "closes, so give a file such as sqlite:///coachbridge.sqlite3"
        )
    return value


class StateSection(_Section):
    """The state database: coachbridge's own tables."""

    database_url: str = "sqlite:///coachbridge.sqlite3"

    _url = field_validator("database_url")(_check_database_url)
    _file = field_validator("database_url")(_check_state_database_url)


class WordPressSection(_Section):
    """The WordPress database read for members, roles and transactions."""

    database_url: str | None = None
    table_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")] = "wp_"

    _url = field_validator("database_url")(_check_database_url)


class WebhookSection(_Section):
    """Intake of MemberPress webhooks and retries of their processing."""

    keys: list[SecretStr] = []
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 1024 * 1024
    duplicate_window_hours: Annotated[int, Field(ge=0, le=24 * 30)] = 24
    retry_base_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    retry_max_seconds: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] = 3600.0
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = 50

    @field_validator("keys")
    @classmethod
    def _check_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for key in keys:
            value = key.get_secret_value()
            if value.startswith(PLACEHOLDER_PREFIX):
                raise ValueError(f"a key is the example's placeholder: {GENERATE_HINT}")
            if len(value) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"each key must be at least {MIN_SECRET_LENGTH} characters long"
                )
            # The key travels in an HTTP header. WSGI passes header values as
            # Latin-1 text (PEP 3333) and HTTP parsers strip surrounding spaces,
            # so a key with other characters would never match.
            if not WEBHOOK_KEY_PATTERN.fullmatch(value):
                raise ValueError(
                    "each key must be printable ASCII without spaces "
                    "(letters, digits and punctuation)"
                )
        return keys


class SchedulerSection(_Section):
    """Scheduled jobs: the full reconcile, inbox retries and nightly evaluation."""

    enabled: bool = True
    reconcile_interval_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 15
    inbox_interval_seconds: Annotated[int, Field(ge=1, le=3600)] = 5
    evaluate_delay_minutes: Annotated[int, Field(ge=0, le=12 * 60)] = 5
    misfire_grace_seconds: Annotated[int, Field(ge=1, le=24 * 3600)] = 300
    lock_timeout_seconds: Annotated[int, Field(ge=30, le=24 * 3600)] = 1800


class ServerSection(_Section):
    """The HTTP listener of ``coachbridge serve``."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8765


class LoggingSection(_Section):
    """Log level and format; handlers are set up by the command line only."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class CoachingSection(_Section):
    """Site-wide coaching settings."""

    off_track_threshold: Annotated[int, Field(ge=1, le=60)] = 3
    messaging_enabled: bool = True


class ApiSection(_Section):
    """Signed requests from the WordPress plugin."""

    secrets: list[SecretStr] = []
    clock_skew_seconds: Annotated[int, Field(ge=5, le=3600)] = 300

    @field_validator("secrets")
    @classmethod
    def _long_secrets(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        for secret in secrets:
            if secret.get_secret_value().startswith(PLACEHOLDER_PREFIX):
                raise ValueError(
                    f"a secret is the example's placeholder: {GENERATE_HINT}"
                )
            if len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"each secret must be at least {MIN_SECRET_LENGTH} characters long"
                )
        return secrets


class Config(_Section):
    """The whole configuration, built once at start and passed around."""

    state: StateSection = StateSection()
    wordpress: WordPressSection = WordPressSection()
    webhooks: WebhookSection = WebhookSection()
    scheduler: SchedulerSection = SchedulerSection()
    server: ServerSection = ServerSection()
    logging: LoggingSection = LoggingSection()
    coaching: CoachingSection = CoachingSection()
    api: ApiSection = ApiSection()
    demo: bool = False

    def webhook_keys(self) -> list[str]:
        """Return the accepted webhook keys as plain strings."""
        return [key.get_secret_value() for key in self.webhooks.keys]


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Read the TOML file (if any), apply environment secrets and validate."""
    environ = dict(os.environ) if environ is None else environ
    if path is None:
        path = environ.get(CONFIG_ENV) or None

    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        data = _read_toml(Path(path))
        source = str(path)

    _apply_environment(data, environ)
    return config_from_mapping(data, source=source)


def config_from_mapping(data: dict[str, Any], source: str = "mapping") -> Config:
    """Validate an already parsed mapping, raising ConfigError on the first problems."""
    if "demo" in data:
        raise ConfigError(f"{source}: demo mode is set by 'coachbridge demo' only")
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"configuration file {str(path)!r} not found") from None
    except IsADirectoryError:
        raise ConfigError(
            f"configuration file {str(path)!r} is a directory: name the TOML file"
        ) from None
    except OSError as error:
        raise ConfigError(
            f"cannot read configuration file {str(path)!r}: {error.strerror}"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: invalid TOML: the file is not UTF-8 text "
            f"({error.reason} at byte {error.start}); save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None


def _apply_environment(data: dict[str, Any], environ: dict[str, str]) -> None:
    for variable, (section, key) in SECRET_ENV.items():
        value = environ.get(variable)
        if not value:
            continue
        if variable in LIST_ENV:
            parsed: Any = [part.strip() for part in value.split(",") if part.strip()]
        else:
            parsed = value
        target = data.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"[{section}] must be a table to receive {variable}")
        target[key] = parsed


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (check its spelling and section)")
            continue
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        shown = "<hidden>" if _is_secret(key) else repr(value)
        lines.append(f"  {key}: {message}; got {shown}")
    return "\n".join(lines)


def _is_secret(key: str) -> bool:
    return key.startswith(("webhooks.keys", "api.secrets")) or key.endswith(
        "database_url"
    )
