"""What a coach sees of one person: only the goal of a cycle that person accepted — its latest
rating and indicator values, in the coach's `report` while the cycle runs. Before the yes,
for other coaches and after the close, the report holds nothing about them individually."""

from __future__ import annotations

from tests.steps import only, setup_community
from tests.story import Story

TEACHER, COACH, OTHER_COACH = "U_TEACHER1", "U_COACH", "U_COACH2"
GOAL = "Use exit tickets every day"


def coached_field(sent: object) -> str | None:
    """The report card's "Your coaching cycles" value, if it has one."""
    card = only(sent).message.card  # type: ignore[arg-type]
    assert card is not None
    found = [f.value for f in card.fields if f.label.startswith("Your coaching cycles")]
    return found[0] if found else None


async def test_the_coach_sees_the_accepted_goal_and_nothing_before_or_after(story: Story) -> None:
    await setup_community(story)
    await story.command(TEACHER, f"goal add {GOAL}", channel=None)
    await story.command(TEACHER, "goal indicator 1 achievement Exit-ticket mastery %", channel=None)
    await story.command(TEACHER, "goal log 1 64", channel=None)
    assert coached_field(await story.command(COACH, "report")) is None

    sent = await story.command(COACH, f"cycle start <@{TEACHER}> 1")
    offer = next(s for s in sent if s.conversation.channel_id == f"D-{TEACHER}")
    assert "If you accept, *Coach* sees this goal's ratings and indicator values" in offer.text
    assert coached_field(await story.command(COACH, "report")) is None  # not yet accepted

    accept = next(b.value for b in offer.message.card.buttons if b.action_id == "cycle_accept")  # type: ignore[union-attr]
    await story.press(TEACHER, "cycle_accept", accept, channel=None)
    await story.command(TEACHER, "goal log 1 72", channel=None)
    shown = coached_field(await story.command(COACH, "report"))
    assert shown is not None
    assert shown.startswith(f"Teacher1: goal 1. {GOAL}")
    assert "Exit-ticket mastery %: 72 on" in shown and "2 values" in shown

    await story.command(COACH, f"coach add <@{OTHER_COACH}>")
    assert coached_field(await story.command(OTHER_COACH, "report")) is None  # not their cycle

    await story.command(COACH, f"cycle close <@{TEACHER}> 6")
    assert coached_field(await story.command(COACH, "report")) is None
