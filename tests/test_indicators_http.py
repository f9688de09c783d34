"""Indicators over real HTTP (#16): signed Slack requests into the running app. A teacher words
an indicator and logs a value with `/pln`, then a check-in in the DM asks for it; what the bot
answered is what the fake Slack Web API recorded. The same words in a Teams 1:1 chat, through
Bot Framework activities posted to /api/messages."""

from __future__ import annotations

import html
import json
from typing import Any

from storage.models import CheckIn, Indicator, IndicatorValue
from tests.slack_rig import SlackRig, rows
from tests.teams_fakes import ANA, personal_chat
from tests.test_teams_http import TeamsRig, teams  # noqa: F401  (the Teams rig's fixture)


def dm(text: str, ts: str) -> dict[str, Any]:
    return {
        "type": "message",
        "channel": "D_T1",
        "channel_type": "im",
        "user": "U_TEACHER1",
        "text": text,
        "ts": ts,
        "event_ts": ts,
    }


def dm_texts(slack: SlackRig) -> list[str]:
    return [  # as the teacher reads it: Slack's escapes (`&lt;url&gt;`) undone
        html.unescape(str(call.get("text", "")))
        for call in slack.fake.calls_to("chat.postMessage")
        if call.get("channel") == "D_T1"
    ]


async def test_a_teacher_adds_an_indicator_logs_it_and_a_checkin_asks_for_it(
    slack: SlackRig,
) -> None:
    await slack.command("goal add Use exit tickets daily", response_token="goal")
    await slack.command(
        "goal indicator 1 achievement Exit-ticket mastery %", response_token="indicator"
    )
    await slack.settle()
    [added] = slack.fake.responses_to("indicator")
    assert added["response_type"] == "ephemeral"
    assert added["text"].startswith(
        "Indicator 1 on goal 1 (student achievement): Exit-ticket mastery %"
    )

    await slack.command("goal log 1 64%", response_token="log")
    await slack.command("goal log 1 seventy", response_token="bad")
    await slack.settle()
    [logged] = slack.fake.responses_to("log")
    assert logged["response_type"] == "ephemeral"
    assert logged["text"] == "Exit-ticket mastery %: 64 — logged for goal 1."
    [bad] = slack.fake.responses_to("bad")
    assert bad["response_type"] == "ephemeral"
    assert bad["text"].startswith("I couldn't read “seventy” as a number.")

    # The check-in in the DM: a Staging rating, the descriptor and the ask for evidence, then
    # the indicator's question.
    await slack.command(
        "checkin", channel_id="D_T1", channel_name="directmessage", response_token="checkin"
    )
    await slack.settle()
    await slack.event(dm("9 - students graded their own exit tickets", "1700000200.000100"),
                      event_id="EvRate")  # fmt: skip
    await slack.settle()
    await slack.event(dm("72% after reteaching", "1700000300.000100"), event_id="EvValue")
    await slack.settle()

    said = "\n".join(dm_texts(slack))
    assert "Saved: 9 (Staging) on “Use exit tickets daily”." in said
    assert "Staging (8-10): it's happening in your classroom" in said
    assert "Share it with `share <url> goal:1`" in said
    assert "Exit-ticket mastery % this week? (a number, or `skip`)" in said
    assert "Exit-ticket mastery %: 72 (was 64 on " in said
    assert "That's everything for this check-in. Thank you!" in said

    [checkin] = rows(slack.db, CheckIn)
    assert (checkin.status, checkin.rating) == ("answered", 9)
    assert [i.text for i in rows(slack.db, Indicator)] == ["Exit-ticket mastery %"]
    values = sorted(rows(slack.db, IndicatorValue), key=lambda v: v.id)
    assert [(v.value, v.note, v.checkin_id) for v in values] == [
        (64.0, "", None),
        (72.0, "after reteaching", checkin.id),
    ]
    assert slack.fake.take_rejections() == []


async def test_the_same_words_work_in_a_teams_chat(teams: TeamsRig) -> None:  # noqa: F811
    chat = personal_chat(ANA)

    async def say(text: str, count: int) -> str:
        """Ana says `text` in her 1:1 chat; everything the bot has said there so far."""
        await teams.say(text, personal=True)
        await teams.settle()
        calls = await teams.fake.wait_for(lambda c: c.conversation == chat, count=count)
        return "\n".join(c.text + json.dumps(c.card or {}) for c in calls)

    await say("goal add Students explain their thinking", 1)
    said = await say("goal indicator 1 engagement Students explaining %", 2)
    assert "Indicator 1 on goal 1 (student engagement): Students explaining %" in said
    said = await say("goal log 1 40%", 3)
    assert "Students explaining %: 40 — logged for goal 1." in said
    await say("checkin", 4)
    said = await say("6 - more turn-and-talk", 6)
    assert "Saved: 6 (Planning)" in said
    assert "Planning (6-7): you've chosen a first step" in said
    assert "Students explaining % this week? (a number, or `skip`)" in said
    said = await say("55", 7)
    assert "Students explaining %: 55 (was 40 on " in said
    values = sorted(teams.rows(IndicatorValue), key=lambda v: v.id)
    assert [v.value for v in values] == [40.0, 55.0]
    assert values[1].checkin_id is not None
