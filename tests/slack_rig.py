"""The Slack rig: the real `plnbot serve` web app (real Bolt) on 127.0.0.1, signed requests
into it, and a local fake Slack Web API recording what the bot sends. Registered for every
test module by tests/conftest.py (`pytest_plugins`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import select

from bot.config import Settings
from plnbot.runtime import Runtime, build_runtime, make_web_app
from storage.db import Database
from tests.doubles import FrozenClock
from tests.slack_fakes import (
    FakeSlackAPI,
    event_body,
    interactive_body,
    sign,
    slash_command_body,
)

SECRET = "test-signing-secret"


@dataclass
class SlackRig:
    url: str
    http: aiohttp.ClientSession
    fake: FakeSlackAPI
    runtime: Runtime
    db: Database
    server: TestServer | None = None

    async def post(
        self,
        body: str,
        *,
        content_type: str,
        headers: dict[str, str] | None = None,
        secret: str = SECRET,
        timestamp: int | None = None,
    ) -> aiohttp.ClientResponse:
        signed = sign(body, secret, timestamp)
        async with self.http.post(
            f"{self.url}/slack/events",
            data=body.encode(),
            headers={"Content-Type": content_type, **signed, **(headers or {})},
        ) as response:
            await response.read()
            return response

    async def command(self, text: str, **kwargs: str) -> aiohttp.ClientResponse:
        token = kwargs.pop("response_token", "cmd")
        kwargs.setdefault("trigger_id", f"{time.time_ns()}.738474920.8088930838d88f008e0")
        body = slash_command_body(text, response_url=self.fake.response_url(token), **kwargs)
        return await self.post(body, content_type="application/x-www-form-urlencoded")

    async def event(
        self, event: dict, *, event_id: str, retry: int | None = None
    ) -> aiohttp.ClientResponse:
        headers = (
            {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
            if retry
            else {}
        )
        return await self.post(
            event_body(event, event_id=event_id), content_type="application/json", headers=headers
        )

    async def interact(self, payload: dict) -> aiohttp.ClientResponse:
        return await self.post(
            interactive_body(payload), content_type="application/x-www-form-urlencoded"
        )

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every stored request is worked and every due message sent."""
        await self.runtime.idle(timeout=timeout)


@pytest.fixture
async def slack(db: Database, clock: FrozenClock) -> AsyncIterator[SlackRig]:
    fake = FakeSlackAPI(channel_members={"C_PLN": ["U_TEACHER1", "U_TEACHER2", "U_ADMIN", "UBOT"]})
    await fake.start()
    settings = Settings(  # type: ignore[call-arg]
        DATABASE_URL=db.url,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_API_URL=fake.base_url,
        PLNBOT_COACHES="U_COACH",
    )
    clock.set(clock.now().replace(hour=15))
    runtime = build_runtime(settings, clock=_RealTimeClock())
    server = TestServer(make_web_app(runtime, scheduler=False), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        yield SlackRig(
            url=str(server.make_url("")).rstrip("/"),
            http=http,
            fake=fake,
            runtime=runtime,
            db=db,
            server=server,
        )
    await server.close()
    await fake.stop()
    runtime.db.dispose()


class _RealTimeClock:
    """Slack checks request timestamps against real time, so this rig uses the real clock."""

    def now(self):  # type: ignore[no-untyped-def]
        from datetime import UTC, datetime

        return datetime.now(UTC)


def rows(db: Database, model: type) -> list:
    with db.session() as session:
        return list(session.exec(select(model)).all())
