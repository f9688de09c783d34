"""Indicators of progress (#16): a teacher words up to three indicators for a goal, logs
values with `goal log`, and check-ins on that goal ask for them too. A rating shows what its
band means for the member's role; a Staging rating asks for a piece of evidence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.features.goals import parse_kind, parse_value
from bot.services.prompts import PromptLibrary
from storage.db import Database
from storage.models import CheckIn, FlowState, Indicator, IndicatorValue, Member
from tests.steps import only, rows, text_of
from tests.story import Story

ANA = "U_ANA"


async def goal_with_indicator(
    story: Story, words: str = "achievement Exit-ticket mastery %"
) -> None:
    await story.command(ANA, "goal add Use exit tickets daily", channel=None)
    await story.command(ANA, f"goal indicator 1 {words}", channel=None)


def set_role(db: Database, user_id: str, role: str) -> None:
    with db.session() as session:
        member = session.exec(select(Member).where(Member.user_id == user_id)).one()
        member.role = role
        session.add(member)


async def test_a_teacher_words_three_indicators_and_a_fourth_is_refused(
    story: Story, db: Database
) -> None:
    await story.command(ANA, "goal add Use exit tickets daily")
    first = only(await story.command(ANA, "goal indicator 1 achievement Exit-ticket mastery %"))
    assert first.ephemeral
    assert first.text.startswith(
        "Indicator 1 on goal 1 (student achievement): Exit-ticket mastery %"
    )
    assert "`goal log 1 <value> [note]`" in first.text
    second = only(await story.command(ANA, "goal indicator 1 student engagement: hands up"))
    assert second.text.startswith("Indicator 2 on goal 1 (student engagement): hands up")
    assert "`goal log 1 2 <value> [note]`" in second.text
    third = only(await story.command(ANA, "goal indicator 1 Lessons with a closing task"))
    assert third.text.startswith("Indicator 3 on goal 1 (evidence of practice):")

    fourth = only(await story.command(ANA, "goal indicator 1 21st-century collaboration"))
    assert fourth.ephemeral
    assert "already has 3 indicators, the most a goal takes" in fourth.text
    assert "1. Exit-ticket mastery %; 2. hands up; 3. Lessons with a closing task" in fourth.text
    assert [(i.number, i.kind, i.text) for i in rows(db, Indicator)] == [
        (1, "achievement", "Exit-ticket mastery %"),
        (2, "engagement", "hands up"),
        (3, "practice", "Lessons with a closing task"),
    ]


async def test_indicators_go_only_on_your_own_active_goals(story: Story, db: Database) -> None:
    await story.command("U_BEN", "goal add Ben's goal")
    missing = only(await story.command(ANA, "goal indicator 1 exit tickets"))
    assert missing.text == "You have no goal 1. `goal list` shows their numbers."
    await story.command(ANA, "goal add Try a gallery walk")
    await story.command(ANA, "goal done 1")
    done = only(await story.command(ANA, "goal indicator 1 exit tickets"))
    assert "marked done, so it takes no new indicators" in done.text
    usage = only(await story.command(ANA, "goal indicator one exit tickets"))
    assert usage.text.startswith("Usage: `goal indicator <n> [kind] <what you will look at>`")
    assert "Usage: `goal indicator" in only(await story.command(ANA, "goal indicator 1")).text
    too_long = only(await story.command(ANA, "goal add Another"))
    assert too_long.text.startswith("Goal 2 saved")
    long = only(await story.command(ANA, "goal indicator 2 " + "x" * 201))
    assert "please keep it under 200" in long.text
    assert rows(db, Indicator) == []


def test_kinds_are_understood_from_the_first_words() -> None:
    assert parse_kind("achievement exit-ticket mastery %") == (
        "achievement",
        "exit-ticket mastery %",
    )
    assert parse_kind("Student Achievement: quiz average") == ("achievement", "quiz average")
    assert parse_kind("student engagement - hands up") == ("engagement", "hands up")
    assert parse_kind("21st-century collaboration rubric") == ("skills", "collaboration rubric")
    assert parse_kind("21st century skills: teamwork") == ("skills", "teamwork")
    assert parse_kind("skillset growth") == ("practice", "skillset growth")
    assert parse_kind("lessons with a closing task") == ("practice", "lessons with a closing task")
    assert parse_kind("engagement") == ("practice", "engagement")  # nothing left to name it


def test_values_are_read_as_people_type_them() -> None:
    assert [parse_value(v) for v in ("72", "72%", "7.5", "7,5", "-3", ".5")] == [
        72.0,
        72.0,
        7.5,
        7.5,
        -3.0,
        0.5,
    ]
    assert [parse_value(v) for v in ("1,250", "12,500,000", "0,125")] == [1250.0, 12.5e6, 0.125]
    assert [parse_value(v) for v in ("seventy", "7.5.1", "1e9", "inf", "", "%")] == [None] * 6


async def test_goal_log_confirms_with_the_indicators_words_and_the_previous_value(
    story: Story, db: Database
) -> None:
    await goal_with_indicator(story)
    story.clock.advance(timedelta(days=6))  # Monday 30 Nov
    first = only(await story.command(ANA, "goal log 1 64%"))
    assert first.ephemeral
    assert first.text == "Exit-ticket mastery %: 64 — logged for goal 1."
    story.clock.advance(timedelta(days=7))
    second = only(await story.command(ANA, "goal log 1 72 after reteaching fractions"))
    assert second.text == "Exit-ticket mastery %: 72 (was 64 on 30 Nov) — logged for goal 1."
    # With one indicator its number may be given or left out.
    third = only(await story.command(ANA, "goal log 1 1 7.5"))
    assert third.text.startswith("Exit-ticket mastery %: 7.5 (was 72 on 7 Dec)")
    assert [(v.value, v.note, v.checkin_id) for v in rows(db, IndicatorValue)] == [
        (64.0, "", None),
        (72.0, "after reteaching fractions", None),
        (7.5, "", None),
    ]


async def test_goal_log_with_two_indicators_asks_which(story: Story, db: Database) -> None:
    await goal_with_indicator(story)
    await story.command(ANA, "goal indicator 1 engagement Students explaining their thinking")
    which = only(await story.command(ANA, "goal log 1 72"))
    assert which.ephemeral
    assert "Goal 1 has 2 indicators (1. Exit-ticket mastery %; 2. Students explaining" in which.text
    assert "`goal log 1 <indicator> <value>`" in which.text
    logged = only(await story.command(ANA, "goal log 1 2 12 in the seminar"))
    assert logged.text == "Students explaining their thinking: 12 — logged for goal 1."
    assert [(v.indicator_id, v.value) for v in rows(db, IndicatorValue)] == [(2, 12.0)]


async def test_goal_log_usage_errors_are_kind_and_save_nothing(story: Story, db: Database) -> None:
    await story.command(ANA, "goal add Use exit tickets daily")
    none_yet = only(await story.command(ANA, "goal log 1 72"))
    assert none_yet.text == (
        "Goal 1 has no indicators yet. Add one with `goal indicator 1 <what you will look at>`."
    )
    await story.command(ANA, "goal indicator 1 Exit-ticket mastery %")
    assert (
        "Usage: `goal log <n> [indicator] <value> [note]`"
        in only(await story.command(ANA, "goal log")).text
    )
    assert "Usage: `goal log" in only(await story.command(ANA, "goal log 1")).text
    assert "Usage: `goal log" in only(await story.command(ANA, "goal log one 72")).text
    bad = only(await story.command(ANA, "goal log 1 lots"))
    assert bad.ephemeral and bad.text.startswith("I couldn't read “lots” as a number.")
    assert "You have no goal 7" in only(await story.command(ANA, "goal log 7 72")).text
    assert rows(db, IndicatorValue) == []


async def test_a_checkin_on_a_goal_with_indicators_asks_for_each_value(
    story: Story, db: Database
) -> None:
    await goal_with_indicator(story)
    await story.command(ANA, "goal indicator 1 engagement Students explaining", channel=None)
    await story.command(ANA, "goal log 1 1 64", channel=None)
    story.clock.advance(timedelta(days=7))
    await story.command(ANA, "checkin", channel=None)

    # The rating and reflection are saved as always; then the first indicator's question.
    saved, question = await story.say(ANA, "6 - retaught fractions with exit tickets")
    assert saved.text.startswith("Saved: 6 (Planning) on “Use exit tickets daily”.")
    assert question.text == "Exit-ticket mastery % this week? (a number, or `skip`)"
    [checkin] = rows(db, CheckIn)
    assert (checkin.status, checkin.rating) == ("answered", 6)

    not_a_number = only(await story.say(ANA, "pretty good"))
    assert not_a_number.text.startswith("I couldn't read that as a number.")
    assert "Exit-ticket mastery % this week?" in not_a_number.text

    second = only(await story.say(ANA, "72% up from last week"))
    assert second.text.splitlines() == [
        "Exit-ticket mastery %: 72 (was 64 on 24 Nov)",
        "Students explaining this week? (a number, or `skip`)",
    ]
    done = only(await story.say(ANA, "skip"))
    assert done.text == "Okay, skipped.\nThat's everything for this check-in. Thank you!"
    assert rows(db, FlowState) == []
    assert [(v.indicator_id, v.value, v.note, v.checkin_id) for v in rows(db, IndicatorValue)] == [
        (1, 64.0, "", None),
        (1, 72.0, "up from last week", checkin.id),
    ]

    # `me` shows each indicator's latest value and how many there are.
    me = only(await story.command(ANA, "me", channel=None))
    assert "1. Use exit tickets daily — 6/10 Planning" in me.text
    assert "    ◦ Exit-ticket mastery %: 72 on 1 Dec · 2 values" in me.text
    assert "    ◦ Students explaining: no values yet" in me.text


async def test_a_command_while_an_indicator_question_waits_runs_and_the_question_stays(
    story: Story, db: Database
) -> None:
    await goal_with_indicator(story)
    await story.command(ANA, "checkin", channel=None)
    await story.say(ANA, "5 - halfway there")
    listed, waiting = await story.say(ANA, "goal list")
    assert "Your goals" in listed.text and "still waiting on your check-in" in waiting.text
    assert only(await story.say(ANA, "70")).text.startswith("Exit-ticket mastery %: 70\n")
    assert rows(db, FlowState) == []


async def test_the_rating_button_path_asks_for_indicators_too(story: Story, db: Database) -> None:
    await goal_with_indicator(story)
    question = only(await story.command(ANA, "checkin", channel=None))
    assert question.message.card is not None
    checkin_id = question.message.card.buttons[0].value.split(":")[0]
    # Teams: the rating button with the reflection typed in the card.
    saved, asked = await story.press(
        ANA,
        "checkin_rate",
        f"{checkin_id}:4",
        {"reflection": "Started with one class"},
        channel=None,
    )
    assert saved.text.startswith("Saved: 4 (Envisioning)")
    assert asked.text == "Exit-ticket mastery % this week? (a number, or `skip`)"
    assert only(await story.say(ANA, "55")).text.endswith("Thank you!")
    assert [v.checkin_id for v in rows(db, IndicatorValue)] == [int(checkin_id)]


async def test_a_goal_without_indicators_checks_in_as_before(story: Story, db: Database) -> None:
    await story.command(ANA, "goal add Use exit tickets daily", channel=None)
    await story.command(ANA, "checkin", channel=None)
    saved = only(await story.say(ANA, "6 - tried it"))
    assert saved.text.startswith("Saved: 6 (Planning)")
    assert rows(db, FlowState) == []


@pytest.mark.parametrize(
    ("role", "rating", "descriptor"),
    [
        (None, 2, "Investigating (0-3): you're exploring the idea, reading and asking"),
        ("teacher", 5, "Envisioning (4-5): you can picture it in your classroom"),
        ("instructional_coach", 6, "Planning (6-7): you've planned the steps, time and support teachers"),
        ("principal", 3, "Investigating (0-3): you're exploring the idea with staff"),
        ("district_leader", 7, "Planning (6-7): you've planned the steps, resources and support schools"),
    ],
)  # fmt: skip
async def test_the_answer_shows_what_the_band_means_for_the_members_role(
    story: Story, db: Database, role: str | None, rating: int, descriptor: str
) -> None:
    await story.command(ANA, "goal add Use exit tickets daily", channel=None)
    if role:
        set_role(db, ANA, role)
    await story.command(ANA, "checkin", channel=None)
    saved = only(await story.say(ANA, f"{rating} - a week of small steps"))
    assert descriptor in saved.text
    assert saved.message.card is not None and descriptor in saved.message.card.body
    assert "share <url>" not in saved.text  # evidence is asked for at Staging only


async def test_a_staging_rating_asks_for_a_piece_of_evidence(story: Story) -> None:
    await story.command(ANA, "goal add Use exit tickets daily", channel=None)
    await story.command(ANA, "goal add Students lead the seminar", channel=None)
    await story.command(ANA, "checkin 2", channel=None)
    saved = only(await story.say(ANA, "9 - students ran it themselves"))
    assert "Staging (8-10): it's happening in your classroom" in saved.text
    assert "Share it with `share <url> goal:2`" in saved.text
    # Without a goal the share names none.
    await story.command("U_BEN", "checkin", channel=None)
    plain = only(await story.say("U_BEN", "8 - a good week"))
    assert "Share it with `share <url>`." in plain.text


def test_every_band_has_a_descriptor_for_every_role_group() -> None:
    library = PromptLibrary.load()
    for band in ("Investigating", "Envisioning", "Planning", "Staging"):
        for group in ("classroom", "school", "district"):
            text = library.band_descriptor(band, group)
            assert text.startswith(band) and len(text) < 140, (band, group)
    assert "`share <url> goal:3`" in library.evidence_text("share <url> goal:3")


async def test_help_lists_the_indicator_commands_after_the_goal_commands(story: Story) -> None:
    sent = only(await story.command(ANA, "help"))
    lines = [line for line in sent.text.splitlines() if line.startswith("• `goal")]
    assert [line.split("`")[1] for line in lines] == [
        "goal add <text>",
        "goal list [page]",
        "goal done <n>",
        "goal indicator <n> [kind] <what you will look at>",
        "goal log <n> [indicator] <value> [note]",
    ]


async def test_the_home_card_shows_indicators_with_their_latest_value(
    story: Story, db: Database
) -> None:
    await goal_with_indicator(story)
    await story.command(ANA, "goal log 1 64", channel=None)
    card = story.bot.home(story.user(ANA))
    assert "1. Use exit tickets daily" in card.body
    assert "◦ Exit-ticket mastery %: 64 on 24 Nov" in card.body and "· 1 value" in card.body
    assert "64" not in text_of(await story.command("U_BEN", "me", channel=None))
