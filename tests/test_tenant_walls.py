"""Tenants are walls, and what people type stays text (README "Security").

Two Slack workspaces whose channel and user ids collide share one database here, as they
would in a district's multi-workspace install: signed requests into the running app (real
Bolt), a local fake Slack Web API recording what the bot sends."""

from __future__ import annotations

import json
import time

from sqlmodel import select

from storage.models import (
    Artifact,
    Endorsement,
    FlowState,
    Goal,
    InboundReceipt,
    Member,
    ReflectionPrompt,
    Workspace,
)
from tests.slack_fakes import block_actions_payload, view_submission_payload
from tests.slack_rig import SlackRig, rows
from tests.teams_fakes import ANA, CHANNEL, COACH, TENANT, TOMAS, message
from tests.test_teams_http import TeamsRig
from tests.test_teams_http import teams as teams  # the Teams rig fixture

OTHER = "T0002"  # a second workspace with the same channel and user ids as T0001


async def _setup_both(slack: SlackRig) -> None:
    for team in ("T0001", OTHER):
        await slack.command("setup Math PLN", user_id="U_ADMIN", team_id=team)
    await slack.settle()


async def _share(slack: SlackRig, text: str, **kwargs: str) -> Artifact:
    await slack.command(f"share {text}", **kwargs)
    await slack.settle()
    return max(rows(slack.db, Artifact), key=lambda a: a.id)


def _endorse_click(slack: SlackRig, artifact: Artifact, *, user_id: str, team_id: str) -> dict:
    return block_actions_payload(
        response_url=slack.fake.response_url("click"),
        action_id="endorse#0",
        value=str(artifact.id),
        user_id=user_id,
        team_id=team_id,
        channel_id="C_PLN",
        message_ts="1700000000.000100",
        action_ts=f"{time.time():.6f}",
    )


async def test_a_share_cannot_be_endorsed_from_another_workspace(slack: SlackRig) -> None:
    await _setup_both(slack)
    share = await _share(slack, "https://example.org/exit Exit tickets", user_id="U_TEACHER1")

    # A peer in the other workspace, and the author themselves under the other team id
    # (the trick that once ranked a share first in its own digest), press Endorse.
    for user_id in ("U_TEACHER2", "U_TEACHER1"):
        response = await slack.interact(
            _endorse_click(slack, share, user_id=user_id, team_id=OTHER)
        )
        assert response.status == 200
    # ... and with a note, through the modal's submission.
    note = view_submission_payload(
        callback_id="endorse_note",
        user_id="U_TEACHER2",
        team_id=OTHER,
        private_metadata=json.dumps({"channel": "C_PLN", "value": str(share.id)}),
        values={"note": {"note": {"type": "plain_text_input", "value": "Borrowing this"}}},
    )
    assert (await slack.interact(note)).status == 200
    await slack.settle()

    assert rows(slack.db, Endorsement) == []
    refusals = [r.get("text", "") for r in slack.fake.calls_to("chat.postEphemeral")]
    refusals += [r.get("text", "") for r in slack.fake.responses_to("click")]
    assert sum("can't find that share" in text for text in refusals) >= 2

    # In its own workspace the same click counts.
    await slack.interact(_endorse_click(slack, share, user_id="U_TEACHER2", team_id="T0001"))
    await slack.settle()
    assert len(rows(slack.db, Endorsement)) == 1


async def test_a_reflection_cannot_be_filed_under_a_foreign_prompt(slack: SlackRig) -> None:
    await _setup_both(slack)
    await slack.command("prompt", user_id="U_ADMIN", team_id="T0001")
    await slack.settle()
    prompt = rows(slack.db, ReflectionPrompt)[0]
    click = block_actions_payload(
        action_id="reflect_private#0",
        value=str(prompt.id),
        user_id="U_TEACHER1",
        team_id=OTHER,
        channel_id="C_PLN",
        message_ts="1700000000.000200",
        response_url=slack.fake.response_url("click"),
    )
    assert (await slack.interact(click)).status == 200
    await slack.settle()
    assert rows(slack.db, FlowState) == []  # no reflection started under T0001's prompt


async def test_colliding_request_ids_in_two_workspaces_are_both_handled(slack: SlackRig) -> None:
    """Dedupe keys are scoped by platform, workspace and conversation: the same trigger id
    in two workspaces is two requests; the same one twice in one workspace is a retry."""
    await _setup_both(slack)
    trigger = "7700000001.738474920.8088930838d88f008e0"
    for team in ("T0001", OTHER, OTHER):
        response = await slack.command(
            f"share https://example.org/{team} Rubric from {team}",
            team_id=team,
            trigger_id=trigger,
        )
        assert response.status == 200
    await slack.settle()
    titles = sorted(a.title for a in rows(slack.db, Artifact))
    assert titles == ["Rubric from T0001", "Rubric from T0002"]


async def test_typed_markup_cannot_broadcast_mention_or_disguise_a_link(slack: SlackRig) -> None:
    await _setup_both(slack)
    slack.fake.reset()
    hostile = [
        "<!channel> <https://evil.example|innocent.org> ask <@U_ADMIN>",
        # Slack sends what was typed literally escaped; it must not come back live.
        "&lt;!here&gt; &lt;https://evil.example|innocent.org&gt;",
    ]
    for number, text in enumerate(hostile):
        await slack.command(f"share https://example.org/n{number} {text}", user_id="U_TEACHER1")
    await slack.settle()

    posted = slack.fake.calls_to("chat.postMessage") + slack.fake.calls_to("chat.update")
    assert len(posted) >= 2
    for call in posted:
        # Slack parses markup in `text` and in mrkdwn objects (plain_text shows as it is).
        wire = "\n".join([call.get("text", ""), *_mrkdwn(call.get("blocks", []))])
        for live in ("<!channel>", "<!here>", "<@U_ADMIN>", "<https://evil.example|"):
            assert live not in wire, (live, wire)
    shown = "\n".join(c.get("text", "") for c in posted)  # escaped: shown as typed
    assert "&lt;!channel&gt;" in shown and "&lt;!here&gt;" in shown
    assert "&lt;https://evil.example|innocent.org&gt;" in shown
    # Stored as typed: only the rendering escapes.
    assert any("<!channel>" in a.title for a in rows(slack.db, Artifact))


def _mrkdwn(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if node.get("type") == "mrkdwn" else []
        return found + [t for value in node.values() for t in _mrkdwn(value)]
    if isinstance(node, list):
        return [t for item in node for t in _mrkdwn(item)]
    return []


async def test_reactions_to_anything_but_a_share_leave_no_trace(slack: SlackRig) -> None:
    await _setup_both(slack)
    members_before = {m.user_id for m in rows(slack.db, Member)}
    receipts_before = len(rows(slack.db, InboundReceipt))
    slack.fake.reset()
    star = {
        "type": "reaction_added",
        "user": "U_STRANGER",
        "reaction": "star",
        "item": {"type": "message", "channel": "C_PLN", "ts": "1600000000.000001"},
        "item_user": "U_TEACHER1",
        "event_ts": "1700000300.000100",
    }
    assert (await slack.event(star, event_id="EvStrangerStar")).status == 200
    assert (await slack.event({**star, "reaction": "tada"}, event_id="EvTada")).status == 200
    await slack.settle()
    assert {m.user_id for m in rows(slack.db, Member)} == members_before
    assert len(rows(slack.db, InboundReceipt)) == receipts_before
    assert slack.fake.calls_to("users.info") == []


async def test_a_demoted_coachs_dashboard_link_stops_opening(slack: SlackRig) -> None:
    await slack.command("setup Math PLN", user_id="U_ADMIN")
    await slack.command("coach add <@U_TEACHER2>", user_id="U_ADMIN")
    await slack.settle()
    slack.fake.reset()
    await slack.command("report", user_id="U_TEACHER2", response_token="report")
    await slack.settle()
    answers = slack.fake.responses_to("report") + slack.fake.calls_to("chat.postEphemeral")
    blocks = json.dumps([a.get("blocks", []) for a in answers])
    start = blocks.index("/dashboard/")
    link = blocks[start : blocks.index('"', start)]
    async with slack.http.get(f"{slack.url}{link}") as response:
        assert response.status == 200

    await slack.command("coach remove <@U_TEACHER2>", user_id="U_ADMIN")
    await slack.settle()
    async with slack.http.get(f"{slack.url}{link}") as response:
        assert response.status in (403, 410)
        assert "Math PLN" not in await response.text()


async def test_one_workspace_row_per_team_even_with_colliding_ids(slack: SlackRig) -> None:
    await _setup_both(slack)
    with slack.db.session() as session:
        teams = sorted(w.external_id for w in session.exec(select(Workspace)))
        members = session.exec(select(Member).where(Member.user_id == "U_ADMIN")).all()
    assert teams == ["T0001", OTHER]
    assert len({m.workspace_id for m in members}) == 2


# Teams: message ids are millisecond timestamps, unique only within a conversation.

OTHER_TENANT = "7d1e0f3a-9c8b-4a7d-b6e5-1f2e3d4c5b6a"


async def test_teams_ids_that_collide_across_chats_and_tenants_are_all_handled(
    teams: TeamsRig,
) -> None:
    sent = []
    for person, tenant in ((ANA, TENANT), (TOMAS, TENANT), (ANA, OTHER_TENANT)):
        activity = message(
            f"goal add Goal of {person.name} in {tenant[:4]}",
            service_url=teams.fake.service_url,
            person=person,
            personal=True,
            tenant=tenant,
        )
        activity["id"] = "1733580000123"  # the same millisecond everywhere
        sent.append(activity)
    for activity in [*sent, sent[0]]:  # the last one is a true replay
        status, _ = await teams.post(activity)
        assert status == 200
    await teams.settle()
    goals = sorted(g.text for g in teams.rows(Goal))
    assert len(goals) == 3, goals


async def test_teams_cards_show_typed_markdown_links_as_text(teams: TeamsRig) -> None:
    await teams.say("setup Math PLN", person=COACH)
    await teams.fake.wait_for(lambda c: "Math PLN" in c.text and c.conversation == CHANNEL)
    await teams.say("share https://example.org/plan [innocent.org](https://evil.example) plan")
    cards = await teams.fake.wait_for(
        lambda c: c.card is not None and "innocent.org" in json.dumps(c.card)
    )
    # The card and any message text (a notification summary is plain text, never rendered).
    wire = json.dumps([cards[-1].card, cards[-1].body.get("text")])
    assert "](https://evil.example)" not in wire
    assert "innocent.org" in wire and "https://evil.example" in wire
