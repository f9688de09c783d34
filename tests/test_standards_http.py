"""The living standard and the digest over real HTTP: signed Slack requests into the running
app (real Bolt), a fake Slack Web API and a fake OpenAI-compatible server on 127.0.0.1.
Two peers endorse a share → the channel hears "a new best" once; the coach posts the digest →
it arrives as Block Kit with the model's introduction, the standard and the counts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.config import Settings
from plnbot.runtime import build_runtime, make_web_app
from storage.db import Database
from tests.doubles import FrozenClock
from tests.llm_fake import FakeModel
from tests.slack_fakes import FakeSlackAPI, block_actions_payload
from tests.slack_rig import SECRET, SlackRig, _RealTimeClock

INTRO = (
    "Peers valued exit tickets that take two minutes. Several would borrow the three "
    "questions. Try one this week."
)


@pytest.fixture
async def rig(db: Database, clock: FrozenClock) -> AsyncIterator[tuple[SlackRig, FakeModel]]:
    fake = FakeSlackAPI(channel_members={"C_PLN": ["U_TEACHER1", "U_TEACHER2", "U_ADMIN", "UBOT"]})
    await fake.start()
    model = FakeModel(reply=INTRO)
    await model.start()
    settings = Settings(  # type: ignore[call-arg]
        DATABASE_URL=db.url,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_API_URL=fake.base_url,
        OPENAI_BASE_URL=model.url,
        PLNBOT_LLM_TIMEOUT=2,
    )
    runtime = build_runtime(settings, clock=_RealTimeClock())
    server = TestServer(make_web_app(runtime, scheduler=False), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        url = str(server.make_url("")).rstrip("/")
        yield SlackRig(url=url, http=http, fake=fake, runtime=runtime, db=db), model
    await server.close()
    await fake.stop()
    await model.stop()
    runtime.db.dispose()


def channel_texts(slack: SlackRig) -> list[str]:
    return [m["text"] for (channel, _), m in slack.fake.messages.items() if channel == "C_PLN"]


async def test_a_new_best_and_the_digest_over_slack(rig: tuple[SlackRig, FakeModel]) -> None:
    slack, model = rig
    await slack.command("setup Math PLN", user_id="U_ADMIN")
    await slack.fake.wait_for("chat.postMessage")
    await slack.command(
        "share https://example.org/exit Two-minute exit tickets from Rivera #assessment",
        user_id="U_TEACHER1",
    )
    await slack.fake.wait_for("chat.postMessage", count=2)
    ts, card = next(
        (ts, m) for (channel, ts), m in slack.fake.messages.items() if "exit tickets" in m["text"]
    )
    endorse = next(
        e
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"].startswith("endorse#")
    )
    for peer in ("U_TEACHER2", "U_ADMIN"):
        await slack.interact(
            block_actions_payload(
                action_id=endorse["action_id"],
                value=endorse["value"],
                user_id=peer,
                channel_id="C_PLN",
                message_ts=ts,
            )
        )
        await slack.settle()
    posted = await slack.fake.wait_for("chat.postMessage", count=3)
    best = [p for p in posted if p["text"].startswith("A new best for")]
    assert len(best) == 1 and best[0]["channel"] == "C_PLN"
    assert best[0]["text"].startswith(
        "A new best for Participative evaluation: “Two-minute exit tickets from Rivera #assessment”"
    )
    assert best[0]["blocks"][0]["text"]["text"] == "A new best for Participative evaluation"

    await slack.command("digest post", user_id="U_ADMIN")
    posted = await slack.fake.wait_for("chat.postMessage", count=4, timeout=5)
    digest = next(p for p in posted if "the week's best work" in p["text"])
    blocks = json.dumps(digest["blocks"], ensure_ascii=False)
    assert INTRO in blocks and "Standard · Participative evaluation" in blocks
    assert (  # nobody reflected or checked in: a group of none (bot/scoring/small_groups.py)
        "This week: 1 share; reflections and check-ins: fewer than 5 people — shown once 5 "
        "have taken part." in blocks
    )
    assert sum(t.startswith("A new best for") for t in channel_texts(slack)) == 1
    # The model saw the title and the element, never a Slack id or name.
    [request] = model.requests
    sent = json.dumps(request)
    assert "Two-minute exit tickets" in sent and "Participative evaluation" in sent
    for word in ("U_TEACHER1", "U_TEACHER2", "U_ADMIN", "pln.admin", "Rivera"):
        assert word not in sent
