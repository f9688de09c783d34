"""`plnbot serve --socket-mode`: the same bot over a Socket Mode connection (SLACK_APP_TOKEN)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import select

from adapters.slack.setup import attach_socket_mode
from bot.config import Settings
from plnbot.runtime import build_runtime, make_web_app
from storage.db import Database
from storage.models import Goal
from tests.slack_fakes import FakeSlackAPI, slash_command_body
from tests.slack_rig import _RealTimeClock


@pytest.fixture
async def socket_mode(db: Database) -> AsyncIterator[FakeSlackAPI]:
    fake = FakeSlackAPI()
    await fake.start()
    settings = Settings(  # type: ignore[call-arg]
        DATABASE_URL=db.url,
        SLACK_APP_TOKEN="xapp-1-test",
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_API_URL=fake.base_url,
    )
    runtime = build_runtime(settings, clock=_RealTimeClock())
    app = make_web_app(runtime, scheduler=False)
    attach_socket_mode(runtime, app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield fake
    await server.close()
    await fake.stop()
    runtime.db.dispose()


async def test_slash_command_over_socket_mode_is_acked_and_answered(
    socket_mode: FakeSlackAPI, db: Database
) -> None:
    fake = socket_mode
    form = dict(
        parse_qsl(
            slash_command_body(
                "goal add Student-led conferences",
                response_url=fake.response_url("sm"),
                trigger_id="t-sm-1",
            )
        )
    )
    envelope = await fake.socket_send("slash_commands", form)
    answer = await fake.wait_for_response(timeout=5)
    assert "Goal 1 saved" in answer[0]["text"]
    assert any(ack.get("envelope_id") == envelope for ack in fake.socket_acks)
    with db.session() as session:
        assert [g.text for g in session.exec(select(Goal))] == ["Student-led conferences"]


async def test_dm_event_over_socket_mode(socket_mode: FakeSlackAPI) -> None:
    fake = socket_mode
    event = {
        "type": "message",
        "channel": "D_T1",
        "channel_type": "im",
        "user": "U_TEACHER1",
        "text": "help",
        "ts": "1700000700.000100",
        "event_ts": "1700000700.000100",
    }
    await fake.socket_send(
        "events_api",
        {
            "type": "event_callback",
            "team_id": "T0001",
            "api_app_id": "A0001",
            "event": event,
            "event_id": "EvSocket1",
            "event_time": 1700000700,
        },
    )
    posted = await fake.wait_for("chat.postMessage", timeout=5)
    assert posted[0]["channel"] == "D_T1" and "Everyone" in posted[0]["text"]
    await asyncio.sleep(0.1)
