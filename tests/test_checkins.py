"""Check-ins: a teacher rates their goal 0–10 in a DM, adds a sentence, and it stays private
unless they press "Share with my community"."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.features.checkins import parse_answer
from storage.db import Database
from storage.models import CheckIn, FlowState
from tests.doubles import Sent
from tests.steps import artifact_id, only, rows, setup_community, share, text_of
from tests.story import CHANNEL, Story


async def start_checkin(
    story: Story, user: str = "U_ANA", goal: str = "Use exit tickets daily"
) -> Sent:
    """The teacher sets a goal and starts a check-in in the DM; returns the question card."""
    await story.command(user, f"goal add {goal}", channel=None)
    return only(await story.command(user, "checkin", channel=None))


def checkin_id(question: Sent) -> int:
    assert question.message.card is not None
    return int(question.message.card.buttons[0].value.split(":")[0])


def the_checkin(db: Database, user_checkin_id: int) -> CheckIn:
    return only_row(rows(db, CheckIn, CheckIn.id == user_checkin_id))


def only_row(found: list[CheckIn]) -> CheckIn:
    assert len(found) == 1
    return found[0]


async def test_question_card_has_a_rating_button_for_every_point_of_the_scale(story: Story) -> None:
    question = await start_checkin(story)
    assert "Use exit tickets daily" in question.text
    card = question.message.card
    assert card is not None
    number = checkin_id(question)
    assert [(b.label, b.action_id, b.value) for b in card.buttons] == [
        (str(n), "checkin_rate", f"{number}:{n}") for n in range(11)
    ]


@pytest.mark.parametrize(
    ("answer", "rating", "reflection"),
    [
        ("7", 7, None),
        ("7/10", 7, None),
        ("7 / 10", 7, None),
        ("7 - tried exit tickets", 7, "tried exit tickets"),
        ("7/10 - tried exit tickets", 7, "tried exit tickets"),
        ("0", 0, None),
        ("10", 10, None),
    ],
)
async def test_typed_answers_are_understood(
    story: Story, db: Database, answer: str, rating: int, reflection: str | None
) -> None:
    question = await start_checkin(story)
    sent = only(await story.say("U_ANA", answer))
    if reflection is None:
        # A bare number: the bot asks for the sentence, and "skip" is fine.
        assert f"that's a {rating}" in sent.text and "what moved you there" in sent.text
        sent = only(await story.say("U_ANA", "skip"))
    assert sent.text.startswith(f"Saved: {rating} ")
    checkin = the_checkin(db, checkin_id(question))
    assert (checkin.rating, checkin.reflection, checkin.status) == (
        rating,
        reflection or "",
        "answered",
    )
    assert checkin.shared is False
    assert rows(db, FlowState) == []


async def test_a_bare_reflection_asks_for_the_rating_then_a_number_completes_it(
    story: Story, db: Database
) -> None:
    question = await start_checkin(story)
    sent = only(await story.say("U_ANA", "Tried exit tickets with period 3; they loved it"))
    assert "0-10 scale" in sent.text and "reply with a number" in sent.text
    assert the_checkin(db, checkin_id(question)).status == "open"

    saved = only(await story.say("U_ANA", "6"))
    assert saved.text.startswith("Saved: 6 (Planning)")
    checkin = the_checkin(db, checkin_id(question))
    assert checkin.rating == 6
    assert checkin.reflection == "Tried exit tickets with period 3; they loved it"


async def test_a_reflection_that_starts_with_an_ordinal_is_not_a_rating(
    story: Story, db: Database
) -> None:
    question = await start_checkin(story)
    sent = only(await story.say("U_ANA", "3rd period tried exit tickets"))
    assert "0-10 scale" in sent.text
    checkin = the_checkin(db, checkin_id(question))
    assert checkin.rating is None
    assert checkin.reflection == "3rd period tried exit tickets"


@pytest.mark.parametrize("answer", ["12", "-1", "12 - best week ever", "11/10"])
async def test_out_of_range_numbers_are_asked_again_and_nothing_is_answered(
    story: Story, db: Database, answer: str
) -> None:
    question = await start_checkin(story)
    sent = only(await story.say("U_ANA", answer))
    assert "outside the 0-10 scale" in sent.text
    assert sent.text.startswith(answer.split()[0].split("/")[0])
    checkin = the_checkin(db, checkin_id(question))
    assert (checkin.rating, checkin.reflection, checkin.status) == (None, "", "open")

    # The check-in is still waiting; a good answer completes it.
    saved = only(await story.say("U_ANA", "8 - planned a choice board"))
    assert saved.text.startswith("Saved: 8 (Staging)")


@pytest.mark.parametrize(
    ("rating", "band"),
    [(0, "Investigating"), (3, "Investigating"), (4, "Envisioning"), (5, "Envisioning"),
     (6, "Planning"), (7, "Planning"), (8, "Staging"), (10, "Staging")],
)  # fmt: skip
async def test_rating_buttons_show_the_band_name(story: Story, rating: int, band: str) -> None:
    question = await start_checkin(story)
    asked = only(
        await story.press("U_ANA", "checkin_rate", f"{checkin_id(question)}:{rating}", channel=None)
    )
    assert f"that's a {rating} ({band})" in asked.text
    saved = only(await story.say("U_ANA", "Small steps this week"))
    assert saved.message.card is not None
    assert saved.message.card.title == f"{rating}/10 — {band}"
    assert f"Saved: {rating} ({band})" in saved.text


async def test_a_rating_button_after_the_reflection_finishes_the_checkin(
    story: Story, db: Database
) -> None:
    question = await start_checkin(story)
    await story.say("U_ANA", "I asked students to co-write the rubric")  # a reflection, no rating
    saved = only(
        await story.press("U_ANA", "checkin_rate", f"{checkin_id(question)}:9", channel=None)
    )
    assert saved.text.startswith("Saved: 9 (Staging)")
    again = only(
        await story.press("U_ANA", "checkin_rate", f"{checkin_id(question)}:2", channel=None)
    )
    assert "already answered" in again.text
    assert the_checkin(db, checkin_id(question)).rating == 9


async def test_someone_elses_checkin_id_is_refused(story: Story, db: Database) -> None:
    bens = await start_checkin(story, "U_BEN", "Try gallery walks")
    await story.command("U_ANA", "goal add Something else", channel=None)
    forged = f"{checkin_id(bens)}:1"

    refused = only(await story.press("U_ANA", "checkin_rate", forged, channel=None))
    assert "isn't yours" in refused.text
    refused = only(await story.press("U_ANA", "checkin_share", str(checkin_id(bens)), channel=None))
    assert "isn't yours" in refused.text
    for bad in ("abc:3", ":3", "999999:3"):
        assert (
            "isn't yours"
            in only(await story.press("U_ANA", "checkin_rate", bad, channel=None)).text
        )

    checkin = the_checkin(db, checkin_id(bens))
    assert (checkin.rating, checkin.status) == (None, "open")


async def test_checkin_in_a_channel_goes_to_the_dm(story: Story) -> None:
    await setup_community(story)
    sent = await story.command("U_ANA", "checkin")
    ephemeral = [s for s in sent if s.ephemeral]
    dms = [s for s in sent if s.conversation.channel_id == "D-U_ANA"]
    assert len(ephemeral) == 1 and "direct message" in ephemeral[0].text
    assert len(dms) == 1 and dms[0].message.card is not None
    assert not [s for s in sent if s.conversation.channel_id == CHANNEL and not s.ephemeral]


async def test_share_with_my_community_posts_to_the_channel(story: Story, db: Database) -> None:
    await setup_community(story)
    await story.command("U_ANA", "goal add Use exit tickets daily", channel=None)
    question = next(s for s in await story.command("U_ANA", "checkin") if s.message.card)
    saved = only(await story.say("U_ANA", "7 - exit tickets showed who needed help"))
    assert saved.message.card is not None
    button = saved.message.card.buttons[0]
    assert (button.label, button.action_id) == ("Share with my community", "checkin_share")
    assert button.value == str(checkin_id(question))

    sent = await story.press("U_ANA", "checkin_share", button.value, channel=None)
    posted = [s for s in sent if s.conversation.channel_id == CHANNEL]
    assert len(posted) == 1 and not posted[0].ephemeral
    assert "7/10 (Planning)" in posted[0].text
    assert "exit tickets showed who needed help" in posted[0].text
    assert any("Shared with Math PLN" in s.text for s in sent)
    assert the_checkin(db, checkin_id(question)).shared is True

    again = await story.press("U_ANA", "checkin_share", button.value, channel=None)
    assert "already shared" in only(again).text


async def test_sharing_needs_a_community(story: Story) -> None:
    await start_checkin(story)
    saved = only(await story.say("U_ANA", "5 - still exploring"))
    assert saved.message.card is not None
    refused = only(
        await story.press(
            "U_ANA", "checkin_share", saved.message.card.buttons[0].value, channel=None
        )
    )
    assert "not in a PLN community" in refused.text


async def test_private_checkins_never_reach_the_channel_digest_or_report(
    story: Story, db: Database
) -> None:
    secret = "PRIVATE-worried about my observation"
    everything: list[Sent] = []
    story.bot.settings = story.bot.settings.model_copy(update={"min_group": 3})
    await setup_community(story)
    story.platform.members[CHANNEL] = ["U_COACH", "U_ANA", "U_BEN", "U_CARA"]

    # The coach sends check-ins; Ana and Cara answer privately, Ben shares his.
    everything += await story.command("U_COACH", "checkins send")
    everything += await story.deliver()
    everything += await story.say("U_ANA", f"3 - {secret}")
    everything += await story.say("U_CARA", "5 - PRIVATE-still finding my feet")
    shared = only(await story.say("U_BEN", "8 - students ran the gallery walk"))
    assert shared.message.card is not None
    everything += await story.press(
        "U_BEN", "checkin_share", shared.message.card.buttons[0].value, channel=None
    )

    # The community shares, endorses, gets a digest and a report.
    card = await share(story, "U_BEN", "https://example.org/gallery", "Gallery walk")
    everything.append(card)
    everything += await story.press("U_ANA", "endorse", artifact_id(card))
    everything += await story.command("U_COACH", "digest preview")
    everything += await story.command("U_COACH", "digest post")
    everything += await story.deliver()
    story.clock.advance(timedelta(days=7))  # bands show for a finished week
    report = await story.command("U_COACH", "report")
    everything += report
    assert "Investigating 1, Envisioning 1, Planning 0, Staging 1" in text_of(report)
    assert "PRIVATE" not in text_of(report)

    not_to_ana = [s for s in everything if s.conversation.channel_id != "D-U_ANA"]
    assert secret not in text_of(not_to_ana)
    assert all(secret not in m.text for _, m in story.platform.updates)
    channel = [s for s in everything if s.conversation.channel_id == CHANNEL and not s.ephemeral]
    channel_text = text_of(channel)
    assert "students ran the gallery walk" in channel_text  # what Ben chose to share
    assert "3/10" not in channel_text and "Investigating" not in channel_text


def test_parse_answer_table() -> None:
    """The parser on its own, for the shapes people type."""
    assert parse_answer("7").rating == 7
    assert parse_answer("7/10").rating == 7
    assert parse_answer("7 - tried exit tickets").reflection == "tried exit tickets"
    assert parse_answer("tried exit tickets").rating is None
    assert parse_answer("12").bad_number == "12"
    assert parse_answer("-1").bad_number == "-1"
    assert parse_answer("3rd period went well").rating is None


async def test_an_expired_checkin_flow_is_closed_kindly(story: Story, db: Database) -> None:
    question = await start_checkin(story)
    with db.session() as session:
        checkin = session.get(CheckIn, checkin_id(question))
        assert checkin is not None
        checkin.status = "expired"
        session.add(checkin)
    story.clock.advance(timedelta(days=1))
    sent = only(await story.say("U_ANA", "7"))
    assert "has closed" in sent.text
    assert rows(db, FlowState) == []
