"""As strict as Slack (#13): what the bot sends, over real HTTP, is what Slack accepts.

Signed requests go into the running app (real Bolt); the fake Slack Web API refuses what
Slack refuses (tests/block_kit.py) and fails the test at its end for any refusal, so every
test here also proves that each message, modal and Home tab it caused was one Slack takes.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.slack.manifest import build_manifest
from adapters.slack.render import card_blocks, message_payload, modal_view
from bot.core.messages import Button, Card, Field, Input, Message, Option
from storage.models import Artifact, Member, Reflection
from tests import block_kit
from tests.slack_fakes import block_actions_payload, message_action_payload
from tests.slack_rig import SlackRig, rows

NOTES = " ".join(f"Step {n}: the students wrote an exit ticket & swapped it." for n in range(200))


def trigger() -> str:
    return f"{time.time_ns()}.738474920.8088930838d88f008e0"


async def setup(slack: SlackRig) -> None:
    await slack.command("setup Math PLN", user_id="U_ADMIN", user_name="pln.admin")
    await slack.settle()


def mention(text: str, *, ts: str, thread_ts: str | None = None) -> dict:
    """`app_mention` as Slack sends it for `@PLN Bot <text>` in #pln-math."""
    event = {
        "type": "app_mention",
        "user": "U_TEACHER1",
        "text": f"<@UBOT> {text}",
        "ts": ts,
        "channel": "C_PLN",
        "event_ts": ts,
        "client_msg_id": "5b0f3d1e-2c1d-4a39-9a1b-6f0f4b7d9e01",
        "team": "T0001",
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def twin_message(event: dict) -> dict:
    """The `message` event Slack sends for the same channel message (message.channels)."""
    twin = {**event, "type": "message", "channel_type": "channel"}
    return twin


def buttons(blocks: list[dict]) -> list[dict]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def click(slack: SlackRig, element: dict, *, message_ts: str, token: str, **kwargs: str) -> dict:
    return block_actions_payload(
        action_id=element["action_id"],
        value=element["value"],
        user_id=kwargs.pop("user_id", "U_TEACHER2"),
        channel_id="C_PLN",
        message_ts=message_ts,
        response_url=slack.fake.response_url(token),
        **kwargs,
    )


def posted(slack: SlackRig, needle: str) -> tuple[str, dict]:
    return next((ts, m) for (channel, ts), m in slack.fake.messages.items() if needle in m["text"])


# ---- the share form ---------------------------------------------------------------------


async def test_share_alone_opens_a_form_slack_accepts(slack: SlackRig) -> None:
    await setup(slack)
    await slack.command("share", response_token="form")
    opened = await slack.fake.wait_for("views.open")
    await slack.settle()
    view = opened[0]["view"]
    assert block_kit.problems(view) == []
    box = next(b["element"] for b in view["blocks"] if b.get("block_id") == "description")
    assert box["max_length"] == 3000
    # 24 characters at most, cut at a word: not "Share evidence of your p…".
    assert view["title"]["text"] == "Share evidence of your…"


async def test_share_as_evidence_opens_for_a_long_message(slack: SlackRig) -> None:
    await setup(slack)
    message = {
        "type": "message",
        "user": "U_TEACHER1",
        "ts": "1700000300.000100",
        "text": f"Our gallery walk <https://example.org/gallery|example.org/gallery>\n{NOTES}",
    }
    await slack.interact(
        message_action_payload(
            callback_id="share_evidence", user_id="U_TEACHER1", channel_id="C_PLN", message=message
        )
    )
    opened = await slack.fake.wait_for("views.open")
    await slack.settle()
    view = opened[0]["view"]
    initial = {
        b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if "element" in b
    }
    assert initial["url"] == "https://example.org/gallery"
    assert len(initial["description"]) <= 3000 and initial["description"].endswith("…")
    assert "only its beginning is filled in" in json.dumps(view)
    assert slack.fake.rejected == []


async def test_a_shortcut_whose_form_cannot_open_tells_the_person(slack: SlackRig) -> None:
    await setup(slack)
    payload = message_action_payload(
        callback_id="share_evidence",
        user_id="U_TEACHER1",
        channel_id="C_PLN",
        message={"type": "message", "user": "U_TEACHER2", "ts": "1700000300.000200", "text": "x"},
        response_url=slack.fake.response_url("shortcut"),
    )
    slack.fake.expire_trigger(payload["trigger_id"])  # the work took longer than 3 seconds
    await slack.interact(payload)
    await slack.settle()
    (told,) = slack.fake.responses_to("shortcut")
    assert told["response_type"] == "ephemeral"
    assert "couldn't open the form" in told["text"] and "three seconds" in told["text"]
    assert "try again" in told["text"]


async def test_a_command_whose_form_cannot_open_tells_the_person(slack: SlackRig) -> None:
    await setup(slack)
    late = trigger()
    slack.fake.expire_trigger(late)
    await slack.command("share", trigger_id=late, response_token="late")
    await slack.settle()
    (told,) = slack.fake.responses_to("late")
    assert "couldn't open the form" in told["text"]
    # A form Slack refuses outright is explained too (and the refusal fails no one else).
    slack.fake.fail_next("views.open", status=200, error="invalid_arguments")
    await slack.command("profile", response_token="refused")
    await slack.settle()
    (told,) = slack.fake.responses_to("refused")
    assert "couldn't open the form" in told["text"] and "invalid_arguments" in told["text"]


# ---- long shares ------------------------------------------------------------------------


async def test_a_long_share_is_stored_whole_and_read_all_shows_every_word(
    slack: SlackRig,
) -> None:
    await setup(slack)
    await slack.command(f"share https://example.org/exit Exit tickets\n{NOTES}")
    await slack.settle()
    stored = rows(slack.db, Artifact)[0]
    assert stored.description == NOTES  # nothing refused, nothing lost

    ts, card = posted(slack, "Exit tickets")
    shown = " ".join(b["text"]["text"] for b in card["blocks"] if "text" in b)
    assert len(shown) < len(NOTES) and "…" in shown
    read = next(e for e in buttons(card["blocks"]) if e["text"]["text"] == "Read all")
    await slack.interact(click(slack, read, message_ts=ts, token="read"))
    await slack.settle()
    parts = slack.fake.responses_to("read")
    assert len(parts) >= 2 and all(p["response_type"] == "ephemeral" for p in parts)
    words = " ".join(
        b["text"]["text"] for p in parts for b in p["blocks"] if b["type"] == "section"
    )
    words = words.replace("https://example.org/exit", "").replace("&amp;", "&")
    assert words.split() == NOTES.split()
    slack.fake.assert_fallbacks()


async def test_read_all_after_the_response_url_is_used_up_comes_another_way(
    slack: SlackRig,
) -> None:
    await setup(slack)
    await slack.command(f"share https://example.org/exit Exit tickets\n{NOTES}")
    await slack.settle()
    ts, card = posted(slack, "Exit tickets")
    read = next(e for e in buttons(card["blocks"]) if e["text"]["text"] == "Read all")
    slack.fake.expire_response_url("gone")  # used five times, or 30 minutes old
    await slack.interact(click(slack, read, message_ts=ts, token="gone"))
    await slack.settle()
    ephemeral = slack.fake.calls_to("chat.postEphemeral")
    assert ephemeral and all(c["user"] == "U_TEACHER2" for c in ephemeral)
    assert slack.fake.responses_to("gone") == []


# ---- uninstall and revoked tokens with one token ----------------------------------------


async def test_uninstall_and_revoked_tokens_are_answered_with_one_token(
    slack: SlackRig, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        uninstalled = await slack.event(
            {"type": "app_uninstalled", "event_ts": "1700000900.000100"}, event_id="EvGone"
        )
        revoked = await slack.event(
            {
                "type": "tokens_revoked",
                "tokens": {"oauth": [], "bot": ["UBOT"]},
                "event_ts": "1700000901.000100",
            },
            event_id="EvRevoked",
        )
    assert uninstalled.status == 200 and revoked.status == 200
    assert "the app was uninstalled from workspace T0001" in caplog.text
    assert "tokens were revoked in workspace T0001 (bot users UBOT" in caplog.text


# ---- @PLN Bot <words> --------------------------------------------------------------------


async def test_a_mention_runs_as_a_command_once(slack: SlackRig) -> None:
    await setup(slack)
    event = mention("share https://example.org/rubric Co-written rubric", ts="1700001000.000100")
    await slack.event(event, event_id="EvMention")
    await slack.event(twin_message(event), event_id="EvMentionMessage")
    await slack.event(event, event_id="EvMention", retry=1)  # Slack's retry
    edited = {**event, "text": f"{event['text']} (typo)", "edited": {"user": "U_TEACHER1"}}
    await slack.event(edited, event_id="EvMentionEdited")  # an edit is not a second command
    await slack.settle()
    shares = rows(slack.db, Artifact)
    assert [(a.url, a.title) for a in shares] == [
        ("https://example.org/rubric", "Co-written rubric")
    ]
    cards = [m for m in slack.fake.messages.values() if "Co-written rubric" in m["text"]]
    assert len(cards) == 1
    assert "already shared" not in json.dumps(slack.fake.calls)  # nothing ran twice

    await slack.event(mention("help", ts="1700001001.000100"), event_id="EvHelp")
    answers = await slack.fake.wait_for("chat.postEphemeral")
    assert answers[0]["channel"] == "C_PLN" and answers[0]["user"] == "U_TEACHER1"
    assert "share &lt;url&gt; [title and notes]" in answers[0]["text"]  # escaped, as Slack asks


async def test_a_mention_in_a_thread_is_a_command_not_a_reflection(slack: SlackRig) -> None:
    await setup(slack)
    await slack.command("prompt assessment", user_id="U_ADMIN")
    await slack.settle()
    prompt_ts, _ = posted(slack, "Reflection prompt")
    event = mention("goal add Co-plan with my team", ts="1700001100.000100", thread_ts=prompt_ts)
    await slack.event(event, event_id="EvThreadMention")
    await slack.event(twin_message(event), event_id="EvThreadMessage")
    await slack.settle()
    assert rows(slack.db, Reflection) == []
    assert "Co-plan with my team" in json.dumps(slack.fake.calls_to("chat.postEphemeral"))


async def test_share_alone_by_mention_offers_a_button_that_opens_the_form(
    slack: SlackRig,
) -> None:
    await setup(slack)
    await slack.event(mention("share", ts="1700001200.000100"), event_id="EvShareAlone")
    answer = (await slack.fake.wait_for("chat.postEphemeral"))[0]
    assert slack.fake.calls_to("views.open") == []  # no trigger: no modal can open
    open_form = next(e for e in buttons(answer["blocks"]) if "share form" in e["text"]["text"])
    await slack.interact(
        click(slack, open_form, message_ts=answer.get("ts", "1700001200.000200"), token="open")
    )
    opened = await slack.fake.wait_for("views.open")
    assert opened[0]["view"]["callback_id"] == "share_submit"


def test_the_manifest_subscribes_to_mentions() -> None:
    manifest = build_manifest("https://bot.example.org")
    assert "app_mention" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert "app_mentions:read" in manifest["oauth_config"]["scopes"]["bot"]


# ---- Slackbot and other bots --------------------------------------------------------------


async def test_slackbot_and_bots_get_no_answer(slack: SlackRig) -> None:
    base = {"type": "message", "channel": "D_T1", "channel_type": "im", "text": "help"}
    await slack.event(
        {**base, "user": "USLACKBOT", "ts": "1700001300.000100", "event_ts": "1700001300.000100"},
        event_id="EvSlackbot",
    )
    await slack.event(
        {
            **base,
            "subtype": "bot_message",
            "bot_id": "B0OTHER",
            "username": "Reminders",
            "ts": "1700001301.000100",
            "event_ts": "1700001301.000100",
        },
        event_id="EvOtherBot",
    )
    await slack.event(
        {
            **base,
            "user": "U0OTHERBOT",
            "bot_id": "B0OTHER",
            "ts": "1700001302.000100",
            "event_ts": "1700001302.000100",
        },
        event_id="EvBotUser",
    )
    await slack.settle()
    assert [m for m, _ in slack.fake.calls if m != "auth.test"] == []  # Bolt's own check
    assert rows(slack.db, Member) == []


async def test_a_mention_of_the_bot_in_its_own_dm_is_the_command(slack: SlackRig) -> None:
    await slack.event(
        {
            "type": "message",
            "channel": "D_T1",
            "channel_type": "im",
            "user": "U_TEACHER1",
            "text": "<@UBOT> goal add Conference with every student",
            "ts": "1700001400.000100",
            "event_ts": "1700001400.000100",
        },
        event_id="EvDmMention",
    )
    await slack.settle()
    assert "Conference with every student" in json.dumps(slack.fake.calls_to("chat.postMessage"))


# ---- texts and lists within Slack's limits --------------------------------------------------


async def test_long_lists_keep_the_fallback_text_within_4000(slack: SlackRig) -> None:
    """A member with many long goals and shares, and a coach, go through every list the bot
    shows; every message, modal and Home tab is one Slack accepts, and every top-level text
    stays within the 4,000 characters Slack advises (a summary when the blocks carry it)."""
    await setup(slack)
    dm = {"channel_id": "D_T1", "channel_name": "directmessage"}
    goal = "Raise exit-ticket mastery with <students> & families, " * 18  # ~1,000 characters
    for n in range(25):
        await slack.command(f"goal add {n} {goal}"[:1000], **dm)
    for n in range(4):
        await slack.command(f"share https://example.org/{n} {'Title ' * 40}\n{NOTES}")
    await slack.settle()
    for words in ("goal list", "me", "help", "profile show", "export"):
        await slack.command(words, **dm)
    for words in ("report", "digest preview", "schedule", "digest post"):
        await slack.command(words, user_id="U_ADMIN")
    await slack.event(
        {"type": "app_home_opened", "user": "U_TEACHER1", "channel": "D_T1", "tab": "home"},
        event_id="EvHomeLong",
    )
    await slack.settle()
    await slack.fake.wait_for("views.publish")
    slack.fake.assert_fallbacks()
    assert slack.fake.rejected == []
    # `goal list` is over 4,000 characters: its text is the summary line, its blocks the list.
    (goals,) = [r for r in slack.fake.responses if r["text"] == "Your goals:"]
    listed = json.dumps(goals["blocks"])
    assert all(f"{n} Raise exit-ticket" in listed for n in range(20))  # page 1
    assert "goal list 2" in listed


# ---- any card at all ------------------------------------------------------------------------

_TEXT = st.text(
    alphabet=st.sampled_from(list("ab &<>*_\n🎯é ")) | st.characters(codec="utf-8"),
    max_size=200,
)
_LONG = st.one_of(
    _TEXT, st.builds(lambda t, n: t * n, _TEXT, st.integers(min_value=1, max_value=400))
)
_BUTTON = st.builds(
    Button,
    label=_LONG,
    action_id=st.sampled_from(["endorse", "share_read", "checkin_rate"]),
    value=_LONG,
    style=st.sampled_from([None, "primary", "danger", "weird"]),
    url=st.one_of(st.none(), st.builds(lambda n: "https://e.org/" + "a" * n, st.integers(0, 3100))),
)
_INPUT = st.builds(
    Input,
    id=st.text(alphabet="abcdefgh", min_size=1, max_size=8),
    label=_LONG,
    kind=st.sampled_from(["text", "multiline", "select"]),
    options=st.lists(
        st.builds(Option, label=_LONG, value=st.text(alphabet="xyz0123", min_size=1, max_size=20)),
        max_size=120,
        unique_by=lambda o: o.value,
    ).map(tuple),
    initial=_LONG,
    placeholder=_LONG,
    optional=st.booleans(),
    max_length=st.one_of(st.none(), st.integers(min_value=-5, max_value=5000)),
)
_CARD = st.builds(
    Card,
    title=_LONG,
    body=_LONG,
    fields=st.lists(st.builds(Field, label=_TEXT, value=_LONG), max_size=30).map(tuple),
    buttons=st.lists(_BUTTON, max_size=60).map(tuple),
    footer=_LONG,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(card=_CARD, text=_LONG)
def test_any_card_renders_within_slacks_limits(card: Card, text: str) -> None:
    payload = message_payload(Message(text=text or "x", card=card))
    assert block_kit.problems(payload["blocks"]) == []
    block_kit.assert_fallback(payload["text"])
    assert block_kit.problems({"type": "home", "blocks": card_blocks(card)}) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=_LONG,
    body=_LONG,
    inputs=st.lists(_INPUT, min_size=1, max_size=6, unique_by=lambda i: i.id).map(tuple),
    submit=_BUTTON.map(lambda b: replace(b, value=b.value[:2000])),  # a value, as on buttons
)
def test_any_form_renders_as_a_modal_slack_opens(
    title: str, body: str, inputs: tuple[Input, ...], submit: Button
) -> None:
    card = Card(title=title, body=body, inputs=inputs, submit=submit)
    view = modal_view(card, channel_id="C_PLN", is_dm=False)
    assert block_kit.problems(view) == []


@settings(max_examples=60, deadline=None)
@given(text=_LONG)
def test_any_text_alone_fits_a_message(text: str) -> None:
    payload = message_payload(Message(text=text or "x"))
    block_kit.assert_fallback(payload["text"])
    assert len(payload["text"]) <= block_kit.MESSAGE_TEXT
    assert block_kit.problems(payload.get("blocks", [])) == []
