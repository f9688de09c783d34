"""Bad input always gets a short, kind answer that says what to do, and never loses or bends
what was stored before."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import sqlalchemy as sa

from bot.core.context import Context
from storage.db import Database
from storage.models import Artifact, CheckIn, Goal, Member, Reflection
from tests.steps import only, public, rows, setup_community, share, text_of
from tests.story import Story

LONG = ("exit tickets " * 1000)[:10_000]
EMOJI_RTL = "🎯 تحسين مهارات القراءة 📚 — שלום כיתה א׳ 👩🏽‍🏫"
SQL = "'; DROP TABLE member; --"


async def test_an_empty_command_shows_help(story: Story) -> None:
    sent = only(await story.command("U_ANA", "   "))
    assert sent.ephemeral
    assert sent.text.startswith("I help your Professional Learning Network")
    for usage in ("goal add <text>", "share <url> [title and notes]", "forget", "setup [name]"):
        assert f"`{usage}`" in sent.text


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("frobnicate now", "I don't know the command “frobnicate”. Type `help` to see them all."),
        ("gaol add Read more", "I don't know the command “gaol”. Did you mean `goal`? Type `help`"),
        ("hlep", "Did you mean `help`?"),
        ("x" * 500, "I don't know the command “" + "x" * 40 + "”"),
    ],
)
async def test_an_unknown_command_gets_a_kind_answer_and_a_suggestion(
    story: Story, words: str, expected: str
) -> None:
    sent = only(await story.command("U_ANA", words))
    assert sent.ephemeral
    assert expected in sent.text
    assert len(sent.text) < 200


async def test_a_command_family_alone_lists_its_usages(story: Story) -> None:
    sent = only(await story.command("U_ANA", "goal"))
    assert sent.text.splitlines() == [
        "`goal` needs a little more. Try one of:",
        "• `goal add <text>` — set a professional goal",
        "• `goal list [page]` — your goals and latest ratings",
        "• `goal done <n>` — mark goal n as achieved",
        "• `goal indicator <n> [kind] <what you will look at>` — how you'll see progress on goal n (up to 3 indicators)",
        "• `goal log <n> [indicator] <value> [note]` — record a value of one of goal n's indicators",
    ]
    assert "`digest preview [YYYY-Www]`" in only(await story.command("U_COACH", "digest")).text


@pytest.mark.parametrize(
    "link",
    ["not-a-url", "javascript:alert(1)", "ftp://x.org", "http://", "https://localhost.", "www.example.org",
     "https://" + "a" * 2100 + ".org"],
)  # fmt: skip
async def test_share_refuses_what_is_not_a_web_link(story: Story, db: Database, link: str) -> None:
    await setup_community(story)
    sent = only(await story.command("U_ANA", f"share {link} My lesson"))
    assert sent.ephemeral
    assert "doesn't look like a link" in sent.text
    assert "Usage: `share <url> [title and notes]`" in sent.text
    assert len(sent.text) < 300
    assert rows(db, Artifact) == []


async def test_share_outside_a_community_says_where_to_share(story: Story, db: Database) -> None:
    elsewhere = only(
        await story.command("U_ANA", "share https://example.org/a Lesson", channel="C_RANDOM")
    )
    assert "Share evidence in a PLN community channel" in elsewhere.text
    in_dm = only(await story.command("U_ANA", "share https://example.org/a Lesson", channel=None))
    assert "Share evidence in a PLN community channel" in in_dm.text
    assert (
        "in a community channel" in only(await story.command("U_ANA", "share", channel=None)).text
    )
    assert rows(db, Artifact) == []


async def test_ten_thousand_characters_in_a_goal(story: Story, db: Database) -> None:
    await story.command("U_ANA", "goal add Use exit tickets")
    sent = only(await story.command("U_ANA", f"goal add {LONG}"))
    assert "10,000 characters" in sent.text and "Nothing was saved" in sent.text
    assert [(g.number, g.text) for g in rows(db, Goal)] == [(1, "Use exit tickets")]


async def test_ten_thousand_characters_in_share_notes(story: Story, db: Database) -> None:
    """Long notes are stored whole (never refused, never lost); the card shows their start
    and *Read all* gives the rest, privately, in parts that add up to every word."""
    await setup_community(story)
    await share(story, "U_ANA", "https://example.org/first", "First share")
    card = public(await story.command("U_ANA", f"share https://example.org/second Title\n{LONG}"))
    stored = next(a for a in rows(db, Artifact) if a.title == "Title")
    assert stored.description == LONG.strip()
    assert card.message.card is not None
    assert len(card.message.card.body) < 2100 and card.message.card.body.endswith("…")
    read = next(b for b in card.message.card.buttons if b.label == "Read all")
    parts = await story.press("U_BEN", read.action_id, read.value)
    assert parts and all(p.ephemeral and p.message.to is not None for p in parts)
    bodies = [p.message.card.body for p in parts if p.message.card is not None]
    assert bodies[0].startswith("https://example.org/second\n")
    joined = " ".join(b.removeprefix("https://example.org/second\n") for b in bodies)
    assert joined.split() == LONG.split()
    # A one-line share that long: its title is cut at a word, its notes are kept whole.
    await story.command("U_ANA", f"share https://example.org/third {LONG}")
    third = next(a for a in rows(db, Artifact) if a.url == "https://example.org/third")
    assert third.title.endswith("…") and len(third.title) <= 201
    assert third.description == LONG.strip()


async def test_ten_thousand_characters_in_a_checkin_reflection(story: Story, db: Database) -> None:
    await story.command("U_ANA", "goal add Use exit tickets", channel=None)
    await story.command("U_ANA", "checkin", channel=None)
    await story.say("U_ANA", "6")  # the rating is stored; the bot asks for a sentence
    sent = only(await story.say("U_ANA", LONG))
    assert "10,000 characters" in sent.text and "Nothing was saved" in sent.text
    checkin = only_checkin(db)
    assert (checkin.rating, checkin.reflection, checkin.status) == (6, "", "open")
    # The conversation is still waiting for the sentence.
    saved = only(await story.say("U_ANA", "Shorter: exit tickets helped"))
    assert saved.text.startswith("Saved: 6 (Planning)")
    assert only_checkin(db).reflection == "Shorter: exit tickets helped"

    # The same length with the rating in front is refused before anything is stored.
    await story.command("U_ANA", "checkin", channel=None)
    assert "Nothing was saved" in only(await story.say("U_ANA", f"7 - {LONG}")).text
    assert [c.rating for c in rows(db, CheckIn)] == [6, None]


async def test_ten_thousand_characters_in_a_private_reflection(story: Story, db: Database) -> None:
    await setup_community(story)
    prompt = public(await story.command("U_COACH", "prompt"))
    assert prompt.message.card is not None
    await story.press("U_ANA", "reflect_private", prompt.message.card.buttons[0].value)
    sent = only(await story.say("U_ANA", LONG))
    assert "10,000 characters" in sent.text and "Nothing was saved" in sent.text
    assert rows(db, Reflection) == []
    assert "Saved your reflection" in only(await story.say("U_ANA", "A shorter thought")).text


def only_checkin(db: Database) -> CheckIn:
    found = rows(db, CheckIn)
    assert len(found) == 1
    return found[0]


async def test_emoji_and_right_to_left_text_come_back_intact(story: Story, db: Database) -> None:
    await setup_community(story)
    assert EMOJI_RTL in only(await story.command("U_ANA", f"goal add {EMOJI_RTL}")).text
    assert f"1. {EMOJI_RTL}" in only(await story.command("U_ANA", "goal list")).text
    card = await share(story, "U_ANA", "https://example.org/قراءة", EMOJI_RTL)
    assert card.message.card is not None and card.message.card.title == EMOJI_RTL

    await story.command("U_ANA", "checkin", channel=None)
    await story.say("U_ANA", f"5 - {EMOJI_RTL}")

    assert [g.text for g in rows(db, Goal)] == [EMOJI_RTL]
    assert [(a.title, a.url) for a in rows(db, Artifact)] == [
        (EMOJI_RTL, "https://example.org/قراءة")
    ]
    assert [c.reflection for c in rows(db, CheckIn)] == [EMOJI_RTL]


async def test_sql_metacharacters_are_stored_literally(story: Story, db: Database) -> None:
    await setup_community(story)
    assert SQL in only(await story.command("U_ANA", f"goal add {SQL}")).text
    await share(story, "U_ANA", "https://example.org/x?a=1&b='2'", f"Robert'); {SQL}")
    await story.command("U_ANA", "checkin", channel=None)
    await story.say("U_ANA", f'3 - {SQL} \\ % _ " ;')

    assert f"1. {SQL}" in only(await story.command("U_ANA", "goal list")).text
    assert [g.text for g in rows(db, Goal)] == [SQL]
    assert [(a.title, a.url) for a in rows(db, Artifact)] == [
        (f"Robert'); {SQL}", "https://example.org/x?a=1&b='2'")
    ]
    assert [c.reflection for c in rows(db, CheckIn)] == [f'{SQL} \\ % _ " ;']
    with db.engine.connect() as conn:  # the member table is still there, with its rows
        assert conn.execute(sa.text("SELECT count(*) FROM member")).scalar_one() == 2


async def test_a_member_who_never_onboarded_can_use_every_command(
    story: Story, db: Database
) -> None:
    await setup_community(story)
    me = only(await story.command("U_NEW", "me"))
    assert "No goals yet" in me.text and "haven't set up your profile" in me.text
    assert only(await story.command("U_NEW", "goal add Learn the ropes")).text.startswith("Goal 1")
    assert len(await story.command("U_NEW", "checkin")) == 2
    assert "Saved: 5" in only(await story.say("U_NEW", "5 - getting there")).text
    await share(story, "U_NEW", "https://example.org/new", "My first share")
    exported = only(await story.command("U_NEW", "export", channel=None))
    assert exported.message.attachment is not None
    assert (
        "haven't finished your profile" in only(await story.command("U_NEW", "profile show")).text
    )
    assert rows(db, Member, Member.user_id == "U_NEW")[0].onboarded is False


async def test_non_coaches_get_a_clear_refusal_for_every_coach_command(
    story: Story, db: Database
) -> None:
    await setup_community(story)
    coach_commands = [c for c in story.bot.router.commands.values() if c.coach]
    assert {c.words for c in coach_commands} >= {
        "setup", "prompt", "checkins send", "digest preview", "digest post", "schedule", "report",
        "coach add", "coach remove",
    }  # fmt: skip
    for command in coach_commands:
        sent = only(await story.command("U_ANA", f"{command.words} <@U_ANA>"))
        assert sent.ephemeral
        assert sent.text.startswith(f"`{command.words}` is for coaches."), sent.text
    assert rows(db, Member, Member.is_coach == sa.true()) == []
    assert story.platform.sent == [] and story.platform.updates == []


async def test_unknown_buttons_and_bad_values_get_kind_answers(story: Story) -> None:
    await setup_community(story)
    assert "isn't active any more" in only(await story.press("U_ANA", "no_such_button")).text
    assert "can't find that share" in only(await story.press("U_ANA", "endorse", "abc")).text
    assert "can't find that share" in only(await story.press("U_ANA", "endorse", "424242")).text
    assert "no longer available" in only(await story.press("U_ANA", "reflect_private", "x")).text
    assert "Usage: `checkin`" in only(await story.command("U_ANA", "checkin soon")).text
    assert "no goal 3" in only(await story.command("U_ANA", "checkin 3")).text
    for days in ("abc", "0", "1000", "-3"):
        assert "Usage: `pause <days>`" in only(await story.command("U_ANA", f"pause {days}")).text
    assert "Usage: `digest preview [YYYY-Www]`" in text_of(
        await story.command("U_COACH", "digest preview soon")
    )
    assert "Usage: `digest preview" in text_of(
        await story.command("U_COACH", "digest preview 2026-W60")
    )


def crash_after(story: Story, words: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a command's handler do its work in the unit of work, then fail."""
    original = story.bot.router.commands[words]

    async def half_then_crash(ctx: Context, args: str) -> None:
        await original.handler(ctx, args)
        ctx.session.flush()  # the rows really reach the database ...
        raise RuntimeError("disk on fire")  # ... and then the handler fails

    crashing = dataclasses.replace(original, handler=half_then_crash)
    monkeypatch.setitem(story.bot.router.commands, words, crashing)


async def test_an_internal_error_says_nothing_was_lost_and_rolls_back(
    story: Story, db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await story.command("U_ANA", "goal add Use exit tickets")
    crash_after(story, "goal add", monkeypatch)
    with caplog.at_level(logging.ERROR):
        sent = only(await story.command("U_ANA", "goal add Try a gallery walk"))
    assert sent.ephemeral
    assert sent.text.startswith("Sorry, something went wrong on my side, and nothing was lost.")
    assert "disk on fire" in caplog.text  # the log line carries the cause
    assert [g.text for g in rows(db, Goal)] == ["Use exit tickets"]  # no half-written goal
    monkeypatch.undo()
    assert only(await story.command("U_ANA", "goal add Try a gallery walk")).text.startswith(
        "Goal 2"
    )


async def test_a_failed_event_is_handled_again_when_the_platform_retries_it(
    story: Story, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_after(story, "goal add", monkeypatch)
    assert (
        "nothing was lost" in only(await story.command("U_ANA", "goal add Plan", key="Ev-1")).text
    )
    monkeypatch.undo()
    # The event's key was rolled back with everything else, so the retry is not a duplicate.
    retried = only(await story.command("U_ANA", "goal add Plan", key="Ev-1"))
    assert retried.text.startswith("Goal 1 saved")
