"""Wording people read (#14): warm, plain, and saying each thing once."""

from __future__ import annotations

from adapters.web.render import card_html
from bot.features.checkins import question_card
from bot.features.evidence import share_form
from bot.features.portfolio import portfolio_filename, portfolio_record
from bot.services.prompts import PromptLibrary
from storage.db import Database
from storage.models import Member
from tests.steps import artifact_id, only, rows, setup_community, share
from tests.story import Story


async def test_a_share_card_counts_its_endorsements_once(story: Story) -> None:
    await setup_community(story)
    card = await share(story, "U_ANA", "https://example.org/exit", "Exit tickets")
    assert card.message.card is not None
    labels = [f.label for f in card.message.card.fields]
    assert "Endorsements" not in labels and "Endorsed by" not in labels  # nobody yet
    await story.press("U_BEN", "endorse", artifact_id(card))
    redrawn = story.platform.updates[-1][1].card
    assert redrawn is not None
    assert redrawn.buttons[0].label == "Endorse (1)"
    assert [(f.label, f.value) for f in redrawn.fields if f.label == "Endorsed by"] == [
        ("Endorsed by", "Ben")
    ]


def test_optional_fields_say_so_once() -> None:
    for card in (share_form(),):
        html = card_html(card)
        assert "(optional) (optional)" not in html and "(optional)</span>" in html
        assert all("(optional)" not in field.label for field in card.inputs)


async def test_a_checkin_ends_with_a_next_step_and_names_its_goal_once(story: Story) -> None:
    await story.command("U_ANA", "goal add Socratic seminars weekly", channel=None)
    await story.command("U_ANA", "checkin", channel=None)
    saved = only(await story.say("U_ANA", "6 - tried fishbowl seating"))
    assert saved.text.startswith("Saved: 6 (Planning) on “Socratic seminars weekly”.")
    assert "what will you try next" in saved.text
    await story.command("U_BEN", "checkin", channel=None)
    plain = only(await story.say("U_BEN", "5 - still finding my feet"))
    assert "on your practice." in plain.text and "your goal, your practice" not in plain.text


async def test_a_topic_prompt_names_its_topic_once(story: Story) -> None:
    await setup_community(story)
    posted = [s for s in await story.command("U_COACH", "prompt exit tickets") if not s.ephemeral]
    assert only(posted).text.count("exit tickets") == 1


async def test_the_private_portfolio_says_for_you_only(story: Story, db: Database) -> None:
    await story.command("U_ANA", "goal add Exit tickets", channel=None)
    [ana] = rows(db, Member)
    with db.session() as session:
        private = portfolio_record(
            session, PromptLibrary.load(), ana, now=story.clock.now(), include_private=True
        )
        shareable = portfolio_record(session, PromptLibrary.load(), ana, now=story.clock.now())
    assert "for-you-only" in portfolio_filename(private, "pdf")
    assert "for-you-only" not in portfolio_filename(shareable, "pdf")
    sent = await story.command("U_ANA", "export portfolio with private", channel=None)
    assert "*for you only*" in sent[0].text


def test_check_in_forms_mark_the_reflection_optional_once() -> None:
    from storage.models import CheckIn

    _, card = question_card(PromptLibrary.load(), CheckIn(id=1, member_id=1), None)
    assert all("(optional)" not in field.label for field in card.inputs)
