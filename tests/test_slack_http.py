"""Slack at the HTTP boundary: signed requests into the running aiohttp app (real Bolt),
and a local fake Slack Web API on 127.0.0.1 recording what the bot sends."""

from __future__ import annotations

import asyncio
import json
import time

from storage.models import CheckIn, Endorsement, InboundReceipt, Member
from tests.slack_fakes import (
    block_actions_payload,
    message_action_payload,
    sign,
    slash_command_body,
    url_verification_body,
    view_submission_payload,
)
from tests.slack_rig import SECRET, SlackRig, rows


async def test_url_verification_answers_the_challenge(slack: SlackRig) -> None:
    async with slack.http.post(
        f"{slack.url}/slack/events",
        data=url_verification_body("abc123").encode(),
        headers={
            "Content-Type": "application/json",
            **sign(url_verification_body("abc123"), SECRET),
        },
    ) as response:
        assert response.status == 200
        assert (await response.json())["challenge"] == "abc123"


async def test_bad_signature_and_stale_timestamp_get_401_and_store_nothing(slack: SlackRig) -> None:
    response = await slack.post(
        slash_command_body("goal add Sneaky"),
        content_type="application/x-www-form-urlencoded",
        secret="wrong",
    )
    assert response.status == 401
    stale = await slack.post(
        slash_command_body("goal add Stale"),
        content_type="application/x-www-form-urlencoded",
        timestamp=int(time.time()) - 600,
    )
    assert stale.status == 401
    await slack.settle()
    assert rows(slack.db, Member) == [] and rows(slack.db, InboundReceipt) == []
    assert slack.fake.calls == []


async def test_coach_sets_up_teacher_shares_peer_endorses_with_button_and_star(
    slack: SlackRig,
) -> None:
    started = time.perf_counter()
    response = await slack.command("setup Math PLN", user_id="U_ADMIN", user_name="pln.admin")
    assert response.status == 200 and time.perf_counter() - started < 3
    posted = await slack.fake.wait_for("chat.postMessage")
    assert posted[0]["channel"] == "C_PLN" and "Math PLN" in posted[0]["text"]

    await slack.command(
        "share <https://example.org/exit-tickets|example.org/exit-tickets> Exit tickets that worked"
    )
    cards = await slack.fake.wait_for("chat.postMessage", count=2)
    card = cards[1]
    assert "Exit tickets that worked" in card["text"]
    buttons = [e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]]
    endorse = next(b for b in buttons if b["action_id"].startswith("endorse#"))
    artifact_ts = next(
        ts
        for (channel, ts) in slack.fake.messages
        if channel == "C_PLN" and "Exit tickets" in slack.fake.messages[(channel, ts)]["text"]
    )

    await slack.interact(
        block_actions_payload(
            action_id=endorse["action_id"],
            value=endorse["value"],
            user_id="U_TEACHER2",
            channel_id="C_PLN",
            message_ts=artifact_ts,
            response_url=slack.fake.response_url("endorse"),
        )
    )
    updates = await slack.fake.wait_for("chat.update")
    assert "Endorse (1)" in json.dumps(updates[0]["blocks"])
    assert len(rows(slack.db, Endorsement)) == 1

    # The author's own star is not an endorsement; U_ADMIN's star is; removing it withdraws.
    star = {
        "type": "reaction_added",
        "user": "U_ADMIN",
        "reaction": "star",
        "item": {"type": "message", "channel": "C_PLN", "ts": artifact_ts},
        "item_user": "UBOT",
        "event_ts": "1700000100.000100",
    }
    await slack.event(star, event_id="EvStar1")
    await slack.event({**star, "user": "U_TEACHER1"}, event_id="EvStar2")
    await slack.fake.wait_for("chat.update", count=2)
    await slack.settle()
    assert len(rows(slack.db, Endorsement)) == 2
    await slack.event({**star, "type": "reaction_removed"}, event_id="EvStar3")
    await slack.fake.wait_for("chat.update", count=3)
    await slack.settle()
    assert len(rows(slack.db, Endorsement)) == 1


async def test_unknown_subcommand_and_non_coach_get_ephemeral_answers(slack: SlackRig) -> None:
    await slack.command("fly me to the moon", response_token="unknown")
    answer = (await slack.fake.wait_for_response())[0]
    assert answer["response_type"] == "ephemeral" and "I don't know the command" in answer["text"]
    await slack.command("setup", user_id="U_TEACHER1", response_token="refused")
    answers = await slack.fake.wait_for_response(count=2)
    assert "for coaches" in answers[1]["text"] and answers[1]["response_type"] == "ephemeral"
    assert "Traceback" not in json.dumps(answers)


async def test_checkin_in_dm_with_retries_and_retry_storm_store_one_answer(slack: SlackRig) -> None:
    await slack.command(
        "goal add Use exit tickets daily", channel_id="D_T1", channel_name="directmessage"
    )
    await slack.command(
        "checkin", channel_id="D_T1", channel_name="directmessage", response_token="checkin"
    )
    await slack.fake.wait_for_response(count=2)
    message = {
        "type": "message",
        "channel": "D_T1",
        "channel_type": "im",
        "user": "U_TEACHER1",
        "text": "7 - tried exit tickets",
        "ts": "1700000200.000100",
        "event_ts": "1700000200.000100",
    }
    await asyncio.gather(
        *(slack.event(message, event_id="EvAnswer", retry=n or None) for n in range(5))
    )
    await slack.settle()
    answered = [c for c in rows(slack.db, CheckIn) if c.status == "answered"]
    assert (
        len(answered) == 1
        and answered[0].rating == 7
        and answered[0].reflection == "tried exit tickets"
    )
    assert len([k for k in rows(slack.db, InboundReceipt) if "EvAnswer" in k.key]) == 1


async def test_rate_limited_post_still_arrives_once(slack: SlackRig) -> None:
    slack.fake.fail_next("chat.postMessage", status=429, retry_after=1)
    await slack.command("setup", user_id="U_ADMIN")
    posted = await slack.fake.wait_for("chat.postMessage", timeout=5)
    await asyncio.sleep(0.3)
    assert len(slack.fake.calls_to("chat.postMessage")) == 1 == len(posted)


async def test_malformed_body_is_refused(slack: SlackRig) -> None:
    response = await slack.post(
        "payload=%7Bnot-json", content_type="application/x-www-form-urlencoded"
    )
    assert 400 <= response.status < 500
    await slack.settle()
    assert rows(slack.db, Member) == []


async def test_profile_modal_submission_saves_the_profile(slack: SlackRig) -> None:
    await slack.command("profile", response_token="profile")
    opened = await slack.fake.wait_for("views.open")
    view = opened[0]["view"]
    assert view["callback_id"] == "profile_save"
    values = {
        "role": {"role": {"type": "static_select", "selected_option": {"value": "teacher"}}},
        "timezone": {"timezone": {"type": "plain_text_input", "value": "America/Chicago"}},
        "strengths": {"strengths": {"type": "plain_text_input", "value": "Questioning"}},
        "cadence": {"cadence": {"type": "plain_text_input", "value": "weekly thu 08:00"}},
    }
    await slack.interact(
        view_submission_payload(
            callback_id="profile_save",
            user_id="U_TEACHER1",
            values=values,
            private_metadata=view["private_metadata"],
        )
    )
    saved = await slack.fake.wait_for("chat.postEphemeral")
    assert saved[0]["user"] == "U_TEACHER1" and "profile is saved" in saved[0]["text"]
    await slack.settle()
    member = next(m for m in rows(slack.db, Member) if m.user_id == "U_TEACHER1")
    assert (
        member.role,
        member.timezone,
        member.strengths,
        member.checkin_weekday,
        member.checkin_time,
    ) == ("teacher", "America/Chicago", "Questioning", 3, "08:00")


async def test_share_as_evidence_shortcut_opens_a_prefilled_modal(slack: SlackRig) -> None:
    message = {
        "type": "message",
        "user": "U_TEACHER1",
        "ts": "1700000300.000100",
        "text": "Our gallery walk <https://example.org/gallery|example.org/gallery>",
    }
    await slack.interact(
        message_action_payload(
            callback_id="share_evidence", user_id="U_TEACHER1", channel_id="C_PLN", message=message
        )
    )
    opened = await slack.fake.wait_for("views.open")
    blocks = opened[0]["view"]["blocks"]
    initial = {
        b["block_id"]: b["element"].get("initial_value") for b in blocks if b["type"] == "input"
    }
    assert initial["url"] == "https://example.org/gallery"


async def test_member_joining_a_community_gets_a_welcome_dm(slack: SlackRig) -> None:
    await slack.command("setup", user_id="U_ADMIN")
    await slack.fake.wait_for("chat.postMessage")
    joined = {
        "type": "member_joined_channel",
        "user": "U_TEACHER2",
        "channel": "C_PLN",
        "channel_type": "C",
        "team": "T0001",
        "event_ts": "1700000400.000100",
    }
    await slack.event(joined, event_id="EvJoin")
    posts = await slack.fake.wait_for("chat.postMessage", count=2)
    assert posts[1]["channel"] == "U_TEACHER2" and "Welcome" in posts[1]["text"]  # the app DM


async def test_app_home_shows_goals(slack: SlackRig) -> None:
    await slack.command(
        "goal add Student-led conferences", channel_id="D_T1", channel_name="directmessage"
    )
    await slack.fake.wait_for_response()
    await slack.event(
        {
            "type": "app_home_opened",
            "user": "U_TEACHER1",
            "channel": "D_T1",
            "tab": "home",
            "event_ts": "1700000500.000100",
        },
        event_id="EvHome",
    )
    published = await slack.fake.wait_for("views.publish")
    assert "Student-led conferences" in json.dumps(published[0]["view"])


async def test_checkins_send_reaches_every_channel_member(slack: SlackRig) -> None:
    await slack.command("setup", user_id="U_ADMIN")
    await slack.fake.wait_for("chat.postMessage")
    await slack.command("checkins send", user_id="U_ADMIN", response_token="send")
    await slack.fake.wait_for("conversations.members")
    posts = await slack.fake.wait_for("chat.postMessage", count=4, timeout=5)
    dms = [p for p in posts if p["channel"].startswith("U")]  # posted to the members' app DMs
    assert len(dms) == 3  # three people, not the bot
    assert all(len([b for b in p["blocks"] if b["type"] == "actions"]) == 1 for p in dms)


async def test_thread_reply_under_a_prompt_is_a_shared_reflection(slack: SlackRig) -> None:
    from storage.models import Reflection

    await slack.command("setup", user_id="U_ADMIN")
    await slack.fake.wait_for("chat.postMessage")
    await slack.command("prompt assessment", user_id="U_ADMIN")
    posts = await slack.fake.wait_for("chat.postMessage", count=2)
    prompt_ts = next(
        ts for (channel, ts), m in slack.fake.messages.items() if "Reflection prompt" in m["text"]
    )
    assert posts
    reply = {
        "type": "message",
        "channel": "C_PLN",
        "channel_type": "channel",
        "user": "U_TEACHER1",
        "text": "We co-wrote the rubric",
        "ts": "1700000600.000200",
        "thread_ts": prompt_ts,
        "event_ts": "1700000600.000200",
    }
    await slack.event(reply, event_id="EvThread")
    await slack.settle()
    reflections = rows(slack.db, Reflection)
    assert len(reflections) == 1 and not reflections[0].is_private


async def test_double_click_and_replayed_click_endorse_once(slack: SlackRig) -> None:
    await slack.command("setup", user_id="U_ADMIN")
    await slack.fake.wait_for("chat.postMessage")
    await slack.command("share https://example.org/rubric Co-written rubric")
    await slack.fake.wait_for("chat.postMessage", count=2)
    ts = next(ts for (channel, ts), m in slack.fake.messages.items() if "rubric" in m["text"])
    card = slack.fake.messages[("C_PLN", ts)]
    endorse = next(
        e
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"].startswith("endorse#")
    )
    click = block_actions_payload(
        action_id=endorse["action_id"],
        value=endorse["value"],
        user_id="U_TEACHER2",
        channel_id="C_PLN",
        message_ts=ts,
        action_ts="1700000800.000001",
    )
    second = block_actions_payload(
        action_id=endorse["action_id"],
        value=endorse["value"],
        user_id="U_TEACHER2",
        channel_id="C_PLN",
        message_ts=ts,
        action_ts="1700000800.400001",
    )
    await asyncio.gather(slack.interact(click), slack.interact(click), slack.interact(second))
    await slack.settle()
    await asyncio.sleep(0.3)
    assert len(rows(slack.db, Endorsement)) == 1
