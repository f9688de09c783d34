"""Teams security: with an app id every request's JWT is validated by the SDK (a bad one gets
401 and stores nothing, without reaching Microsoft); without one, Teams is anonymous only with
--allow-anonymous-teams (never because serve listens on loopback), and start-up refuses when
Teams is clearly wanted without an app id."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlmodel import select
from typer.testing import CliRunner

from adapters.teams.setup import TeamsIdentity, attach_teams
from bot.config import ConfigError, Settings
from plnbot.cli import app as cli
from plnbot.runtime import build_runtime, make_web_app
from storage.db import Database
from storage.models import InboundReceipt, Member
from storage.teams_tables import TeamsConversation
from tests.teams_fakes import (
    ANA,
    APP_ID,
    OUTBOUND_TOKEN,
    FakeConnector,
    LocalCredentialsFactory,
    message,
    personal_chat,
)


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Secured:
    url: str
    http: aiohttp.ClientSession
    fake: FakeConnector
    db: Database

    async def post(self, activity: dict[str, Any], authorization: str | None) -> int:
        headers = {"Content-Type": "application/json"}
        if authorization is not None:
            headers["Authorization"] = authorization
        started = time.monotonic()
        async with self.http.post(
            f"{self.url}/api/messages", data=json.dumps(activity), headers=headers
        ) as response:
            await response.read()
        assert time.monotonic() - started < 10, "token validation must not hang"
        return response.status

    def stored(self) -> list[Any]:
        with self.db.session() as session:
            return [
                *session.exec(select(Member)).all(),
                *session.exec(select(InboundReceipt)).all(),
                *session.exec(select(TeamsConversation)).all(),
            ]


async def _secured(db: Database, identity: TeamsIdentity, fake: FakeConnector) -> Any:
    settings = Settings(DATABASE_URL=db.url)  # type: ignore[call-arg]
    runtime = build_runtime(settings, clock=RealClock(), host="10.20.30.40")  # Teams off here
    assert runtime.teams is None
    endpoint = attach_teams(runtime, identity=identity)
    assert endpoint is not None and not endpoint.anonymous
    server = TestServer(make_web_app(runtime, scheduler=False), host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def secured(db: Database) -> AsyncIterator[Secured]:
    fake = FakeConnector()
    await fake.start()
    identity = TeamsIdentity(
        app_id=APP_ID,
        app_password="unused",
        openid_metadata_url=fake.openid_url,
        credentials_factory=LocalCredentialsFactory(),
    )
    server = await _secured(db, identity, fake)
    async with aiohttp.ClientSession() as http:
        yield Secured(str(server.make_url("")).rstrip("/"), http, fake, db)
    await server.close()
    await fake.stop()


async def test_missing_or_bad_tokens_get_401_and_store_nothing(secured: Secured) -> None:
    fake = secured.fake
    activity = message("help", service_url=fake.service_url, personal=True)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = {
        "no header": None,
        "empty": "",
        "not a JWT": "Bearer not-a-token",
        "wrong scheme": "Basic " + fake.sign_token(),
        "signed by someone else": "Bearer " + fake.sign_token(key=stranger),
        "unknown key id": "Bearer " + fake.sign_token(key=stranger, kid="other-key"),
        "another bot's token": "Bearer " + fake.sign_token(audience="someone-elses-app-id"),
        "another service url": "Bearer " + fake.sign_token(service_url="https://evil.example/"),
        "expired": "Bearer " + fake.sign_token(expires_in=-3600),
        "wrong issuer": "Bearer " + fake.sign_token(issuer="https://evil.example"),
    }
    for case, authorization in bad.items():
        assert await secured.post(activity, authorization) == 401, case
    assert secured.stored() == []
    assert fake.calls == []


async def test_a_valid_token_is_accepted_and_replies_carry_the_bots_own_token(
    secured: Secured,
) -> None:
    fake = secured.fake
    for text in ("help", "goal add Use exit tickets daily", "goal list"):
        activity = message(text, service_url=fake.service_url, personal=True)
        assert await secured.post(activity, "Bearer " + fake.sign_token()) == 200
    replies = await fake.wait_for(lambda c: c.conversation == personal_chat(ANA), count=3)
    assert {c.headers.get("Authorization") for c in replies} == {f"Bearer {OUTBOUND_TOKEN}"}
    assert "Use exit tickets daily" in replies[-1].text
    assert fake.openid_fetches == 1  # signing keys are fetched once, then cached
    # An accepted token stays bound to what it was issued for: another serviceUrl is refused.
    token = "Bearer " + fake.sign_token()
    assert (
        await secured.post(message("help", service_url=fake.service_url, personal=True), token)
        == 200
    )
    elsewhere = message("help", service_url="https://evil.example/", personal=True)
    assert await secured.post(elsewhere, token) == 401


async def test_microsofts_own_endpoints_refuse_bad_tokens_without_the_network(
    db: Database,
) -> None:
    """With the public cloud's endpoints (the default), tokens that are missing, malformed or
    from another issuer are refused before any key would be fetched."""
    fake = FakeConnector()
    await fake.start()
    identity = TeamsIdentity(
        app_id=APP_ID, app_password="unused", credentials_factory=LocalCredentialsFactory()
    )
    server = await _secured(db, identity, fake)
    try:
        async with aiohttp.ClientSession() as http:
            secured = Secured(str(server.make_url("")).rstrip("/"), http, fake, db)
            activity = message("help", service_url=fake.service_url, personal=True)
            for authorization in (
                None,
                "Bearer not-a-token",
                "Bearer " + fake.sign_token(issuer="https://sts.evil.example/"),
            ):
                assert await secured.post(activity, authorization) == 401
            assert secured.stored() == []
    finally:
        await server.close()
        await fake.stop()


async def test_token_checks_run_beside_the_event_loop(secured: Secured) -> None:
    """Validation (and the SDK's blocking key fetch) runs on its own thread: many requests at
    once all finish, and the bot keeps answering meanwhile."""
    fake = secured.fake
    activities = [
        message(f"goal add Goal {n}", service_url=fake.service_url, personal=True)
        for n in range(12)
    ]
    statuses = await asyncio.gather(
        *(secured.post(a, "Bearer " + fake.sign_token()) for a in activities)
    )
    assert statuses == [200] * 12


# -- when Teams is on ----------------------------------------------------------------------
def _settings(db: Database, **env: str) -> Settings:
    return Settings(DATABASE_URL=db.url, **env)  # type: ignore[arg-type]


async def _status(runtime: Any) -> int:
    server = TestServer(make_web_app(runtime, scheduler=False), host="127.0.0.1")
    await server.start_server()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{str(server.make_url('')).rstrip('/')}/api/messages",
                json=message("help", service_url="http://127.0.0.1:9/", personal=True),
            ) as response,
        ):
            return response.status
    finally:
        await server.close()


async def test_without_an_app_id_teams_is_anonymous_only_when_allowed(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for host in ("127.0.0.1", "0.0.0.0"):  # loopback implies nothing (a proxy makes all local)
        off = build_runtime(_settings(db), host=host)
        assert off.teams is None and "teams" not in off.platforms
        assert await _status(off) == 404
    assert not any("Teams" in r.message for r in caplog.records if r.levelno >= logging.WARNING)

    allowed = build_runtime(_settings(db), host="0.0.0.0", allow_anonymous_teams=True)
    assert allowed.teams.anonymous  # type: ignore[attr-defined]
    assert any("WITHOUT authentication" in r.message for r in caplog.records)
    # Asked for: the outbox reaches it from the start (replies stored before a restart).
    assert "teams" in allowed.platforms
    assert await _status(allowed) == 200  # (its reply can't be delivered: no connector there)


def test_teams_settings_that_cant_work_stop_start_up_naming_the_variable(db: Database) -> None:
    cases = {
        "MICROSOFT_APP_ID": dict(MICROSOFT_APP_PASSWORD="s3cret"),
        "MICROSOFT_APP_PASSWORD": dict(MICROSOFT_APP_ID=APP_ID),
        "MICROSOFT_APP_TENANT_ID": dict(
            MICROSOFT_APP_ID=APP_ID, MICROSOFT_APP_PASSWORD="s", MICROSOFT_APP_TYPE="SingleTenant"
        ),
        "MICROSOFT_APP_TYPE": dict(MICROSOFT_APP_ID=APP_ID, MICROSOFT_APP_TYPE="Galactic"),
    }
    for variable, env in cases.items():
        with pytest.raises(ConfigError) as refused:
            build_runtime(_settings(db, **env), host="0.0.0.0")
        assert str(refused.value).startswith(variable + ":"), refused.value
        assert "\n" not in str(refused.value)


async def test_single_tenant_bots_get_tokens_from_their_own_tenant(db: Database) -> None:
    async def authority(**env: str) -> str:
        identity = TeamsIdentity.from_settings(_settings(db, **env))
        credentials = await identity.credentials().create_credentials(
            identity.app_id, identity.scope, identity.login_endpoint, True
        )
        return str(credentials.oauth_endpoint)

    tenant = "2f6c1e8a-5b4d-4c3e-9a1f-0e9d8c7b6a51"
    single = await authority(
        MICROSOFT_APP_ID=APP_ID,
        MICROSOFT_APP_PASSWORD="s",
        MICROSOFT_APP_TYPE="singletenant",
        MICROSOFT_APP_TENANT_ID=tenant,
    )
    assert single == f"https://login.microsoftonline.com/{tenant}"
    multi = await authority(MICROSOFT_APP_ID=APP_ID, MICROSOFT_APP_PASSWORD="s")
    assert multi == "https://login.microsoftonline.com/botframework.com"


def test_serve_refuses_teams_settings_without_an_app_id_with_one_line(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("MICROSOFT_APP_PASSWORD", "s3cret")
    monkeypatch.delenv("MICROSOFT_APP_ID", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--port", "0"])  # on loopback too
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("plnbot: MICROSOFT_APP_ID:")
