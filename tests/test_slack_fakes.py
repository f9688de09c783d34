"""Self-checks for tests/slack_fakes.py against the real slack_sdk client."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.slack_fakes import (
    FakeSlackAPI,
    block_actions_payload,
    event_body,
    interactive_body,
    sign,
    slash_command_body,
    view_submission_payload,
)

PAYLOADS = Path(__file__).parent / "payloads" / "slack"
MEMBERS = [f"U{n:04d}" for n in range(1, 8)]


@pytest.mark.asyncio
async def test_async_web_client_against_fake() -> None:
    fake = FakeSlackAPI(
        users={"U0001": {"name": "ana.rivera", "real_name": "Ana Rivera", "tz": "Europe/Madrid"}},
        channel_members={"C_PLN": MEMBERS},
    )
    async with fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)

        first = await client.chat_postMessage(channel="C_PLN", text="hello", blocks=[])
        second = await client.chat_postMessage(channel="C_PLN", text="again", thread_ts=first["ts"])
        assert first["ok"] and first["channel"] == "C_PLN"
        assert float(second["ts"]) > float(first["ts"]) == 1700000000.0001
        assert second["message"]["thread_ts"] == first["ts"]

        user = (await client.users_info(user="U0001"))["user"]
        assert (user["id"], user["name"], user["real_name"]) == (
            "U0001",
            "ana.rivera",
            "Ana Rivera",
        )
        assert user["tz"] == "Europe/Madrid" and user["profile"]["display_name"] == ""
        assert user["is_admin"] is False and user["is_owner"] is False
        with pytest.raises(Exception) as err:
            await client.users_info(user="U_NOBODY")
        assert err.value.response["error"] == "user_not_found"

        members: list[str] = []
        pages = 0
        cursor = None
        while True:
            page = await client.conversations_members(channel="C_PLN", limit=3, cursor=cursor)
            members += page["members"]
            pages += 1
            cursor = page["response_metadata"]["next_cursor"]
            if not cursor:
                break
        assert members == MEMBERS and pages == 3

        # blocks sent as a JSON string in a form body come back parsed; token recorded
        await client.api_call(
            "chat.postMessage",
            data={"channel": "C_PLN", "text": "x", "blocks": json.dumps([{"type": "divider"}])},
        )
    posts = fake.calls_to("chat.postMessage")
    assert len(posts) == 3
    assert posts[-1]["blocks"] == [{"type": "divider"}]
    assert {p["_token"] for p in posts} == {"xoxb-test"}
    assert [m for m, _ in fake.calls].count("conversations.members") == 3


@pytest.mark.asyncio
async def test_rate_limited_call_is_retried_and_recorded_once() -> None:
    async with FakeSlackAPI() as fake:
        client = AsyncWebClient(
            token="xoxb-test",
            base_url=fake.base_url,
            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
        )
        fake.fail_next("chat.postMessage", status=429, retry_after=1)
        started = time.monotonic()
        resp = await client.chat_postMessage(channel="C_PLN", text="after the storm")
        assert resp["ok"]
        assert time.monotonic() - started >= 1.0  # honoured Retry-After
    assert len(fake.failed_calls) == 1
    assert [p["text"] for p in fake.calls_to("chat.postMessage")] == ["after the storm"]


def test_sign_accepted_by_signature_verifier() -> None:
    secret = "8f742231b10e8888abcd99yyyzzz85a5"
    verifier = SignatureVerifier(secret)
    bodies = [
        slash_command_body("schedule next session"),
        event_body({"type": "app_home_opened", "user": "U1", "tab": "home"}, event_id="Ev1"),
        interactive_body(
            block_actions_payload(
                action_id="rsvp", value="yes", user_id="U1", channel_id="C1", message_ts="1.2"
            )
        ),
    ]
    for body in bodies:
        headers = sign(body, secret)
        assert verifier.is_valid_request(body, headers)
        assert not verifier.is_valid_request(body + " ", headers)
    stale = sign(bodies[0], secret, timestamp=int(time.time()) - 600)
    assert not verifier.is_valid_request(bodies[0], stale)


def test_inbound_bodies_have_slack_shapes() -> None:
    form = {k: v[0] for k, v in parse_qs(slash_command_body("help me")).items()}
    assert form["command"] == "/pln" and form["is_enterprise_install"] == "false"
    assert set(form) == set(json.loads((PAYLOADS / "slash_command.json").read_text()))

    body = interactive_body(
        view_submission_payload(
            callback_id="new_goal",
            user_id="U1",
            values={"goal": {"goal_text": {"type": "plain_text_input", "value": "a/b"}}},
        )
    )
    raw = parse_qs(body)["payload"][0]
    assert "a\\/b" in raw  # Slack escapes forward slashes
    payload = json.loads(raw)
    assert payload["view"]["state"]["values"]["goal"]["goal_text"]["value"] == "a/b"
    assert payload["view"]["blocks"][0]["block_id"] == "goal"

    for path in PAYLOADS.glob("*.json"):
        data = json.loads(path.read_text())
        if path.name.startswith("event_"):
            assert data["type"] == "event_callback" and data["event"]["type"], path.name


@pytest.mark.asyncio
async def test_response_url_and_uploads() -> None:
    async with FakeSlackAPI() as fake:
        hook = AsyncWebhookClient(fake.response_url("abc"))
        await hook.send(text="only you can see this", response_type="ephemeral")
        assert fake.responses == [
            {"text": "only you can see this", "response_type": "ephemeral", "_token": "abc"}
        ]

        client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
        done = await client.files_upload_v2(
            channel="C_PLN", content="week,topic\n1,fractions\n", filename="plan.csv"
        )
        assert done["file"]["id"] in fake.uploads
        assert fake.uploads[done["file"]["id"]] == b"week,topic\n1,fractions\n"
        complete = fake.calls_to("files.completeUploadExternal")[0]
        assert complete["files"][0]["id"] == done["file"]["id"]

        dm = await client.conversations_open(users="U_TEACHER1")
        assert dm["channel"]["id"] == "DU_TEACHER1"


@pytest.mark.asyncio
async def test_recorded_payloads_route_through_bolt() -> None:
    from slack_bolt.async_app import AsyncApp
    from slack_bolt.request.async_request import AsyncBoltRequest

    secret = "s3cret"
    seen: list[str] = []
    async with FakeSlackAPI() as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
        app = AsyncApp(client=client, signing_secret=secret, process_before_response=True)

        @app.command("/pln")
        async def on_command(ack, respond, command):  # type: ignore[no-untyped-def]
            await ack()
            await respond(text=f"scheduled: {command['text']}")

        @app.event("message")
        async def on_message(event, say):  # type: ignore[no-untyped-def]
            seen.append(event.get("channel_type", ""))
            await say(text="thanks", thread_ts=event.get("thread_ts"))

        async def record(event):  # type: ignore[no-untyped-def]
            seen.append(event["type"])

        for kind in (
            "reaction_added",
            "reaction_removed",
            "member_joined_channel",
            "app_home_opened",
            "app_uninstalled",
            "tokens_revoked",
        ):
            app.event(kind)(record)

        @app.action("rsvp_yes")
        async def on_rsvp(ack, body):  # type: ignore[no-untyped-def]
            await ack()
            seen.append(body["actions"][0]["value"])

        @app.view("share_resource")
        async def on_submit(ack, view):  # type: ignore[no-untyped-def]
            await ack(response_action="errors", errors={"title": "too short"})

        @app.shortcut("save_to_library")
        async def on_shortcut(ack, shortcut, client):  # type: ignore[no-untyped-def]
            await ack()
            await client.views_open(
                trigger_id=shortcut["trigger_id"],
                view={
                    "type": "modal",
                    "title": {"type": "plain_text", "text": "Save"},
                    "blocks": [],
                },
            )

        async def post(body: str, content_type: str) -> tuple[int, str]:
            headers = {**sign(body, secret), "Content-Type": content_type}
            resp = await app.async_dispatch(AsyncBoltRequest(body=body, headers=headers))
            return resp.status, resp.body

        form = "application/x-www-form-urlencoded"
        slash = json.loads((PAYLOADS / "slash_command.json").read_text())
        assert await post(
            slash_command_body(slash["text"], response_url=fake.response_url("c")), form
        )
        for path in sorted(PAYLOADS.glob("event_*.json")):
            recorded = json.loads(path.read_text())
            body = event_body(recorded["event"], event_id=recorded["event_id"])
            assert (await post(body, "application/json"))[0] == 200, path.name
        for name in ("block_actions", "view_submission", "message_action"):
            payload = json.loads((PAYLOADS / f"{name}.json").read_text())
            status, body = await post(interactive_body(payload), form)
            assert status == 200, name
            if name == "view_submission":
                assert json.loads(body)["response_action"] == "errors"

    assert fake.responses[0]["text"] == "scheduled: schedule Thursday 4pm book study"
    assert len(fake.calls_to("chat.postMessage")) == 2
    assert fake.calls_to("chat.postMessage")[1]["thread_ts"] == "1718031950.118329"
    assert len(fake.calls_to("views.open")) == 1
    assert sorted(seen) == sorted(
        [
            "im",
            "channel",
            "reaction_added",
            "reaction_removed",
            "member_joined_channel",
            "app_home_opened",
            "app_uninstalled",
            "tokens_revoked",
            "session:42:yes",
        ]
    )
