"""The enactment loop: Ben sees Ana's share, presses "I'll try this", says when; on that day
the bot asks him what students did; his answer (names taken out) goes to Ana, and the card
says who tried it in class."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from sqlmodel import select

from bot.features.enactments import due_day
from storage.db import Database
from storage.models import Enactment, FlowState, Member, OutboxMessage
from tests.doubles import Sent
from tests.slack_fakes import block_actions_payload
from tests.slack_rig import SlackRig
from tests.steps import artifact_id, only, rows, setup_community, share, text_of
from tests.story import Story


async def shared_card(story: Story) -> Sent:
    await setup_community(story)
    return await share(story, "U_ANA", "https://example.org/seminar", "Socratic seminar")


def button_values(sent: Sent) -> dict[str, str]:
    assert sent.message.card is not None
    return {b.label: b.value for b in sent.message.card.buttons}


def test_the_day_asked_is_the_friday_of_the_chosen_week() -> None:
    tuesday = date(2026, 11, 24)
    assert due_day(tuesday, 0) == date(2026, 11, 27)
    assert due_day(tuesday, 1) == date(2026, 12, 4)
    assert due_day(tuesday, 2) == date(2026, 12, 11)
    assert due_day(date(2026, 11, 27), 0) == date(2026, 12, 4)  # Friday: too late for today
    assert due_day(date(2026, 11, 29), 0) == date(2026, 12, 4)  # Sunday: the coming Friday


async def test_a_peer_tries_a_share_and_the_author_hears_what_students_did(
    story: Story, db: Database
) -> None:
    card = await shared_card(story)
    assert "I'll try this" in button_values(card)

    when = only(await story.press("U_BEN", "try_this", artifact_id(card)))
    assert when.ephemeral and "when will you try “Socratic seminar”" in when.text
    choices = button_values(when)
    assert list(choices) == ["This week", "Next week", "In two weeks"]

    planned = only(await story.press("U_BEN", "try_when", choices["Next week"]))
    assert "Planned: you'll try “Socratic seminar” next week" in planned.text
    assert "Friday 04 December" in planned.text
    [enactment] = rows(db, Enactment)
    assert (enactment.due_on, enactment.status) == (date(2026, 12, 4), "planned")
    [row] = rows(db, OutboxMessage, OutboxMessage.kind == "enactment")
    assert row.not_before.replace(tzinfo=UTC) == datetime(2026, 12, 4, 15, 0, tzinfo=UTC)

    # One plan per person per share; the press again says when the question comes.
    again = only(await story.press("U_BEN", "try_this", artifact_id(card)))
    assert "already plan to try" in again.text and "Friday 04 December" in again.text
    assert only(await story.press("U_BEN", "try_when", choices["This week"])).text == again.text
    assert len(rows(db, Enactment)) == 1

    assert await story.deliver() == []  # not before its day
    story.clock.set(datetime(2026, 12, 4, 15, 1, tzinfo=UTC))
    [asked] = await story.deliver()
    assert asked.conversation.is_dm and asked.conversation.channel_id == "D-U_BEN"
    assert asked.text == "You planned to try “Socratic seminar” — what did students do?"
    assert rows(db, Enactment)[0].status == "asked"
    assert await story.deliver() == []  # asked once

    sent = await story.say(
        "U_BEN", "Maria and Jon ran the inner circle; everyone wrote a question."
    )
    told = next(s for s in sent if s.conversation.channel_id == "D-U_ANA")
    assert told.text == (
        "Ben tried your “Socratic seminar” in class. What students did: "
        "[student] and [student] ran the inner circle; everyone wrote a question."
    )
    thanks = next(s for s in sent if s.conversation.channel_id == "D-U_BEN")
    assert (
        "I've told Ana" in thanks.text
        and "took out what looked like students' names" in thanks.text
    )
    [enactment] = rows(db, Enactment)
    assert enactment.status == "answered" and "Maria" not in enactment.answer
    assert rows(db, FlowState) == []

    # The card now says who tried it, and that it carries student evidence.
    _, redrawn = story.platform.updates[-1]
    assert redrawn.card is not None and "with student evidence" in redrawn.text
    assert ("Tried in class by", "Ben") in [(f.label, f.value) for f in redrawn.card.fields]
    # Ana's export holds nothing new here; Ben's holds his plan and answer.
    exported = json.dumps([e.model_dump(mode="json") for e in rows(db, Enactment)])
    assert "[student] and [student]" in exported


async def test_never_on_ones_own_share(story: Story, db: Database) -> None:
    card = await shared_card(story)
    refused = only(await story.press("U_ANA", "try_this", artifact_id(card)))
    assert "your own share" in refused.text
    refused = only(await story.press("U_ANA", "try_when", f"{artifact_id(card)}:0"))
    assert "your own share" in refused.text
    assert rows(db, Enactment) == []


async def test_a_forged_or_odd_choice_plans_nothing(story: Story, db: Database) -> None:
    card = await shared_card(story)
    assert (
        "press one of the buttons"
        in only(await story.press("U_BEN", "try_when", f"{artifact_id(card)}:9")).text
    )
    assert "can't find that share" in only(await story.press("U_BEN", "try_when", "999:0")).text
    assert rows(db, Enactment) == []


async def test_the_question_waits_while_a_command_runs_and_the_answer_button_reopens_it(
    story: Story, db: Database
) -> None:
    card = await shared_card(story)
    await story.press("U_BEN", "try_this", artifact_id(card))
    await story.press("U_BEN", "try_when", f"{artifact_id(card)}:0")
    story.clock.set(datetime(2026, 11, 27, 15, 5, tzinfo=UTC))
    [asked] = await story.deliver()
    sent = await story.say("U_BEN", "goal list")
    assert "still waiting on what students did" in text_of(sent)

    assert "stopped" in only(await story.say("U_BEN", "cancel")).text
    assert rows(db, Enactment)[0].status == "asked"
    assert asked.message.card is not None
    answer = asked.message.card.buttons[0]
    assert answer.label == "Answer"
    story.clock.advance(timedelta(days=3))
    reopened = only(await story.press("U_BEN", answer.action_id, answer.value, channel=None))
    assert "What did students do" in reopened.text
    await story.say("U_BEN", "Pairs rehearsed, then 18 of 22 spoke.")
    assert rows(db, Enactment)[0].answer == "Pairs rehearsed, then 18 of 22 spoke."
    # Someone else's plan is not theirs to answer.
    assert (
        "nothing to answer"
        in only(await story.press("U_CARA", answer.action_id, answer.value, channel=None)).text
    )


async def test_forget_removes_the_plans_and_their_questions(story: Story, db: Database) -> None:
    card = await shared_card(story)
    await story.press("U_BEN", "try_this", artifact_id(card))
    await story.press("U_BEN", "try_when", f"{artifact_id(card)}:1")
    await story.command("U_BEN", "forget", channel=None)
    await story.press("U_BEN", "forget_confirm", channel=None)
    assert rows(db, Enactment) == []
    assert rows(db, OutboxMessage, OutboxMessage.kind == "enactment") == []


# ---- over HTTP, signed Slack requests ------------------------------------------------------


def _button(blocks: list[dict], prefix: str) -> dict:
    return next(
        e
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"].split("#")[0] == prefix
    )


async def test_over_slack_a_peer_plans_to_try_a_share_with_student_evidence(
    slack: SlackRig,
) -> None:
    await slack.command("setup Math PLN", user_id="U_ADMIN", user_name="pln.admin")
    await slack.fake.wait_for("chat.postMessage")
    await slack.command(
        "share https://example.org/ladder A ladder of questions "
        "students: Maria and Jon climbed to level 3"
    )
    cards = await slack.fake.wait_for("chat.postMessage", count=2)
    card = cards[1]
    assert "with student evidence" in card["text"]
    assert "Maria" not in json.dumps(card)
    ts = next(ts for (c, ts), m in slack.fake.messages.items() if "ladder" in m["text"])
    try_this = _button(card["blocks"], "try_this")
    assert try_this["text"]["text"] == "I'll try this"
    await slack.interact(
        block_actions_payload(
            action_id=try_this["action_id"],
            value=try_this["value"],
            user_id="U_TEACHER2",
            channel_id="C_PLN",
            message_ts=ts,
            response_url=slack.fake.response_url("try"),
        )
    )
    await slack.settle()
    sent = [params for _, params in slack.fake.calls] + slack.fake.responses
    asked = [m for m in sent if "when will you try" in str(m.get("text"))]
    assert asked and asked[-1].get("blocks"), "nobody asked when"
    when = _button(asked[-1]["blocks"], "try_when")
    await slack.interact(
        block_actions_payload(
            action_id=when["action_id"],
            value=when["value"],
            user_id="U_TEACHER2",
            channel_id="C_PLN",
            message_ts=ts,
            response_url=slack.fake.response_url("when"),
            is_ephemeral=True,
        )
    )
    await slack.settle()
    assert any("Planned: you'll try" in text for _, text in slack.fake.sent_texts())
    with slack.db.session() as session:
        [enactment] = session.exec(select(Enactment)).all()
        member = session.get(Member, enactment.member_id)
        assert member is not None and member.user_id == "U_TEACHER2"
        assert enactment.status == "planned"
