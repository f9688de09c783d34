"""A whole participative-evaluation cycle in the browser playground, over real HTTP.

The same story as in Slack and Teams, driven through the playground's JSON API as the page
drives it (typing as a persona, pressing the buttons a card shows, the fast-forward
buttons): Casey sets up #pln-playground; Ana sets a goal, words an indicator, checks in with a
value and shares a lesson with student evidence tied to the goal; Ben endorses it, presses
"I'll try this", is asked what students did and answers, and Ana is told. Then Casey coaches
Ana through a cycle on the goal, and the acknowledgement's code verifies at /verify on the
same server.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import select

from storage.models import (
    Artifact,
    CheckIn,
    CoachingCycle,
    CycleNote,
    Enactment,
    Goal,
    IndicatorValue,
)
from tests.steps import credited_csv
from tests.web_rig import ANA, BEN, CASEY, WebRig, web_fixture  # noqa: F401 (the web rig)

GOAL = "Use exit tickets every day"
SHARE = "Exit tickets that worked"


def rows(web: WebRig, model: type) -> list[Any]:
    with web.db.session() as session:
        return list(session.exec(select(model)).all())


async def sees(web: WebRig, who: str, where: str, words: str) -> str:
    """The HTML of the newest message `who` sees in `where` that shows `words`."""
    return str((await web.last(who, where, words))["html"])


async def test_a_whole_cycle_in_the_playground_and_its_code_verifies_on_the_same_server(
    web: WebRig,
) -> None:
    """The issue's promise for the playground: anyone can walk the whole cycle in a browser,
    switching between the coach and the teachers."""
    await web.say(CASEY, "channel", "setup Math PLN")
    await sees(web, ANA, "channel", "is now the PLN community")

    # Ana's goal, its indicator, and a check-in that asks for the indicator's value.
    await web.say(ANA, "dm", f"goal add {GOAL}")
    await web.say(ANA, "dm", "goal indicator 1 achievement Exit-ticket mastery %")
    await sees(web, ANA, "dm", "Indicator 1 on goal 1 (student achievement)")
    await web.say(ANA, "dm", "goal log 1 64%")
    await web.say(ANA, "dm", "checkin")
    await web.say(ANA, "dm", "9 - students graded their own exit tickets")
    await sees(web, ANA, "dm", "Exit-ticket mastery % this week?")
    await web.say(ANA, "dm", "72 after reteaching")
    await sees(web, ANA, "dm", "Exit-ticket mastery %: 72 (was 64 on ")
    [checkin] = rows(web, CheckIn)
    assert (checkin.status, checkin.rating) == ("answered", 9)
    assert [(v.value, v.checkin_id) for v in rows(web, IndicatorValue)] == [
        (64.0, None),
        (72.0, checkin.id),
    ]

    # Her share names the goal and says what students did; the names never reach the card.
    await web.say(
        ANA,
        "channel",
        f"share https://example.org/exit-tickets {SHARE} goal:1 "
        "students: Maria and Jon wrote their own exit questions",
    )
    card = await sees(web, BEN, "channel", SHARE)
    assert "with student evidence" in card and "Maria" not in card
    [artifact] = rows(web, Artifact)
    [goal] = rows(web, Goal)
    assert artifact.goal_id == goal.id

    assert "Nobody is waiting to be asked" in await web.run("tries")

    # Ben endorses it and plans to try it this week (Tuesday: asked on Friday).
    message, share_id = await web.button_value(BEN, "channel", SHARE, "endorse")
    await web.press(BEN, "channel", message, "endorse", share_id)
    assert "Endorse (1)" in await sees(web, ANA, "channel", 'data-action="try_this"')
    message, share_id = await web.button_value(BEN, "channel", 'data-action="try_this"', "try_this")
    await web.press(BEN, "channel", message, "try_this", share_id)
    message, this_week = await web.button_value(BEN, "channel", "when will you try", "try_when")
    await web.press(BEN, "channel", message, "try_when", this_week)
    assert "Friday 27 November" in await sees(web, BEN, "channel", "Planned: you&#x27;ll try")
    assert [e.status for e in rows(web, Enactment)] == ["planned"]

    # Fast-forward: the question comes now instead of on Friday.
    assert "Asked 1 teacher" in await web.run("tries")
    assert SHARE in await sees(web, BEN, "dm", "what did students do?")
    await web.say(BEN, "dm", "Maria and Jon ran the inner circle; everyone wrote a question.")
    told = await sees(web, ANA, "dm", "tried your")
    assert "What students did: [student] and [student] ran the inner circle" in told
    await sees(web, BEN, "dm", "told Ana")
    assert [e.status for e in rows(web, Enactment)] == ["answered"]

    # The coaching cycle on Ana's goal.
    await web.say(CASEY, "channel", "cycle start @Ana 1")
    message, cycle_id = await web.button_value(ANA, "dm", "coaching cycle", "cycle_accept")
    await web.press(ANA, "dm", message, "cycle_accept", cycle_id)
    await sees(web, CASEY, "dm", "accepted your coaching cycle")

    web.clock.advance(timedelta(days=7))
    await web.say(CASEY, "channel", "feedback @Ana Lovely plenary today")
    message, note = await web.button_value(
        ANA, "dm", "Lovely plenary today", "cycle_note_portfolio"
    )
    await web.press(ANA, "dm", message, "cycle_note_portfolio", note)
    await sees(web, ANA, "dm", "Added this feedback to your portfolio")
    message, note = await web.button_value(ANA, "dm", "Lovely plenary today", "cycle_note_answer")
    await web.press(ANA, "dm", message, "cycle_note_answer", note)
    await web.say(ANA, "dm", "Thanks, the exit questions helped")
    await sees(web, CASEY, "dm", "Thanks, the exit questions helped")
    [kept] = rows(web, CycleNote)
    assert kept.in_portfolio

    web.clock.advance(timedelta(days=7))
    await web.say(CASEY, "channel", "cycle close @Ana 6")
    [cycle] = rows(web, CoachingCycle)
    assert cycle.status == "closed" and cycle.hours == 6 and cycle.code
    assert cycle.code in await sees(web, ANA, "dm", "acknowledged")
    async with web.http.get(f"{web.url}/verify/{cycle.code}") as response:
        page = await response.text()
        assert response.status == 200 and "Genuine" in page
    assert GOAL in page and "Ana" in page and "Casey" in page
    assert "Lovely plenary today" not in page and "Maria" not in page

    # Her portfolio downloads carry the same code.
    await web.say(ANA, "dm", "export portfolio")
    files = {}
    for kind in ("pdf", "csv"):
        html = await sees(web, ANA, "dm", f".{kind}")
        href = html.split('href="/playground/files/', 1)[1].split('"', 1)[0]
        async with web.http.get(f"{web.url}/playground/files/{href}") as response:
            assert response.status == 200
            files[kind] = await response.read()
    assert files["pdf"].startswith(b"%PDF-")
    credited_csv(files["csv"], code=cycle.code or "", tried_by="Ben")
