"""Configuration: a bad value stops start-up with one line that starts with the variable's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No operator variables and no `.env` from the machine running the tests."""
    for field in Settings.model_fields.values():
        if field.alias:
            monkeypatch.delenv(field.alias, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PLNBOT_TIMEZONE", "Mars/Olympus_Mons", "unknown timezone 'Mars/Olympus_Mons'"),
        ("PLNBOT_TIMEZONE", "", "unknown timezone"),
        ("DATABASE_URL", "not a url", "not a database URL"),
        ("DATABASE_URL", "mysql://user@db/pln", "only sqlite:/// and postgresql+psycopg:// URLs"),
        ("PLNBOT_LOG_LEVEL", "LOUD", "unknown log level 'LOUD'"),
        ("PLNBOT_PUBLIC_URL", "notaurl", "not a web address: 'notaurl'"),
        ("PLNBOT_PUBLIC_URL", "ftp://pln.example.org", "not a web address"),
        ("PLNBOT_HOLIDAYS", "XX", "'XX' is not a country the holidays package knows"),
        ("PLNBOT_LLM", "maybe", "expected on or off, not 'maybe'"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    text = str(raised.value)
    assert text.startswith(f"{variable}: ")
    assert message in text
    assert "\n" not in text and len(text) < 200


def test_a_bad_value_in_dotenv_is_reported_the_same_way(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PLNBOT_LOG_LEVEL=chatty\n", "utf-8")
    with pytest.raises(ConfigError, match=r"^PLNBOT_LOG_LEVEL: "):
        load_settings()


def test_defaults_and_good_values(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = load_settings()
    assert (defaults.database_url, defaults.timezone, defaults.log_level) == (
        "sqlite:///plnbot.db",
        "UTC",
        "INFO",
    )
    assert defaults.coach_ids == frozenset()
    assert not defaults.slack_enabled and not defaults.llm_enabled

    monkeypatch.setenv("PLNBOT_TIMEZONE", "America/Chicago")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://pln@127.0.0.1/pln")
    monkeypatch.setenv("PLNBOT_LOG_LEVEL", "debug")
    monkeypatch.setenv("PLNBOT_COACHES", "U_ONE, U_TWO,,")
    settings = load_settings()
    assert settings.timezone == "America/Chicago"
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.log_level == "DEBUG"
    assert settings.coach_ids == frozenset({"U_ONE", "U_TWO"})
