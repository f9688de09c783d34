"""Hostile input is harmless: what arrives over HTTP is authenticated before it is read, a
signed request of the wrong shape gets 400 (never 500) and stores nothing, no control
character reaches the database, and the log never holds a request body.

The property-based part sends generated requests (correctly signed for Slack, anonymous Teams
with --allow-anonymous-teams) into one running app per module, over real HTTP: no 5xx ever,
and a refused request leaves every table's row count as it was. PLNBOT_FUZZ_EXAMPLES sets how
many examples each test draws (50 by default, 400 in all per database; 2,000 for a long
local run).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import io
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import SQLModel

from adapters.teams.setup import TeamsIdentity, attach_teams
from bot.config import Settings
from plnbot.runtime import BoundedRecords, Runtime, bound_log_lines, build_runtime, make_web_app
from storage.db import Database
from storage.models import Artifact, Goal, InboxEvent
from storage.text import without_controls
from tests.conftest import BACKENDS, POSTGRES_URL
from tests.serve_rig import ServeProcess, fresh_postgres_database
from tests.slack_fakes import (
    FakeSlackAPI,
    block_actions_payload,
    message_action_payload,
    sign,
    slash_command_body,
    view_submission_payload,
)
from tests.slack_rig import SECRET, SlackRig
from tests.steps import only, rows, setup_community, share
from tests.story import Story
from tests.teams_fakes import (
    ANA,
    APP_ID,
    COACH,
    TOMAS,
    FakeConnector,
    LocalCredentialsFactory,
    bot_installed_personal,
    card_click,
    installation,
    members_added,
    message,
    reaction,
)

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
    from bot.core.clock import SystemClock
    from bot.core.inbox import Intake
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


# -- Teams: the default serve has no anonymous Teams, whatever the address ---------------------
async def test_default_serve_on_loopback_refuses_a_forged_activity(tmp_path: Path) -> None:
    """A reverse proxy on the same host makes every request look local: the default `plnbot
    serve` (no MICROSOFT_APP_ID, no --allow-anonymous-teams) on 127.0.0.1 must not act on a
    forged activity, nor post to the serviceUrl it names."""
    listener = FakeConnector()
    await listener.start()
    database = tmp_path / "plnbot.db"
    serve = ServeProcess(
        name="default", database_url=f"sqlite:///{database}", api=None, workdir=tmp_path
    )
    try:
        async with aiohttp.ClientSession() as http:
            await serve.ready(http)
            forged = message("goal add Forged", service_url=listener.service_url, personal=True)
            async with http.post(
                f"http://127.0.0.1:{serve.port}/api/messages", json=forged
            ) as response:
                assert response.status == 404
                assert "not configured" in (await response.json())["error"]
            await asyncio.sleep(0.5)
        assert listener.calls == []
        engine = sa.create_engine(f"sqlite:///{database}")
        with engine.connect() as conn:
            for table in ("member", "workspace", "inbox", "inboundreceipt", "goal"):
                assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() == 0
        engine.dispose()
    finally:
        await serve.close()
        await listener.stop()
    log = serve.log.read_text()
    assert "WITHOUT authentication" not in log and "Teams" not in log


async def test_teams_with_an_app_id_reads_nothing_before_the_token(db: Database) -> None:
    """No token: 401 whatever the body. A valid token and a body that is no activity (one
    with no serviceUrl to answer at included): 400. Nothing stored either way."""
    fake = FakeConnector()
    await fake.start()
    identity = TeamsIdentity(
        app_id=APP_ID,
        app_password="unused",
        openid_metadata_url=fake.openid_url,
        credentials_factory=LocalCredentialsFactory(),
    )
    runtime = build_runtime(Settings(DATABASE_URL=db.url), clock=RealClock())  # type: ignore[call-arg]
    attach_teams(runtime, identity=identity)
    server = TestServer(make_web_app(runtime, scheduler=False), host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("/api/messages"))
    before = _counts(db)
    token = {"Authorization": "Bearer " + fake.sign_token()}
    bound = {"channelId": "msteams", "serviceUrl": fake.service_url}
    cases: list[tuple[bytes, dict[str, str], int]] = [
        (b"\xff\xfe not even text", {}, 401),
        (b"[" * 50_000, {}, 401),
        (json.dumps(message("help", service_url=fake.service_url)).encode(), {}, 401),
        (b"{not json", token, 400),  # a valid token, then the body is read: not JSON
        (json.dumps({"type": "message", "text": "no serviceUrl"}).encode(), token, 400),
        (json.dumps({**bound, "text": "no type"}).encode(), token, 400),
        (json.dumps({**bound, "type": "message", "entities": [None]}).encode(), token, 400),
        (json.dumps({**bound, "type": "message", "from": {"aadObjectId": "x" * 65}}).encode(),
         token, 400),
    ]  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:
            for raw, headers, expected in cases:
                async with http.post(
                    url, data=raw, headers={"Content-Type": "application/json", **headers}
                ) as response:
                    assert response.status == expected, raw[:80]
        assert _counts(db) == before
        assert fake.calls == []
    finally:
        await server.close()
        await fake.stop()
        runtime.db.dispose()


# -- property-based: generated requests into one running app ----------------------------------
FUZZ_EXAMPLES = int(os.environ.get("PLNBOT_FUZZ_EXAMPLES", "50"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis folder; a failure prints its reproduction blob
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
USERS = ["U_TEACHER1", "U_TEACHER2", "U_COACH", "U_ADMIN"]
ACTION_IDS = [
    "endorse", "endorse_note_open", "endorse_note", "reflect_private", "forget_confirm",
    "forget_cancel", "checkin_start", "checkin_share", "checkin_rate", "profile_open",
    "profile_save", "share_open", "share_submit", "share_read",
]  # fmt: skip
WORDS = [
    "help", "setup Math PLN", "goal add", "goal list", "goal done 1", "goal log 1 3",
    "share https://example.org/lesson", "checkin", "me", "export", "profile", "report",
    "digest preview", "coach add <@U_TEACHER2>", "cycle start <@U_TEACHER1> 1", "schedule",
    "pause 3", "resume", "cancel", "payload",
]  # fmt: skip
FIELDS = [
    "type", "user", "user_id", "channel", "channel_id", "team", "team_id", "id", "text", "ts",
    "thread_ts", "event", "event_id", "actions", "action_id", "value", "view", "state",
    "values", "private_metadata", "callback_id", "message", "files", "item", "reaction",
    "subtype", "bot_id", "channel_type", "tab", "selected_option", "authorizations",
    "enterprise", "container", "message_ts", "trigger_id", "response_url", "command", "name",
    "challenge", "hash", "block_id", "from", "conversation", "recipient", "serviceUrl",
    "channelId", "channelData", "tenant", "tenantId", "aadObjectId", "membersAdded",
    "reactionsAdded", "replyToId", "verb", "data", "pln", "action", "context", "uploadInfo",
    "entities", "mentioned", "conversationType", "attachments", "name",
]  # fmt: skip

TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "\x00", "1", "-1", "99999999999999999999", "D1", "im", "home"]),
    st.sampled_from(USERS + ACTION_IDS + WORDS),
    st.text(min_size=200, max_size=3000),
)
# Where replies go is left as the platform gave it: a reply to an unreachable URL is retried
# for a while, and the person's later replies wait behind it (they go out in order).
PROTECTED = {"response_url", "response_urls", "serviceUrl"}
KEY = st.one_of(
    st.sampled_from([name for name in FIELDS if name not in PROTECTED]),
    st.text(max_size=10).map(lambda key: f"{key}_" if key in PROTECTED else key),
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEY, inner, max_size=4),
    max_leaves=8,
)


def _places(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON value, depth first."""
    found: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in PROTECTED:
                continue
            found.append((value, key))
            found.extend(_places(inner))
    elif isinstance(value, list):
        for n, inner in enumerate(value):
            found.append((value, n))
            found.extend(_places(inner))
    return found


@st.composite
def mutated(draw: st.DrawFn, template: Any, leaf: st.SearchStrategy[Any] = JSON) -> Any:
    """`template` with a few fields replaced, removed or added, anywhere in it."""
    value = copy.deepcopy(template)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        places = _places(value)
        if not places:
            break
        container, key = draw(st.sampled_from(places))
        action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
        if action == "replace":
            container[key] = draw(leaf)
        elif action == "remove":
            del container[key]
        elif isinstance(container, dict):
            container[draw(KEY)] = draw(leaf)
        else:
            container.append(draw(leaf))
    return value


def recorded(name: str) -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "payloads" / "slack" / f"{name}.json").read_text())


@dataclass(repr=False)
class Fuzz:
    """One running app (Slack signed with the rig's secret, anonymous Teams with the flag),
    the fakes it talks to, and the row counts of every table while nothing is in flight."""

    url: str
    http: aiohttp.ClientSession
    runtime: Runtime
    db: Database
    slack_fake: FakeSlackAPI
    teams_fake: FakeConnector
    statuses: Counter[int] = field(default_factory=Counter)
    _counts: dict[str, int] | None = None

    def __repr__(self) -> str:
        return f"Fuzz({self.url})"

    async def send(self, path: str, raw: bytes, headers: dict[str, str]) -> int:
        if self._counts is None:  # something was accepted: let its work finish first
            await self.settle()
            self._counts = _counts(self.db)
        async with self.http.post(f"{self.url}{path}", data=raw, headers=headers) as response:
            await response.read()
            status = response.status
        self.statuses[status] += 1
        assert status < 500, f"{path} answered {status} to {raw[:300]!r}"
        if 400 <= status < 500:
            assert _counts(self.db) == self._counts, f"a refused request stored: {raw[:300]!r}"
        else:
            self._counts = None
        return status

    async def slack(self, body: str | bytes, content_type: str = "application/json") -> int:
        raw = body.encode() if isinstance(body, str) else body
        headers = {"Content-Type": content_type, **_sign_bytes(raw)}
        return await self.send("/slack/events", raw, headers)

    async def interact(self, payload: Any) -> int:
        return await self.slack(urlencode({"payload": json.dumps(payload)}), FORM)

    async def teams(self, activity: Any) -> int:
        raw = json.dumps(activity).encode()
        return await self.send("/api/messages", raw, {"Content-Type": "application/json"})

    async def settle(self) -> None:
        """Wait until what was accepted is worked (runtime.idle, polled more often: most
        requests are done in a few milliseconds); none of it may have failed."""
        deadline = time.monotonic() + 60
        quiet = 0
        while quiet < 2:  # twice in a row: a send that just finished has written its result
            await asyncio.sleep(0.003)
            quiet = quiet + 1 if await self.db.run(self.runtime._settled) else 0
            assert time.monotonic() < deadline, "accepted work still waiting after 60 s"
        assert self.failed_work() == []

    def failed_work(self) -> list[str]:
        """Stored requests whose work raised (hostile input that got past the edge)."""
        with self.db.engine.connect() as conn:
            found = conn.exec_driver_sql("SELECT kind, error FROM inbox WHERE status = 'failed'")
            return [f"{kind}: {error[:200]}" for kind, error in found]


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def fuzz(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
) -> AsyncIterator[Fuzz]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("fuzz") / "plnbot.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:  # a database of its own: the shared test database is truncated by every test
        assert POSTGRES_URL is not None
        workdir = tmp_path_factory.mktemp("fuzz")
        url = await fresh_postgres_database(POSTGRES_URL, "plnbot_fuzz", workdir=workdir)
    slack_fake = FakeSlackAPI(channel_members={"C_PLN": [*USERS, "UBOT"]})
    await slack_fake.start()
    teams_fake = FakeConnector(refusals_expected=True)  # what hostile text makes it send
    await teams_fake.start()
    settings = Settings(  # type: ignore[call-arg]
        DATABASE_URL=url,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_API_URL=slack_fake.base_url,
        PLNBOT_COACHES=f"U_COACH,{COACH.aad}",
    )
    runtime = build_runtime(settings, clock=RealClock(), allow_anonymous_teams=True)
    server = TestServer(make_web_app(runtime, scheduler=False), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        rig = Fuzz(
            url=str(server.make_url("")).rstrip("/"),
            http=http,
            runtime=runtime,
            db=runtime.db,
            slack_fake=slack_fake,
            teams_fake=teams_fake,
        )
        # A community, so shares, endorsements and prompts have somewhere to land.
        setup_slack = slash_command_body(
            "setup Math PLN", user_id="U_COACH", response_url=slack_fake.response_url("fuzz")
        )
        assert await rig.slack(setup_slack, FORM) == 200
        setup = message("setup Math PLN", service_url=teams_fake.service_url, person=COACH)
        assert await rig.teams(setup) == 200
        yield rig
        await rig.settle()
        print(f"\nfuzz statuses ({request.param}): {dict(sorted(rig.statuses.items()))}")
    await server.close()
    # Generated requests may repeat a trigger id in another channel (real Slack never does):
    # the fake rightly refuses the second views.open; that is the fuzz, not the bot.
    slack_fake.rejected = [
        r for r in slack_fake.rejected if not str(r).endswith("exchanged_trigger_id")
    ]
    await slack_fake.stop()
    await teams_fake.stop()
    runtime.db.dispose()


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _command_form(fuzz: Fuzz) -> dict[str, str]:
    body = slash_command_body("help", response_url=fuzz.slack_fake.response_url("fuzz"))
    return dict(parse_qsl(body))


@pytest.mark.asyncio(loop_scope="module")
@FUZZ
@given(data=st.data())
async def test_fuzz_slash_commands(fuzz: Fuzz, data: st.DataObject) -> None:
    form = _command_form(fuzz)
    form["text"] = data.draw(st.sampled_from(WORDS)) + " " + data.draw(TEXT)
    form["user_id"] = data.draw(st.sampled_from(USERS) | TEXT)
    form["trigger_id"] = data.draw(st.uuids()).hex
    form = data.draw(mutated(form, leaf=TEXT))
    await fuzz.slack(urlencode(form), FORM)


EVENTS = [
    "event_message_im",
    "event_message_thread_reply",
    "event_reaction_added",
    "event_reaction_removed",
    "event_member_joined_channel",
    "event_app_home_opened",
    "event_app_uninstalled",
    "event_tokens_revoked",
]
EVENT_TYPES = ["message", "reaction_added", "reaction_removed", "member_joined_channel",
               "app_home_opened", "app_mention", "user_change", "function_executed"]  # fmt: skip


@pytest.mark.asyncio(loop_scope="module")
@FUZZ
@given(data=st.data())
async def test_fuzz_events_api(fuzz: Fuzz, data: st.DataObject) -> None:
    envelope = recorded(data.draw(st.sampled_from(EVENTS)))
    envelope["team_id"] = "T0001"
    envelope["event_id"] = f"Ev{data.draw(st.uuids()).hex}"
    if data.draw(st.booleans()):  # an event of any shape
        random = data.draw(st.dictionaries(KEY, JSON, max_size=6))
        envelope["event"] = {"type": data.draw(st.sampled_from(EVENT_TYPES) | TEXT), **random}
    else:
        envelope["event"]["user"] = data.draw(st.sampled_from(USERS))
    await fuzz.slack(json.dumps(data.draw(mutated(envelope))))


@pytest.mark.asyncio(loop_scope="module")
@FUZZ
@given(data=st.data())
async def test_fuzz_block_actions(fuzz: Fuzz, data: st.DataObject) -> None:
    payload = block_actions_payload(
        action_id=data.draw(st.sampled_from(ACTION_IDS) | TEXT),
        value=data.draw(st.sampled_from(["1", "2", "0", ""]) | TEXT),
        user_id=data.draw(st.sampled_from(USERS)),
        channel_id=data.draw(st.sampled_from(["C_PLN", "D_ANA", "C_OTHER"])),
        message_ts=f"{data.draw(st.integers(1, 2**40))}.000100",
        response_url=fuzz.slack_fake.response_url("fuzz"),
    )
    await fuzz.interact(data.draw(mutated(payload)))


@pytest.mark.asyncio(loop_scope="module")
@FUZZ
@given(data=st.data())
async def test_fuzz_view_submissions(fuzz: Fuzz, data: st.DataObject) -> None:
    callback = data.draw(st.sampled_from(ACTION_IDS) | TEXT)
    values = {
        block: {block: {"type": "plain_text_input", "value": data.draw(TEXT)}}
        for block in data.draw(
            st.lists(st.sampled_from([*FIELDS, "url", "title", "note"]), max_size=4)
        )
    }
    metadata = data.draw(
        st.sampled_from(["", "{}", '{"channel": "C_PLN"}', '{"channel": "C_PLN", "value": "1"}'])
        | JSON.map(json.dumps)
        | TEXT
    )
    payload = view_submission_payload(
        callback_id=callback,
        user_id=data.draw(st.sampled_from(USERS)),
        values=values,
        private_metadata=metadata,
    )
    await fuzz.interact(data.draw(mutated(payload)))


@pytest.mark.asyncio(loop_scope="module")
@FUZZ
@given(data=st.data())
async def test_fuzz_shortcuts(fuzz: Fuzz, data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        payload = message_action_payload(
            callback_id=data.draw(st.just("share_evidence") | TEXT),
            user_id=data.draw(st.sampled_from(USERS)),
            channel_id="C_PLN",
            message={"ts": "1700000000.000100", "text": data.draw(TEXT), "user": "U_TEACHER2"},
        )
    else:
        payload = recorded("message_action")
        payload["type"] = "shortcut"
        payload["callback_id"] = data.draw(st.just("share_evidence") | TEXT)
    await fuzz.interact(data.draw(mutated(payload)))


@pytest.mark.asyncio(loop_scope="module")
@FUZZ
@given(data=st.data())
async def test_fuzz_url_verification_and_signed_garbage(fuzz: Fuzz, data: st.DataObject) -> None:
    choice = data.draw(st.integers(0, 2))
    if choice == 0:
        body = {"token": "t", "type": "url_verification", "challenge": data.draw(JSON)}
        await fuzz.slack(json.dumps(data.draw(mutated(body))))
    elif choice == 1:
        await fuzz.slack(json.dumps(data.draw(JSON)))
    else:
        content_type = data.draw(st.sampled_from(["application/json", FORM, "text/plain", ""]))
        await fuzz.slack(data.draw(st.binary(max_size=400)), content_type)


@pytest.mark.asyncio(loop_scope="module")
@FUZZ
@given(
    body=st.binary(max_size=400) | JSON.map(lambda v: json.dumps(v).encode()),
    headers=st.dictionaries(
        st.sampled_from(["X-Slack-Request-Timestamp", "X-Slack-Signature", "Content-Type"]),
        st.text(max_size=80).filter(lambda v: "\n" not in v and "\r" not in v),
    ),
)
async def test_fuzz_unsigned_garbage_gets_401(
    fuzz: Fuzz, body: bytes, headers: dict[str, str]
) -> None:
    headers.setdefault("X-Slack-Request-Timestamp", str(int(time.time())))
    if "X-Slack-Signature" not in headers:  # signed with another secret
        headers.update(_sign_bytes(body, "not-the-secret"))
        headers["X-Slack-Request-Timestamp"] = headers["X-Slack-Request-Timestamp"]
    try:
        status = await fuzz.send("/slack/events", body, headers)
    except ValueError:  # a header aiohttp itself won't send
        return
    assert status == 401


# Teams: anonymous with --allow-anonymous-teams, so every activity is read.
def _teams_activity(fuzz: Fuzz, data: st.DataObject, kind: str) -> dict[str, Any]:
    url = fuzz.teams_fake.service_url
    person = data.draw(st.sampled_from([ANA, TOMAS, COACH]))
    if kind == "message":
        text = data.draw(st.sampled_from(WORDS)) + " " + data.draw(TEXT)
        return message(text, service_url=url, person=person, personal=data.draw(st.booleans()))
    if kind == "invoke":
        name = data.draw(st.sampled_from(["adaptiveCard/action", "fileConsent/invoke"]) | TEXT)
        verb = data.draw(st.sampled_from(ACTION_IDS) | TEXT)
        activity = card_click(
            {"verb": verb, "data": {"pln": data.draw(JSON)}},
            service_url=url,
            person=person,
            reply_to=str(data.draw(st.integers(0, 2**40))),
        )
        activity["name"] = name
        if name == "fileConsent/invoke":
            activity["value"] = {
                "type": "fileUpload",
                "action": data.draw(st.sampled_from(["accept", "decline"]) | TEXT),
                "context": data.draw(JSON),
                "uploadInfo": {"uploadUrl": data.draw(TEXT), "name": data.draw(TEXT)},
            }
        return activity
    if kind == "conversationUpdate":
        if data.draw(st.booleans()):
            return bot_installed_personal(person, service_url=url)
        return members_added(person, service_url=url)
    if kind == "installationUpdate":
        action = data.draw(st.sampled_from(["add", "remove"]) | TEXT)
        return installation(action, service_url=url, person=person)
    return reaction(
        str(data.draw(st.integers(0, 2**40))),
        service_url=url,
        person=person,
        added=data.draw(st.booleans()),
        kind=data.draw(st.sampled_from(["like", "heart"]) | TEXT),
    )


@pytest.mark.asyncio(loop_scope="module")
@FUZZ
@given(
    data=st.data(),
    kind=st.sampled_from(
        ["message", "invoke", "conversationUpdate", "messageReaction", "installationUpdate"]
    ),
)
async def test_fuzz_teams_activities(fuzz: Fuzz, data: st.DataObject, kind: str) -> None:
    activity = data.draw(mutated(_teams_activity(fuzz, data, kind)))
    if data.draw(st.integers(0, 9)) == 0:
        activity = data.draw(JSON)  # not an activity at all
    await fuzz.teams(activity)


def test_every_log_line_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    """`plnbot serve`'s handlers cut any record to 500 characters a line, whatever logged it
    (an exception quoting a 2 MB field included)."""
    handler = logging.StreamHandler(io.StringIO())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        bound_log_lines()
        bound_log_lines()  # once is enough: not a second filter
        assert sum(isinstance(f, BoundedRecords) for f in handler.filters) == 1
        noisy = logging.getLogger("some.library")
        noisy.warning("request body: %s", "x" * 2_000_000)
        try:
            raise ValueError("invalid value: " + "y" * 2_000_000)
        except ValueError:
            noisy.exception("failed")
    finally:
        root.removeHandler(handler)
    written = handler.stream.getvalue()  # type: ignore[attr-defined]
    assert len(written) < 5_000
    assert max(len(line) for line in written.splitlines()) <= 530
    assert "(2000014 characters)" in written and "ValueError: invalid value: yyy" in written
