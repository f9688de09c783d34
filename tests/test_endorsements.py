"""Endorsements: peers (never the author) endorse a share once, with a button or a reaction,
optionally saying why; a second press withdraws, a double click changes nothing."""

from __future__ import annotations

from datetime import timedelta

from bot.core.events import MessageRef
from storage.db import Database
from storage.models import Endorsement, Goal, InboundReceipt
from tests.doubles import Sent
from tests.steps import artifact_id, only, rows, setup_community, share
from tests.story import Story


async def shared_card(story: Story) -> Sent:
    await setup_community(story)
    return await share(
        story, "U_ANA", "https://example.org/exit-tickets", "Exit tickets that worked"
    )


def endorsements(db: Database) -> list[tuple[int, int, str]]:
    return [(e.artifact_id, e.endorser_id, e.note) for e in rows(db, Endorsement)]


def latest_card_label(story: Story) -> str:
    """The Endorse button's label on the most recent update of the artifact card."""
    _ref, message = story.platform.updates[-1]
    assert message.card is not None
    return message.card.buttons[0].label


async def test_the_author_can_never_endorse_their_own_share(story: Story, db: Database) -> None:
    card = await shared_card(story)
    refused = only(await story.press("U_ANA", "endorse", artifact_id(card)))
    assert refused.ephemeral and "your own share" in refused.text
    refused = only(
        await story.press("U_ANA", "endorse_note", artifact_id(card), values={"note": "mine!"})
    )
    assert "your own share" in refused.text
    assert (
        "your own share"
        in only(await story.press("U_ANA", "endorse_note_open", artifact_id(card))).text
    )
    assert await story.react("U_ANA", card.ref) == []  # a star on one's own share is just a star
    assert endorsements(db) == []


async def test_one_endorsement_per_person_a_double_click_changes_nothing(
    story: Story, db: Database
) -> None:
    card = await shared_card(story)
    first = only(await story.press("U_BEN", "endorse", artifact_id(card)))
    assert (
        first.ephemeral
        and first.text == "You endorsed “Exit tickets that worked”. Press again to withdraw."
    )
    assert latest_card_label(story) == "Endorse (1)"
    updates = len(story.platform.updates)

    story.clock.advance(timedelta(seconds=1))
    assert await story.press("U_BEN", "endorse", artifact_id(card)) == []  # the double click
    assert len(endorsements(db)) == 1 and len(story.platform.updates) == updates

    story.clock.advance(timedelta(seconds=5))
    withdrawn = only(await story.press("U_BEN", "endorse", artifact_id(card)))
    assert withdrawn.text == "Endorsement withdrawn from “Exit tickets that worked”."
    assert endorsements(db) == []
    assert latest_card_label(story) == "Endorse (0)"

    story.clock.advance(timedelta(seconds=5))
    assert "You endorsed" in only(await story.press("U_BEN", "endorse", artifact_id(card))).text
    assert "You endorsed" in only(await story.press("U_CARA", "endorse", artifact_id(card))).text
    assert len(endorsements(db)) == 2
    assert latest_card_label(story) == "Endorse (2)"


async def test_endorse_with_a_note(story: Story, db: Database) -> None:
    card = await shared_card(story)
    form = only(await story.press("U_BEN", "endorse_note_open", artifact_id(card)))
    assert form.message.card is not None and form.message.card.submit is not None
    assert form.message.card.submit.action_id == "endorse_note"
    assert form.message.card.submit.value == artifact_id(card)

    note = "I'd borrow the three-question format"
    thanks = only(
        await story.press("U_BEN", "endorse_note", artifact_id(card), values={"note": note})
    )
    assert "with a note" in thanks.text
    [(_, _, stored)] = endorsements(db)
    assert stored == note

    # A later note replaces the first; still one endorsement.
    await story.press("U_BEN", "endorse_note", artifact_id(card), values={"note": "And the timing"})
    assert [n for *_, n in endorsements(db)] == ["And the timing"]
    too_long = only(
        await story.press("U_BEN", "endorse_note", artifact_id(card), values={"note": "x" * 1001})
    )
    assert "under 1,000 characters" in too_long.text
    assert [n for *_, n in endorsements(db)] == ["And the timing"]

    preview = only(await story.command("U_COACH", "digest preview"))
    assert "“And the timing”" in preview.text


async def test_a_star_reaction_endorses_and_removing_it_withdraws(
    story: Story, db: Database
) -> None:
    card = await shared_card(story)
    assert await story.react("U_BEN", card.ref) == []  # reactions get no reply, only a fresh card
    assert len(endorsements(db)) == 1
    ref, message = story.platform.updates[-1]
    assert ref == card.ref and message.card is not None
    assert message.card.buttons[0].label == "Endorse (1)"

    await story.react("U_BEN", card.ref)  # the platform repeats it: still one
    await story.react("U_BEN", card.ref, reaction="thumbsup")  # another emoji is not an endorsement
    await story.react("U_CARA", card.ref, reaction="star::skin-tone-2")
    assert len(endorsements(db)) == 2

    await story.react("U_BEN", card.ref, added=False)
    assert len(endorsements(db)) == 1
    assert latest_card_label(story) == "Endorse (1)"


async def test_a_reaction_on_another_message_is_ignored(story: Story, db: Database) -> None:
    card = await shared_card(story)
    await story.react("U_BEN", MessageRef(conversation=card.ref.conversation, message_id="m-other"))
    assert endorsements(db) == []


async def test_replayed_events_with_the_same_key_create_nothing_twice(
    story: Story, db: Database
) -> None:
    card = await shared_card(story)
    first = await story.press("U_BEN", "endorse", artifact_id(card), key="Ev-press")
    story.clock.advance(timedelta(minutes=1))
    replay = await story.press("U_BEN", "endorse", artifact_id(card), key="Ev-press")
    assert "You endorsed" in only(first).text and replay == []
    assert len(endorsements(db)) == 1  # a replay is not a second press that withdraws

    assert only(
        await story.command("U_BEN", "goal add Try exit tickets", key="Ev1")
    ).text.startswith("Goal 1")
    assert await story.command("U_BEN", "goal add Try exit tickets", key="Ev1") == []
    assert [g.text for g in rows(db, Goal)] == ["Try exit tickets"]
    assert {r.key for r in rows(db, InboundReceipt)} == {
        "test:W1:C_PLN:Ev-press",
        "test:W1:C_PLN:Ev1",
    }
