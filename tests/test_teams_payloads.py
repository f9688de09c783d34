"""Teams translation as pure functions: payloads shaped like Teams' own (tests/payloads/teams/)
-> neutral events, and neutral cards -> Adaptive Cards; plus the connector's pacing."""

from __future__ import annotations

import json
import random
from typing import Any

from botbuilder.schema import Activity

from adapters.teams import inbound, render
from adapters.teams.connector import CONVERSATION_LIMITS, Pacer, backoff_delay, pacing_keys
from bot.core.events import ActionEvent, CommandEvent, MessageEvent
from bot.core.messages import Button, Card, Field, Input, Message, Option
from tests.teams_fakes import ANA, CHANNEL, PRIYA, TENANT, TOMAS, payload

SIGNER = render.Signer("test-secret")


def activity(name: str, **changes: Any) -> Activity:
    data = payload(name)
    data.update(changes)
    return Activity().deserialize(data)


def test_an_at_mention_in_a_channel_is_a_command_from_the_aad_identity() -> None:
    event = inbound.message_event(activity("message_channel_mention"), is_command=lambda t: True)
    assert isinstance(event, CommandEvent)
    assert event.text == "share https://example.org/exit-tickets Exit tickets that worked"
    assert (event.user.platform, event.user.workspace_id) == ("teams", TENANT)
    assert event.user.user_id == ANA.aad and event.user.name == "Ana Rivera"
    assert event.user.timezone == "America/Chicago"
    assert event.conversation.channel_id == CHANNEL and not event.conversation.is_dm
    assert event.conversation.raw["conversation_id"] == CHANNEL  # post to the channel itself
    assert event.dedupe_key == "msg:1764000003816"


def test_words_in_a_1_to_1_chat_are_a_message_in_a_dm() -> None:
    event = inbound.message_event(activity("message_personal"), is_command=lambda t: True)
    assert isinstance(event, MessageEvent) and event.conversation.is_dm
    assert event.text == "goal add Use exit tickets daily"
    assert event.conversation.raw["conversation_type"] == "personal"


def test_a_reply_in_a_channel_thread_is_a_message_in_that_thread() -> None:
    data = payload("message_channel_mention")
    data["conversation"]["id"] = f"{CHANNEL};messageid=1764000000001"
    data["text"] = "We tried it in 7th grade"
    data["entities"] = [e for e in data["entities"] if e["type"] != "mention"]
    event = inbound.message_event(Activity().deserialize(data), is_command=lambda t: False)
    assert isinstance(event, MessageEvent)
    assert event.conversation.thread_id == "1764000000001"
    assert event.conversation.channel_id == CHANNEL
    # channel chatter that neither mentions the bot nor replies in a thread is ignored
    data["conversation"]["id"] = f"{CHANNEL};messageid={data['id']}"
    assert inbound.message_event(Activity().deserialize(data), is_command=lambda t: True) is None


def test_other_mentions_links_and_markup_become_plain_words() -> None:
    data = payload("message_channel_mention")
    data["text"] = (
        '<at>PLN Bot</at> coach add <at>Tomas Okafor</at> and see <a href="https://example.org/x?a=1&amp;b=2">'
        "this</a>&nbsp;<p>now</p>"
    )
    data["entities"].append(
        {
            "type": "mention",
            "text": "<at>Tomas Okafor</at>",
            "mentioned": {"id": TOMAS.teams_id, "name": "Tomas Okafor", "aadObjectId": TOMAS.aad},
        }
    )
    data["entities"].append({"type": "mention", "text": "<at>broken</at>"})  # no "mentioned"
    text = inbound.clean_text(Activity().deserialize(data))
    assert text == f"coach add <@{TOMAS.aad}> and see https://example.org/x?a=1&b=2 now"


def test_a_long_teams_id_without_an_aad_id_is_shortened_stably() -> None:
    long_id = "29:" + "x" * 120
    assert inbound.default_resolver(long_id, None) == inbound.default_resolver(long_id, None)
    assert len(inbound.default_resolver(long_id, None)) <= 64
    assert inbound.default_resolver(long_id, "aad-1") == "aad-1"


def _card_action(data: Any, *, invoke: bool = True, tenant: str = TENANT) -> Activity:
    name = "invoke_adaptive_card_action" if invoke else "message_card_submit"
    raw = payload(name)
    if invoke:
        raw["value"]["action"]["data"] = data
    else:
        raw["value"] = data
    raw["channelData"]["tenant"]["id"] = tenant
    raw["conversation"]["tenantId"] = tenant  # Teams sends both (the host's, in a shared channel)
    return Activity().deserialize(raw)


def test_action_execute_and_action_submit_carry_the_same_signed_data() -> None:
    card = render.adaptive_card(
        Card(buttons=(Button(label="Endorse", action_id="endorse", value="42"),)),
        signer=SIGNER,
        tenant=TENANT,
    )
    (action,) = card["actions"]
    assert action["type"] == "Action.Execute" and action["verb"] == "endorse"
    assert action["fallback"]["type"] == "Action.Submit"
    for invoke in (True, False):
        event = inbound.card_action(
            _card_action(dict(action["data"]), invoke=invoke), signer=SIGNER
        )
        assert isinstance(event, ActionEvent)
        assert (event.action_id, event.value) == ("endorse", "42")
        assert event.message is not None and event.message.message_id
    forged = json.loads(json.dumps(action["data"]))
    forged["pln"]["v"] = "43"
    assert isinstance(inbound.card_action(_card_action(forged), signer=SIGNER), inbound.CardRefused)
    elsewhere = _card_action(dict(action["data"]), tenant="another-tenant")
    assert isinstance(inbound.card_action(elsewhere, signer=SIGNER), inbound.CardRefused)
    for junk in (None, "text", [], {"pln": "x"}, {"pln": {"a": 1, "v": "", "s": ""}}):
        assert isinstance(
            inbound.card_action(_card_action(junk), signer=SIGNER), inbound.CardRefused
        )


def test_the_checkin_card_has_a_0_to_10_choice_and_a_reflection_box() -> None:
    buttons = tuple(
        Button(label=str(n), action_id="checkin_rate", value=f"17:{n}") for n in range(11)
    )
    reflection = Input(id="reflection", label="Reflection (optional)", kind="multiline")
    card = render.adaptive_card(
        Card(
            title="Check-in", body="How far along are you?", buttons=buttons, inputs=(reflection,)
        ),
        signer=SIGNER,
        tenant=TENANT,
    )
    choice = next(b for b in card["body"] if b["type"] == "Input.ChoiceSet")
    assert [c["value"] for c in choice["choices"]] == [str(n) for n in range(11)]
    assert choice["isRequired"] is True
    text = next(b for b in card["body"] if b["type"] == "Input.Text")
    assert text["id"] == "reflection" and text["isMultiline"] is True
    (save,) = card["actions"]
    data = dict(save["data"], pln_choice="6", reflection="Tried it twice")
    event = inbound.card_action(_card_action(data), signer=SIGNER)
    assert isinstance(event, ActionEvent)
    assert (event.action_id, event.value) == ("checkin_rate", "17:6")
    assert event.values == {"reflection": "Tried it twice"}
    refused = inbound.card_action(_card_action(dict(save["data"])), signer=SIGNER)
    assert isinstance(refused, inbound.CardRefused) and refused.needs_choice


def test_forms_links_styles_and_limits() -> None:
    card = render.adaptive_card(
        Card(
            title="Your profile",
            body="*Strengths* for <@u1>",
            fields=(Field(label="Role", value="Teacher"),),
            inputs=(
                Input(
                    id="role",
                    label="Role",
                    kind="select",
                    options=(Option(label="Teacher", value="teacher"),),
                    initial="teacher",
                    optional=False,
                ),
                Input(id="school", label="School", max_length=200, placeholder="Lincoln"),
            ),
            buttons=(
                Button(
                    label="Dashboard", action_id="open_dashboard", url="https://pln.example.org/d"
                ),
                Button(label="Delete", action_id="forget_confirm", style="danger"),
                *(Button(label=f"b{n}", action_id=f"a{n}") for n in range(8)),
            ),
            submit=Button(label="Save profile", action_id="profile_save", style="primary"),
        ),
        signer=SIGNER,
        tenant=TENANT,
        names={"u1": "Ana Rivera"},
    )
    body = {b.get("id") or b["type"]: b for b in card["body"]}
    assert card["body"][1]["text"] == "**Strengths** for **Ana Rivera**"
    assert body["role"]["type"] == "Input.ChoiceSet" and body["role"]["value"] == "teacher"
    assert body["role"]["isRequired"] is True
    assert body["school"]["maxLength"] == 200 and "isRequired" not in body["school"]
    assert body["FactSet"]["facts"] == [{"title": "Role", "value": "Teacher"}]
    assert card["actions"][0] == {
        "type": "Action.OpenUrl",
        "title": "Dashboard",
        "url": "https://pln.example.org/d",
    }
    assert card["actions"][1]["style"] == "destructive"
    assert len(card["actions"]) == render.MAX_ACTIONS


def test_a_message_with_a_card_notifies_with_its_text_as_summary() -> None:
    with_card = render.message_activity(
        Message(text="Ana shared evidence: Exit tickets", card=Card(title="Exit tickets")),
        signer=SIGNER,
        tenant=TENANT,
    )
    assert "text" not in with_card and with_card["summary"] == "Ana shared evidence: Exit tickets"
    assert with_card["attachments"][0]["contentType"] == render.CARD_CONTENT_TYPE
    assert with_card["channelData"] == {"tenant": {"id": TENANT}}
    plain = render.message_activity(
        Message(text="Usage: `goal add <text>`\n• one\n• two"), signer=SIGNER, tenant=TENANT
    )
    assert plain["textFormat"] == "markdown"
    assert plain["text"] == "Usage: `goal add <text>`\n\n- one\n\n- two"


def test_likes_endorse_and_unlikes_withdraw() -> None:
    events = inbound.reaction_events(activity("message_reaction_like"), endorse="star")
    assert [(e.reaction, e.added, e.message.message_id) for e in events] == [
        ("star", True, "1764000004000")
    ]
    assert events[0].user.user_id == PRIYA.aad
    removed = payload("message_reaction_like")
    removed["reactionsRemoved"] = removed.pop("reactionsAdded")
    removed["reactionsRemoved"].append({"type": "heart"})
    events = inbound.reaction_events(Activity().deserialize(removed), endorse="star")
    assert [(e.reaction, e.added) for e in events] == [("star", False), ("heart", False)]


def test_members_added_and_the_bot_itself() -> None:
    team = activity("conversation_update_member_added")
    assert [m.aad_object_id for m in inbound.added_people(team)] == [PRIYA.aad]
    assert not inbound.bot_added(team)
    personal = activity("conversation_update_bot_added_personal")
    assert inbound.bot_added(personal)
    assert [m.aad_object_id for m in inbound.added_people(personal)] == [TOMAS.aad]
    assert inbound.conversation_ref(personal).is_dm


def test_pacing_keeps_each_conversation_under_teams_limits() -> None:
    now = [0.0]
    pacer = Pacer(CONVERSATION_LIMITS, clock=lambda: now[0])
    waits = [pacer.reserve("19:chan@thread.tacv2") for _ in range(9)]
    assert waits[:7] == [0.0] * 7  # 7 in the first second
    assert waits[7] == 1.0  # the 8th waits for the next second
    assert waits[8] == 2.0  # 8 per 2 seconds
    assert pacer.reserve("a:other-chat") == 0.0  # other conversations aren't held up
    now[0] = 3600.0
    assert pacer.reserve("19:chan@thread.tacv2") == 0.0
    # 60 in 30 seconds: the 61st message of a steady 2/s stream waits for the window
    now[0], busy = 10_000.0, Pacer(CONVERSATION_LIMITS, clock=lambda: now[0])
    delays = []
    for n in range(61):
        now[0] = 10_000.0 + n * 0.3
        delays.append(busy.reserve("c"))
    assert max(delays[:60]) < 1.0 and delays[60] > 10


def test_pacing_keys_and_backoff() -> None:
    url = "https://smba.trafficmanager.net/amer/v3/conversations/19%3Aabc%40thread.tacv2%3Bmessageid%3D17/activities"
    body = json.dumps({"type": "message", "channelData": {"tenant": {"id": TENANT}}})
    assert pacing_keys(url, body) == ("19%3Aabc%40thread.tacv2", TENANT)
    assert pacing_keys("https://x/v3/conversations", json.dumps({"tenantId": "t"})) == (None, "t")
    assert pacing_keys(url, "not json") == ("19%3Aabc%40thread.tacv2", None)
    random.seed(4)
    assert 3.0 <= backoff_delay(0, "3") <= 3.6  # Retry-After is honoured
    delays = [backoff_delay(attempt, None) for attempt in range(8)]
    assert all(0 < d <= 8.0 for d in delays) and delays[3] >= 2.0  # exponential, capped


def test_a_private_copy_of_a_channel_form_acts_in_that_channel() -> None:
    form = Card(
        inputs=(Input(id="url", label="Link"),),
        submit=Button(label="Share", action_id="share_submit"),
    )
    card = render.adaptive_card(form, signer=SIGNER, tenant=TENANT, origin=CHANNEL)
    data = card["actions"][0]["data"]
    raw = payload("message_card_submit")  # pressed in the 1:1 chat
    raw["value"] = dict(data, url="https://example.org/x")
    event = inbound.card_action(Activity().deserialize(raw), signer=SIGNER)
    assert isinstance(event, ActionEvent)
    assert event.conversation.channel_id == CHANNEL and not event.conversation.is_dm
    assert event.values == {"url": "https://example.org/x"}
    moved = json.loads(json.dumps(data))
    moved["pln"]["ch"] = "19:another-channel@thread.tacv2"
    raw["value"] = moved
    assert isinstance(
        inbound.card_action(Activity().deserialize(raw), signer=SIGNER), inbound.CardRefused
    )
