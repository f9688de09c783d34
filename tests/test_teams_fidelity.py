"""Teams as strict as Teams (#13), over real HTTP: Bot Framework activities POSTed to
/api/messages of the running app, and the strict fake connector (tests/teams_fakes.py, rules in
tests/adaptive_cards.py) receiving what the bot sends — any message Teams would refuse fails
the test that caused it.

- replies too big for one Teams message come in several, each under the limit as Teams
  measures it (UTF-16, so astral characters count double), and all of what was asked for
  arrives; a message the bot may update later stays one message;
- notification summaries and invoke answers are plain text;
- invokes the bot doesn't offer get an empty 200, not 501;
- shared channels (manifest `supportsChannelFeatures`): the community belongs to the hosting
  tenant whoever takes part, its people are its own (not the host team's), a member from
  another tenant gets answers in the channel (Teams allows no private chat across tenants),
  and the bot disallowed there forgets it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.core.events import UserRef
from bot.core.messages import Card, Field, Link, Message
from storage.models import Artifact, Community, Endorsement, Goal, Member, Membership, Workspace
from storage.teams_tables import TeamsConversation
from tests.adaptive_cards import SIZE_LIMIT, activity_size
from tests.teams_fakes import (
    ANA,
    BOT_ID,
    CHANNEL,
    COACH,
    PRIYA,
    TEAM,
    TENANT,
    TOMAS,
    Call,
    Person,
    card_click,
    members_added,
    message,
    personal_chat,
    roster_entry,
)
from tests.test_teams_http import TeamsRig, setup_community
from tests.test_teams_http import teams as teams  # the Teams rig fixture

SNIC = ("strengths", "needs", "interests", "constraints")
EMOJI = "\U0001f9ea"  # 🧪: one character, two UTF-16 code units
SHARED = "19:5ha4ed0d15t41c7b1e0fa11d15c0ffee@thread.tacv2"
DISTRICT_B = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"  # a neighbouring district's tenant
KAI = Person(
    "29:1Ka1-M0ana-0th3rD1str1ct-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2",
    "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b",
    "Kai Moana",
)


def sizes_fit(calls: list[Call]) -> None:
    for call in calls:
        assert activity_size(call.body) <= SIZE_LIMIT


def facts(call: Call) -> list[dict[str, str]]:
    return [f for b in call.card["body"] if b["type"] == "FactSet" for f in b["facts"]]


def in_shared_channel(
    activity: dict[str, Any], *, tenant_in_channel_data: str = TENANT
) -> dict[str, Any]:
    """`activity` (built for CHANNEL) as Teams sends it from the shared channel SHARED, hosted
    by TENANT's team TEAM: channelData says the channel is shared."""
    root = activity["conversation"]["id"].partition(";messageid=")[2] or activity["id"]
    activity["conversation"]["id"] = f"{SHARED};messageid={root}"
    activity["conversation"]["tenantId"] = TENANT
    activity["channelData"] = {
        "teamsChannelId": SHARED,
        "teamsTeamId": TEAM,
        "channel": {"id": SHARED, "type": "shared", "name": "District PLN"},
        "team": {"id": TEAM},
        "tenant": {"id": tenant_in_channel_data},
    }
    return activity


async def say_in_shared(teams: TeamsRig, text: str, person: Person, **kwargs: Any) -> Any:
    activity = in_shared_channel(
        message(text, service_url=teams.fake.service_url, person=person), **kwargs
    )
    status, _ = await teams.post(activity)
    assert status == 200
    return activity


# -- size ----------------------------------------------------------------------------------
@pytest.mark.parametrize("letter", ["x", EMOJI], ids=["ascii", "astral"])
async def test_a_goal_list_too_big_for_one_teams_message_comes_in_parts(
    teams: TeamsRig, letter: str
) -> None:
    goals = [f"Goal {n}: " + letter * 980 for n in range(1, 22)]  # 21 long goals: 2 pages
    for n, goal in enumerate(goals, start=1):
        await teams.say(f"goal add {goal}", personal=True)
        if n % 5 == 0:  # Teams paces a chat to 8 messages in 2 s: let the replies go out
            await teams.settle()
    await teams.settle()
    assert len(teams.rows(Goal)) == 21

    await teams.say("goal list", personal=True)
    await teams.settle()
    parts = [
        c
        for c in teams.fake.sent_to(personal_chat(ANA))
        if c.card and c.card["body"][0]["text"].startswith("Your goals")
    ]
    assert len(parts) >= 2  # one message would be over Teams' limit...
    assert sum(activity_size(c.body) for c in parts) > SIZE_LIMIT
    sizes_fit(parts)  # ...each part is under it, as Teams counts (UTF-16)
    shown = [f["value"] for part in parts for f in facts(part)]
    assert shown == [f"{n}. {goal}" for n, goal in enumerate(goals[:20], start=1)]  # in full
    assert "(continued)" in parts[1].card["body"][0]["text"]
    assert "goal list 2" in json.dumps(parts[-1].card)  # the next page stays reachable
    assert parts[0].body["summary"].startswith("Your goals:")

    await teams.say("goal list 2", personal=True)
    page_two = await teams.fake.wait_for(
        lambda c: c.card is not None and "Your goals (2/2)" in json.dumps(c.card)
    )
    assert [f["value"] for f in facts(page_two[0])] == [f"21. {goals[20]}"]


async def test_long_astral_text_goes_in_parts_and_an_updatable_message_in_one(
    teams: TeamsRig,
) -> None:
    await teams.say("help", personal=True)
    await teams.settle()
    platform = teams.runtime.platforms["teams"]
    chat = await platform.open_dm(UserRef(platform="teams", workspace_id=TENANT, user_id=ANA.aad))
    paragraphs = [f"Part {n} " + EMOJI * 3000 for n in range(1, 6)]  # 5 x 6 KB of UTF-16
    await platform.send(chat, Message(text="\n".join(paragraphs)))
    texts = [c for c in teams.fake.sent_to(personal_chat(ANA)) if "Part " in c.text]
    assert len(texts) >= 2
    sizes_fit(texts)
    assert "\n\n".join(c.body["text"] for c in texts) == "\n\n".join(paragraphs)

    # A message the bot may update later (a share's card, a digest) stays one message, its
    # longest texts shortened: an update then reaches all of it.
    long_card = Card(
        title="Digest",
        fields=tuple(Field(label=f"Share {n}", value=EMOJI * 1000) for n in range(30)),
    )
    before = len(teams.fake.sent())
    ref = await platform.send(
        chat,
        Message(text="This week's digest", card=long_card, link=Link(kind="digest", object_id=1)),
    )
    (digest,) = teams.fake.sent()[before:]
    sizes_fit([digest])
    assert len(facts(digest)) == 30 and all(f["value"].endswith("…") for f in facts(digest))
    await platform.update(ref, Message(text="This week's digest", card=long_card))
    (update,) = teams.fake.updates()
    assert update.activity_id == ref.message_id
    sizes_fit([update])


async def test_a_form_too_big_to_prefill_keeps_what_is_stored(teams: TeamsRig) -> None:
    """Four long answers in emoji fill more than a Teams message: the form shows the longest
    empty ("leave it empty to keep it"), and saving it with them empty keeps them."""
    await teams.say("profile", personal=True)
    (form,) = await teams.fake.wait_for(lambda c: "profile_save" in json.dumps(c.card or {}))
    answers = {key: key.title() + " " + EMOJI * 1980 for key in SNIC}
    status, _ = await teams.post(
        card_click(
            form.action("profile_save"),
            service_url=teams.fake.service_url,
            person=ANA,
            personal=True,
            reply_to=form.answered or "",
            inputs={"role": "teacher", **answers},
        )
    )
    assert status == 200
    await teams.say("profile", personal=True)
    forms = await teams.fake.wait_for(lambda c: "profile_save" in json.dumps(c.card or {}), count=2)
    again = forms[-1]
    sizes_fit([again])
    fields = {e["id"]: e for e in again.card["body"] if e["type"].startswith("Input.")}
    empty = [key for key in SNIC if "value" not in fields[key]]
    assert empty and len(empty) < len(SNIC)  # only as many as needed
    assert all("keep it as it is" in fields[key]["placeholder"] for key in empty)
    assert all(fields[key]["value"] == answers[key] for key in SNIC if key not in empty)
    save = again.action("profile_save")
    assert sorted(save["data"]["pln"]["k"]) == sorted(empty)
    status, _ = await teams.post(
        card_click(
            save,
            service_url=teams.fake.service_url,
            person=ANA,
            personal=True,
            reply_to=again.answered or "",
            inputs={"role": "teacher", "school": "Lincoln Middle", **dict.fromkeys(empty, "")},
        )
    )
    assert status == 200
    ana = next(m for m in teams.rows(Member) if m.user_id == ANA.aad)
    assert ana.school == "Lincoln Middle"
    assert {key: getattr(ana, key) for key in SNIC} == answers  # nothing lost
    # an empty answer where the form did show the text still clears it, as before
    shown = next(key for key in SNIC if key not in empty)
    status, _ = await teams.post(
        card_click(
            save,
            service_url=teams.fake.service_url,
            person=ANA,
            personal=True,
            reply_to=again.answered or "",
            inputs={"role": "teacher", shown: ""},
        )
    )
    ana = next(m for m in teams.rows(Member) if m.user_id == ANA.aad)
    assert getattr(ana, shown) == ""


# -- plain summaries -----------------------------------------------------------------------
async def test_notification_summaries_and_invoke_answers_are_plain_text(teams: TeamsRig) -> None:
    await teams.say("help", personal=True)
    (help_card,) = await teams.fake.wait_for(
        lambda c: c.card is not None and c.conversation == personal_chat(ANA)
    )
    summary = help_card.body["summary"]
    assert summary.startswith("I help your Professional Learning Network")
    assert not any(mark in summary for mark in ("*", "`", "<@", "\n"))
    assert "digest. Everyone • help — what I do" in summary and summary.endswith("…")

    await setup_community(teams)
    await teams.say("share https://example.org/exit *Exit tickets* that `work`")
    (share,) = await teams.fake.wait_for(lambda c: c.card is not None and c.conversation == CHANNEL)
    assert share.body["summary"] == (
        "Ana Rivera shared evidence: Exit tickets that work https://example.org/exit"
    )
    status, answer = await teams.post(
        card_click(
            share.action("endorse"),
            service_url=teams.fake.service_url,
            person=TOMAS,
            reply_to=share.answered or "",
        )
    )
    assert status == 200
    assert answer["value"] == "You endorsed “Exit tickets that work”. Press again to withdraw."


# -- invokes -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["composeExtension/query", "task/fetch", "signin/verifyState", "message/submitAction", "x"],
)
async def test_invokes_the_bot_does_not_offer_get_an_empty_200(teams: TeamsRig, name: str) -> None:
    invoke = message("", service_url=teams.fake.service_url, personal=True)
    invoke.update(type="invoke", name=name, value={"commandId": "search", "parameters": []})
    invoke.pop("text")
    status, body = await teams.post(invoke)
    assert (status, body) == (200, {})
    assert teams.fake.calls == []  # and nothing was said


async def test_card_actions_and_file_consent_invokes_still_work(teams: TeamsRig) -> None:
    await setup_community(teams)
    await teams.say("share https://example.org/g Gallery walk")
    (share,) = await teams.fake.wait_for(lambda c: c.card is not None and c.conversation == CHANNEL)
    click = card_click(
        share.action("endorse"),
        service_url=teams.fake.service_url,
        person=TOMAS,
        reply_to=share.answered or "",
    )
    status, body = await teams.post(click)
    assert status == 200 and body["type"] == "application/vnd.microsoft.activity.message"
    consent = message("", service_url=teams.fake.service_url, personal=True)
    consent.update(type="invoke", name="fileConsent/invoke", value={"action": "decline"})
    status, _ = await teams.post(consent)
    assert status == 200


# -- shared channels -----------------------------------------------------------------------
async def test_a_shared_channel_is_the_host_tenants_community_and_a_neighbour_takes_part(
    teams: TeamsRig,
) -> None:
    teams.fake.home_tenants[KAI.teams_id] = DISTRICT_B  # Kai's home is another tenant
    await say_in_shared(teams, "setup District PLN", COACH)
    await teams.fake.wait_for(lambda c: c.conversation == SHARED and "District PLN" in c.text)
    assert [(c.channel_id, c.name) for c in teams.rows(Community)] == [(SHARED, "District PLN")]

    # Kai, from the neighbouring district, shares in the shared channel; one message even
    # says its channelData tenant is Kai's own: the channel's host tenant decides.
    await say_in_shared(teams, "share https://example.org/k Seminar protocol", KAI)
    await say_in_shared(
        teams,
        "share https://example.org/k2 Peer review rubric",
        KAI,
        tenant_in_channel_data=DISTRICT_B,
    )
    cards = await teams.fake.wait_for(
        lambda c: c.conversation == SHARED and c.card is not None, count=2
    )
    assert {a.title for a in teams.rows(Artifact)} == {"Seminar protocol", "Peer review rubric"}
    assert [w.external_id for w in teams.rows(Workspace)] == [TENANT]  # one wall: the host's
    kai = next(m for m in teams.rows(Member) if m.user_id == KAI.aad)
    assert kai.display_name == "Kai Moana"

    # Ana (host tenant) endorses Kai's share; Kai endorses back with the card's button.
    status, answer = await teams.post(
        in_shared_channel(
            card_click(
                cards[0].action("endorse"),
                service_url=teams.fake.service_url,
                person=ANA,
                reply_to=cards[0].answered or "",
            )
        )
    )
    assert status == 200 and "You endorsed" in answer["value"]
    assert len(teams.rows(Endorsement)) == 1

    # A private answer can't reach Kai (Teams opens no 1:1 chat across tenants): Kai is told
    # so in the channel, and nothing private is posted there.
    await say_in_shared(teams, "goal add Run a cross-district seminar", KAI)
    await say_in_shared(teams, "goal list", KAI)
    notes = await teams.fake.wait_for(
        lambda c: c.conversation == SHARED and "can't answer you privately" in c.text, count=2
    )
    assert notes[0].text.startswith("**Kai Moana**, I can't answer you privately")
    assert "cross-district seminar" not in json.dumps([c.body for c in teams.fake.sent()])
    assert any(c.path == "/v3/conversations" for c in teams.fake.calls)  # it did try


async def test_a_shared_channel_keeps_its_own_people(teams: TeamsRig) -> None:
    teams.fake.roster[SHARED] = [roster_entry(p) for p in (COACH, ANA, PRIYA)]
    await setup_community(teams)  # Math PLN in a standard channel of the team
    await say_in_shared(teams, "setup District PLN", COACH)
    await teams.fake.wait_for(lambda c: c.conversation == SHARED and "District PLN" in c.text)
    stored = {c.conversation_key: c.team_id for c in teams.rows(TeamsConversation)}
    assert stored[CHANNEL] == TEAM and stored[SHARED] is None  # not one of the team's channels

    def communities_of(person: Person) -> set[str]:
        by_id = {c.id: c.name for c in teams.rows(Community)}
        member = next((m for m in teams.rows(Member) if m.user_id == person.aad), None)
        return {
            by_id[s.community_id]
            for s in teams.rows(Membership)
            if member and s.member_id == member.id
        }

    # Priya is added to the shared channel through a team it is shared with: she joins the
    # District PLN, not the host team's Math PLN.
    joined = members_added(PRIYA, service_url=teams.fake.service_url)
    joined["conversation"]["id"] = SHARED
    joined["channelData"] = {
        "channel": {"id": SHARED, "type": "shared", "name": "District PLN"},
        "team": {"id": TEAM},
        "eventType": "channelMemberAdded",
        "membershipSource": {
            "sourceType": "team",
            "id": "19:0th3rteam@thread.tacv2",
            "membershipType": "transitive",
            "tenantId": TENANT,
        },
        "tenant": {"id": TENANT},
    }
    assert (await teams.post(joined))[0] == 200
    # Tomas joins the host team: Math PLN, not the shared channel he isn't in.
    assert (await teams.post(members_added(TOMAS, service_url=teams.fake.service_url)))[0] == 200
    await teams.settle()
    assert communities_of(PRIYA) == {"District PLN"}
    assert communities_of(TOMAS) == {"Math PLN"}

    # The shared channel's roster is its own, not the host team's.
    before = len(teams.fake.calls)
    await say_in_shared(teams, "checkins send", COACH)
    await teams.settle()
    rosters = [c.conversation for c in teams.fake.calls[before:] if c.method == "GET"]
    assert rosters == [SHARED]

    # Disallowed in the shared channel, the bot forgets it (and can't post there any more).
    removed = members_added(COACH, service_url=teams.fake.service_url)
    removed.pop("membersAdded")
    removed["membersRemoved"] = [{"id": BOT_ID}]
    removed["conversation"]["id"] = SHARED
    removed["channelData"] = {
        "channel": {"id": SHARED, "type": "shared", "name": "District PLN"},
        "team": {"id": TEAM},
        "eventType": "channelMemberRemoved",
        "tenant": {"id": TENANT},
    }
    assert (await teams.post(removed))[0] == 200
    await teams.settle()
    assert SHARED not in {c.conversation_key for c in teams.rows(TeamsConversation)}
    assert CHANNEL in {c.conversation_key for c in teams.rows(TeamsConversation)}
