"""Microsoft Teams at the HTTP boundary: Bot Framework activities POSTed to /api/messages of
the running aiohttp app (the real botbuilder CloudAdapter), and a local fake Bot Framework
connector on 127.0.0.1 recording what the bot sends (tests/teams_fakes.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import select

from bot.config import Settings
from plnbot.runtime import Runtime, build_runtime, make_web_app
from storage.db import Database
from storage.models import (
    Artifact,
    CheckIn,
    Community,
    Endorsement,
    InboundReceipt,
    Member,
    Membership,
    OutboxMessage,
    Workspace,
)
from storage.teams_tables import TeamsConversation, TeamsMember, TeamsPendingFile
from tests.teams_fakes import (
    ANA,
    BOT_ID,
    CHANNEL,
    COACH,
    PRIYA,
    TENANT,
    TOMAS,
    FakeConnector,
    bot_installed_personal,
    card_click,
    installation,
    members_added,
    message,
    personal_chat,
    reaction,
)


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class TeamsRig:
    url: str
    http: aiohttp.ClientSession
    fake: FakeConnector
    runtime: Runtime
    db: Database

    async def post(
        self, activity: dict[str, Any], *, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        async with self.http.post(
            f"{self.url}/api/messages",
            data=json.dumps(activity),
            headers={"Content-Type": "application/json", **(headers or {})},
        ) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text else None)

    async def say(self, text: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.post(message(text, service_url=self.fake.service_url, **kwargs))

    def rows(self, model: type) -> list[Any]:
        with self.db.session() as session:
            return list(session.exec(select(model)).all())

    async def settle(self) -> None:
        """Wait until every stored activity is worked and every due message sent."""
        await self.runtime.idle()


async def start_rig(db: Database, settings: Settings, **runtime_kwargs: Any) -> Any:
    fake = FakeConnector(roster=runtime_kwargs.pop("roster", {}))
    await fake.start()
    runtime = build_runtime(settings, clock=RealClock(), **runtime_kwargs)
    server = TestServer(make_web_app(runtime, scheduler=False), host="127.0.0.1")
    await server.start_server()
    return fake, runtime, server


@pytest.fixture
async def teams(db: Database) -> AsyncIterator[TeamsRig]:
    settings = Settings(  # type: ignore[call-arg]
        DATABASE_URL=db.url, PLNBOT_COACHES=COACH.aad
    )
    fake, runtime, server = await start_rig(db, settings, allow_anonymous_teams=True)
    async with aiohttp.ClientSession() as http:
        yield TeamsRig(
            url=str(server.make_url("")).rstrip("/"), http=http, fake=fake, runtime=runtime, db=db
        )
    await server.close()
    runtime.db.dispose()  # the runtime's own pool: on PostgreSQL, connections add up otherwise
    await fake.stop()


async def setup_community(teams: TeamsRig) -> None:
    status, _ = await teams.say("setup Math PLN", person=COACH)
    assert status == 200
    await teams.fake.wait_for(lambda c: "Math PLN" in c.text and c.conversation == CHANNEL)


async def share(teams: TeamsRig, text: str, person: Any = ANA) -> Any:
    await teams.say(f"share {text}", person=person)
    cards = await teams.fake.wait_for(
        lambda c: (
            c.card is not None and "Endorse" in json.dumps(c.card) and c.conversation == CHANNEL
        )
    )
    return cards[-1]


async def test_coach_sets_up_a_channel_and_a_teacher_shares_with_an_at_mention(
    teams: TeamsRig,
) -> None:
    await setup_community(teams)
    communities = teams.rows(Community)
    assert [(c.channel_id, c.name) for c in communities] == [(CHANNEL, "Math PLN")]
    workspace = teams.rows(Workspace)[0]
    assert (workspace.platform, workspace.external_id) == ("teams", TENANT)

    card_post = await share(teams, "https://example.org/exit-tickets Exit tickets that worked")
    card = card_post.card
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert "Exit tickets that worked" in json.dumps(card)
    endorse = card_post.action("endorse")
    assert endorse["type"] == "Action.Execute"
    assert endorse["fallback"]["type"] == "Action.Submit"
    # posted as a new post in the channel, not into the teacher's thread
    assert card_post.conversation == CHANNEL and card_post.reply_to is None
    assert "exit-tickets" in card_post.body["summary"]
    artifact = teams.rows(Artifact)[0]
    author = next(m for m in teams.rows(Member) if m.id == artifact.author_id)
    assert author.user_id == ANA.aad and author.display_name == "Ana Rivera"
    assert author.timezone == "America/Chicago"  # from the Teams client's clientInfo


async def test_endorse_with_action_execute_and_action_submit_and_a_like(teams: TeamsRig) -> None:
    await setup_community(teams)
    card_post = await share(teams, "https://example.org/gallery Gallery walk")
    artifact_message = card_post.answered
    endorse = card_post.action("endorse")

    status, body = await teams.post(
        card_click(
            endorse, service_url=teams.fake.service_url, person=TOMAS, reply_to=artifact_message
        )
    )
    assert status == 200
    assert (
        body["statusCode"] == 200 and body["type"] == "application/vnd.microsoft.activity.message"
    )
    assert "You endorsed" in body["value"]
    update = await teams.fake.wait_for(
        lambda c: c.method == "PUT" and c.activity_id == artifact_message
    )
    assert "Endorse (1)" in json.dumps(update[-1].card)
    assert len(teams.rows(Endorsement)) == 1

    # The Action.Submit fallback (older clients): a message whose value is the card data.
    await teams.post(
        card_click(
            endorse,
            service_url=teams.fake.service_url,
            person=PRIYA,
            reply_to=artifact_message,
            submit=True,
        )
    )
    await teams.fake.wait_for(
        lambda c: c.method == "PUT" and c.activity_id == artifact_message, count=2
    )
    assert len(teams.rows(Endorsement)) == 2

    # Priya's "like" is her endorsement already; unliking withdraws it; Ana's own like is not one.
    await teams.post(reaction(artifact_message, service_url=teams.fake.service_url, person=ANA))
    await teams.post(
        reaction(artifact_message, service_url=teams.fake.service_url, person=PRIYA, added=False)
    )
    await teams.fake.wait_for(
        lambda c: c.method == "PUT" and c.activity_id == artifact_message, count=3
    )
    assert len(teams.rows(Endorsement)) == 1
    await teams.post(reaction(artifact_message, service_url=teams.fake.service_url, person=PRIYA))
    await teams.fake.wait_for(
        lambda c: c.method == "PUT" and c.activity_id == artifact_message, count=4
    )
    assert len(teams.rows(Endorsement)) == 2


async def test_proactive_checkin_reaches_a_member_known_only_from_members_added(
    teams: TeamsRig,
) -> None:
    await setup_community(teams)
    status, _ = await teams.post(members_added(PRIYA, service_url=teams.fake.service_url))
    assert status == 200
    # Priya never wrote to the bot: it opens a 1:1 chat at the stored serviceUrl...
    created = await teams.fake.wait_for(
        lambda c: c.path == "/v3/conversations" and c.body["members"][0]["id"] == PRIYA.teams_id
    )
    assert created[0].body["bot"]["id"] == BOT_ID
    assert created[0].body["channelData"] == {"tenant": {"id": TENANT}}
    # ...and welcomes her there with the profile card
    welcome = await teams.fake.wait_for(lambda c: c.conversation == personal_chat(PRIYA))
    card = json.dumps(welcome[0].card)
    assert "Welcome to Math PLN" in card and '"id": "role"' in card
    assert welcome[0].action("profile_save")["type"] == "Action.Execute"

    # A teacher in the community the bot has never met in Teams, so can't message yet.
    with teams.db.session() as session:
        workspace = session.exec(select(Workspace)).one()
        community = session.exec(select(Community)).one()
        never = Member(
            workspace_id=workspace.id, user_id="9e8d7c6b-never-met", display_name="Sam Reyes"
        )
        session.add(never)
        session.flush()
        session.add(Membership(community_id=community.id, member_id=never.id))

    await teams.say("checkins send", person=COACH)
    reply = await teams.fake.wait_for(
        lambda c: c.conversation == personal_chat(COACH) and "on their way" in c.text
    )
    assert "on their way to 3 members" in reply[0].text
    assert "1 can't be reached yet (Sam Reyes)" in reply[0].text
    await teams.settle()
    checkin = (
        await teams.fake.wait_for(
            lambda c: c.conversation == personal_chat(PRIYA) and "pln_choice" in json.dumps(c.card)
        )
    )[0]
    failed = [r for r in teams.rows(OutboxMessage) if r.status == "failed"]
    assert len(failed) == 1 and "can't be reached in Teams yet" in failed[0].error

    # Priya answers on the card: a 0–10 choice and a reflection, in one press.
    save = checkin.action("checkin_rate")
    status, body = await teams.post(
        card_click(
            save,
            service_url=teams.fake.service_url,
            person=PRIYA,
            personal=True,
            reply_to=checkin.answered or "",
            inputs={"pln_choice": "7", "reflection": "Tried exit tickets in 3rd period"},
        )
    )
    assert status == 200 and body["statusCode"] == 200
    answered = [c for c in teams.rows(CheckIn) if c.status == "answered"]
    assert [(c.rating, c.reflection) for c in answered] == [(7, "Tried exit tickets in 3rd period")]
    await teams.fake.wait_for(
        lambda c: c.conversation == personal_chat(PRIYA) and "7/10" in json.dumps(c.card or {})
    )

    await teams.say("report", person=COACH)
    report = await teams.fake.wait_for(
        lambda c: (
            c.conversation == personal_chat(COACH) and "Undelivered" in json.dumps(c.card or {})
        )
    )
    facts = {
        f["title"]: f["value"]
        for b in report[0].card["body"]
        if b["type"] == "FactSet"
        for f in b["facts"]
    }
    assert facts["Undelivered messages (4 weeks)"] == "1"


async def test_a_member_teams_refuses_to_chat_with_is_reported_not_skipped(teams: TeamsRig) -> None:
    await setup_community(teams)
    await share(teams, "https://example.org/a Station rotation", person=TOMAS)
    teams.fake.refuse_conversations_for.add(TOMAS.teams_id)
    await teams.say("checkins send", person=COACH)
    await teams.fake.wait_for(lambda c: "on their way to 2 members" in c.text)
    await teams.settle()
    failed = [r for r in teams.rows(OutboxMessage) if r.status == "failed"]
    assert len(failed) == 1
    assert "Tomas Okafor can't be reached in Teams" in failed[0].error and "403" in failed[0].error


async def test_card_submits_with_missing_or_forged_values_are_refused_kindly(
    teams: TeamsRig,
) -> None:
    await setup_community(teams)
    card_post = await share(teams, "https://example.org/rubric Co-written rubric")
    endorse = card_post.action("endorse")
    url = teams.fake.service_url

    forged = json.loads(json.dumps(endorse))
    forged["data"]["pln"]["v"] = "999"  # another share, with this one's signature
    status, body = await teams.post(card_click(forged, service_url=url, person=TOMAS, reply_to="1"))
    assert status == 200 and "isn't one I can act on" in body["value"]

    unsigned = json.loads(json.dumps(endorse))
    del unsigned["data"]["pln"]["s"]
    status, body = await teams.post(
        card_click(unsigned, service_url=url, person=TOMAS, reply_to="1")
    )
    assert status == 200 and "isn't one I can act on" in body["value"]

    missing = card_click(endorse, service_url=url, person=TOMAS, reply_to="1")
    missing["value"] = None
    status, body = await teams.post(missing)
    assert status == 200 and body["statusCode"] == 200 and "isn't one I can act on" in body["value"]

    other_tenant = card_click(endorse, service_url=url, person=TOMAS, reply_to="1")
    other_tenant["channelData"]["tenant"]["id"] = "99999999-aaaa-4bbb-8ccc-dddddddddddd"
    other_tenant["conversation"]["tenantId"] = "99999999-aaaa-4bbb-8ccc-dddddddddddd"
    status, body = await teams.post(other_tenant)
    assert status == 200 and "isn't one I can act on" in body["value"]

    # An Action.Submit (a message) whose value isn't one of our cards: answered in a 1:1 chat.
    submit = card_click(endorse, service_url=url, person=TOMAS, reply_to="1", submit=True)
    submit["value"] = {"choice": "yes"}
    status, _ = await teams.post(submit)
    assert status == 200
    await teams.fake.wait_for(
        lambda c: c.conversation == personal_chat(TOMAS) and "isn't one I can act on" in c.text
    )
    assert teams.rows(Endorsement) == []


async def test_unknown_commands_and_coach_only_commands_get_kind_private_answers(
    teams: TeamsRig,
) -> None:
    await teams.say("fly me to the moon")
    answer = await teams.fake.wait_for(lambda c: c.conversation == personal_chat(ANA))
    assert "I don't know the command “fly”" in answer[0].text
    assert not teams.fake.sent_to(CHANNEL)  # nothing said in the channel
    await teams.say("setup", person=TOMAS)
    refused = await teams.fake.wait_for(lambda c: c.conversation == personal_chat(TOMAS))
    assert "is for coaches" in refused[0].text
    await teams.say("sing a song", personal=True)
    dm = await teams.fake.wait_for(lambda c: c.conversation == personal_chat(ANA), count=2)
    assert "Type **help**" in dm[-1].text or "help" in dm[-1].text
    assert teams.rows(Community) == []


async def test_a_replayed_activity_is_handled_once(teams: TeamsRig) -> None:
    await setup_community(teams)
    activity = message("share https://example.org/twice Twice?", service_url=teams.fake.service_url)
    results = await asyncio.gather(*(teams.post(activity) for _ in range(4)))
    assert all(status == 200 for status, _ in results)
    await teams.fake.wait_for(lambda c: c.conversation == CHANNEL and c.card is not None)
    await asyncio.sleep(0.2)
    assert len(teams.rows(Artifact)) == 1
    assert len([c for c in teams.fake.sent_to(CHANNEL) if c.card is not None]) == 1


async def test_installing_the_app_greets_the_team_and_makes_the_installer_a_coach(
    teams: TeamsRig,
) -> None:
    url = teams.fake.service_url
    await teams.post(installation("add", service_url=url, person=PRIYA))
    hello = await teams.fake.wait_for(lambda c: c.conversation == CHANNEL)
    assert "mentioning me with `setup`" in hello[0].text
    assert teams.rows(Workspace)[0].installed_by == PRIYA.aad
    # The bot-added conversationUpdate that follows doesn't greet the channel twice.
    bot_added = members_added(PRIYA, service_url=url)
    bot_added["membersAdded"] = [{"id": BOT_ID}]
    bot_added["conversation"]["id"] = CHANNEL
    bot_added["channelData"]["channel"] = {"id": CHANNEL}
    await teams.post(bot_added)
    await teams.say("setup Science PLN", person=PRIYA)  # the installer is a coach
    await teams.fake.wait_for(lambda c: "Science PLN" in c.text)
    assert len([c for c in teams.fake.sent_to(CHANNEL) if "mentioning me" in c.text]) == 1
    stored = {(c.conversation_key, c.conversation_type) for c in teams.rows(TeamsConversation)}
    assert (CHANNEL, "channel") in stored

    await teams.post(installation("remove", service_url=url, person=PRIYA))
    await teams.settle()
    assert CHANNEL not in {c.conversation_key for c in teams.rows(TeamsConversation)}


async def test_a_personal_install_is_welcomed_with_the_profile_form_that_saves(
    teams: TeamsRig,
) -> None:
    url = teams.fake.service_url
    await teams.post(bot_installed_personal(TOMAS, service_url=url))
    welcome = (await teams.fake.wait_for(lambda c: c.conversation == personal_chat(TOMAS)))[0]
    assert not teams.fake.created()  # the chat exists already: no new conversation
    assert "Welcome" in json.dumps(welcome.card)
    save = welcome.action("profile_save")
    status, body = await teams.post(
        card_click(
            save,
            service_url=url,
            person=TOMAS,
            personal=True,
            reply_to=welcome.answered or "",
            inputs={"role": "principal", "timezone": "America/New_York", "strengths": "Scheduling"},
        )
    )
    assert status == 200 and body["statusCode"] == 200
    member = next(m for m in teams.rows(Member) if m.user_id == TOMAS.aad)
    assert (member.role, member.timezone, member.strengths) == (
        "principal",
        "America/New_York",
        "Scheduling",
    )
    # a replay of the install doesn't welcome twice
    await teams.post(bot_installed_personal(TOMAS, service_url=url))
    await asyncio.sleep(0.2)
    assert (
        len(
            [c for c in teams.fake.sent_to(personal_chat(TOMAS)) if "Welcome" in json.dumps(c.card)]
        )
        == 1
    )
    people = {p.teams_id for p in teams.rows(TeamsMember)}
    assert TOMAS.teams_id in people


async def test_thread_reply_under_a_prompt_is_a_shared_reflection(teams: TeamsRig) -> None:
    from storage.models import Reflection

    await setup_community(teams)
    await teams.say("prompt assessment", person=COACH)
    prompt = await teams.fake.wait_for(
        lambda c: c.conversation == CHANNEL and "Reflection prompt" in json.dumps(c.card or {})
    )
    root = prompt[0].answered or ""
    await teams.say("We co-wrote the rubric with students", thread=root, mention_bot=False)
    for _ in range(50):
        if teams.rows(Reflection):
            break
        await asyncio.sleep(0.02)
    reflections = teams.rows(Reflection)
    assert len(reflections) == 1 and not reflections[0].is_private
    assert reflections[0].text == "We co-wrote the rubric with students"


async def test_digest_post_and_a_dm_checkin_answered_in_words(teams: TeamsRig) -> None:
    await setup_community(teams)
    card_post = await share(teams, "https://example.org/w Warm-up routines")
    await teams.post(
        card_click(
            card_post.action("endorse"),
            service_url=teams.fake.service_url,
            person=TOMAS,
            reply_to=card_post.answered or "",
        )
    )
    await teams.say("digest post", person=COACH)
    await teams.settle()
    digest = await teams.fake.wait_for(
        lambda c: c.conversation == CHANNEL and "best work" in json.dumps(c.card or {})
    )
    assert "Warm-up routines" in json.dumps(digest[0].card)

    await teams.say("checkin", personal=True)
    await teams.fake.wait_for(
        lambda c: c.conversation == personal_chat(ANA) and "pln_choice" in json.dumps(c.card or {})
    )
    await teams.say("8 - warm-ups cut transition time", personal=True)
    await teams.fake.wait_for(
        lambda c: c.conversation == personal_chat(ANA) and "8/10" in json.dumps(c.card or {})
    )
    answered = [c for c in teams.rows(CheckIn) if c.status == "answered"]
    assert [(c.rating, c.reflection) for c in answered] == [(8, "warm-ups cut transition time")]


async def test_connector_throttling_is_retried_and_the_message_arrives_once(
    teams: TeamsRig,
) -> None:
    teams.fake.fail_next("POST", CHANNEL + "/activities", status=429, retry_after=0.2)
    teams.fake.fail_next("POST", CHANNEL + "/activities", status=502)
    teams.fake.fail_next("POST", CHANNEL + "/activities", status=412)
    await setup_community(teams)
    assert len([c for c in teams.fake.sent_to(CHANNEL) if "Math PLN" in c.text]) == 1


def has_attachment(call: Any, kind: str) -> bool:
    return any(kind in a["contentType"] for a in (call.body or {}).get("attachments", []))


async def consent_cards(teams: TeamsRig, count: int = 1) -> list[dict[str, Any]]:
    """The file-consent cards Ana has been sent in her 1:1 chat so far (waits for `count`)."""
    calls = await teams.fake.wait_for(
        lambda c: c.conversation == personal_chat(ANA) and has_attachment(c, "file.consent"),
        count=count,
    )
    return [c.body["attachments"][0] for c in calls]


def consent_answer(teams: TeamsRig, card: dict[str, Any], upload: str) -> dict[str, Any]:
    """Ana pressing Allow on a file-consent card; Teams then offers an upload URL."""
    accept = message("", service_url=teams.fake.service_url, personal=True)
    accept.update(
        type="invoke",
        name="fileConsent/invoke",
        value={
            "type": "fileUpload",
            "action": "accept",
            "context": card["content"]["acceptContext"],
            "uploadInfo": {
                "contentUrl": f"https://lincoln.sharepoint.example/{upload}",
                "name": upload,
                "uploadUrl": f"{teams.fake.base_url}/upload/{upload}",
                "uniqueId": "1150D938-8870-4044-9F2C-5BBDEBA70C8C",
                "fileType": "json",
            },
        },
    )
    return accept


async def test_export_is_sent_as_a_file_after_consent(teams: TeamsRig) -> None:
    await teams.say("goal add Student-led conferences", personal=True)
    await teams.say("export", personal=True)
    card = (await consent_cards(teams))[0]
    assert card["name"] == "plnbot-export.json"
    accept = consent_answer(teams, card, "plnbot-export.json")
    status, _ = await teams.post(accept)
    assert status == 200
    info = await teams.fake.wait_for(lambda c: has_attachment(c, "file.info"))
    assert info[0].conversation == personal_chat(ANA)
    uploaded = json.loads(teams.fake.uploads["plnbot-export.json"])
    assert "Student-led conferences" in json.dumps(uploaded)
    # The file was kept only until then: a second answer finds nothing, and says so.
    again = json.loads(json.dumps(accept))
    again["id"] = "f:second-answer"
    await teams.post(again)
    await teams.fake.wait_for(
        lambda c: c.conversation == personal_chat(ANA) and "no longer waiting" in c.text
    )
    # Someone else's answer to Ana's card can't take her file.
    await teams.say("export", personal=True)
    stolen = consent_answer(teams, (await consent_cards(teams, 2))[-1], "stolen.json")
    stolen["id"] = "f:someone-else"
    stolen["from"] = TOMAS.account()
    await teams.post(stolen)
    await teams.fake.wait_for(lambda c: "no longer waiting" in c.text, count=2)
    assert len(teams.fake.uploads) == 1


async def test_forget_also_drops_a_file_still_waiting_for_consent(teams: TeamsRig) -> None:
    await teams.say("goal add Student-led conferences", personal=True)
    await teams.say("export", personal=True)
    card = (await consent_cards(teams))[0]
    assert len(teams.rows(TeamsPendingFile)) == 1  # her export, waiting for "Allow"
    await teams.say("forget", personal=True)
    await teams.say("forget confirm", personal=True)
    await teams.fake.wait_for(lambda c: "everything I stored about you is deleted" in c.text)
    assert teams.rows(TeamsPendingFile) == []
    await teams.post(consent_answer(teams, card, "late.json"))
    await teams.fake.wait_for(lambda c: "no longer waiting" in c.text)
    assert teams.fake.uploads == {}


async def test_someone_forgotten_is_reachable_again_as_soon_as_they_write(
    teams: TeamsRig,
) -> None:
    await teams.say("help", personal=True)
    await teams.settle()
    assert len(teams.rows(TeamsMember)) == 1
    await teams.say("forget", personal=True)
    await teams.say("forget confirm", personal=True)
    await teams.fake.wait_for(lambda c: "everything I stored about you is deleted" in c.text)
    assert teams.rows(TeamsMember) == [] and teams.rows(TeamsConversation) == []
    await teams.say("help", personal=True)  # back, minutes later
    await teams.settle()
    assert len(teams.rows(TeamsMember)) == 1  # stored again: check-ins can reach her
    assert [c.conversation_type for c in teams.rows(TeamsConversation)] == ["personal"]


async def test_malformed_requests_are_refused_and_store_nothing(teams: TeamsRig) -> None:
    async with teams.http.post(
        f"{teams.url}/api/messages", data="{not json", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
    async with teams.http.post(
        f"{teams.url}/api/messages", data="hello", headers={"Content-Type": "text/plain"}
    ) as response:
        assert response.status == 415
    status, _ = await teams.post({"text": "no type"})
    assert status == 400
    assert teams.rows(Member) == [] and teams.rows(InboundReceipt) == []


async def test_coach_add_with_a_teams_mention_grants_the_role_and_names_them(
    teams: TeamsRig,
) -> None:
    await teams.say("help", person=TOMAS)  # the bot has met Tomas
    await teams.say("coach add <at>Tomas Okafor</at>", person=COACH, mentions=[TOMAS])
    reply = await teams.fake.wait_for(
        lambda c: c.conversation == personal_chat(COACH) and "is now a coach" in c.text
    )
    assert reply[0].text.startswith("**Tomas Okafor** is now a coach")
    tomas = next(m for m in teams.rows(Member) if m.user_id == TOMAS.aad)
    assert tomas.is_coach


async def test_a_form_asked_for_in_a_channel_comes_privately_and_acts_in_that_channel(
    teams: TeamsRig,
) -> None:
    await setup_community(teams)
    await teams.say("share")  # no link: the share form, in Ana's 1:1 chat
    form = (
        await teams.fake.wait_for(
            lambda c: (
                c.conversation == personal_chat(ANA) and "share_submit" in json.dumps(c.card or {})
            )
        )
    )[0]
    submit = form.action("share_submit")
    assert submit["data"]["pln"]["ch"] == CHANNEL
    status, body = await teams.post(
        card_click(
            submit,
            service_url=teams.fake.service_url,
            person=ANA,
            personal=True,
            reply_to=form.answered or "",
            inputs={"url": "https://example.org/jigsaw", "title": "Jigsaw reading groups"},
        )
    )
    assert status == 200 and body["statusCode"] == 200
    posted = await teams.fake.wait_for(
        lambda c: c.conversation == CHANNEL and "Jigsaw reading groups" in json.dumps(c.card or {})
    )
    assert posted[0].action("endorse")
    assert [a.title for a in teams.rows(Artifact)] == ["Jigsaw reading groups"]


async def test_a_local_bot_framework_emulator_can_talk_to_the_anonymous_bot(
    teams: TeamsRig,
) -> None:
    """No tenant, no channelData, no Teams ids: what the Emulator sends (serve started with
    --allow-anonymous-teams)."""
    status, _ = await teams.post(
        {
            "type": "message",
            "id": "emulator-1",
            "channelId": "emulator",
            "serviceUrl": teams.fake.service_url,
            "from": {"id": "user-1", "name": "User", "role": "user"},
            "recipient": {"id": "bot-1", "name": "Bot", "role": "bot"},
            "conversation": {"id": "emulator-conversation-1"},
            "text": "goal add Try the emulator",
            "locale": "en-US",
        }
    )
    assert status == 200
    reply = await teams.fake.wait_for(lambda c: c.conversation == "emulator-conversation-1")
    assert "Try the emulator" in reply[0].text
    assert teams.rows(Workspace)[0].external_id == "emulator"
