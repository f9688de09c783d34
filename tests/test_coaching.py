"""What coaches drive: registering a community, coach grants, schedules, check-in fan-out and
the community report (counts and bands only)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from storage.db import Database
from storage.models import (
    CheckIn,
    Community,
    Member,
    OutboxMessage,
    Schedule,
    ScheduleBreak,
    Workspace,
)
from tests.steps import only, rows, setup_community, share, text_of
from tests.story import CHANNEL, Story


async def test_setup_registers_once_and_renames(story: Story, db: Database) -> None:
    sent = await story.command("U_COACH", "setup Math PLN")
    public = [s for s in sent if not s.ephemeral]
    assert len(public) == 1 and public[0].conversation.channel_id == CHANNEL
    assert "now the PLN community “Math PLN”" in public[0].text
    private = [s for s in sent if s.ephemeral]
    assert private[0].text.startswith(
        "Default schedule, in UTC time: prompt: Monday 09:00; checkin: Wednesday 15:30"
    )

    again = only(await story.command("U_COACH", "setup"))
    assert again.ephemeral and "already the community “Math PLN”" in again.text
    same = only(await story.command("U_COACH", "setup Math PLN"))
    assert "already the community" in same.text
    renamed = only(await story.command("U_COACH", "setup Grade 7 Math"))
    assert renamed.text == "Renamed this community to Grade 7 Math."

    assert [(c.name, c.channel_id) for c in rows(db, Community)] == [("Grade 7 Math", CHANNEL)]
    assert sorted(s.kind for s in rows(db, Schedule)) == ["checkin", "digest", "prompt"]
    assert "not in a DM" in only(await story.command("U_COACH", "setup", channel=None)).text


async def test_setup_without_a_name_uses_the_channel_name(story: Story, db: Database) -> None:
    await story.command("U_COACH", "setup")
    assert [c.name for c in rows(db, Community)] == ["pln-math"]


async def test_schedule_changes_notify_the_scheduler(story: Story) -> None:
    calls: list[str] = []
    story.bot.on_schedules_changed = lambda: calls.append("rebuilt")
    await setup_community(story)
    await story.command("U_COACH", "schedule digest fri 13:00")
    await story.command("U_COACH", "schedule digest sometime")  # refused: no change
    assert calls == ["rebuilt", "rebuilt"]


async def test_coach_add_and_remove(story: Story, db: Database) -> None:
    await setup_community(story)
    refused = only(await story.command("U_X", "report"))
    assert refused.text.startswith("`report` is for coaches.")

    # Named, never mentioned: the bot writes no platform markup (README "Security").
    promoted = only(await story.command("U_COACH", "coach add <@U_X>"))
    assert promoted.text == "*U_X* is now a coach."
    assert only(await story.command("U_X", "report")).text.startswith("Report for Math PLN")
    assert "goes out" in only(await story.command("U_X", "schedule prompt tue 10:00")).text
    # The new coach can grant the role in turn; mentions may carry a display name.
    assert "is now a coach" in only(await story.command("U_X", "coach add <@U_Y|yusuf>")).text
    assert {m.user_id for m in rows(db, Member) if m.is_coach} == {"U_X", "U_Y"}

    removed = only(await story.command("U_COACH", "coach remove <@U_X>"))
    assert removed.text == "*X* is no longer a coach."  # named once they acted
    assert only(await story.command("U_X", "report")).text.startswith("`report` is for coaches.")

    # Coaches from PLNBOT_COACHES stay coaches; the answer says why.
    kept = only(await story.command("U_Y", "coach remove <@U_COACH>"))
    assert "stay a coach through PLNBOT_COACHES" in kept.text
    assert only(await story.command("U_COACH", "report")).text.startswith("Report for")


async def test_coach_add_needs_someone_to_add(story: Story) -> None:
    await setup_community(story)
    assert "Usage: `coach add @member`" in only(await story.command("U_COACH", "coach add")).text
    unknown = only(await story.command("U_COACH", "coach add @nobody"))
    assert "I don't know “@nobody” yet" in unknown.text
    assert "mention the person" in only(await story.command("U_COACH", "coach add two people")).text


async def test_platform_admins_and_the_installer_are_coaches(story: Story, db: Database) -> None:
    story.platform.admins.add("U_ADMIN")
    assert "now the PLN community" in text_of(await story.command("U_ADMIN", "setup"))
    assert len(rows(db, Community)) == 1

    assert "is for coaches" in only(await story.command("U_INSTALLER", "report")).text
    with db.session() as session:
        [workspace] = session.exec(select(Workspace)).all()
        workspace.installed_by = "U_INSTALLER"
        session.add(workspace)
    assert only(await story.command("U_INSTALLER", "report")).text.startswith("Report for")


async def test_schedule_show_set_off_and_break(story: Story, db: Database) -> None:
    await setup_community(story)
    shown = only(await story.command("U_COACH", "schedule"))
    assert shown.text.splitlines() == [
        "Schedule for Math PLN, in UTC time:",
        "prompt: Monday 09:00",
        "checkin: Wednesday 15:30",
        "digest: Friday 14:00",
    ]
    set_ = only(await story.command("U_COACH", "schedule checkin thu 7:05"))
    assert set_.text == "The checkin now goes out Thursdays at 07:05, UTC time."
    assert (
        only(await story.command("U_COACH", "schedule digest off")).text
        == "The digest schedule is off."
    )
    brk = only(await story.command("U_COACH", "schedule break 2026-12-21 2027-01-01"))
    assert brk.text == "Break saved: nothing scheduled goes out from 21 Dec to 01 Jan 2027."

    shown = only(await story.command("U_COACH", "schedule"))
    assert shown.text.splitlines()[1:] == [
        "prompt: Monday 09:00",
        "checkin: Thursday 07:05",
        "digest: off",
        "break: 2026-12-21 to 2027-01-01",
    ]
    assert {(s.kind, s.weekday, s.time, s.enabled) for s in rows(db, Schedule)} == {
        ("prompt", 0, "09:00", True),
        ("checkin", 3, "07:05", True),
        ("digest", 4, "14:00", False),
    }
    assert len(rows(db, ScheduleBreak)) == 1


@pytest.mark.parametrize(
    ("words", "answer"),
    [
        ("schedule checkin funday 10:00", "“funday” isn't a weekday"),
        ("schedule checkin m 10:00", "“m” isn't a weekday"),
        ("schedule checkin mon 25:00", "“25:00” isn't a time. Use 24-hour HH:MM"),
        ("schedule checkin mon noon", "“noon” isn't a time"),
        (
            "schedule checkin mon",
            "Usage: `schedule checkin <weekday> <HH:MM>` or `schedule checkin off`",
        ),
        ("schedule lunch mon 12:00", "Usage: `schedule prompt|checkin|digest <weekday> <HH:MM>`"),
        ("schedule break 2026-13-01 2026-12-31", "“2026-13-01” isn't a date. Use YYYY-MM-DD"),
        ("schedule break 2026-12-21", "Usage: `schedule break <YYYY-MM-DD> <YYYY-MM-DD>`"),
        ("schedule break 2027-01-01 2026-12-21", "ends before it starts"),
    ],
)
async def test_schedule_usage_errors_change_nothing(
    story: Story, db: Database, words: str, answer: str
) -> None:
    await setup_community(story)
    before = {(s.kind, s.weekday, s.time, s.enabled) for s in rows(db, Schedule)}
    sent = only(await story.command("U_COACH", words))
    assert sent.ephemeral and answer in sent.text
    assert {(s.kind, s.weekday, s.time, s.enabled) for s in rows(db, Schedule)} == before
    assert rows(db, ScheduleBreak) == []


async def test_coach_commands_outside_a_community_say_where_to_run_them(story: Story) -> None:
    for words in ("schedule", "report", "checkins send", "prompt", "digest preview", "digest post"):
        sent = only(await story.command("U_COACH", words))
        assert "community channel" in sent.text, (words, sent.text)


async def test_checkins_send_queues_one_per_member_per_day_and_delivers_dms(
    story: Story, db: Database
) -> None:
    await setup_community(story)
    story.platform.members[CHANNEL] = ["U_COACH", "U_ANA", "U_BEN"]
    await story.command("U_ANA", "goal add Use exit tickets", channel=None)

    sent = only(await story.command("U_COACH", "checkins send"))
    assert sent.text == "Check-ins are on their way to 3 members."
    assert story.bot.outbox_wakeup.is_set()
    again = only(await story.command("U_COACH", "checkins send"))
    assert again.text == "Check-ins are on their way to 0 members. 3 already had today's check-in."
    assert len(rows(db, OutboxMessage)) == 3

    delivered = await story.deliver()
    assert sorted(s.conversation.channel_id for s in delivered) == [
        "D-U_ANA",
        "D-U_BEN",
        "D-U_COACH",
    ]
    to_ana = next(s for s in delivered if s.conversation.channel_id == "D-U_ANA")
    assert "Use exit tickets" in to_ana.text
    assert (
        to_ana.message.card is not None
        and to_ana.message.card.buttons[0].action_id == "checkin_rate"
    )
    assert await story.deliver() == []
    assert {r.status for r in rows(db, OutboxMessage)} == {"sent"}

    # Ana answers the DM; the check-in belongs to the community.
    assert only(await story.say("U_ANA", "6 - first week")).text.startswith("Saved: 6 (Planning)")
    answered = [c for c in rows(db, CheckIn) if c.status == "answered"]
    assert [(c.rating, c.community_id is not None) for c in answered] == [(6, True)]


async def test_report_shows_counts_and_bands_only(story: Story, db: Database) -> None:
    # Three teachers is a group large enough for this test (PLNBOT_MIN_GROUP=3); the
    # default of 5, and what a smaller group reads, are tests/test_small_groups.py's.
    story.bot.settings = story.bot.settings.model_copy(update={"min_group": 3})
    await setup_community(story)
    story.platform.members[CHANNEL] = ["U_COACH", "U_ANA", "U_BEN", "U_CARA"]
    await story.command("U_COACH", "checkins send")
    await story.deliver()
    await story.say("U_ANA", "2 - PRIVATE: overwhelmed this week")
    await story.say("U_BEN", "9 - PRIVATE: students ran the review")
    await story.say("U_CARA", "6 - PRIVATE: choice boards again")
    story.clock.advance(timedelta(days=7))  # the week they answered in is over
    card = await share(story, "U_CARA", "https://example.org/c", "Choice board")
    await story.press(
        "U_ANA", "endorse", card.message.card.buttons[0].value if card.message.card else ""
    )

    report = only(await story.command("U_COACH", "report"))
    assert report.ephemeral
    assert report.text.splitlines() == [
        "Report for Math PLN",
        "Members: 4",
        "Check-ins (4 weeks): 3 answered of 4 sent",
        "Self-ratings last week (week of 23 Nov): Investigating 1, Envisioning 0, Planning 1, "
        "Staging 1 · average 5.7 (3 people)",
        "This week (week of 30 Nov): 1 shares, 1 endorsements",
        "Reflections (4 weeks): fewer than 3 people — shown once 3 have reflected in a week",
        "May need a hand: 0 without a check-in in 3 weeks",  # as the dashboard: not the coach
        "Undelivered messages (4 weeks): 0",
        "Figures about fewer than 3 people are held back, so no one's private answers can be "
        "picked out of them.",
    ]
    everything = text_of([report])
    assert "PRIVATE" not in everything
    for name in ("Ana", "Ben", "Cara", "U_ANA"):
        assert name not in everything


async def test_a_community_keeps_its_own_time(story: Story, db: Database) -> None:
    """setup starts from the coach's timezone; `schedule timezone` changes it; every time
    shown says whose time it is."""
    story.platform.timezones["U_COACH"] = "America/Chicago"
    sent = await story.command("U_COACH", "setup Math PLN")
    assert any("in America/Chicago time" in s.text for s in sent if s.ephemeral)
    with db.session() as session:
        assert session.exec(select(Community)).one().timezone == "America/Chicago"

    moved = only(await story.command("U_COACH", "schedule timezone Europe/Madrid"))
    assert moved.text.startswith("Math PLN now keeps Europe/Madrid time: prompt: Monday 09:00")
    refused = only(await story.command("U_COACH", "schedule timezone Mars/Base"))
    assert "Nothing was changed" in refused.text
    with db.session() as session:
        assert session.exec(select(Community)).one().timezone == "Europe/Madrid"
