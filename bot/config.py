"""Settings read from the environment (and `.env`), per DESIGN §4.

A bad value stops start-up with one line naming the variable: `ConfigError` carries that line
and the CLI prints it and exits with code 2.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(Exception):
    """A configuration value is unusable; the message names the variable."""


def check_timezone(name: str) -> str:
    """Return `name` if it is an IANA timezone, else raise ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown timezone {name!r} (use an IANA name like Europe/London)"
        ) from exc
    return name


_SWITCH = ("on", "off", "true", "false", "1", "0", "yes", "no")


class Settings(BaseSettings):
    """Everything an operator can set; defaults run the bot with nothing configured."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite:///plnbot.db", alias="DATABASE_URL")

    slack_bot_token: str | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: str | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: str | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_client_id: str | None = Field(None, alias="SLACK_CLIENT_ID")
    slack_client_secret: str | None = Field(None, alias="SLACK_CLIENT_SECRET")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    slack_endorse_reaction: str = Field("star", alias="PLNBOT_ENDORSE_REACTION")
    # Fernet key(s) for the Slack tokens OAuth installs store; the first encrypts, all decrypt.
    # After the Slack fields: its validator reads them (validate_default: it runs when unset).
    token_key: str | None = Field(None, alias="PLNBOT_TOKEN_KEY", validate_default=True)

    microsoft_app_id: str | None = Field(None, alias="MICROSOFT_APP_ID")
    microsoft_app_password: str | None = Field(None, alias="MICROSOFT_APP_PASSWORD")
    microsoft_app_tenant_id: str | None = Field(None, alias="MICROSOFT_APP_TENANT_ID")
    microsoft_app_type: str = Field("MultiTenant", alias="MICROSOFT_APP_TYPE")

    openai_api_key: str | None = Field(None, alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, alias="OPENAI_BASE_URL")
    llm_model: str = Field("gpt-4o-mini", alias="PLNBOT_LLM_MODEL")
    llm: str = Field("on", alias="PLNBOT_LLM")
    llm_timeout: float = Field(10.0, alias="PLNBOT_LLM_TIMEOUT", gt=0)
    llm_max_tokens: int = Field(300, alias="PLNBOT_LLM_MAX_TOKENS", gt=0)
    llm_weekly_tokens: int = Field(50_000, alias="PLNBOT_LLM_WEEKLY_TOKENS", ge=0)

    timezone: str = Field("UTC", alias="PLNBOT_TIMEZONE")
    nudge_hours: float = Field(24.0, alias="PLNBOT_NUDGE_HOURS", gt=0)
    holidays: str | None = Field(None, alias="PLNBOT_HOLIDAYS")
    slack_rate: float = Field(20.0, alias="PLNBOT_SLACK_RATE", gt=0)
    coaches: str = Field("", alias="PLNBOT_COACHES")
    log_level: str = Field("INFO", alias="PLNBOT_LOG_LEVEL")
    secret_key: str | None = Field(None, alias="PLNBOT_SECRET_KEY")
    public_url: str | None = Field(None, alias="PLNBOT_PUBLIC_URL")
    dashboard_link_days: int = Field(7, alias="PLNBOT_DASHBOARD_LINK_DAYS", ge=1, le=90)
    # The smallest group whose counts, bands or averages a coach sees (bot/scoring/small_groups.py).
    min_group: int = Field(5, alias="PLNBOT_MIN_GROUP")

    # The event runtime (README: "How events flow").
    workers: int = Field(8, alias="PLNBOT_WORKERS", ge=1, le=64)
    # `serve --processes`: serve processes on one host (plnbot/processes.py); each paces its
    # messages to its share of the platforms' limits.
    processes: int = Field(1, alias="PLNBOT_PROCESSES", ge=1, le=64)
    send_concurrency: int = Field(32, alias="PLNBOT_SEND_CONCURRENCY", ge=1, le=256)
    inbox_limit: int = Field(5000, alias="PLNBOT_INBOX_LIMIT", ge=10)
    shutdown_grace: float = Field(10.0, alias="PLNBOT_SHUTDOWN_GRACE", ge=0, le=600)
    retention_days: int = Field(30, alias="PLNBOT_RETENTION_DAYS", ge=1, le=3650)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {value!r}") from exc
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("only sqlite:/// and postgresql+psycopg:// URLs are supported")
        return value

    @field_validator("public_url")
    @classmethod
    def _valid_public_url(cls, value: str | None) -> str | None:
        """Dashboard links are built on it: a typo would send every link nowhere."""
        if value is None or not value.strip():
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"not a web address: {value!r} (expected like https://pln.example.org)"
            )
        return value.strip().rstrip("/")

    @field_validator("llm")
    @classmethod
    def _valid_llm(cls, value: str) -> str:
        if value.strip().lower() not in _SWITCH:
            raise ValueError(f"expected on or off, not {value!r}")
        return value.strip().lower()

    @field_validator("holidays")
    @classmethod
    def _valid_holidays(cls, value: str | None) -> str | None:
        """A country (and optional subdivision) the `holidays` package knows: `US`, `US-CA`."""
        if value is None or not value.strip():
            return None
        country, _, subdivision = value.strip().upper().partition("-")
        try:
            import holidays
        except ImportError:
            raise ValueError("needs the holidays package: pip install 'plnbot[holidays]'") from None
        try:
            holidays.country_holidays(country, subdiv=subdivision or None)
        except NotImplementedError:
            raise ValueError(
                f"{value!r} is not a country the holidays package knows (use a code like US, "
                "GB or NZ, optionally with a region: US-CA)"
            ) from None
        return value.strip().upper()

    @field_validator("log_level")
    @classmethod
    def _valid_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"unknown log level {value!r}")
        return level

    @field_validator("min_group")
    @classmethod
    def _valid_min_group(cls, value: int) -> int:
        from bot.scoring.small_groups import check_min_group

        return check_min_group(value)

    @field_validator("token_key")
    @classmethod
    def _valid_token_key(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Keys are checked at start-up, not at the first install; OAuth stores tokens, so it
        needs one (a single SLACK_BOT_TOKEN stays in the environment and needs none)."""
        if value is not None and value.strip():
            from storage.secrets import parse_keys

            parse_keys(value)
            return value
        if info.data.get("slack_client_id") and info.data.get("slack_client_secret"):
            raise ValueError(
                "needed with SLACK_CLIENT_ID: Slack tokens are stored encrypted; make a key "
                "with `plnbot tokens new-key` and set PLNBOT_TOKEN_KEY to it"
            )
        return None

    @property
    def coach_ids(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.coaches.split(",") if part.strip())

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_signing_secret or self.slack_app_token)

    @property
    def slack_oauth_enabled(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def llm_enabled(self) -> bool:
        """A key (or a local OpenAI-compatible server's URL) is set and PLNBOT_LLM isn't off."""
        configured = bool(self.openai_api_key or self.openai_base_url)
        return configured and self.llm.lower() not in ("off", "0", "false", "no")


def load_settings(**overrides: object) -> Settings:
    """Read settings; raise ConfigError with one line naming the first bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "configuration"
        alias = Settings.model_fields[field].alias if field in Settings.model_fields else field
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{alias or field}: {message}") from None
