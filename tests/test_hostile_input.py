"""Hostile input is harmless: what arrives over HTTP is authenticated before it is read, a
signed request of the wrong shape gets 400 (never 500) and stores nothing, no control
character reaches the database, and the log never holds a request body.

The property-based part sends generated requests (correctly signed for Slack, anonymous Teams
with --allow-anonymous-teams) into one running app per module, over real HTTP: no 5xx ever,
and a refused request leaves every table's row count as it was. PLNBOT_FUZZ_EXAMPLES sets how
many examples each kind gets (a few dozen by default; 2,000 for a long local run).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from storage.db import Database
from storage.models import Artifact, Goal, InboxEvent
from storage.text import without_controls
from tests.slack_fakes import sign, slash_command_body
from tests.slack_rig import SECRET, SlackRig
from tests.steps import only, rows, setup_community, share
from tests.story import Story

CONTROLS = "".join(chr(c) for c in (*range(0x00, 0x20), 0x7F))
FORM = "application/x-www-form-urlencoded"


# -- no control character reaches the database ----------------------------------------------
def test_control_characters_are_dropped_tab_newline_and_return_kept() -> None:
    assert without_controls(f"a{CONTROLS}b") == "a\t\n\rb"
    assert without_controls("plain é 🎯 \u200b") == "plain é 🎯 \u200b"  # not C0: kept


async def test_a_nul_in_a_title_or_a_goal_is_stored_without_it(story: Story, db: Database) -> None:
    """PostgreSQL refuses NUL in text: the whole share used to fail there."""
    await setup_community(story)
    card = await share(story, "U_ANA", "https://example.org/nul", "Exit\x00 tickets\x07 work")
    assert card.message.card is not None
    assert [a.title for a in rows(db, Artifact)] == ["Exit tickets work"]
    only(await story.command("U_ANA", "goal add Read\x00 more\x1b[31m\tdaily"))
    assert [g.text for g in rows(db, Goal)] == ["Read more[31m\tdaily"]


def test_every_statement_is_guarded_orm_core_and_driver_sql(db: Database) -> None:
    now = datetime.now(UTC)
    with db.session() as session:
        session.add(
            InboxEvent(
                key="k\x00orm", platform="slack", lane="l", kind="command", payload="{}",
                received_at=now,
            )
        )  # fmt: skip
    table = InboxEvent.__table__  # type: ignore[attr-defined]
    with db.engine.begin() as conn:
        conn.execute(
            table.insert(),
            [
                {"key": f"k\x00core{n}", "platform": "slack", "lane": "l\x01", "kind": "c",
                 "payload": "{}", "status": "done", "attempts": 0, "received_at": now,
                 "error": ""}
                for n in range(2)
            ],
        )  # fmt: skip
        found = conn.exec_driver_sql(
            "SELECT count(*) FROM inbox WHERE key = " + ("?" if db.is_sqlite else "%(k)s"),
            ("kcore1",) if db.is_sqlite else {"k": "kcore1\x00"},
        ).scalar()
    assert found == 1
    assert sorted(e.key for e in rows(db, InboxEvent)) == ["kcore0", "kcore1", "korm"]
    assert {e.lane for e in rows(db, InboxEvent)} == {"l"}


async def test_escaped_nul_in_a_stored_payload_survives(db: Database) -> None:
    """The inbox keeps a request as JSON text: `\\u0000` is six plain characters, fine in a
    TEXT column on PostgreSQL (a JSONB one would refuse it)."""
    from bot.clock import SystemClock
    from bot.inbox import Intake
    from storage.inbox import NewEvent

    payload = json.dumps({"text": "Zero\x00 day\x1f"})
    assert "\\u0000" in payload
    intake = Intake(db, SystemClock(), limit=10)
    await intake.put(NewEvent(key="k", platform="slack", lane="l", kind="command", payload=payload))
    stored = only_row(db)
    assert stored.payload == payload
    assert json.loads(stored.payload)["text"] == "Zero\x00 day\x1f"


def only_row(db: Database) -> InboxEvent:
    found = rows(db, InboxEvent)
    assert len(found) == 1
    return found[0]


async def test_a_nul_over_http_is_stored_without_it(slack: SlackRig) -> None:
    await slack.command("setup Math PLN", user_id="U_ADMIN")
    await slack.settle()
    response = await slack.command("share https://example.org/zero Zero\x00 day")
    assert response.status == 200
    await slack.settle()
    assert [a.title for a in rows(slack.db, Artifact)] == ["Zero day"]


# -- Slack: the signature first, then the shape ------------------------------------------------
def _counts(db: Database) -> dict[str, int]:
    from sqlmodel import SQLModel

    tables = SQLModel.metadata.sorted_tables
    query = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{t.name}")' for t in tables)
    with db.engine.connect() as conn:
        values = conn.execute(sa.text(query)).one()
    return {t.name: int(v) for t, v in zip(tables, values, strict=True)}


MALFORMED = {
    "a JSON array": ("[1, 2, 3]", "application/json"),
    "a JSON string": ('"event_callback"', "application/json"),
    "JSON that is cut short": ('{"type": "event_callback", "event": {', "application/json"),
    "nested too deeply": ("[" * 100_000 + "]" * 100_000, "application/json"),
    "an object with no type": ('{"event": {"type": "message"}}', "application/json"),
    "an event that is a string": ('{"type": "event_callback", "event": "x"}', "application/json"),
    "a user that is a number": (
        '{"type": "block_actions", "user": 7, "actions": [{"action_id": "a"}]}',
        "application/json",
    ),
    "no actions": ('{"type": "block_actions", "user": {"id": "U1"}, "actions": []}', "application/json"),
    "bad percent-encoding": ("command=%2Fpln&text=%ff%fe", FORM),
    "a form that is no form": ("hello there", FORM),
    "payload that is not JSON": ("payload=%7Bnot-json", FORM),
    "payload that is a list": ("payload=%5B%5D", FORM),
    "a slash command with no user": ("command=%2Fpln&channel_id=C1&text=help", FORM),
    "an id too long for its column": (
        slash_command_body("help", team_id="T" + "9" * 100), FORM,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_signed_but_malformed_requests_get_400_and_store_nothing(
    slack: SlackRig, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    body, content_type = MALFORMED[case]
    before = _counts(slack.db)
    caplog.set_level(logging.DEBUG)
    response = await slack.post(body, content_type=content_type)
    assert response.status == 400, case
    assert response.content_type == "application/json"
    await slack.settle()
    assert _counts(slack.db) == before
    refused = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(refused) == 1, [r.getMessage() for r in refused]
    assert f"({len(body.encode())} bytes)" in refused[0].getMessage()
    assert all(len(r.getMessage()) < 600 for r in caplog.records)


async def test_a_signed_non_utf8_body_gets_400(slack: SlackRig) -> None:
    raw = b"text=caf\xe9\xff&command=%2Fpln"
    headers = {"Content-Type": FORM, **_sign_bytes(raw)}
    async with slack.http.post(f"{slack.url}/slack/events", data=raw, headers=headers) as r:
        assert r.status == 400


def _sign_bytes(raw: bytes, secret: str = SECRET) -> dict[str, str]:
    import hashlib
    import hmac
    import time

    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


UNSIGNED = {
    "no signature": {},
    "a timestamp that is no number": {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=0"},
    "a signature that is not ASCII": {"X-Slack-Request-Timestamp": "1", "X-Slack-Signature": "v0=é"},
    "the wrong secret": None,
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(UNSIGNED))
async def test_unsigned_requests_get_401_and_nothing_is_read(
    slack: SlackRig, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    before = _counts(slack.db)
    for body in ["[1]", "{", "payload=%7Bx", "\xff", slash_command_body("goal add Sneaky")]:
        raw = body.encode()
        headers = UNSIGNED[case]
        if headers is None:
            headers = sign(body, "not-the-secret")
        async with slack.http.post(
            f"{slack.url}/slack/events",
            data=raw,
            headers={"Content-Type": FORM, **headers},
        ) as response:
            assert response.status == 401, (case, body)
    await slack.settle()
    assert _counts(slack.db) == before
    assert slack.fake.calls == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_big_unsigned_bodies_leave_the_log_small(
    slack: SlackRig, caplog: pytest.LogCaptureFixture
) -> None:
    """Bolt used to log every refused body at INFO: ten 1.9 MB bodies grew the log 19.5 MB."""
    caplog.set_level(logging.DEBUG)
    body = slash_command_body("x" * 1_900_000)
    for _ in range(10):
        response = await slack.post(body, content_type=FORM, secret="wrong")
        assert response.status == 401
    assert sum(len(r.getMessage()) for r in caplog.records) < 5_000


async def test_a_slash_command_that_mentions_payload_is_still_a_command(slack: SlackRig) -> None:
    """Bolt reads any form body containing the word "payload" as interactivity (and so lost
    the command); the body is read here, as Slack meant it."""
    response = await slack.command("goal add Read about payload design")
    assert response.status == 200
    await slack.settle()
    assert [g.text for g in rows(slack.db, Goal)] == ["Read about payload design"]
