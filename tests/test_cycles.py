"""Coaching cycles as the people involved live them: a coach offers a cycle on a teacher's
goal, the teacher accepts (or declines), feedback flows privately between the two, the
teacher keeps what they want in their portfolio and answers, and the coach acknowledges the
hours with a code anyone can verify."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from datetime import timedelta
from typing import Any

import pytest

import bot.features.cycles as cycles
from bot.core.dispatch import Bot
from bot.core.events import CommandEvent
from bot.services.verification import signing_key, verified
from storage.db import Database
from storage.models import CoachingCycle, CycleNote, Member
from tests.doubles import RecordingPlatform, Sent
from tests.slack_fakes import block_actions_payload
from tests.slack_rig import SlackRig
from tests.slack_rig import rows as slack_rows
from tests.steps import only, rows, setup_community, text_of
from tests.story import Story

TEACHER, COACH = "U_TEACHER1", "U_COACH"
GOAL = "Use exit tickets every day"


def to(sent: list[Sent], user_id: str) -> list[Sent]:
    """What `user_id` got in their DM."""
    return [s for s in sent if s.conversation.channel_id == f"D-{user_id}"]


def button(sent: Sent, action_id: str) -> str:
    assert sent.message.card is not None, sent.text
    found = [b.value for b in sent.message.card.buttons if b.action_id == action_id]
    assert found, [b.action_id for b in sent.message.card.buttons]
    return found[0]


async def offered(story: Story) -> Sent:
    """The teacher has a goal; the coach offers a cycle on it; returns the teacher's DM."""
    await setup_community(story)
    await story.command(TEACHER, f"goal add {GOAL}", channel=None)
    sent = await story.command(COACH, f"cycle start <@{TEACHER}> 1")
    coach_reply = [s for s in sent if s.ephemeral]
    assert "offered *Teacher1* a coaching cycle on their goal 1" in only(coach_reply).text
    assert GOAL not in only(coach_reply).text  # the goal's words wait for the teacher's yes
    return only(to(sent, TEACHER))


async def test_offer_accept_feedback_portfolio_answer_and_close(story: Story, db: Database) -> None:
    offer = await offered(story)
    assert f"*Coach* offers you a coaching cycle on your goal 1: “{GOAL}”" in offer.text
    assert {b.label for b in offer.message.card.buttons} == {"Accept", "Decline"}  # type: ignore[union-attr]

    story.clock.advance(timedelta(days=1))
    accepted = await story.press(
        TEACHER, "cycle_accept", button(offer, "cycle_accept"), channel=None
    )
    assert "You've accepted the coaching cycle with *Coach*" in only(to(accepted, TEACHER)).text
    told = only(to(accepted, COACH)).text
    assert told.startswith("*Teacher1* accepted your coaching cycle on their goal 1")
    again = only(
        await story.press(TEACHER, "cycle_accept", button(offer, "cycle_accept"), channel=None)
    )
    assert again.text == "You already accepted this coaching cycle."
    refused = only(await story.command(COACH, f"cycle start <@{TEACHER}> 1"))
    assert "You already have a coaching cycle with *Teacher1* (active)" in refused.text

    sent = await story.command(
        COACH, f"feedback <@{TEACHER}> Your exit tickets sharpened the plenary."
    )
    assert (
        "Sent your feedback to *Teacher1*, privately" in only([s for s in sent if s.ephemeral]).text
    )
    note_dm = only(to(sent, TEACHER))
    assert note_dm.text.startswith(f"Feedback from *Coach* on your goal 1 (“{GOAL}”):")
    assert "Your exit tickets sharpened the plenary." in note_dm.text
    assert not [
        s for s in sent if not s.ephemeral and s not in to(sent, TEACHER)
    ]  # no channel post
    note = button(note_dm, "cycle_note_portfolio")

    added = only(await story.press(TEACHER, "cycle_note_portfolio", note, channel=None))
    assert added.text.startswith("Added this feedback to your portfolio")
    assert rows(db, CycleNote)[0].in_portfolio is True
    removed = only(await story.press(TEACHER, "cycle_note_portfolio", note, channel=None))
    assert removed.text.startswith("Took this feedback out of your portfolio")
    assert rows(db, CycleNote)[0].in_portfolio is False
    await story.press(TEACHER, "cycle_note_portfolio", note, channel=None)

    ask = only(await story.press(TEACHER, "cycle_note_answer", note, channel=None))
    assert "Type your answer to *Coach*'s feedback here" in ask.text
    answered = await story.say(TEACHER, "Thanks! Trying peer review next.")
    assert "Sent your answer to *Coach*" in only(to(answered, TEACHER)).text
    assert only(to(answered, COACH)).text == (
        "*Teacher1* answered your feedback:\nThanks! Trying peer review next."
    )
    assert rows(db, CycleNote)[0].answer == "Thanks! Trying peer review next."

    for bad in ("0", "0.4", "201", "lots", "nan", "inf"):
        reply = only(await story.command(COACH, f"cycle close <@{TEACHER}> {bad}"))
        assert "a number from 0.5 to 200" in reply.text, bad
    story.clock.advance(timedelta(days=30))
    closed = await story.command(COACH, f"cycle close <@{TEACHER}> 7.5")
    cycle = rows(db, CoachingCycle)[0]
    assert cycle.status == "closed" and cycle.hours == 7.5 and cycle.code
    assert cycle.goal_text == GOAL and cycle.coach_name == "Coach"
    assert cycle.offered_at < cycle.answered_at < cycle.closed_at  # type: ignore[operator]
    dm = only(to(closed, TEACHER)).text
    assert "is acknowledged: 7.5 hours of professional learning" in dm
    assert f"Your verification code is {cycle.code}" in dm
    confirmed = only([s for s in closed if s.ephemeral]).text
    assert f"7.5 hours acknowledged, verification code {cycle.code}" in confirmed
    with db.session() as session:
        found = verified(session, signing_key(session, story.bot.settings), cycle.code or "")
        assert found is not None and found[0].id == cycle.id

    after = only(await story.command(COACH, f"feedback <@{TEACHER}> One more thing"))
    assert "You have no active coaching cycle with *Teacher1*" in after.text
    # Closed, a new cycle may start.
    assert "offered *Teacher1*" in text_of(
        await story.command(COACH, f"cycle start <@{TEACHER}> 1")
    )


async def test_declining_is_the_teachers_choice_and_the_coach_is_told_kindly(
    story: Story, db: Database
) -> None:
    offer = await offered(story)
    sent = await story.press(TEACHER, "cycle_decline", button(offer, "cycle_decline"), channel=None)
    assert "declined the coaching cycle; nothing else changes" in only(to(sent, TEACHER)).text
    told = only(to(sent, COACH)).text
    assert "*Teacher1* has declined the coaching cycle for now. That's their choice" in told
    assert GOAL not in told
    assert rows(db, CoachingCycle)[0].status == "declined"

    refused = only(await story.command(COACH, f"feedback <@{TEACHER}> Keep going"))
    assert "You have no active coaching cycle with *Teacher1*" in refused.text
    assert rows(db, CycleNote) == []
    # Declined is not open: the coach may offer again later.
    assert "offered *Teacher1*" in text_of(
        await story.command(COACH, f"cycle start <@{TEACHER}> 1")
    )


async def test_only_coaches_run_cycles_and_only_the_teacher_answers_an_offer(
    story: Story, db: Database
) -> None:
    await setup_community(story)
    await story.command(TEACHER, f"goal add {GOAL}", channel=None)
    for words in (
        f"cycle start <@{TEACHER}> 1",
        f"feedback <@{TEACHER}> hi",
        f"cycle close <@{TEACHER}> 3",
    ):
        refused = only(await story.command("U_ANA", words))
        assert refused.text.startswith(
            f"`{' '.join(words.split()[: 2 if words.startswith('cycle') else 1])}` is for coaches."
        )
    assert rows(db, CoachingCycle) == []

    offer = only(to(await story.command(COACH, f"cycle start <@{TEACHER}> 1"), TEACHER))
    value = button(offer, "cycle_accept")
    for stranger in ("U_ANA", COACH):
        refused = only(await story.press(stranger, "cycle_accept", value, channel=None))
        assert "isn't yours to answer" in refused.text
        assert (
            "isn't yours to answer"
            in only(await story.press(stranger, "cycle_decline", value, channel=None)).text
        )
    assert rows(db, CoachingCycle)[0].status == "offered"

    early = only(await story.command(COACH, f"feedback <@{TEACHER}> Too soon"))
    assert "*Teacher1* hasn't accepted your coaching cycle yet" in early.text
    early_close = only(await story.command(COACH, f"cycle close <@{TEACHER}> 2"))
    assert "hasn't accepted your coaching cycle yet" in early_close.text

    # Another coach's cycle is not this coach's: they see none of it.
    await story.command(COACH, "coach add <@U_OTHER>")
    await story.press(TEACHER, "cycle_accept", value, channel=None)
    other = only(await story.command("U_OTHER", f"feedback <@{TEACHER}> Hello"))
    assert "You have no active coaching cycle with *Teacher1*" in other.text

    # A note's buttons work for the teacher only.
    sent = await story.command(COACH, f"feedback <@{TEACHER}> Nice lesson")
    note = button(only(to(sent, TEACHER)), "cycle_note_portfolio")
    for action in ("cycle_note_portfolio", "cycle_note_answer"):
        assert "can't find that feedback" in only(await story.press(COACH, action, note)).text
        assert "can't find that feedback" in only(await story.press(TEACHER, action, "x")).text
    assert rows(db, CycleNote)[0].in_portfolio is False


async def test_bad_cycle_commands_get_kind_usage(story: Story) -> None:
    await setup_community(story)
    await story.command(TEACHER, f"goal add {GOAL}", channel=None)
    assert (
        "Usage: `cycle start @member <goal n>`"
        in only(await story.command(COACH, f"cycle start <@{TEACHER}>")).text
    )
    assert (
        "the goal's number"
        in only(await story.command(COACH, f"cycle start <@{TEACHER}> one")).text
    )
    assert (
        "*Teacher1* has no goal 4"
        in only(await story.command(COACH, f"cycle start <@{TEACHER}> 4")).text
    )
    assert "with someone else" in only(await story.command(COACH, "cycle start <@U_COACH> 1")).text
    assert (
        "Usage: `feedback @member <text>`"
        in only(await story.command(COACH, "feedback <@U_X>")).text
    )
    long = "x" * 3001
    assert "under 3,000" in only(await story.command(COACH, f"feedback <@{TEACHER}> {long}")).text
    # `goal 1` reads as well as `1`.
    assert "offered *Teacher1*" in text_of(
        await story.command(COACH, f"cycle start <@{TEACHER}> goal 1")
    )


async def test_a_whole_cycle_over_slack_and_its_code_verifies_on_the_same_server(
    slack: SlackRig,
) -> None:
    """Signed slash commands and button clicks into the real app; DMs through the fake Web
    API; the code the teacher is sent opens at /verify on the same `plnbot serve` (Slack
    configured, no playground)."""

    def dms_to(user_id: str) -> list[dict[str, Any]]:
        return [
            c
            for c in slack.fake.calls_to("chat.postMessage")
            if c["channel"] in (user_id, f"D{user_id}")
        ]

    def button_of(message: dict[str, Any], prefix: str) -> dict[str, Any]:
        buttons = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
        return next(b for b in buttons if b["action_id"].startswith(prefix))

    async def click(message: dict[str, Any], prefix: str, key: str) -> None:
        found = button_of(message, prefix)
        ts = next(
            ts for (channel, ts), m in slack.fake.messages.items() if m["text"] == message["text"]
        )
        await slack.interact(
            block_actions_payload(
                action_id=found["action_id"],
                value=found["value"],
                user_id=TEACHER,
                channel_id=f"D{TEACHER}",
                message_ts=ts,
                response_url=slack.fake.response_url(key),
            )
        )

    await slack.command(
        "goal add Use exit tickets every day",
        user_id=TEACHER,
        channel_id=f"D{TEACHER}",
        channel_name="directmessage",
    )
    await slack.settle()
    await slack.command(f"cycle start <@{TEACHER}|teacher1> 1", user_id=COACH, user_name="coach")
    await slack.settle()
    offer = next(m for m in dms_to(TEACHER) if "coaching cycle" in m["text"])
    await click(offer, "cycle_accept", "accept")
    await slack.settle()
    assert any("accepted your coaching cycle" in m["text"] for m in dms_to(COACH))
    # The offer's card keeps no buttons and says what she chose.
    [settled] = [c for c in slack.fake.calls_to("chat.update") if c["channel"] == f"D{TEACHER}"]
    assert settled["text"].endswith("You accepted it.")
    assert not [b for b in settled["blocks"] if b["type"] == "actions"]

    await slack.command(f"feedback <@{TEACHER}> Lovely plenary today", user_id=COACH)
    await slack.settle()
    note = next(m for m in dms_to(TEACHER) if "Lovely plenary today" in m["text"])
    await click(note, "cycle_note_portfolio", "portfolio")
    await slack.settle()
    assert [n.in_portfolio for n in slack_rows(slack.db, CycleNote)] == [True]
    # The feedback's card is redrawn: its button now says what the next press does.
    *_, updated = [c for c in slack.fake.calls_to("chat.update") if c["channel"] == f"D{TEACHER}"]
    assert button_of(updated, "cycle_note_portfolio")["text"]["text"] == "Remove from my portfolio"

    await slack.command(f"cycle close <@{TEACHER}> 6", user_id=COACH)
    await slack.settle()
    [cycle] = slack_rows(slack.db, CoachingCycle)
    assert cycle.status == "closed" and cycle.hours == 6 and cycle.code
    acknowledged = next(m for m in dms_to(TEACHER) if "acknowledged" in m["text"])
    assert cycle.code in acknowledged["text"]
    async with slack.http.get(f"{slack.url}/verify/{cycle.code}") as response:
        page = await response.text()
        assert response.status == 200 and "Genuine" in page and "6" in page
        assert "Lovely plenary today" not in page


ALREADY = "You already have a coaching cycle with"


def test_open_means_what_the_database_index_says() -> None:
    """The application's idea of an open cycle is the one the unique index enforces."""
    [index] = [i for i in CoachingCycle.__table__.indexes if i.name == "uq_coachingcycle_open"]  # type: ignore[attr-defined]
    assert index.unique
    for dialect in ("sqlite", "postgresql"):
        where = str(index.dialect_options[dialect]["where"])
        assert where == "status IN (" + ", ".join(f"'{s}'" for s in cycles.OPEN) + ")"


async def test_two_cycle_starts_at_once_give_one_cycle_and_one_offer(
    story: Story, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The coach's `cycle start` arrives twice at the same moment (a double send, two
    replicas), each in its own thread and database connection: one cycle, one offer to the
    teacher, and the second answer is the kind "you already have one", never an error. On
    PostgreSQL both look for an open cycle before either writes, so the second insert meets
    the unique index; SQLite has one writer, so the second finds the first's cycle."""
    caplog.set_level(logging.INFO, logger=cycles.__name__)
    await setup_community(story)
    await story.command(TEACHER, f"goal add {GOAL}", channel=None)
    start = threading.Barrier(2)
    both_looked = threading.Barrier(2, timeout=10)
    real_open_cycle = cycles._open_cycle
    looked = threading.local()

    def open_cycle_then_wait(ctx: Any, member: Member) -> CoachingCycle | None:
        found = real_open_cycle(ctx, member)
        if not db.is_sqlite and not getattr(looked, "once", False):
            looked.once = True
            both_looked.wait()  # neither has written yet: the race, for certain
        return found

    platforms = [RecordingPlatform(), RecordingPlatform()]

    def send(platform: RecordingPlatform) -> None:
        bot = Bot(db=db, settings=story.bot.settings, clock=story.clock, prompts=story.bot.prompts)
        event = CommandEvent(
            user=story.user(COACH), conversation=story.channel(), text=f"cycle start <@{TEACHER}> 1"
        )
        start.wait()
        asyncio.run(bot.handle(event, platform))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cycles, "_open_cycle", open_cycle_then_wait)
        threads = [threading.Thread(target=send, args=(p,)) for p in platforms]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    [cycle] = rows(db, CoachingCycle)
    assert cycle.status == "offered"
    sent = [s for p in platforms for s in p.sent]
    assert len(to(sent, TEACHER)) == 1, [s.text for s in sent]
    answers = sorted(s.text for s in sent if s.ephemeral)
    assert len(answers) == 2, answers
    assert answers[0].startswith("I've offered *Teacher1* a coaching cycle on their goal 1")
    assert answers[1].startswith(f"{ALREADY} *Teacher1* (waiting for their answer)")
    raced = "raced another; one offer kept" in caplog.text
    assert raced is not db.is_sqlite  # PostgreSQL's second insert met the index


async def test_a_start_that_missed_the_other_offer_meets_the_index_and_says_so(
    story: Story, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check before the insert saw no open cycle (the other request had not committed):
    the database refuses the second and the coach hears there is one already, nothing sent."""
    await offered(story)
    real_open_cycle = cycles._open_cycle
    calls: list[int] = []

    def missed_once(ctx: Any, member: Member) -> CoachingCycle | None:
        calls.append(1)
        return None if len(calls) == 1 else real_open_cycle(ctx, member)

    monkeypatch.setattr(cycles, "_open_cycle", missed_once)
    sent = await story.command(COACH, f"cycle start <@{TEACHER}> 1")
    assert only(sent).text.startswith(f"{ALREADY} *Teacher1* (waiting for their answer)")
    assert len(calls) == 2
    assert len(rows(db, CoachingCycle)) == 1


def export_of(sent: list[Sent]) -> dict[str, Any]:
    attachment = sent[0].message.attachment
    assert attachment is not None
    data: dict[str, Any] = json.loads(attachment.content.decode("utf-8"))
    return data


async def test_a_coach_exports_the_cycles_they_ran_and_forgetting_them_keeps_the_acknowledgement(
    story: Story, db: Database
) -> None:
    """A coach's export lists the cycles they ran and the feedback they wrote (with the answers
    they were sent); a goal's words only once the member accepted. When the coach forgets,
    the teacher keeps the signed acknowledgement — the coach's name as signed, no id."""
    offer = await offered(story)
    await story.press(TEACHER, "cycle_accept", button(offer, "cycle_accept"), channel=None)
    sent = await story.command(COACH, f"feedback <@{TEACHER}> Strong questioning today")
    note = button(only(to(sent, TEACHER)), "cycle_note_portfolio")
    await story.press(TEACHER, "cycle_note_portfolio", note, channel=None)
    await story.press(TEACHER, "cycle_note_answer", note, channel=None)
    await story.say(TEACHER, "Thank you, trying cold calls next")
    await story.command(COACH, f"cycle close <@{TEACHER}> 6")
    await story.command("U_BEN", "goal add Private words about my pacing", channel=None)
    await story.command(COACH, "cycle start <@U_BEN> 1")  # offered, not answered

    data = export_of(await story.command(COACH, "export", channel=None))
    closed, waiting = data["cycles_coached"]
    assert closed["status"] == "closed" and closed["goal_text"] == GOAL and closed["hours"] == 6
    assert closed["feedback_given"] == [
        {
            "id": closed["feedback_given"][0]["id"],
            "cycle_id": closed["id"],
            "text": "Strong questioning today",
            "answer": "Thank you, trying cold calls next",
            "created_at": closed["feedback_given"][0]["created_at"],
        }
    ]
    assert waiting["status"] == "offered" and "goal_text" not in waiting
    assert "Private words" not in json.dumps(data)
    assert "member_id" not in closed and "member_id" not in waiting

    code = rows(db, CoachingCycle)[0].code
    await story.command(COACH, "forget confirm", channel=None)
    kept, offered_to_ben = rows(db, CoachingCycle)
    assert (kept.code, kept.coach_name, kept.coach_id) == (code, "Coach", None)
    assert offered_to_ben.coach_id is None
    assert [n.text for n in rows(db, CycleNote)] == ["Strong questioning today"]
    with db.session() as session:
        assert verified(session, signing_key(session, story.bot.settings), code or "") is not None
    [cycle] = export_of(await story.command(TEACHER, "export", channel=None))["coaching_cycles"]
    assert (cycle["coach_name"], cycle["coach_id"], cycle["code"]) == ("Coach", None, code)
    assert [n["in_portfolio"] for n in cycle["feedback"]] == [True]
