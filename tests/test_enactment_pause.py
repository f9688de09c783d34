"""A pause holds "what did students do?" as it holds check-ins — nothing is sent while Ben is
paused — but the question is not lost: Ana is still owed the answer, so Ben is asked at 15:00
on the first weekday after his pause, or after `resume` when he ends it early. However many
rows come to ask it, he is asked once."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel import select

from bot.features.enactments import next_ask
from storage.db import Database
from storage.models import Enactment, Member, OutboxMessage
from tests.doubles import Sent
from tests.steps import artifact_id, only, rows, setup_community, share
from tests.story import Story

QUESTION = "You planned to try “Socratic seminar” — what did students do?"


async def ben_plans_next_week(story: Story) -> None:
    """Tuesday 24 Nov: Ana shares; Ben will try it next week (asked Friday 4 Dec, 15:00)."""
    await setup_community(story)
    card = await share(story, "U_ANA", "https://example.org/seminar", "Socratic seminar")
    await story.press("U_BEN", "try_this", artifact_id(card))
    planned = only(await story.press("U_BEN", "try_when", f"{artifact_id(card)}:1"))
    assert "Friday 04 December" in planned.text


def questions(sent: list[Sent]) -> list[Sent]:
    return [s for s in sent if s.text == QUESTION]


async def at(story: Story, moment: datetime) -> list[Sent]:
    story.clock.set(moment)
    return await story.deliver()


def status(db: Database) -> str:
    [enactment] = rows(db, Enactment)
    return enactment.status


def test_the_next_ask_is_15_00_on_a_weekday_still_to_come() -> None:
    zone = UTC
    friday = date(2026, 12, 11)
    morning = datetime(2026, 12, 11, 9, 0, tzinfo=UTC)
    assert next_ask(friday, zone, morning) == datetime(2026, 12, 11, 15, 0, tzinfo=UTC)
    evening = datetime(2026, 12, 11, 16, 0, tzinfo=UTC)
    assert next_ask(friday, zone, evening) == datetime(2026, 12, 14, 15, 0, tzinfo=UTC)
    saturday = date(2026, 12, 12)
    assert next_ask(saturday, zone, morning) == datetime(2026, 12, 14, 15, 0, tzinfo=UTC)


async def test_a_paused_member_is_asked_after_the_pause_not_during_it(
    story: Story, db: Database
) -> None:
    await ben_plans_next_week(story)
    story.clock.set(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))  # Monday
    paused = only(await story.command("U_BEN", "pause 12", channel=None))  # to Fri 11 Dec
    assert "until Saturday 12 Dec" in paused.text
    assert "My question about what you planned to try with your class waits" in paused.text

    # Friday 4 Dec, 15:01: the day has come, but Ben is paused — nothing is sent ...
    assert await at(story, datetime(2026, 12, 4, 15, 1, tzinfo=UTC)) == []
    assert status(db) == "planned"
    # ... and the question is queued for 15:00 on the first weekday after the pause (the
    # pause ends on a Saturday: Monday 14 Dec).
    later = rows(
        db, OutboxMessage, OutboxMessage.kind == "enactment", OutboxMessage.status == "pending"
    )
    assert [r.not_before.replace(tzinfo=UTC) for r in later] == [
        datetime(2026, 12, 14, 15, 0, tzinfo=UTC)
    ]
    assert await at(story, datetime(2026, 12, 12, 15, 1, tzinfo=UTC)) == []  # a Saturday
    assert await at(story, datetime(2026, 12, 14, 14, 59, tzinfo=UTC)) == []

    [asked] = questions(await at(story, datetime(2026, 12, 14, 15, 1, tzinfo=UTC)))
    assert asked.conversation.channel_id == "D-U_BEN"
    assert status(db) == "asked"

    # His answer still reaches Ana.
    sent = await story.say("U_BEN", "Pairs rehearsed, then 18 of 22 spoke.")
    told = next(s for s in sent if s.conversation.channel_id == "D-U_ANA")
    assert "What students did: Pairs rehearsed, then 18 of 22 spoke." in told.text
    assert status(db) == "answered"
    assert questions(await at(story, datetime(2026, 12, 21, 15, 1, tzinfo=UTC))) == []


async def test_a_second_pause_holds_the_question_again(story: Story, db: Database) -> None:
    await ben_plans_next_week(story)
    story.clock.set(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))  # Thursday
    await story.command("U_BEN", "pause 4", channel=None)  # to Sunday 6 Dec
    assert await at(story, datetime(2026, 12, 4, 15, 1, tzinfo=UTC)) == []
    story.clock.set(datetime(2026, 12, 7, 8, 0, tzinfo=UTC))  # Monday: paused again
    await story.command("U_BEN", "pause 3", channel=None)  # to Wednesday 9 Dec
    assert await at(story, datetime(2026, 12, 7, 15, 1, tzinfo=UTC)) == []
    assert status(db) == "planned"
    assert await at(story, datetime(2026, 12, 9, 15, 1, tzinfo=UTC)) == []
    [asked] = questions(await at(story, datetime(2026, 12, 10, 15, 1, tzinfo=UTC)))
    assert asked.conversation.channel_id == "D-U_BEN"
    assert await at(story, datetime(2026, 12, 17, 15, 1, tzinfo=UTC)) == []


async def test_resume_brings_the_question_forward_and_it_is_asked_once(
    story: Story, db: Database
) -> None:
    await ben_plans_next_week(story)
    story.clock.set(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    await story.command("U_BEN", "pause 14", channel=None)  # to Monday 14 Dec
    assert await at(story, datetime(2026, 12, 4, 15, 1, tzinfo=UTC)) == []

    story.clock.set(datetime(2026, 12, 8, 10, 0, tzinfo=UTC))  # Tuesday: back early
    back = only(await story.command("U_BEN", "resume", channel=None))
    assert "check-ins are on again" in back.text
    assert "On Tuesday 08 December at 15:00 I'll ask you what students did" in back.text
    [asked] = questions(await at(story, datetime(2026, 12, 8, 15, 1, tzinfo=UTC)))
    assert asked.conversation.channel_id == "D-U_BEN"
    # The row queued for the pause's planned end finds it asked: nothing is sent twice.
    assert await at(story, datetime(2026, 12, 15, 15, 1, tzinfo=UTC)) == []
    kinds = rows(db, OutboxMessage, OutboxMessage.kind == "enactment")
    assert sorted(r.status for r in kinds) == ["sent", "skipped", "skipped"]
    assert status(db) == "asked"


async def test_two_rows_due_at_once_ask_once(story: Story, db: Database) -> None:
    await ben_plans_next_week(story)
    story.clock.set(datetime(2026, 12, 4, 9, 0, tzinfo=UTC))  # Friday morning
    await story.command("U_BEN", "pause 3", channel=None)  # to Sunday 6 Dec
    assert await at(story, datetime(2026, 12, 4, 15, 1, tzinfo=UTC)) == []
    # Monday morning: the pause is over, and Ben says `resume` anyway — a second row for
    # the same 15:00 as the one the pause queued.
    story.clock.set(datetime(2026, 12, 7, 8, 0, tzinfo=UTC))
    await story.command("U_BEN", "resume", channel=None)
    due = rows(
        db, OutboxMessage, OutboxMessage.kind == "enactment", OutboxMessage.status == "pending"
    )
    assert {r.not_before.replace(tzinfo=UTC) for r in due} == {
        datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    } and len(due) == 2
    assert len(questions(await at(story, datetime(2026, 12, 7, 15, 1, tzinfo=UTC)))) == 1
    assert status(db) == "asked"


async def test_the_pause_counts_in_the_members_own_timezone(story: Story, db: Database) -> None:
    await ben_plans_next_week(story)
    with db.session() as session:
        ben = session.exec(select(Member).where(Member.user_id == "U_BEN")).one()
        ben.timezone = "Pacific/Auckland"  # UTC+13 in December
        session.add(ben)
        session.commit()
    # Ben's plan was made with his old (UTC) day: his Friday 4 Dec 15:00 UTC is already
    # Saturday 04:00 in Auckland. He pauses through Saturday 5 Dec, his time.
    story.clock.set(datetime(2026, 12, 3, 20, 0, tzinfo=UTC))  # Friday 4 Dec 09:00 there
    await story.command("U_BEN", "pause 2", channel=None)
    assert await at(story, datetime(2026, 12, 4, 15, 1, tzinfo=UTC)) == []  # Saturday there
    # Asked 15:00 Monday 7 Dec Auckland time = 02:00 UTC on Monday 7 Dec.
    assert await at(story, datetime(2026, 12, 7, 1, 59, tzinfo=UTC)) == []
    [asked] = questions(await at(story, datetime(2026, 12, 7, 2, 1, tzinfo=UTC)))
    assert asked.conversation.channel_id == "D-U_BEN"
