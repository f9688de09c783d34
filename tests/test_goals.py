"""Goals: a teacher adds goals, lists them with their latest rating, and marks one done."""

from __future__ import annotations

from storage.db import Database
from storage.models import Goal
from tests.steps import only, rows
from tests.story import Story


async def test_add_list_and_done_with_stable_numbers(story: Story, db: Database) -> None:
    empty = only(await story.command("U_ANA", "goal list"))
    assert "no goals yet" in empty.text and empty.ephemeral

    first = only(await story.command("U_ANA", "goal add Use exit tickets every day"))
    assert first.text.startswith("Goal 1 saved: Use exit tickets every day")
    assert first.ephemeral
    assert only(await story.command("U_ANA", "goal add Try a gallery walk")).text.startswith(
        "Goal 2 saved"
    )
    assert only(await story.command("U_ANA", "goal add Co-write a rubric")).text.startswith(
        "Goal 3 saved"
    )

    done = only(await story.command("U_ANA", "goal done 2"))
    assert done.text == "Goal 2 marked done: Try a gallery walk. Congratulations!"
    again = only(await story.command("U_ANA", "goal done 2"))
    assert "already marked done" in again.text

    # Numbers never shift: the next goal is 4, and 2 keeps its number.
    assert only(await story.command("U_ANA", "goal add Visit a colleague's class")).text.startswith(
        "Goal 4"
    )
    listed = only(await story.command("U_ANA", "goal list"))
    assert listed.text.splitlines() == [
        "Your goals:",
        "1. Use exit tickets every day",
        "2. ✓ Try a gallery walk",
        "3. Co-write a rubric",
        "4. Visit a colleague's class",
    ]
    assert listed.message.card is not None
    assert [f.label for f in listed.message.card.fields] == ["1", "2", "3", "4"]
    assert [(g.number, g.status) for g in rows(db, Goal)] == [
        (1, "active"),
        (2, "done"),
        (3, "active"),
        (4, "active"),
    ]


async def test_goal_done_with_a_number_that_does_not_exist(story: Story, db: Database) -> None:
    await story.command("U_ANA", "goal add Use exit tickets")
    missing = only(await story.command("U_ANA", "goal done 99"))
    assert missing.text == "You have no goal 99. `goal list` shows their numbers."
    assert missing.ephemeral
    assert "Usage: `goal done <n>`" in only(await story.command("U_ANA", "goal done two")).text
    assert "Usage: `goal done <n>`" in only(await story.command("U_ANA", "goal done")).text
    assert "Usage: `goal add <text>`" in only(await story.command("U_ANA", "goal add")).text
    assert [g.status for g in rows(db, Goal)] == ["active"]


async def test_each_member_numbers_their_own_goals(story: Story, db: Database) -> None:
    await story.command("U_ANA", "goal add Ana's goal")
    assert only(await story.command("U_BEN", "goal add Ben's goal")).text.startswith("Goal 1 saved")
    await story.command("U_BEN", "goal done 1")
    ana = only(await story.command("U_ANA", "goal list"))
    assert "1. Ana's goal" in ana.text and "Ben" not in ana.text and "✓" not in ana.text


async def test_goal_list_shows_the_latest_rating_and_band(story: Story) -> None:
    await story.command("U_ANA", "goal add Use exit tickets", channel=None)
    await story.command("U_ANA", "checkin", channel=None)
    await story.say("U_ANA", "4 - started with one class")
    listed = only(await story.command("U_ANA", "goal list", channel=None))
    assert "1. Use exit tickets — 4/10 Envisioning" in listed.text


async def test_goal_words_work_in_the_dm_too(story: Story) -> None:
    sent = only(await story.say("U_ANA", "goal add Read one article a week"))
    assert sent.text.startswith("Goal 1 saved") and not sent.ephemeral


async def test_a_long_goal_list_pages(story) -> None:  # type: ignore[no-untyped-def]
    for n in range(45):
        await story.command("U_ANA", f"goal add Goal number {n + 1}", channel=None)
    first = (await story.command("U_ANA", "goal list", channel=None))[0]
    assert len(first.message.card.fields) == 20 and "`goal list 2`" in first.text
    last = (await story.command("U_ANA", "goal list 3", channel=None))[0]
    assert len(last.message.card.fields) == 5 and "for more" not in last.text
    wrong = (await story.command("U_ANA", "goal list 9", channel=None))[0]
    assert "3 page(s)" in wrong.text
