"""Multi-workspace install through Bolt's OAuth flow, kept in our own database."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet

from bot.config import Settings
from plnbot.runtime import build_runtime, make_web_app
from storage.db import Database
from storage.models import Workspace
from storage.slack_tables import slack_installations
from tests.slack_fakes import FakeSlackAPI, event_body, sign, slash_command_body
from tests.slack_rig import SECRET, _RealTimeClock


@pytest.fixture
async def oauth_app(db: Database) -> AsyncIterator[tuple[str, FakeSlackAPI, aiohttp.ClientSession]]:
    fake = FakeSlackAPI()
    await fake.start()
    settings = Settings(  # type: ignore[call-arg]
        DATABASE_URL=db.url,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_CLIENT_ID="1111.2222",
        SLACK_CLIENT_SECRET="oauth-secret",
        SLACK_API_URL=fake.base_url,
        PLNBOT_TOKEN_KEY=Fernet.generate_key().decode(),  # OAuth stores tokens encrypted
    )
    runtime = build_runtime(settings, clock=_RealTimeClock())
    server = TestServer(make_web_app(runtime, scheduler=False), host="127.0.0.1")
    await server.start_server()
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        yield str(server.make_url("")).rstrip("/"), fake, http
    await server.close()
    await fake.stop()
    runtime.db.dispose()


async def test_install_then_commands_use_the_workspace_token_then_uninstall(
    oauth_app, db: Database
) -> None:
    url, fake, http = oauth_app
    async with http.get(f"{url}/slack/install", allow_redirects=False) as response:
        assert response.status in (200, 302)
        page = await response.text()
        location = response.headers.get("Location", "")
        cookie = response.headers["Set-Cookie"].split(";", 1)[
            0
        ]  # Secure cookie: send it by hand over http
    state = re.search(r"state=([\w-]+)", location or page).group(1)  # type: ignore[union-attr]
    async with http.get(
        f"{url}/slack/oauth_redirect?code=install-code&state={state}", headers={"Cookie": cookie}
    ) as response:
        assert response.status == 200, await response.text()
    assert fake.calls_to("oauth.v2.access")
    with db.engine.connect() as conn:
        installs = conn.execute(sa.select(slack_installations)).mappings().all()
    assert len(installs) == 1 and installs[0]["team_id"] == "T0001"
    token = installs[0]["bot_token"]
    with db.session() as session:
        workspace = session.exec(sa.select(Workspace)).scalars().one()
    assert workspace.installed_by == installs[0]["user_id"]  # the installer is a coach

    body = slash_command_body(
        "help", response_url=fake.response_url("help"), trigger_id="t-oauth-1"
    )
    async with http.post(
        f"{url}/slack/events",
        data=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body, SECRET)},
    ) as response:
        assert response.status == 200
    await fake.wait_for_response()

    uninstalled = event_body(
        {"type": "app_uninstalled", "event_ts": "1700000900.000100"}, event_id="EvUninstall"
    )
    async with http.post(
        f"{url}/slack/events",
        data=uninstalled.encode(),
        headers={"Content-Type": "application/json", **sign(uninstalled, SECRET)},
    ) as response:
        assert response.status == 200
    import asyncio

    for _ in range(50):
        await asyncio.sleep(0.05)
        with db.engine.connect() as conn:
            if not conn.execute(sa.select(slack_installations)).all():
                break
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(slack_installations)).all() == []
    assert token


async def test_install_without_state_is_refused(oauth_app) -> None:
    url, fake, http = oauth_app
    async with http.get(f"{url}/slack/oauth_redirect?code=x&state=forged") as response:
        assert response.status >= 400
    assert fake.calls_to("oauth.v2.access") == []
