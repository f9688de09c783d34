"""Scheduling with a clock we control: weeks pass in milliseconds, DST changes, members on
both sides of the world, quiet days, breaks, pauses, nudges and missed runs."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.schedules.planning import PlanOptions, local_instant, plan
from storage.db import Database
from storage.models import Member, OutboxMessage, ScheduleBreak
from tests.story import Story

OPTIONS = PlanOptions(default_tz="UTC", nudge_after=timedelta(hours=24))
NO_NUDGES = PlanOptions(default_tz="UTC", nudge_after=timedelta(days=365))


async def community_with(story: Story, db: Database, people: dict[str, dict]) -> None:
    """A community whose members have set up their profiles as given."""
    await story.command("U_COACH", "setup Math PLN")
    for user_id in people:
        await story.join(user_id)
    with db.session() as session:
        for user_id, fields in people.items():
            member = session.exec(select(Member).where(Member.user_id == user_id)).one()
            for key, value in {"onboarded": True, **fields}.items():
                setattr(member, key, value)
            session.add(member)


async def run_weeks(
    story: Story,
    db: Database,
    start: datetime,
    days: int,
    step: timedelta = timedelta(hours=1),
    options: PlanOptions = NO_NUDGES,
) -> list[tuple[str, datetime]]:
    """Tick the planner and the sender every `step`; return (recipient, sent at) pairs."""
    story.clock.set(start)
    sent: list[tuple[str, datetime]] = []
    end = start + timedelta(days=days)
    while story.clock.now() < end:
        with db.session() as session:
            plan(session, story.bot.prompts, story.clock.now(), options)
            upcoming = session.exec(
                select(OutboxMessage.not_before)
                .where(
                    OutboxMessage.status == "pending", OutboxMessage.not_before > story.clock.now()
                )
                .order_by(OutboxMessage.not_before)
            ).first()
        for message in await story.deliver():
            sent.append((message.conversation.channel_id.removeprefix("D-"), story.clock.now()))
        # Jump to the next tick, or straight to the next queued message if it is sooner.
        story.clock.set(min(story.clock.now() + step, upcoming or end))
    return sent


def local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone))


async def test_checkins_stay_at_local_time_across_dst_on_both_sides_of_the_atlantic(
    story: Story, db: Database
) -> None:
    await community_with(
        story,
        db,
        {
            "U_NYC": {
                "timezone": "America/New_York",
                "checkin_weekday": 3,
                "checkin_time": "08:00",
            },
            "U_LDN": {"timezone": "Europe/London", "checkin_weekday": 3, "checkin_time": "08:00"},
        },
    )
    # 19 Oct - 9 Nov 2026: London leaves summer time on 25 Oct, New York on 1 Nov.
    sent = await run_weeks(story, db, datetime(2026, 10, 19, tzinfo=UTC), days=21)
    for user, zone in (("U_NYC", "America/New_York"), ("U_LDN", "Europe/London")):
        times = [local(at, zone) for who, at in sent if who == user]
        assert len(times) == 3, times
        assert {(t.weekday(), t.hour) for t in times} == {(3, 8)}
        assert all(t.minute < 10 for t in times)  # within one planner tick of 08:00


async def test_auckland_and_los_angeles_each_get_theirs_at_their_own_eight(
    story: Story, db: Database
) -> None:
    await community_with(
        story,
        db,
        {
            "U_AKL": {
                "timezone": "Pacific/Auckland",
                "checkin_weekday": 0,
                "checkin_time": "08:00",
            },
            "U_LAX": {
                "timezone": "America/Los_Angeles",
                "checkin_weekday": 0,
                "checkin_time": "08:00",
            },
        },
    )
    sent = await run_weeks(story, db, datetime(2026, 11, 20, tzinfo=UTC), days=14)
    akl = [local(at, "Pacific/Auckland") for who, at in sent if who == "U_AKL"]
    lax = [local(at, "America/Los_Angeles") for who, at in sent if who == "U_LAX"]
    assert len(akl) == len(lax) == 2
    assert all((t.weekday(), t.hour) == (0, 8) for t in akl + lax)
    assert akl[0].astimezone(UTC) < lax[0].astimezone(UTC)  # Monday comes first in Auckland


async def test_quiet_days_breaks_pauses_and_weekends_are_respected(
    story: Story, db: Database
) -> None:
    await community_with(
        story,
        db,
        {
            "U_QUIET": {"checkin_weekday": 2, "quiet_days": "2"},  # Wednesday is a quiet day
            "U_SAT": {"checkin_weekday": 5},  # a Saturday slot: weekends are quiet by default
            "U_PAUSED": {"checkin_weekday": 2},
            "U_BREAK": {"checkin_weekday": 2},
        },
    )
    story.clock.set(datetime(2026, 11, 30, 9, tzinfo=UTC))
    await story.command("U_PAUSED", "pause 5", channel=None)  # until Friday 4 December
    with db.session() as session:
        session.add(
            ScheduleBreak(
                community_id=1,
                starts_on=datetime(2026, 12, 14).date(),
                ends_on=datetime(2026, 12, 18).date(),
            )
        )
    sent = await run_weeks(story, db, datetime(2026, 11, 30, tzinfo=UTC), days=21)
    who = [user for user, _ in sent]
    assert "U_QUIET" not in who and "U_SAT" not in who
    assert who.count("U_PAUSED") == 1  # paused on 2 Dec, on a break on 16 Dec
    assert who.count("U_BREAK") == 2  # 2 and 9 Dec: the community is on a break on 16 Dec


async def test_spring_forward_gap_moves_the_checkin_later_not_earlier() -> None:
    zone = ZoneInfo("America/New_York")
    moment = local_instant(datetime(2027, 3, 14).date(), "02:30", zone)  # 02:30 doesn't exist
    assert moment.astimezone(UTC) == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)


async def test_one_gentle_nudge_never_more(story: Story, db: Database) -> None:
    await community_with(story, db, {"U_ANA": {"checkin_weekday": 1, "checkin_time": "09:00"}})
    sent = await run_weeks(
        story,
        db,
        datetime(2026, 12, 1, 8, tzinfo=UTC),
        days=4,
        step=timedelta(hours=1),
        options=OPTIONS,
    )
    to_ana = [at for who, at in sent if who == "U_ANA"]
    assert len(to_ana) == 2  # the check-in, then one nudge a day later
    assert to_ana[1] - to_ana[0] >= timedelta(hours=24)


async def test_answered_checkins_get_no_nudge(story: Story, db: Database) -> None:
    await community_with(story, db, {"U_ANA": {"checkin_weekday": 1, "checkin_time": "09:00"}})
    sent = await run_weeks(
        story,
        db,
        datetime(2026, 12, 1, 8, tzinfo=UTC),
        days=1,
        step=timedelta(hours=1),
        options=OPTIONS,
    )
    assert [who for who, _ in sent] == ["U_ANA"]
    await story.say("U_ANA", "8 - students ran the conference")
    later = await run_weeks(
        story, db, story.clock.now(), days=3, step=timedelta(hours=1), options=OPTIONS
    )
    assert [who for who, _ in later if who == "U_ANA"] == []


async def test_after_downtime_useful_work_is_sent_once_and_stale_digest_is_skipped(
    story: Story, db: Database
) -> None:
    story.clock.set(datetime(2026, 11, 23, 8, tzinfo=UTC))  # Monday
    await community_with(story, db, {"U_ANA": {"checkin_weekday": 1, "checkin_time": "09:00"}})
    # The bot was down from Tuesday 08:00 until 11:00: the 09:00 check-in is 2 hours late.
    story.clock.set(datetime(2026, 11, 24, 11, tzinfo=UTC))
    with db.session() as session:
        plan(session, story.bot.prompts, story.clock.now(), OPTIONS)
    delivered = await story.deliver()
    assert [m.conversation.channel_id for m in delivered] == ["D-U_ANA"]
    # Down again from Thursday to the next Monday: Friday's digest belongs to last week.
    story.clock.set(datetime(2026, 11, 30, 10, tzinfo=UTC))
    with db.session() as session:
        result = plan(session, story.bot.prompts, story.clock.now(), OPTIONS)
    assert result.digests == 0 and result.skipped >= 1
    with db.session() as session:
        digest_rows = session.exec(
            select(OutboxMessage).where(OutboxMessage.kind == "digest")
        ).all()
    assert [(r.key, r.status) for r in digest_rows] == [("digest:1:2026-W48", "skipped")]
    assert all("W48" not in m.text for m in await story.deliver())


async def test_planning_twice_or_in_two_replicas_queues_once(story: Story, db: Database) -> None:
    await community_with(story, db, {"U_ANA": {"checkin_weekday": 1, "checkin_time": "09:00"}})
    story.clock.set(datetime(2026, 12, 1, 8, 55, tzinfo=UTC))
    for _ in range(3):
        with db.session() as session:
            plan(session, story.bot.prompts, story.clock.now(), OPTIONS)
    story.clock.advance(timedelta(minutes=10))
    assert len(await story.deliver()) == 1
    assert await story.deliver() == []


async def test_rows_claimed_by_a_crashed_worker_are_taken_back_and_sent_once(
    story: Story, db: Database
) -> None:
    await community_with(story, db, {f"U_T{i}": {} for i in range(6)})
    await story.command("U_COACH", "checkins send")
    dead = f"{socket.gethostname()}:{_dead_pid()}"
    with db.session() as session:
        rows = session.exec(select(OutboxMessage)).all()
        for row in rows[:3]:  # a worker claimed three rows and was killed
            row.status, row.claimed_by, row.claimed_at = "claimed", dead, story.clock.now()
            session.add(row)
    delivered = await story.deliver()
    recipients = sorted(m.conversation.channel_id for m in delivered)
    assert len(recipients) == 7 == len(set(recipients))  # six teachers and the coach, once each


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


async def test_rate_limited_send_is_retried_later_and_arrives_once(
    story: Story, db: Database
) -> None:
    from bot.core.port import DeliveryError

    await community_with(story, db, {"U_ANA": {}})
    await story.command("U_COACH", "checkins send")
    story.platform.fail_next.append(DeliveryError("ratelimited", retry_after=30))
    assert await story.deliver() != []  # the coach's arrives; Ana's waits 30 s
    story.clock.advance(timedelta(seconds=31))
    again = await story.deliver()
    assert len(again) == 1
    assert await story.deliver() == []


@pytest.mark.parametrize(
    "cadence, expected", [("weekly", 4), ("biweekly", 2), ("monthly", 1), ("off", 0)]
)
async def test_cadence(story: Story, db: Database, cadence: str, expected: int) -> None:
    await community_with(
        story, db, {"U_ANA": {"cadence": cadence, "checkin_weekday": 1, "checkin_time": "09:00"}}
    )
    sent = await run_weeks(
        story, db, datetime(2026, 12, 1, tzinfo=UTC), days=28, step=timedelta(hours=1)
    )
    assert len([at for who, at in sent if who == "U_ANA"]) == expected


async def test_no_checkins_on_public_holidays_when_a_country_is_set(
    story: Story, db: Database
) -> None:
    await community_with(
        story,
        db,
        {"U_ANA": {"timezone": "America/New_York", "checkin_weekday": 3, "checkin_time": "09:00"}},
    )
    us = PlanOptions(default_tz="UTC", nudge_after=timedelta(days=365), holiday_country="US")
    # Thursday 26 November 2026 is Thanksgiving; Thursday 3 December is not a holiday.
    sent = await run_weeks(story, db, datetime(2026, 11, 25, tzinfo=UTC), days=9, options=us)
    days = [local(at, "America/New_York").date().isoformat() for who, at in sent if who == "U_ANA"]
    assert days == ["2026-12-03"]
