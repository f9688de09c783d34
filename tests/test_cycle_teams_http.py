"""A whole participative-evaluation cycle in Microsoft Teams, over real HTTP.

Coach Lee sets up the channel; Ana sets a goal, words an indicator, checks in with a value and
shares a lesson with student evidence tied to the goal; Tomas endorses it, presses "I'll try
this", is asked on the Friday what students did and answers, and Ana is told. Then Coach Lee
coaches Ana through a cycle on the goal: offer, accept on the card, feedback Ana keeps in her
portfolio and answers, and the acknowledgement whose code verifies at /verify on the same
server.

Bot Framework activities are POSTed to /api/messages of the running app (the real botbuilder
CloudAdapter); what the bot sends arrives at the local fake connector (tests/teams_fakes.py),
which refuses any card Teams would refuse. The clock is the test's: the Friday question comes
when it is moved there, as the scheduler would find it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.config import Settings
from plnbot.runtime import build_runtime, make_web_app
from storage.db import Database
from storage.models import (
    Artifact,
    CheckIn,
    CoachingCycle,
    CycleNote,
    Enactment,
    Goal,
    IndicatorValue,
)
from tests.doubles import FrozenClock
from tests.steps import credited_csv
from tests.teams_fakes import (
    ANA,
    CHANNEL,
    COACH,
    TOMAS,
    Call,
    FakeConnector,
    Person,
    card_click,
    personal_chat,
)
from tests.test_teams_http import TeamsRig, consent_answer, has_attachment

GOAL = "Use exit tickets every day"
SHARE = "Exit tickets that worked"


@pytest.fixture
async def teams(db: Database, clock: FrozenClock) -> AsyncIterator[TeamsRig]:
    """`plnbot serve` with Teams (anonymous, as with a local emulator) on the test's clock."""
    settings = Settings(  # type: ignore[call-arg]
        DATABASE_URL=db.url, PLNBOT_COACHES=COACH.aad
    )
    fake = FakeConnector()
    await fake.start()
    runtime = build_runtime(settings, clock=clock, allow_anonymous_teams=True)
    server = TestServer(make_web_app(runtime, scheduler=False), host="127.0.0.1")
    await server.start_server()
    runtime.port = server.port or 0  # links the bot sends point at this server
    async with aiohttp.ClientSession() as http:
        yield TeamsRig(
            url=str(server.make_url("")).rstrip("/"), http=http, fake=fake, runtime=runtime, db=db
        )
    await server.close()
    runtime.db.dispose()
    await fake.stop()  # fails the test if Teams would have refused anything the bot sent


def said(call: Call) -> str:
    """Everything a message shows: its text and its card."""
    return call.text + json.dumps(call.card or {}, ensure_ascii=False)


async def chat_says(teams: TeamsRig, person: Person, words: str) -> Call:
    """The newest message in `person`'s 1:1 chat with the bot that shows `words`."""
    found = await teams.fake.wait_for(
        lambda c: c.conversation == personal_chat(person) and words in said(c)
    )
    return found[-1]


async def dm(teams: TeamsRig, person: Person, text: str) -> None:
    """`person` writes `text` in their 1:1 chat with the bot; waits until it is worked."""
    status, _ = await teams.say(text, person=person, personal=True)
    assert status == 200
    await teams.settle()


async def in_channel(teams: TeamsRig, person: Person, text: str, *mentions: Person) -> None:
    """`person` @mentions the bot in the channel with `text` (and @mentions `mentions`)."""
    status, _ = await teams.say(text, person=person, mentions=list(mentions))
    assert status == 200
    await teams.settle()


async def click(
    teams: TeamsRig,
    call: Call,
    verb: str,
    person: Person,
    *,
    submit: bool = False,
) -> str:
    """`person` presses `verb` on the card of `call` as Teams sends it: an Action.Execute
    invoke (what the invoke response shows them is returned), or with `submit` the
    Action.Submit fallback older clients send (a message carrying the card's data)."""
    status, body = await teams.post(
        card_click(
            call.action(verb),
            service_url=teams.fake.service_url,
            person=person,
            reply_to=call.answered or "",
            personal=call.conversation == personal_chat(person),
            submit=submit,
        )
    )
    assert status == 200
    await teams.settle()
    if submit:
        return ""
    assert body["statusCode"] == 200, body
    return str(body["value"])


async def test_a_whole_cycle_in_teams_and_its_code_verifies_on_the_same_server(
    teams: TeamsRig, clock: FrozenClock
) -> None:
    """The issue's promise for Teams: every step a teacher and a coach take, in 1:1 chats,
    the channel and on cards, with what Teams would really send."""
    await in_channel(teams, COACH, "setup Math PLN")
    await teams.fake.wait_for(lambda c: c.conversation == CHANNEL and "Math PLN" in c.text)

    # Ana's goal, its indicator, and a check-in that asks for the indicator's value.
    await dm(teams, ANA, f"goal add {GOAL}")
    await dm(teams, ANA, "goal indicator 1 achievement Exit-ticket mastery %")
    await chat_says(teams, ANA, "Indicator 1 on goal 1 (student achievement): Exit-ticket mastery")
    await dm(teams, ANA, "goal log 1 64%")
    await dm(teams, ANA, "checkin")
    await chat_says(teams, ANA, "pln_choice")
    await dm(teams, ANA, "9 - students graded their own exit tickets")
    await chat_says(teams, ANA, "Exit-ticket mastery % this week? (a number, or `skip`)")
    await dm(teams, ANA, "72 after reteaching")
    await chat_says(teams, ANA, "Exit-ticket mastery %: 72 (was 64 on ")
    [checkin] = teams.rows(CheckIn)
    assert (checkin.status, checkin.rating) == ("answered", 9)
    assert [(v.value, v.checkin_id) for v in teams.rows(IndicatorValue)] == [
        (64.0, None),
        (72.0, checkin.id),
    ]

    # Her share names the goal and says what students did; the names never reach the card.
    await in_channel(
        teams,
        ANA,
        f"share https://example.org/exit-tickets {SHARE} goal:1 "
        "students: Maria and Jon wrote their own exit questions",
    )
    [card] = await teams.fake.wait_for(
        lambda c: c.conversation == CHANNEL and c.card is not None and SHARE in said(c)
    )
    assert "with student evidence" in said(card)
    assert "Maria" not in json.dumps(card.body)
    [artifact] = teams.rows(Artifact)
    [goal] = teams.rows(Goal)
    assert artifact.goal_id == goal.id and "Maria" not in artifact.student_evidence

    # Tomas endorses it and plans to try it this week (Tuesday: asked on Friday at 15:00).
    assert "You endorsed" in await click(teams, card, "endorse", TOMAS)
    assert "in our 1:1 chat" in await click(teams, card, "try_this", TOMAS)
    when = await chat_says(teams, TOMAS, "when will you try")
    await click(teams, when, "try_when", TOMAS, submit=True)  # "This week", from an older client
    planned = await chat_says(teams, TOMAS, "Planned: you'll try")
    assert "Friday 27 November" in planned.text
    [enactment] = teams.rows(Enactment)
    assert enactment.status == "planned"

    clock.set(datetime(2026, 11, 27, 21, 5, tzinfo=UTC))  # 15:05 in Chicago, Tomas's zone
    teams.runtime.bot.outbox_wakeup.set()
    await teams.settle()
    asked = await chat_says(teams, TOMAS, "what did students do?")
    assert SHARE in asked.text
    await dm(teams, TOMAS, "Maria and Jon ran the inner circle; everyone wrote a question.")
    told = await chat_says(teams, ANA, "tried your")
    assert "What students did: [student] and [student] ran the inner circle" in told.text
    await chat_says(teams, TOMAS, "I've told Ana")
    assert teams.rows(Enactment)[0].status == "answered"

    # The coaching cycle on Ana's goal.
    await in_channel(teams, COACH, "cycle start <at>Ana Rivera</at> 1", ANA)
    await chat_says(teams, COACH, "offered **Ana Rivera** a coaching cycle")
    offer = await chat_says(teams, ANA, "coaching cycle")
    assert GOAL in said(offer)
    await click(teams, offer, "cycle_accept", ANA)
    await chat_says(teams, COACH, "accepted your coaching cycle")

    await in_channel(teams, COACH, "feedback <at>Ana Rivera</at> Lovely plenary today", ANA)
    note = await chat_says(teams, ANA, "Lovely plenary today")
    await click(teams, note, "cycle_note_portfolio", ANA)  # answered in her chat, not the card
    await chat_says(teams, ANA, "Added this feedback to your portfolio")
    await click(teams, note, "cycle_note_answer", ANA)
    await dm(teams, ANA, "Thanks, the exit questions helped")
    await chat_says(teams, ANA, "Sent your answer to")
    await chat_says(teams, COACH, "Thanks, the exit questions helped")
    [kept] = teams.rows(CycleNote)
    assert kept.in_portfolio

    await in_channel(teams, COACH, "cycle close <at>Ana Rivera</at> 6", ANA)
    [cycle] = teams.rows(CoachingCycle)
    assert cycle.status == "closed" and cycle.hours == 6 and cycle.code
    acknowledged = await chat_says(teams, ANA, "acknowledged")
    assert cycle.code in said(acknowledged)
    async with teams.http.get(f"{teams.url}/verify/{cycle.code}") as response:
        page = await response.text()
        assert response.status == 200 and "Genuine" in page
    assert GOAL in page and "Ana Rivera" in page and "Coach Lee" in page
    assert "Lovely plenary today" not in page and "Maria" not in page

    # Her portfolio, sent as files after she allows them, carries the same code.
    await dm(teams, ANA, "export portfolio")
    offers = await teams.fake.wait_for(
        lambda c: c.conversation == personal_chat(ANA) and has_attachment(c, "file.consent"),
        count=2,
    )
    files = {}
    for call in offers:
        consent = call.body["attachments"][0]
        status, _ = await teams.post(consent_answer(teams, consent, consent["name"]))
        assert status == 200
        await teams.settle()
        files[consent["name"].rsplit(".", 1)[1]] = teams.fake.uploads[consent["name"]]
    assert files["pdf"].startswith(b"%PDF-")
    credited_csv(files["csv"], code=cycle.code or "", tried_by="Tomas Okafor")
    in_the_channel = " ".join(said(c) for c in teams.fake.sent_to(CHANNEL))
    assert "Lovely plenary" not in in_the_channel and "Maria" not in in_the_channel
