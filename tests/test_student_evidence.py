"""Student evidence: a teacher shares a lesson, names the goal it is evidence for and says
what students did — and no student's name or id is ever stored or shown."""

from __future__ import annotations

import json

import pytest

from bot.core.dispatch import Bot
from bot.features.evidence import share_form
from bot.services.students import without_students
from storage.db import Database
from storage.models import Artifact, Goal
from tests.doubles import RecordingPlatform
from tests.slack_fakes import view_submission_payload
from tests.slack_rig import SlackRig
from tests.steps import artifact_id, only, public, rows, setup_community, text_of
from tests.story import Story

# ---- the rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("Maria and Jon wrote exit tickets.", "[student] and [student] wrote exit tickets."),
        ("Maria, Jon and Li compared claims", "[student], [student] and [student] compared claims"),
        (
            "Students argued. Then Maria asked why, and Jon answered.",
            "Students argued. Then [student] asked why, and [student] answered.",
        ),
        ("Maria Lopez led it", "[student] [student] led it"),
        ("I liked Kayden's question", "I liked [student]'s question"),
        ("Ms. Lopez watched", "Ms. [student] watched"),
        (
            "Groups chose. Later Maria read hers; Maria smiled.",
            "Groups chose. Later [student] read hers; [student] smiled.",
        ),
        ("ask maria.l@school.org or @jon.b", "ask [student] or [student]"),
        ("<@U024BE7LH> finished first", "[student] finished first"),
        ("student 204518 and S20451 passed", "student [student] and [student] passed"),
        ("Zoë and José wrote", "[student] and [student] wrote"),
        ("O'Neil and McKay argued", "[student] and [student] argued"),
    ],
)
def test_names_and_ids_become_student(written: str, stored: str) -> None:
    assert without_students(written) == stored


@pytest.mark.parametrize(
    "ordinary",
    [
        "Most students used the sentence stems on Monday in Grade 7 Math.",
        "The ELL group finished the Socratic seminar; 80% met the goal.",
        "Exit tickets: 3 of 4 questions right, up from 2.",
        "We used Desmos and Google Slides. Then everyone wrote a claim.",
        "I asked them to explain in pairs.",
        "",
    ],
)
def test_ordinary_classroom_words_stay(ordinary: str) -> None:
    assert without_students(ordinary) == ordinary


def test_hostile_text_never_keeps_a_name_or_id() -> None:
    hostile = (
        "MARIA!!! and then\n- Jon\t(jon@x.io, id 00012345) said @@maria..; "
        "Ana-Lu & Bea's group, and Dr Who" + " Kim" * 500
    )
    out = without_students(hostile)
    for leaked in ("Jon", "jon@x.io", "00012345", "Ana-Lu", "Bea", "Who", "Kim"):
        assert leaked not in out
    assert without_students(without_students(hostile)) == out  # stable when run again


# ---- sharing with a goal and what students did ---------------------------------------------


async def test_a_share_names_the_goal_and_says_what_students_did(
    story: Story, db: Database
) -> None:
    await setup_community(story)
    await story.command("U_ANA", "goal add Exit tickets every day", channel=None)
    await story.command("U_ANA", "goal add More student talk", channel=None)
    card = public(
        await story.command(
            "U_ANA",
            "share https://example.org/seminar Socratic seminar goal:2 on Thursday "
            "students: Maria and Jon led the inner circle; 20 of 24 spoke.",
        )
    )
    assert "with student evidence" in card.text
    shown = text_of([card])
    assert "Evidence for Goal 2: More student talk" in shown
    assert "What students did [student] and [student] led the inner circle" in shown
    assert "Maria" not in shown and "Jon" not in shown
    assert "Shared with student evidence" in shown
    [artifact] = rows(db, Artifact)
    [_, talk] = rows(db, Goal)
    assert artifact.title == "Socratic seminar on Thursday"
    assert artifact.goal_id == talk.id
    assert (
        artifact.student_evidence == "[student] and [student] led the inner circle; 20 of 24 spoke."
    )


async def test_a_share_without_student_evidence_does_not_claim_it(story: Story) -> None:
    await setup_community(story)
    card = public(await story.command("U_ANA", "share https://example.org/plan A plan"))
    assert "student evidence" not in text_of([card])
    assert "Evidence for" not in text_of([card])


async def test_only_ones_own_goal_and_a_clear_refusal_otherwise(story: Story, db: Database) -> None:
    await setup_community(story)
    await story.command("U_BEN", "goal add Ben's goal", channel=None)
    refused = only(await story.command("U_ANA", "share https://example.org/x Work goal:1"))
    assert refused.ephemeral
    assert "You have no goal 1" in refused.text and "goal list" in refused.text
    refused = only(await story.command("U_ANA", "share https://example.org/x Work goal:two"))
    assert "`goal:` takes the number" in refused.text
    refused = only(await story.command("U_ANA", "share https://example.org/x W goal:1 goal:2"))
    assert "one goal" in refused.text
    assert rows(db, Artifact) == []


async def test_the_form_offers_the_goals_and_asks_what_students_did(
    story: Story, db: Database, platform: RecordingPlatform
) -> None:
    await setup_community(story)
    await story.command("U_ANA", "goal add Exit tickets every day", channel=None)
    platform.forms = True
    form = only(await story.command("U_ANA", "share")).message.card
    assert form is not None
    inputs = {i.id: i for i in form.inputs}
    assert [o.label for o in inputs["goal"].options] == ["No goal", "1. Exit tickets every day"]
    assert inputs["students"].label == "What did students do?"
    assert "goal" not in {i.id for i in share_form().inputs}  # nobody's goals: no choice

    values = {
        "url": "https://example.org/tickets",
        "title": "Exit tickets",
        "description": "Three questions",
        "goal": "1",
        "students": "Everyone answered; Priya and Sam asked for harder ones.",
    }
    card = public(await story.press("U_ANA", "share_submit", values=values))
    assert "with student evidence" in card.text
    assert "Evidence for Goal 1: Exit tickets every day" in text_of([card])
    [artifact] = rows(db, Artifact)
    assert (
        artifact.student_evidence
        == "Everyone answered; [student] and [student] asked for harder ones."
    )

    no_goal = {**values, "url": "https://example.org/other", "goal": "none", "students": ""}
    card = public(await story.press("U_ANA", "share_submit", values=no_goal))
    assert "student evidence" not in text_of([card])
    assert rows(db, Artifact)[1].goal_id is None

    forged = {**values, "url": "https://example.org/forged", "goal": "7"}
    assert (
        "You have no goal 7" in only(await story.press("U_ANA", "share_submit", values=forged)).text
    )


async def test_the_digest_says_which_shares_carry_student_evidence(story: Story) -> None:
    await setup_community(story)
    card = public(
        await story.command(
            "U_ANA", "share https://example.org/talk Talk moves students: pairs rehearsed first"
        )
    )
    plain = public(await story.command("U_BEN", "share https://example.org/plain A plain plan"))
    await story.press("U_CARA", "endorse", artifact_id(card))
    await story.press("U_CARA", "endorse", artifact_id(plain))
    preview = only(await story.command("U_COACH", "digest preview"))
    entries = [f for f in preview.message.card.fields if f.label[:1].isdigit()]  # type: ignore[union-attr]
    notes = {f.label.split(". ", 1)[1]: f.value for f in entries}
    assert "with student evidence" in notes["Talk moves"]
    assert "student evidence" not in notes["A plain plan"]


def test_the_bot_builds(bot: Bot) -> None:
    assert "try_this" in bot.router.actions


# ---- over HTTP, signed Slack requests ------------------------------------------------------


async def test_over_slack_the_share_modal_takes_a_goal_and_what_students_did(
    slack: SlackRig,
) -> None:
    await slack.command(
        "goal add Exit tickets every day", channel_id="D_T1", channel_name="directmessage"
    )
    await slack.command("setup Math PLN", user_id="U_ADMIN", user_name="pln.admin")
    await slack.fake.wait_for("chat.postMessage")
    await slack.command("share", response_token="share")
    opened = await slack.fake.wait_for("views.open")
    view = opened[0]["view"]  # the strict fake accepted it: within Block Kit's limits
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    goal = inputs["goal"]["element"]
    assert goal["type"] == "static_select"
    assert [o["text"]["text"] for o in goal["options"]] == [
        "No goal",
        "1. Exit tickets every day",
    ]
    assert inputs["students"]["label"]["text"] == "What did students do?"
    values = {
        "url": {"url": {"type": "plain_text_input", "value": "https://example.org/tickets"}},
        "title": {"title": {"type": "plain_text_input", "value": "Exit tickets"}},
        "description": {"description": {"type": "plain_text_input", "value": "Three questions"}},
        "goal": {"goal": {"type": "static_select", "selected_option": {"value": "1"}}},
        "students": {
            "students": {"type": "plain_text_input", "value": "Maria and Jon asked for more"}
        },
    }
    await slack.interact(
        view_submission_payload(
            callback_id="share_submit",
            user_id="U_TEACHER1",
            values=values,
            private_metadata=view["private_metadata"],
        )
    )
    await slack.settle()
    card = next(c for c in slack.fake.calls_to("chat.postMessage") if "Exit tickets" in c["text"])
    assert "with student evidence" in card["text"]
    shown = json.dumps(card["blocks"])
    assert "Goal 1: Exit tickets every day" in shown
    assert "[student] and [student] asked for more" in shown and "Maria" not in shown
