"""The outbox: every queued message is sent once, survives rate limits and crashed workers,
and is skipped when it no longer applies."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlmodel import select

from bot.core.port import DeliveryError
from bot.delivery.sender import MAX_ATTEMPTS, OutboxSender
from bot.schedules.scheduling import run_schedule
from storage.db import Database
from storage.models import CheckIn, OutboxMessage, Reflection, Schedule
from tests.steps import only, rows, setup_community
from tests.story import CHANNEL, Story


async def one_checkin_queued(story: Story) -> None:
    """A community whose only member is the coach; `checkins send` queues one DM."""
    await setup_community(story)
    assert "on their way to 1 member." in only(await story.command("U_COACH", "checkins send")).text


def the_row(db: Database) -> OutboxMessage:
    [row] = rows(db, OutboxMessage)
    return row


async def test_a_rate_limit_puts_the_row_back_and_it_is_sent_once_later(
    story: Story, db: Database
) -> None:
    await one_checkin_queued(story)
    story.platform.fail_next.append(DeliveryError("ratelimited", retry_after=30))
    assert await story.deliver() == []
    row = the_row(db)
    assert (row.status, row.attempts, row.error) == ("pending", 1, "ratelimited")
    now = story.clock.now()
    assert now + timedelta(seconds=30) <= row.not_before <= now + timedelta(seconds=33)

    assert await story.deliver() == []  # not due yet
    story.clock.advance(timedelta(seconds=40))
    delivered = only(await story.deliver())
    assert delivered.conversation.channel_id == "D-U_COACH"
    assert await story.deliver() == []
    row = the_row(db)
    assert (row.status, row.attempts, row.platform_message_id) == (
        "sent",
        2,
        delivered.ref.message_id,
    )
    assert len(rows(db, CheckIn)) == 1  # the retry reused the check-in it opened the first time


async def test_a_permanent_refusal_fails_the_row_without_retrying(
    story: Story, db: Database
) -> None:
    await one_checkin_queued(story)
    story.platform.fail_next.append(DeliveryError("channel_not_found", permanent=True))
    assert await story.deliver() == []
    assert (the_row(db).status, the_row(db).error) == ("failed", "channel_not_found")
    story.clock.advance(timedelta(hours=1))
    assert await story.deliver() == []


async def test_repeated_failures_give_up_after_the_last_attempt(story: Story, db: Database) -> None:
    await one_checkin_queued(story)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        story.platform.fail_next.append(DeliveryError("timeout"))
        assert await story.deliver() == []
        assert the_row(db).attempts == attempt
        story.clock.advance(timedelta(minutes=10))
    assert the_row(db).status == "failed"
    assert await story.deliver() == []
    report = only(await story.command("U_COACH", "report"))
    assert "Undelivered messages (4 weeks): 1" in report.text


async def test_expired_rows_are_skipped(story: Story, db: Database) -> None:
    await one_checkin_queued(story)
    story.clock.advance(timedelta(hours=21))  # a check-in is stale after 20 hours
    assert await story.deliver() == []
    row = the_row(db)
    assert (row.status, row.error) == ("skipped", "expired before it could be sent")
    assert rows(db, CheckIn) == []


async def test_a_row_claimed_by_a_crashed_worker_is_sent_after_the_stale_timeout(
    story: Story, db: Database
) -> None:
    await one_checkin_queued(story)
    crashed = OutboxSender(
        db=db,
        platforms={},
        prompts=story.bot.prompts,
        kinds=story.bot.router.outbox,
        clock=story.clock,
        default_tz="UTC",
        worker_id="dead",
    )
    assert len(crashed.claim()) == 1  # claimed, then the worker died before sending
    assert await story.deliver() == []  # another worker leaves the claimed row alone
    story.clock.advance(timedelta(minutes=6))
    assert len(await story.deliver()) == 1
    assert await story.deliver() == []


async def test_two_senders_never_send_the_same_row(story: Story, db: Database) -> None:
    """Two senders on one database (two replicas) claim at the same instant, from two
    threads, over and over: every row is claimed by exactly one of them, and each member
    gets their check-in once."""
    await setup_community(story)
    people = [f"U_{n}" for n in range(40)]
    story.platform.members[CHANNEL] = people
    await story.command("U_COACH", "checkins send")
    queued = len(rows(db, OutboxMessage))
    other = OutboxSender(
        db=db,
        platforms={story.platform.name: story.platform},
        prompts=story.bot.prompts,
        kinds=story.bot.router.outbox,
        clock=story.clock,
        default_tz="UTC",
        worker_id="other",
    )
    senders = (story.sender, other)
    start = threading.Barrier(len(senders))
    claimed: dict[str, list[int]] = {}

    def claim_until_empty(sender: OutboxSender) -> None:
        mine = claimed.setdefault(sender.worker_id, [])
        start.wait()
        while batch := sender.claim(limit=2):
            mine += batch
            time.sleep(0.002)  # sending it, meanwhile the other claims

    threads = [threading.Thread(target=claim_until_empty, args=(s,)) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    mine, theirs = claimed[story.sender.worker_id], claimed["other"]
    assert mine and theirs and not set(mine) & set(theirs)
    assert len(mine) + len(theirs) == len(set(mine) | set(theirs)) == queued
    for sender in senders:
        for row_id in claimed[sender.worker_id]:
            await sender.deliver(row_id)
    sent = story.platform.pop()
    assert sorted(s.message.to.user_id for s in sent if s.message.to) == sorted(
        [*people, "U_COACH"]
    )
    assert {r.status for r in rows(db, OutboxMessage)} == {"sent"}


async def test_scheduled_prompt_goes_out_once_and_not_during_a_break(
    story: Story, db: Database
) -> None:
    await setup_community(story)
    [prompt_schedule] = rows(db, Schedule, Schedule.kind == "prompt")
    assert prompt_schedule.id is not None

    def fire() -> str:
        with db.session() as session:
            return run_schedule(
                session,
                story.bot.prompts,
                schedule_id=prompt_schedule.id or 0,
                now=story.clock.now(),
                default_tz="UTC",
            )

    assert fire() == "Math PLN: prompt queued"
    assert fire() == "Math PLN: prompt already queued"  # a second replica, or a restart
    posted = only(await story.deliver())
    assert posted.conversation.channel_id == CHANNEL and posted.text.startswith("Reflection prompt")
    # The delivered card is linked, so thread replies count as reflections.
    await story.reply_in_thread("U_ANA", posted.ref.message_id, "Exit tickets again")
    assert [r.text for r in rows(db, Reflection)] == ["Exit tickets again"]

    await story.command("U_COACH", "schedule break 2026-11-30 2026-12-04")
    story.clock.advance(timedelta(days=7))
    assert fire() == "Math PLN: on a break, nothing sent"
    assert await story.deliver() == []
    with db.session() as session:
        keys = session.exec(select(OutboxMessage.key)).all()
    assert keys == [f"prompt:{prompt_schedule.community_id}:2026-11-24"]
