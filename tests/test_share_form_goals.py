"""Every way the share form opens offers the member's goals: `/pln share`, the App Home's
*Share evidence* button and the "Share as evidence" message shortcut all build it with
`member_share_form`. Driven over signed Slack HTTP; the fake Web API checks every view as
strictly as Slack (tests/block_kit.py), and the home tab is drawn at the bot's own clock."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from bot.features.evidence import member_share_form
from storage.db import Database
from storage.models import Artifact, Goal, Member
from tests import block_kit
from tests.slack_fakes import (
    block_actions_payload,
    message_action_payload,
    view_submission_payload,
)
from tests.slack_rig import SlackRig, rows
from tests.story import Story

TEACHER = "U_TEACHER1"


async def teacher_with_goals(slack: SlackRig, *goals: str) -> None:
    """A community in C_PLN, and the teacher's goals (typed in their DM with the bot)."""
    await slack.command("setup Math PLN", user_id="U_ADMIN", user_name="pln.admin")
    await slack.fake.wait_for("chat.postMessage")
    for number, goal in enumerate(goals, 1):
        await slack.command(
            f"goal add {goal}",
            channel_id="D_T1",
            channel_name="directmessage",
            response_token=f"goal{number}",
        )
        await slack.fake.wait_for_response(count=number)
    await slack.settle()


def goal_options(view: dict[str, Any]) -> list[str] | None:
    """The labels of the view's goal choice; None when it has none."""
    assert block_kit.problems(view) == []  # as strict as Slack about what it opens
    for block in view["blocks"]:
        if block["type"] == "input" and block["block_id"] == "goal":
            element = block["element"]
            assert element["type"] == "static_select"
            return [o["text"]["text"] for o in element["options"]]
    return None


def submission(view: dict[str, Any], **typed: str) -> dict[str, Any]:
    """What Slack sends when the member fills in the opened view and presses Share."""
    values: dict[str, dict[str, dict[str, Any]]] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        field = element["action_id"]
        if element["type"] == "static_select":
            chosen = typed.get(field)
            state: dict[str, Any] = {"type": "static_select", "selected_option": None}
            if chosen is not None:
                state["selected_option"] = {"value": chosen}
        else:
            state = {
                "type": "plain_text_input",
                "value": typed.get(field, element.get("initial_value")),
            }
        values[block["block_id"]] = {field: state}
    return view_submission_payload(
        callback_id=view["callback_id"],
        user_id=TEACHER,
        values=values,
        private_metadata=view["private_metadata"],
        view_id=f"V{uuid.uuid4().hex[:10].upper()}",  # each opened view is its own
    )


def home_button_press(home: dict[str, Any], action: str) -> dict[str, Any]:
    """A press on the App Home tab: Slack's block_actions from a view (no channel, no
    message, no response_url)."""
    button = next(
        element
        for block in home["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"].split("#")[0] == action
    )
    payload = block_actions_payload(
        action_id=button["action_id"],
        value=button["value"],
        user_id=TEACHER,
        channel_id="",
        message_ts="",
        button_text=button["text"]["text"],
    )
    for gone in ("channel", "message", "response_url"):
        payload.pop(gone, None)
    payload["container"] = {"type": "view", "view_id": home.get("id", "V_HOME")}
    payload["view"] = {**home, "type": "home", "state": {"values": {}}}
    return payload


async def open_home(slack: SlackRig, event_id: str) -> dict[str, Any]:
    await slack.event(
        {
            "type": "app_home_opened",
            "user": TEACHER,
            "channel": "D_T1",
            "tab": "home",
            "event_ts": "1700000500.000100",
        },
        event_id=event_id,
    )
    published = await slack.fake.wait_for("views.publish")
    return dict(published[-1]["view"])


def the_share(db: Database, url: str) -> Artifact:
    return next(a for a in rows(db, Artifact) if a.url == url)


def goal_id(db: Database, number: int) -> int | None:
    teacher = next(m for m in rows(db, Member) if m.user_id == TEACHER)
    return next(g.id for g in rows(db, Goal) if g.member_id == teacher.id and g.number == number)


async def test_the_home_tab_share_form_offers_the_goals_and_files_the_share_under_one(
    slack: SlackRig,
) -> None:
    await teacher_with_goals(slack, "Exit tickets every day", "More student talk")
    home = await open_home(slack, "EvHomeGoals")
    assert "Exit tickets every day" in json.dumps(home)

    await slack.interact(home_button_press(home, "share_open"))
    [opened] = await slack.fake.wait_for("views.open")
    view = opened["view"]
    assert view["callback_id"] == "share_submit"
    assert goal_options(view) == ["No goal", "1. Exit tickets every day", "2. More student talk"]

    await slack.interact(
        submission(
            view,
            url="https://example.org/seminar",
            title="Socratic seminar",
            goal="2",
            students="Maria and Jon led the inner circle",
        )
    )
    await slack.settle()
    card = next(c for c in slack.fake.calls_to("chat.postMessage") if "seminar" in c["text"])
    assert card["channel"] == "C_PLN"  # the member's community, though pressed on the home tab
    assert "Goal 2: More student talk" in json.dumps(card["blocks"])
    share = the_share(slack.db, "https://example.org/seminar")
    assert share.goal_id == goal_id(slack.db, 2)
    assert share.student_evidence == "[student] and [student] led the inner circle"


async def test_the_message_shortcut_form_offers_the_goals_prefilled_from_the_message(
    slack: SlackRig,
) -> None:
    await teacher_with_goals(slack, "Exit tickets every day")
    message = {
        "type": "message",
        "user": TEACHER,
        "ts": "1700000300.000100",
        "text": "Our gallery walk <https://example.org/gallery|example.org/gallery>",
    }
    await slack.interact(
        message_action_payload(
            callback_id="share_evidence", user_id=TEACHER, channel_id="C_PLN", message=message
        )
    )
    [opened] = await slack.fake.wait_for("views.open")
    view = opened["view"]
    assert view["title"]["text"] == "Share as evidence"
    assert goal_options(view) == ["No goal", "1. Exit tickets every day"]
    initial = {
        b["block_id"]: b["element"].get("initial_value")
        for b in view["blocks"]
        if b["type"] == "input"
    }
    assert initial["url"] == "https://example.org/gallery"
    assert initial["title"] == "Our gallery walk"

    await slack.interact(submission(view, goal="1"))
    await slack.settle()
    share = the_share(slack.db, "https://example.org/gallery")
    assert share.title == "Our gallery walk"
    assert share.goal_id == goal_id(slack.db, 1)

    # "No goal" files it under none.
    again = {**message, "ts": "1700000301.000100", "text": "Stations <https://example.org/st>"}
    await slack.interact(
        message_action_payload(
            callback_id="share_evidence", user_id=TEACHER, channel_id="C_PLN", message=again
        )
    )
    opened_again = await slack.fake.wait_for("views.open", count=2)
    await slack.interact(submission(opened_again[1]["view"], goal="none"))
    await slack.settle()
    assert the_share(slack.db, "https://example.org/st").goal_id is None


async def test_without_active_goals_no_form_asks_for_one(slack: SlackRig) -> None:
    await teacher_with_goals(slack)
    await slack.command("share", response_token="share")  # in C_PLN
    home = await open_home(slack, "EvHomeNoGoals")
    await slack.interact(home_button_press(home, "share_open"))
    message = {"type": "message", "user": TEACHER, "ts": "1700000302.000100", "text": "x"}
    await slack.interact(
        message_action_payload(
            callback_id="share_evidence", user_id=TEACHER, channel_id="C_PLN", message=message
        )
    )
    views = await slack.fake.wait_for("views.open", count=3)
    assert [goal_options(v["view"]) for v in views] == [None, None, None]


async def test_a_done_goal_is_not_offered(story: Story, db: Database) -> None:
    await story.command("U_ANA", "goal add First", channel=None)
    await story.command("U_ANA", "goal add Second", channel=None)
    await story.command("U_ANA", "goal done 1", channel=None)
    form = story.bot.for_member(story.user("U_ANA"), member_share_form)
    [goal] = [i for i in form.inputs if i.id == "goal"]
    assert [o.label for o in goal.options] == ["No goal", "2. Second"]


async def test_the_home_card_is_drawn_at_the_bots_clock(story: Story) -> None:
    # A year the real clock is not in: a value logged "today" shows no year at the bot's
    # clock, and would show one if the card were drawn at the real clock.
    story.clock.set(datetime(2031, 3, 4, 10, 0, tzinfo=UTC))
    await story.command("U_ANA", "goal add Use exit tickets daily", channel=None)
    await story.command("U_ANA", "goal indicator 1 Exit-ticket mastery %", channel=None)
    await story.command("U_ANA", "goal log 1 64", channel=None)
    card = story.bot.home(story.user("U_ANA"))
    assert "Exit-ticket mastery %: 64 on 4 Mar · 1 value" in card.body
    story.clock.set(datetime(2032, 1, 5, 10, 0, tzinfo=UTC))
    card = story.bot.home(story.user("U_ANA"))
    assert "64 on 4 Mar 2031" in card.body
