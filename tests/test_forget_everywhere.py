"""`forget` reaches everything: every text column of the database and the latest version of
every message the bot posted (README "Security"). Over real HTTP: signed Slack requests into
the running app, a local fake Slack Web API keeping each message as last posted or updated."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

from storage.models import Artifact, CheckIn, Member
from tests.slack_fakes import block_actions_payload, view_submission_payload
from tests.slack_rig import SlackRig, rows

DM = {"channel_id": "D_T2", "channel_name": "directmessage"}


async def _everyone_leaves_traces(slack: SlackRig) -> None:
    """A community where Tomas (U_TEACHER2) shares, checks in and shares the check-in, and a
    guest who never joined the community (U_GUEST) endorses Ana's share with a note; then
    the week's digest is posted."""
    await slack.command("setup Math PLN", user_id="U_ADMIN")
    await slack.settle()  # each person's requests run in order; different people's need not
    await slack.command("share https://example.org/exit Exit tickets that worked")
    await slack.command(
        "share https://example.org/tomas Tomas's seminar protocol", user_id="U_TEACHER2"
    )
    await slack.settle()
    ana_share = next(a for a in rows(slack.db, Artifact) if a.title.startswith("Exit"))
    note = view_submission_payload(
        callback_id="endorse_note",
        user_id="U_GUEST",
        user_name="gideon.guest",
        private_metadata=json.dumps({"channel": "C_PLN", "value": str(ana_share.id)}),
        values={"note": {"note": {"type": "plain_text_input", "value": "Gideon borrows this"}}},
    )
    assert (await slack.interact(note)).status == 200
    await slack.settle()
    await slack.command("goal add Socratic seminars weekly", user_id="U_TEACHER2", **DM)
    await slack.command("checkin", user_id="U_TEACHER2", **DM)
    await slack.settle()
    answer = {
        "type": "message",
        "channel": "D_T2",
        "channel_type": "im",
        "user": "U_TEACHER2",
        "text": "6 - Tomas tried fishbowl seating",
        "ts": "1700000200.000100",
        "event_ts": "1700000200.000100",
    }
    await slack.event(answer, event_id="EvTomasAnswer")
    await slack.settle()
    checkin = next(c for c in rows(slack.db, CheckIn) if c.status == "answered")
    share_checkin = block_actions_payload(
        action_id="checkin_share#0",
        value=str(checkin.id),
        user_id="U_TEACHER2",
        channel_id="D_T2",
        message_ts="1700000201.000100",
        response_url=slack.fake.response_url("share-checkin"),
    )
    assert (await slack.interact(share_checkin)).status == 200
    await slack.settle()
    await slack.command("digest post", user_id="U_ADMIN")
    await slack.settle()


def _database_text(slack: SlackRig) -> list[tuple[str, str, str]]:
    """(table, column, value) for every text value stored anywhere."""
    found = []
    with slack.db.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, sa.String | sa.Text)]
            for row in connection.execute(sa.select(*columns)) if columns else []:
                for column, value in zip(columns, row, strict=True):
                    if value:
                        found.append((table.name, column.name, str(value)))
    return found


PRIVATE = {"D_T2", "DU_TEACHER2", "DU_GUEST"}  # each one's own DM with the bot


def _posted_text(slack: SlackRig) -> list[str]:
    """The latest version of every message others can see in Slack (a person's own DM
    history with the bot is theirs alone, as Slack keeps it)."""
    return [
        json.dumps(message)
        for (channel, _), message in slack.fake.messages.items()
        if channel not in PRIVATE
    ]


def _traces(slack: SlackRig, needles: list[str]) -> list[Any]:
    stored = [hit for hit in _database_text(slack) if any(n in hit[2] for n in needles)]
    posted = [text[:300] for text in _posted_text(slack) if any(n in text for n in needles)]
    return stored + posted


async def test_forget_leaves_nothing_in_the_database_or_in_posted_messages(
    slack: SlackRig,
) -> None:
    await _everyone_leaves_traces(slack)
    guest = ["U_GUEST", "gideon.guest", "Gideon borrows this"]
    tomas = ["U_TEACHER2", "Tomas Okafor", "seminar protocol", "fishbowl", "Socratic"]
    # Before: both are everywhere (the digest names the guest and quotes the note).
    assert _traces(slack, guest) and _traces(slack, tomas)
    assert any("Gideon borrows this" in text for text in _posted_text(slack))

    await slack.command("forget confirm", user_id="U_GUEST")
    await slack.settle()
    await slack.command("forget confirm", user_id="U_TEACHER2", **DM)
    await slack.settle()

    assert _traces(slack, guest) == []
    assert _traces(slack, tomas) == []
    # Everyone else is still there, and Ana's card still shows her share.
    assert {m.user_id for m in rows(slack.db, Member)} >= {"U_TEACHER1", "U_ADMIN"}
    assert any("Exit tickets that worked" in text for text in _posted_text(slack))
    removed = [m for m in slack.fake.messages.values() if "removed at its author" in m["text"]]
    assert len(removed) == 2 and all(not m.get("blocks") for m in removed)
