"""Conversations that forgive (DESIGN §3): while a check-in or profile question waits in a DM,
a command still runs, the question is mentioned again, `cancel` drops it, and it expires."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from storage.db import Database
from storage.models import CheckIn, FlowState, Goal
from tests.slack_rig import SlackRig, rows
from tests.story import Story
from tests.teams_fakes import ANA, personal_chat
from tests.test_teams_http import TeamsRig
from tests.test_teams_http import teams as teams  # the Teams rig fixture

DM = {"channel_id": "D_T1", "channel_name": "directmessage"}


def _typed(text: str, ts: str) -> dict:
    return {
        "type": "message",
        "channel": "D_T1",
        "channel_type": "im",
        "user": "U_TEACHER1",
        "text": text,
        "ts": ts,
        "event_ts": ts,
    }


async def test_commands_typed_while_a_checkin_waits_run_and_the_answer_stays_clean(
    slack: SlackRig,
) -> None:
    await slack.command("goal add Use exit tickets daily", **DM)
    await slack.command("checkin", **DM, response_token="checkin")
    await slack.settle()
    slack.fake.reset()

    for number, text in enumerate(["goal add Student-led conferences", "goal list", "hi"]):
        await slack.event(_typed(text, f"1700000300.00010{number}"), event_id=f"EvT{number}")
        await slack.settle()
    answers = [c["text"] for c in slack.fake.calls_to("chat.postMessage")]
    assert sorted(g.text for g in rows(slack.db, Goal)) == [
        "Student-led conferences",
        "Use exit tickets daily",
    ]
    assert any("Student-led conferences" in a for a in answers)
    assert sum("(I'm still waiting on your check-in" in a for a in answers) == 2  # after each
    # "hi" is not a command: it is taken as an (unusable) answer and the question asked again.
    assert "0-10 scale" in answers[-1] and "`cancel`" in answers[-1]

    await slack.event(_typed("6", "1700000300.000200"), event_id="EvRating")
    await slack.event(_typed("skip", "1700000300.000300"), event_id="EvSkip")
    await slack.settle()
    answered = [c for c in rows(slack.db, CheckIn) if c.status == "answered"]
    assert [(c.rating, c.reflection) for c in answered] == [(6, "")]
    assert "goal list" not in (answered[0].reflection or "")


async def test_cancel_drops_the_waiting_question_and_says_so(slack: SlackRig) -> None:
    await slack.command("profile", **DM)  # a slash command: the form opens as a modal
    await slack.settle()
    assert rows(slack.db, FlowState) == []  # nothing waits behind a form
    assert slack.fake.calls_to("views.open")

    await slack.event(_typed("profile", "1700000400.000100"), event_id="EvProfile")
    await slack.settle()
    assert [f.flow for f in rows(slack.db, FlowState)] == ["profile"]  # typed: one by one
    slack.fake.reset()
    await slack.event(_typed("cancel", "1700000400.000200"), event_id="EvCancel")
    await slack.event(_typed("cancel", "1700000400.000300"), event_id="EvCancel2")
    await slack.settle()
    assert rows(slack.db, FlowState) == []
    said = [c["text"] for c in slack.fake.calls_to("chat.postMessage")]
    assert "dropped that question" in said[0] and "nothing waiting to cancel" in said[1]


async def test_a_question_left_for_two_days_has_closed(story: Story, db: Database) -> None:
    await story.command("U_ANA", "goal add Exit tickets", channel=None)
    await story.command("U_ANA", "checkin", channel=None)
    story.clock.advance(timedelta(hours=49))
    late = await story.say("U_ANA", "7 - it went well")
    assert "has closed" in late[0].text
    with db.session() as session:
        assert session.exec(select(CheckIn).where(CheckIn.status == "answered")).all() == []
        assert session.exec(select(FlowState)).all() == []


async def test_in_teams_too_a_command_runs_while_a_checkin_waits(teams: TeamsRig) -> None:
    for text in ("goal add Exit tickets daily", "checkin", "goal list", "6", "skip"):
        status, _ = await teams.say(text, personal=True)
        assert status == 200
        await teams.settle()
    said = [c.text for c in teams.fake.calls if c.conversation == personal_chat(ANA)]
    assert any("still waiting on your check-in" in text for text in said), said
    answered = [c for c in teams.rows(CheckIn) if c.status == "answered"]
    assert [(c.rating, c.reflection) for c in answered] == [(6, "")]
