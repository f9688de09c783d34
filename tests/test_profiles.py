"""Profiles: a teacher answers eight short questions in the DM (or fills in the form); the
conversation lives in the database, so a restart half-way continues it."""

from __future__ import annotations

import dataclasses

from bot.config import Settings
from bot.core.dispatch import Bot
from storage.db import Database
from storage.models import FlowState, Member
from tests.doubles import FrozenClock
from tests.steps import only, rows, setup_community, text_of
from tests.story import Story

FORM = {
    "role": "principal",
    "school": "Lincoln Elementary",
    "strengths": "Building schedules",
    "needs": "Time for coaching",
    "interests": "Student voice",
    "constraints": "No meetings on Fridays",
    "timezone": "Europe/London",
    "cadence": "biweekly thu 08:15",
}


def member(db: Database, user_id: str) -> Member:
    found = rows(db, Member, Member.user_id == user_id)
    assert len(found) == 1
    return found[0]


async def test_profile_flow_survives_a_restart_half_way(
    story: Story, db: Database, settings: Settings, clock: FrozenClock
) -> None:
    first = only(await story.command("U_ANA", "profile", channel=None))
    assert "(1/8) What's your role?" in first.text
    # Where no form can show (Slack, typed in a DM), the questions come one by one, with a
    # button that opens the form instead.
    assert first.message.card is not None and first.message.card.submit is None
    assert first.message.card.buttons[0].action_id == "profile_open"

    assert only(await story.say("U_ANA", "teacher")).text.startswith("(2/8) Which school")
    assert only(await story.say("U_ANA", "Roosevelt Middle School")).text.startswith("(3/8)")
    assert only(await story.say("U_ANA", "Exit tickets and quick checks")).text.startswith("(4/8)")
    assert [(f.flow, f.step) for f in rows(db, FlowState)] == [("profile", "needs")]

    # The process restarts: a new Bot on the same database, with nothing in memory.
    restarted = Bot(db=db, settings=settings, clock=clock)
    story = dataclasses.replace(story, bot=restarted)

    assert only(await story.say("U_ANA", "Ideas for differentiation")).text.startswith("(5/8)")
    assert only(await story.say("U_ANA", "Student agency")).text.startswith("(6/8)")
    assert only(await story.say("U_ANA", "skip")).text.startswith("(7/8) Your timezone")

    # A timezone that doesn't exist is asked again; nothing moves on.
    bad = only(await story.say("U_ANA", "Mars/Olympus_Mons"))
    assert "isn't a timezone I know" in bad.text
    assert [(f.flow, f.step) for f in rows(db, FlowState)] == [("profile", "timezone")]
    assert only(await story.say("U_ANA", "America/Chicago")).text.startswith("(8/8)")

    done = only(await story.say("U_ANA", "weekly wed 15:30"))
    assert "your profile is saved" in done.text
    ana = member(db, "U_ANA")
    assert (ana.role, ana.school, ana.strengths, ana.needs, ana.interests, ana.constraints) == (
        "teacher",
        "Roosevelt Middle School",
        "Exit tickets and quick checks",
        "Ideas for differentiation",
        "Student agency",
        "",
    )
    assert (ana.timezone, ana.cadence, ana.checkin_weekday, ana.checkin_time) == (
        "America/Chicago",
        "weekly",
        2,
        "15:30",
    )
    assert ana.onboarded is True
    assert rows(db, FlowState) == []


async def test_bad_role_and_cadence_are_asked_again(story: Story, db: Database) -> None:
    await story.command("U_ANA", "profile", channel=None)
    assert "didn't recognise that role" in only(await story.say("U_ANA", "astronaut")).text
    assert only(await story.say("U_ANA", "Instructional Coach")).text.startswith("(2/8)")
    for answer in ("skip", "skip", "skip", "skip", "skip", "Europe/Berlin"):
        await story.say("U_ANA", answer)
    assert "Please answer `weekly`" in only(await story.say("U_ANA", "sometimes")).text
    assert "couldn't read" in only(await story.say("U_ANA", "weekly someday")).text
    assert "profile is saved" in only(await story.say("U_ANA", "monthly fri 9:05")).text
    ana = member(db, "U_ANA")
    assert (ana.role, ana.cadence, ana.checkin_weekday, ana.checkin_time) == (
        "instructional_coach",
        "monthly",
        4,
        "09:05",
    )


async def test_cancel_stops_the_flow_and_keeps_what_was_answered(
    story: Story, db: Database
) -> None:
    await story.command("U_ANA", "profile", channel=None)
    await story.say("U_ANA", "principal")
    assert "stopped" in only(await story.say("U_ANA", "cancel")).text
    assert rows(db, FlowState) == []
    ana = member(db, "U_ANA")
    assert ana.role == "principal" and ana.onboarded is False
    # After cancelling, words are commands again.
    assert "Your goals" in only(await story.say("U_ANA", "me")).text


async def test_profile_in_a_channel_continues_in_the_dm(story: Story, db: Database) -> None:
    await setup_community(story)
    sent = only(await story.command("U_ANA", "profile"))
    assert sent.ephemeral and sent.conversation.channel_id == "C_PLN"
    assert "Answer in our direct messages" in sent.text and "(1/8)" in sent.text
    assert only(await story.say("U_ANA", "district leader")).text.startswith("(2/8)")
    assert member(db, "U_ANA").role == "district_leader"


async def test_platform_timezone_is_used_until_the_member_sets_one(
    story: Story, db: Database
) -> None:
    story.platform.timezones["U_ANA"] = "Asia/Tokyo"
    await story.command("U_ANA", "profile", channel=None)
    assert member(db, "U_ANA").timezone == "Asia/Tokyo"


async def test_profile_form_submit_saves_every_field(story: Story, db: Database) -> None:
    sent = only(await story.press("U_ANA", "profile_save", values=FORM, channel=None))
    assert sent.text == "Your profile is saved."
    ana = member(db, "U_ANA")
    assert (ana.role, ana.school, ana.strengths, ana.needs, ana.interests, ana.constraints) == (
        "principal",
        "Lincoln Elementary",
        "Building schedules",
        "Time for coaching",
        "Student voice",
        "No meetings on Fridays",
    )
    assert (ana.timezone, ana.cadence, ana.checkin_weekday, ana.checkin_time) == (
        "Europe/London",
        "biweekly",
        3,
        "08:15",
    )
    assert ana.onboarded is True

    shown = only(await story.command("U_ANA", "profile show", channel=None))
    assert "*Role:* Principal" in shown.text
    assert "*Check-ins:* biweekly, Thursday 08:15" in shown.text
    assert "haven't finished" not in shown.text


async def test_profile_form_with_blank_optional_fields_saves(story: Story, db: Database) -> None:
    """Platforms send an optional input the person left empty as ""."""
    blank = {key: "" for key in FORM} | {"role": "teacher"}
    sent = only(await story.press("U_ANA", "profile_save", values=blank, channel=None))
    assert sent.text == "Your profile is saved."
    ana = member(db, "U_ANA")
    assert (ana.role, ana.timezone, ana.cadence, ana.onboarded) == ("teacher", None, "weekly", True)


async def test_profile_form_errors_save_nothing(story: Story, db: Database) -> None:
    await story.command("U_ANA", "profile show", channel=None)
    no_role = only(
        await story.press("U_ANA", "profile_save", values=FORM | {"role": ""}, channel=None)
    )
    assert "choose a role" in no_role.text
    bad_zone = FORM | {"timezone": "Nowhere/Special"}
    refused = only(await story.press("U_ANA", "profile_save", values=bad_zone, channel=None))
    assert "isn't a timezone I know" in refused.text
    ana = member(db, "U_ANA")
    assert (ana.role, ana.school, ana.onboarded) == (None, None, False)


async def test_profile_show_before_onboarding_says_how_to_start(story: Story) -> None:
    shown = only(await story.command("U_ANA", "profile show", channel=None))
    assert "*Role:* not set" in shown.text
    assert "type `profile` to set it up" in shown.text
    assert "Role not set" in text_of([shown])
    assert "Usage" in only(await story.command("U_ANA", "profile edit please", channel=None)).text


async def test_joining_a_community_offers_the_profile(story: Story, db: Database) -> None:
    await setup_community(story)
    welcome = only(await story.join("U_NEW"))
    assert welcome.conversation.channel_id == "D-U_NEW"
    assert "Welcome to Math PLN" in welcome.text
    assert welcome.message.card is not None
    assert welcome.message.card.buttons[0].action_id == "profile_open"
    opened = only(await story.press("U_NEW", "profile_open", channel=None))
    assert "(1/8)" in opened.text
    assert [(f.flow, f.step) for f in rows(db, FlowState)] == [("profile", "role")]


async def test_where_the_form_shows_no_questions_wait_behind_it(story: Story, db: Database) -> None:
    """The form is the whole conversation: the next thing typed is not taken as a role."""
    story.platform.forms = True
    shown = only(await story.command("U_ANA", "profile", channel=None))
    assert shown.message.card is not None and shown.message.card.submit is not None
    assert shown.message.card.submit.action_id == "profile_save"
    assert "(1/8)" not in shown.text
    assert rows(db, FlowState) == []
    me = only(await story.say("U_ANA", "me"))
    assert "recognise that role" not in me.text and "Your goals" in me.text
