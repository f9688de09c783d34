"""Secrets at rest (issue #12): the Slack tokens an OAuth install leaves in our database are
encrypted with PLNBOT_TOKEN_KEY, a key that lives in the environment and never in the
database, so a dump or a backup holds no token anyone can use.

The stories run `plnbot serve` as an operator does (real Bolt, the real OAuth HTTP flow, signed
requests, a fake Slack Web API on 127.0.0.1) and `plnbot tokens …` as they would type it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from typer.testing import CliRunner

from adapters.slack.stores import InstallationStore
from bot.config import ConfigError, Settings, load_settings
from plnbot.cli import app as cli
from plnbot.runtime import Runtime, build_runtime, make_web_app
from storage.db import Database
from storage.slack_tables import slack_bots, slack_installations
from tests.slack_fakes import FakeSlackAPI, event_body, sign
from tests.slack_rig import SECRET, _RealTimeClock

CLIENT_ID = "1111.2222"
# What the fake Slack's oauth.v2.access hands out; the last part is the secret one.
TOKEN = "xoxb-7403120000000-7403120000001-Zq8Xw1LmN4pRt6Yb2Cd9Ef0G"
OLD_KEY, NEW_KEY, STRANGER_KEY = (Fernet.generate_key().decode() for _ in range(3))


@dataclass
class Deployment:
    """One `plnbot serve` with Slack OAuth on and one PLNBOT_TOKEN_KEY."""

    url: str
    http: aiohttp.ClientSession
    runtime: Runtime

    async def install(self) -> None:
        """An admin clicks "Add to Slack" and approves (the real OAuth redirect flow)."""
        async with self.http.get(f"{self.url}/slack/install", allow_redirects=False) as response:
            location = response.headers.get("Location", "") or await response.text()
            cookie = response.headers["Set-Cookie"].split(";", 1)[0]  # Secure: sent by hand
        state = re.search(r"state=([\w-]+)", location).group(1)  # type: ignore[union-attr]
        async with self.http.get(
            f"{self.url}/slack/oauth_redirect?code=install-code&state={state}",
            headers={"Cookie": cookie},
        ) as response:
            assert response.status == 200, await response.text()

    async def open_home(self, event_id: str) -> int:
        """A teacher opens the bot's Home tab, which the bot answers with views.publish."""
        body = event_body(
            {
                "type": "app_home_opened",
                "user": "U_TEACHER1",
                "channel": "D_T1",
                "tab": "home",
                "event_ts": "1700000500.000100",
            },
            event_id=event_id,
        )
        async with self.http.post(
            f"{self.url}/slack/events",
            data=body.encode(),
            headers={"Content-Type": "application/json", **sign(body, SECRET)},
        ) as response:
            return response.status


Serve = Callable[[str], Awaitable[Deployment]]


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackAPI]:
    fake = FakeSlackAPI()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def serve(db: Database, slack_api: FakeSlackAPI) -> AsyncIterator[Serve]:
    """`serve(key)` (re)starts the bot with PLNBOT_TOKEN_KEY=key; the one before is stopped
    first, as in a deploy, so no old process works what the new one stores."""
    running: list[tuple[TestServer, aiohttp.ClientSession, Runtime]] = []

    async def stop() -> None:
        while running:
            server, http, runtime = running.pop()
            await http.close()
            await server.close()
            runtime.db.dispose()

    async def start(token_key: str) -> Deployment:
        await stop()
        settings = Settings(  # type: ignore[call-arg]
            DATABASE_URL=db.url,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_CLIENT_ID=CLIENT_ID,
            SLACK_CLIENT_SECRET="oauth-secret",
            SLACK_API_URL=slack_api.base_url,
            PLNBOT_TOKEN_KEY=token_key,
        )
        runtime = build_runtime(settings, clock=_RealTimeClock())
        server = TestServer(make_web_app(runtime, scheduler=False), host="127.0.0.1")
        await server.start_server()
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        running.append((server, http, runtime))
        return Deployment(url=str(server.make_url("")).rstrip("/"), http=http, runtime=runtime)

    yield start
    await stop()


def where_it_appears(db: Database, text: str) -> list[str]:
    """Every table.column, in every table of the database, holding `text` anywhere in a value
    (each column read as text, so JSON and payload columns count too)."""
    inspector = sa.inspect(db.engine)
    found = []
    with db.engine.connect() as conn:
        for table_name in inspector.get_table_names():
            table = sa.Table(table_name, sa.MetaData(), autoload_with=conn)
            for column in table.columns:
                hit = sa.select(sa.func.count()).where(
                    sa.cast(column, sa.Text).contains(text, autoescape=True)
                )
                if conn.execute(hit.select_from(table)).scalar_one():
                    found.append(f"{table_name}.{column.name}")
    return found


def sqlite_files_hold(db: Database, text: str) -> bool:
    """The SQLite file and its write-ahead log, byte for byte (free pages included)."""
    path = Path(str(db.engine.url.database))
    files = [path, path.with_name(path.name + "-wal")]
    return any(text.encode() in f.read_bytes() for f in files if f.exists())


def stored_tokens(db: Database) -> dict[str, list[str | None]]:
    with db.engine.connect() as conn:
        return {
            table.name: list(
                conn.execute(sa.select(table.c.bot_token).order_by(table.c.id)).scalars()
            )
            for table in (slack_installations, slack_bots)
        }


def tokens_command(db: Database, key: str, *args: str) -> tuple[int, str, str]:
    """`plnbot tokens <args>` as an operator runs it, with PLNBOT_TOKEN_KEY=key."""
    env = {
        "DATABASE_URL": db.url,
        "PLNBOT_TOKEN_KEY": key,
        "SLACK_CLIENT_ID": CLIENT_ID,
        "SLACK_CLIENT_SECRET": "oauth-secret",
        "PLNBOT_LOG_LEVEL": "WARNING",
    }
    result = CliRunner().invoke(cli, ["tokens", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


async def published_with(fake: FakeSlackAPI, count: int) -> str | None:
    calls = await fake.wait_for("views.publish", count=count, timeout=5)
    return calls[count - 1]["_token"]


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No `.env` or operator variables from the machine running the tests."""
    for field in Settings.model_fields.values():
        if field.alias:
            monkeypatch.delenv(field.alias, raising=False)
    monkeypatch.chdir(tmp_path)


async def test_an_install_stores_no_token_in_plain_text_and_the_bot_still_answers_with_it(
    serve: Serve, db: Database, slack_api: FakeSlackAPI
) -> None:
    bot = await serve(OLD_KEY)
    await bot.install()

    secret_part = TOKEN.rsplit("-", 1)[1]
    assert where_it_appears(db, secret_part) == []
    if db.is_sqlite:
        assert not sqlite_files_hold(db, secret_part)
    stored = stored_tokens(db)
    assert len(stored["slack_installations"]) == len(stored["slack_bots"]) == 1
    assert all(
        value and value.startswith("fernet:") for values in stored.values() for value in values
    )

    assert await bot.open_home("EvHome1") == 200
    assert await published_with(slack_api, 1) == TOKEN  # opened again for the Web API


async def test_rotating_to_a_new_key_keeps_every_token_readable_and_rewrites_the_rows(
    serve: Serve, db: Database, slack_api: FakeSlackAPI
) -> None:
    bot = await serve(OLD_KEY)
    await bot.install()
    before = stored_tokens(db)

    # The operator makes a key, puts it first and keeps the old one after it, then rotates.
    code, out, err = tokens_command(db, f"{NEW_KEY},{OLD_KEY}", "rotate")
    assert (code, err) == (0, "")
    assert "Rewrote 2 of 2 rows" in out
    after = stored_tokens(db)
    assert after != before and all(
        v and v.startswith("fernet:") for vs in after.values() for v in vs
    )

    # Everything is under the new key now: the old one can go.
    bot = await serve(NEW_KEY)
    assert await bot.open_home("EvHome2") == 200
    assert await published_with(slack_api, 1) == TOKEN
    assert where_it_appears(db, TOKEN.rsplit("-", 1)[1]) == []

    code, out, _ = tokens_command(db, NEW_KEY, "rotate")  # nothing left to do
    assert code == 0 and "Rewrote 0 of 2 rows" in out
    assert stored_tokens(db) == after


async def test_a_token_stored_in_plain_text_before_encryption_still_works_and_rotate_seals_it(
    serve: Serve, db: Database, slack_api: FakeSlackAPI, caplog: pytest.LogCaptureFixture
) -> None:
    legacy = "xoxb-7403120000000-7403120000001-PlainTextFromBefore12"
    # As the bot stored installs before this change: slack_sdk's store, no key.
    SQLAlchemyInstallationStore(client_id=CLIENT_ID, engine=db.engine).save(
        Installation(
            app_id="A0001",
            enterprise_id=None,
            team_id="T0001",
            team_name="PLN Teachers",
            user_id="U_ADMIN",
            bot_token=legacy,
            bot_id="B0001",
            bot_user_id="UBOT",
            bot_scopes=["commands", "chat:write"],
        )
    )

    bot = await serve(OLD_KEY)
    with caplog.at_level(logging.WARNING):
        assert await bot.open_home("EvHome1") == 200
        assert await published_with(slack_api, 1) == legacy
    warnings = [r.getMessage() for r in caplog.records if "plain text" in r.getMessage()]
    assert warnings == [
        "the Slack token for workspace T0001 is stored in plain text (from before "
        "PLNBOT_TOKEN_KEY): run `plnbot tokens rotate` to encrypt it"
    ]  # once, though Bolt and the sender both looked it up

    code, out, err = tokens_command(db, OLD_KEY, "rotate")
    assert (code, err) == (0, "")
    assert "Rewrote 2 of 2 rows holding Slack tokens (2 were in plain text)" in out
    assert where_it_appears(db, legacy.rsplit("-", 1)[1]) == []

    bot = await serve(OLD_KEY)
    assert await bot.open_home("EvHome2") == 200
    assert await published_with(slack_api, 2) == legacy


async def test_a_wrong_key_gives_a_clear_error_not_a_crash(
    serve: Serve, db: Database, slack_api: FakeSlackAPI, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await serve(OLD_KEY)
    await bot.install()
    before = stored_tokens(db)

    # Someone deploys with a key the tokens were not encrypted with.
    bot = await serve(STRANGER_KEY)
    with caplog.at_level(logging.ERROR):
        status = await bot.open_home("EvHome1")
        await asyncio.sleep(0.3)
    assert status == 200  # Bolt answers "not installed here"; nothing crashed
    assert slack_api.calls_to("views.publish") == []  # no call with a garbled token
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(
        "workspace T0001 opens with none of the keys in PLNBOT_TOKEN_KEY" in e for e in errors
    ), errors
    async with bot.http.get(f"{bot.url}/healthz") as health:
        assert health.status == 200

    # Rotation refuses, says why in one line, and changes nothing.
    code, out, err = tokens_command(db, STRANGER_KEY, "rotate")
    assert code == 2 and out == ""
    assert err.startswith("plnbot: PLNBOT_TOKEN_KEY: 2 stored row(s) open with none of the keys")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert stored_tokens(db) == before

    # Putting the old key back (after the new one) is the cure.
    code, out, _ = tokens_command(db, f"{STRANGER_KEY},{OLD_KEY}", "rotate")
    assert code == 0 and "Rewrote 2 of 2 rows" in out
    bot = await serve(STRANGER_KEY)
    assert await bot.open_home("EvHome2") == 200
    assert await published_with(slack_api, 1) == TOKEN


async def test_every_secret_slack_sdk_keeps_is_sealed_in_both_tables(db: Database) -> None:
    store = InstallationStore(CLIENT_ID, db.engine, token_key=OLD_KEY)
    secrets = {
        "bot_token": "xoxb-7403120000000-7403120000001-BotSecretBotSecret00",
        "bot_refresh_token": "xoxe-1-BotRefreshSecret0000000000",
        "user_token": "xoxp-7403120000000-7403120000002-UserSecretUserSecret",
        "user_refresh_token": "xoxe-1-UserRefreshSecret000000000",
        "incoming_webhook_url": "https://hooks.slack.com/services/T0001/B0001/HookSecretHookSecret0000",
    }
    installation = Installation(
        app_id="A0001",
        enterprise_id=None,
        team_id="T0001",
        user_id="U_ADMIN",
        bot_id="B0001",
        bot_user_id="UBOT",
        incoming_webhook_channel="#pln",
        incoming_webhook_configuration_url="https://pln.slack.com/services/B0001",
        **secrets,
    )
    await store.async_save(installation)

    assert installation.bot_token == secrets["bot_token"]  # Bolt's own object is left as it was
    assert {value: where_it_appears(db, value) for value in secrets.values()} == {
        value: [] for value in secrets.values()
    }
    found = await store.async_find_installation(enterprise_id=None, team_id="T0001")
    assert found is not None and {name: getattr(found, name) for name in secrets} == secrets
    mine = await store.async_find_installation(
        enterprise_id=None, team_id="T0001", user_id="U_ADMIN"
    )
    assert mine is not None and mine.user_token == secrets["user_token"]
    assert mine.bot_token == secrets["bot_token"]  # slack_sdk copies it from the bot row
    bot = await store.async_find_bot(enterprise_id=None, team_id="T0001")
    assert bot is not None
    assert (bot.bot_token, bot.bot_refresh_token) == (
        secrets["bot_token"],
        secrets["bot_refresh_token"],
    )


async def test_a_long_rotating_token_is_stored_sealed_on_every_database(db: Database) -> None:
    """Sealed, a token is about three times as long: since migration 0007 the token columns
    are Text, so a rotating token (`xoxe.`, token rotation is off today) fits on PostgreSQL
    as on SQLite, and reads back."""
    store = InstallationStore(CLIENT_ID, db.engine, token_key=OLD_KEY)
    rotating = "xoxe.xoxb-1-" + "R" * 400
    await store.async_save(
        Installation(app_id="A0001", team_id="T0001", user_id="U_ADMIN", bot_token=rotating)
    )
    assert where_it_appears(db, rotating) == []
    found = await store.async_find_bot(enterprise_id=None, team_id="T0001")
    assert found is not None and found.bot_token == rotating


def test_new_key_prints_a_fresh_key_even_before_one_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_CLIENT_ID", CLIENT_ID)  # OAuth on and no key yet: the first run
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "oauth-secret")
    runner = CliRunner()
    first, second = (runner.invoke(cli, ["tokens", "new-key"]) for _ in range(2))
    assert first.exit_code == second.exit_code == 0
    keys = [first.stdout.strip(), second.stdout.strip()]
    assert keys[0] != keys[1]
    for key in keys:
        Fernet(key)  # a usable key, as PLNBOT_TOKEN_KEY takes it
        monkeypatch.setenv("PLNBOT_TOKEN_KEY", key)
        assert load_settings().token_key == key


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not-a-key", "the key is not a Fernet key"),
        (f"{Fernet.generate_key().decode()},short", "key 2 of 2 is not a Fernet key"),
        (",", "no key given"),
    ],
)
def test_a_malformed_key_stops_start_up_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("PLNBOT_TOKEN_KEY", value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    text = str(raised.value)
    assert text.startswith("PLNBOT_TOKEN_KEY: ") and message in text
    assert "\n" not in text and "short" not in text and "not-a-key" not in text  # never echoed
    result = CliRunner().invoke(cli, ["serve"], env={"PLNBOT_TOKEN_KEY": value})
    assert result.exit_code == 2
    assert result.stderr.startswith("plnbot: PLNBOT_TOKEN_KEY: ") and result.stderr.count("\n") == 1


def test_oauth_without_a_key_says_how_to_make_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "oauth-secret")
    with pytest.raises(ConfigError, match=r"^PLNBOT_TOKEN_KEY: needed with SLACK_CLIENT_ID") as e:
        load_settings()
    assert "plnbot tokens new-key" in str(e.value)
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2 and "plnbot tokens new-key" in result.stderr


def test_a_single_token_from_the_environment_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-single")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    assert load_settings().token_key is None  # nothing is stored, so nothing to encrypt


def test_rotate_without_a_key_is_a_configuration_error(db: Database) -> None:
    result = CliRunner().invoke(cli, ["tokens", "rotate"], env={"DATABASE_URL": db.url})
    assert result.exit_code == 2
    assert (
        result.stderr
        == "plnbot: PLNBOT_TOKEN_KEY: not set; make a key with `plnbot tokens new-key`\n"
    )
