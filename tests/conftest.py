"""Fixtures: a real database per test (SQLite file; PostgreSQL too when
PLNBOT_TEST_POSTGRES_URL is set), a controllable clock, and a dialogue helper."""

from __future__ import annotations

import gc
import os
import shutil
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from bot.config import Settings
from bot.core.dispatch import Bot
from bot.delivery.sender import OutboxSender
from storage.db import Database
from tests.doubles import FrozenClock, RecordingPlatform
from tests.story import Story

pytest_plugins = ["tests.slack_rig"]  # the `slack` fixture: Slack over real HTTP

POSTGRES_URL = os.environ.get("PLNBOT_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])


def pytest_collection_finish(session: pytest.Session) -> None:
    # As `plnbot serve` does at start-up: what was built while starting (every test module
    # and its imports) stays out of the collector's full passes, whose pauses would otherwise
    # land inside the timing checks.
    gc.freeze()


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Unit tests fail loudly if they reach beyond this machine."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in (
            "127.0.0.1",
            "::1",
            "localhost",
        ):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test gets a copy of the migrated file."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_db() -> Iterator[Database | None]:
    if not POSTGRES_URL:
        yield None
        return
    db = Database(POSTGRES_URL)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "plnbot.db"
        shutil.copy(sqlite_template, path)
        database = Database(f"sqlite:///{path}")
        yield database
        database.dispose()
        return
    database = request.getfixturevalue("postgres_db")
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with database.engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    yield database


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 24, 14, 0, tzinfo=UTC))  # a Tuesday


@pytest.fixture
def settings() -> Settings:
    return Settings(PLNBOT_COACHES="U_COACH", DATABASE_URL="sqlite:///unused.db")  # type: ignore[call-arg]


@pytest.fixture
def platform() -> RecordingPlatform:
    return RecordingPlatform()


@pytest.fixture
def bot(db: Database, settings: Settings, clock: FrozenClock) -> Bot:
    return Bot(db=db, settings=settings, clock=clock)


@pytest.fixture
def story(
    bot: Bot, platform: RecordingPlatform, clock: FrozenClock, db: Database, settings: Settings
) -> Story:
    sender = OutboxSender(
        db=db,
        platforms={platform.name: platform},
        prompts=bot.prompts,
        kinds=bot.router.outbox,
        clock=clock,
        default_tz=settings.timezone,
    )
    return Story(bot=bot, platform=platform, clock=clock, sender=sender)
