"""The weekly digest message end to end: the community's best work with author, endorsers and
the best note, the standards, and a participation line of counts — never anyone's private
reflection — rendered by Slack, Teams and the web from one neutral card, and printed by
`plnbot digest`."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from typer.testing import CliRunner

from adapters.slack.render import message_payload
from adapters.teams.render import Signer, adaptive_card
from adapters.web.render import card_html
from plnbot.cli import app as cli
from storage.db import Database
from tests.doubles import Sent
from tests.steps import artifact_id, only, setup_community, share, text_of
from tests.story import CHANNEL, Story

SECRET_CHECKIN = "PRIVATE-checkin: I dread my observation"
SECRET_REFLECTION = "PRIVATE-reflection: my co-teacher ignores me"
NOTE = "I'd borrow the three-question format for my Year 8s"


async def a_week_in_the_community(story: Story) -> None:
    """Three shares, endorsements from two schools, a private check-in, a private and a
    shared reflection."""
    await setup_community(story)
    for user, school in (("U_ANA", "Hill"), ("U_BEN", "Hill"), ("U_CARA", "River")):
        await story.press(
            user, "profile_save", values={"role": "teacher", "school": school}, channel=None
        )
    ana = artifact_id(
        await share(story, "U_ANA", "https://example.org/exit", "Exit tickets #assessment")
    )
    story.clock.advance(timedelta(minutes=5))
    ben = artifact_id(await share(story, "U_BEN", "https://example.org/walk", "Gallery walk"))
    story.clock.advance(timedelta(minutes=5))
    dan = artifact_id(await share(story, "U_DAN", "https://example.org/dan", "Seating chart"))
    await story.press("U_BEN", "endorse_note", ana, values={"note": NOTE})
    await story.press("U_CARA", "endorse", ana)
    await story.press("U_CARA", "endorse", ben)  # one peer from another school
    await story.press("U_ANA", "endorse", dan)  # one peer, same circle (Dan's school unknown)

    await story.command("U_ANA", "goal add Use exit tickets daily", channel=None)
    await story.command("U_ANA", "checkin", channel=None)
    await story.say("U_ANA", f"3 - {SECRET_CHECKIN}")
    prompt = only([s for s in await story.command("U_COACH", "prompt") if not s.ephemeral])
    assert prompt.message.card is not None
    await story.press("U_BEN", "reflect_private", prompt.message.card.buttons[0].value)
    await story.say("U_BEN", SECRET_REFLECTION)
    await story.reply_in_thread("U_CARA", prompt.ref.message_id, "We tried it in Year 7")


async def test_the_weekly_digest_message(story: Story) -> None:
    await a_week_in_the_community(story)
    announced = only(await story.deliver())  # Ana's share became the standard for its element
    assert announced.text.startswith("A new best for Participative evaluation")
    await story.command("U_COACH", "digest post")
    digest = only(await story.deliver())
    assert digest.conversation.channel_id == CHANNEL and not digest.ephemeral
    card = digest.message.card
    assert card is not None
    assert card.title == "Math PLN — the week's best work (week of 23 Nov)"
    assert card.body == (
        # Every share of the week was endorsed: none "stood out" from the others.
        "All 3 of this week's shares drew peers' endorsements, one with a note on what a "
        "colleague would borrow. Open them, try an idea, and endorse what you'd use."
    )
    assert [(f.label, f.value) for f in card.fields] == [
        (
            "1. Exit tickets #assessment",
            f"by Ana · 2 endorsements from Ben and Cara\nhttps://example.org/exit\n“{NOTE}”",
        ),
        ("2. Gallery walk", "by Ben · 1 endorsement from Cara\nhttps://example.org/walk"),
        ("3. Seating chart", "by Dan · 1 endorsement from Ana\nhttps://example.org/dan"),
        (
            "Standard · Participative evaluation",
            "“Exit tickets #assessment” by Ana · 2 endorsements — new this week",
        ),
    ]
    # Two people reflected and one checked in: too few to count (tests/test_small_groups.py
    # has the week with enough people).
    assert card.footer == (
        "This week: 3 shares; reflections and check-ins: fewer than 5 people — shown once 5 "
        "have taken part."
    )
    assert card.footer in digest.text and NOTE in digest.text
    assert SECRET_CHECKIN not in text_of([digest]) and SECRET_REFLECTION not in text_of([digest])


async def test_no_private_reflection_reaches_the_channel_or_any_digest(story: Story) -> None:
    await a_week_in_the_community(story)
    everything: list[Sent] = []
    everything += await story.command("U_COACH", "digest preview")
    everything += await story.deliver()
    everything += await story.command("U_COACH", "digest post")
    everything += await story.deliver()
    for secret in (SECRET_CHECKIN, SECRET_REFLECTION, "dread", "ignores me"):
        assert secret not in text_of(everything)
    assert "3/10" not in text_of(everything) and "Investigating" not in text_of(everything)


async def test_one_card_renders_on_slack_teams_and_the_web(story: Story) -> None:
    await a_week_in_the_community(story)
    card = only(await story.command("U_COACH", "digest preview")).message.card
    assert card is not None
    blocks = message_payload(only(await story.command("U_COACH", "digest preview")).message)
    shown = str(blocks["blocks"])
    assert "Exit tickets #assessment" in shown and "This week: 3 shares" in shown
    teams = adaptive_card(card, signer=Signer("k"), tenant="t")
    assert "Standard · Participative evaluation" in str(teams)
    html = card_html(card)
    assert "Gallery walk" in html and "from Ben and Cara" in html


async def test_a_quiet_week_still_shows_the_standards(story: Story) -> None:
    await setup_community(story)
    ana = artifact_id(
        await share(story, "U_ANA", "https://example.org/exit", "Exit tickets #assessment")
    )
    await story.press("U_BEN", "endorse", ana)
    await story.press("U_CARA", "endorse", ana)
    story.clock.advance(timedelta(days=7))
    preview = only(await story.command("U_COACH", "digest preview"))
    assert "No endorsed shares this week yet" in preview.text
    assert "Standard · Participative evaluation: “Exit tickets #assessment” by Ana" in preview.text


def test_plnbot_digest_prints_the_digest(story: Story, db: Database) -> None:
    asyncio.run(a_week_in_the_community(story))
    runner = CliRunner()
    env = {"DATABASE_URL": db.url, "PLNBOT_LOG_LEVEL": "WARNING"}
    result = runner.invoke(cli, ["digest", "Math PLN", "--week", "2026-W48"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Math PLN — the week's best work (week of 23 Nov)")
    assert (
        "1. Exit tickets #assessment — by Ana · 2 endorsements from Ben and Cara" in result.output
    )
    assert (
        "This week: 3 shares; reflections and check-ins: fewer than 5 people — shown once 5 "
        "have taken part." in result.output
    )
    assert SECRET_REFLECTION not in result.output

    bad = runner.invoke(cli, ["digest", "Math PLN", "--week", "soon"], env=env)
    assert bad.exit_code == 2 and "--week: not an ISO week" in bad.output
    unknown = runner.invoke(cli, ["digest", "Art PLN"], env=env)
    assert unknown.exit_code == 2 and "not found" in unknown.output


async def test_a_past_weeks_digest_never_shows_a_standard_won_after_it(story: Story) -> None:
    await setup_community(story)
    story.clock.advance(timedelta(days=7))  # the standard is won in the following week
    ana = artifact_id(
        await share(story, "U_ANA", "https://example.org/exit", "Exit tickets #assessment")
    )
    await story.press("U_BEN", "endorse", ana)
    await story.press("U_CARA", "endorse", ana)
    now = only(await story.command("U_COACH", "digest preview"))
    assert "Standard · Participative evaluation" in now.text
    before = only(await story.command("U_COACH", "digest preview 2026-W48"))
    assert "week of 23 Nov" in before.text and "Standard ·" not in before.text
