"""Test doubles for Microsoft Teams, over real HTTP on 127.0.0.1.

``FakeConnector`` answers the Bot Framework connector REST calls PLN Bot makes, the way the
Teams service does, and records them:

* ``POST /v3/conversations/{id}/activities`` and ``.../activities/{replyToId}``: a message,
  answered ``200 {"id": ...}``;
* ``PUT /v3/conversations/{id}/activities/{activityId}``: an update;
* ``POST /v3/conversations``: a new 1:1 chat, ``201 {"id": "a:..."}``;
* ``GET /v3/conversations/{id}/pagedmembers``: a team's roster;
* ``PUT /upload/{name}``: the OneDrive upload of a consented file;
* ``/openid/...``: an OpenID configuration and signing keys, so a bot with an app id can
  validate tokens signed by ``sign_token`` without reaching Microsoft.

Errors are Bot Framework shaped (``{"error": {"code", "message"}}``); ``fail_next`` makes
the next matching calls answer 429 / 412 / 502 / 503 (with ``Retry-After`` if asked).

It is as strict as Teams about what a bot sends (the rules are in tests/adaptive_cards.py): a
message or update that breaks one is refused ``400 {"error": {"code": "BadArgument"}}``, one
over Teams' size limit ``413 {"error": {"code": "MessageSizeTooBig"}}``, an update of a message
the bot never posted there ``404 NotFound``, and a 1:1 chat with someone from another tenant
(``home_tenants``) ``403 Forbidden``. Every refusal is kept in ``refused``; ``stop()`` fails
the test that caused one unless the test said it expects them (``refusals_expected``).

The activity builders start from the payloads in ``tests/payloads/teams/`` (shaped after
Microsoft's documentation) and change only ids, text and where they come from.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jwt
from aiohttp import web
from botframework.connector.auth import AppCredentials, ServiceClientCredentialsFactory
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.adaptive_cards import SIZE_LIMIT, activity_problems, activity_size

PAYLOADS = Path(__file__).parent / "payloads" / "teams"
TENANT = "2f6c1e8a-5b4d-4c3e-9a1f-0e9d8c7b6a51"
BOT_ID = "28:5e0b6c1a-7d2e-4f3a-9b8c-0d1e2f3a4b5c"
APP_ID = "5e0b6c1a-7d2e-4f3a-9b8c-0d1e2f3a4b5c"
TEAM = "19:c0ffee00c0ffee00c0ffee00c0ffee00@thread.tacv2"
CHANNEL = "19:9a1b2c3d4e5f40718293a4b5c6d7e8f9@thread.tacv2"
OUTBOUND_TOKEN = "outbound-token-for-tests"


@dataclass(frozen=True)
class Person:
    teams_id: str
    aad: str
    name: str

    def account(self) -> dict[str, Any]:
        return {"id": self.teams_id, "name": self.name, "aadObjectId": self.aad}


ANA = Person(
    "29:1aT3ach3r0n3-Xy7QpL2mN8vR4sT6uW9zB1cD3eF5gH7jK9",
    "7d1f9e4a-2c3b-4d5e-8f6a-1b2c3d4e5f60",
    "Ana Rivera",
)
TOMAS = Person(
    "29:1Tomas0k4f0r-Pq2Rs4Tu6Vw8Xy0Za2Bc4De6Fg8Hi0Jk2",
    "0b9c8d7e-6f5a-4b3c-2d1e-0f9a8b7c6d5e",
    "Tomas Okafor",
)
PRIYA = Person(
    "29:1Pr1ya-Nat4raj4n-Hu8Ji0Ko2Lp4Mq6Nr8Os0Pt2Qu4Rv6",
    "c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e7f",
    "Priya Natarajan",
)
COACH = Person(
    "29:1C0ach-Lee-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2",
    "11111111-2222-4333-8444-555555555555",
    "Coach Lee",
)


@dataclass
class Call:
    method: str
    path: str
    conversation: str | None
    body: Any
    headers: dict[str, str]
    reply_to: str | None = None
    activity_id: str | None = None
    answered: str | None = None  # the message id the connector gave back

    @property
    def card(self) -> dict[str, Any] | None:
        attachments = (self.body or {}).get("attachments") or []
        for attachment in attachments:
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                return attachment["content"]  # type: ignore[no-any-return]
        return None

    @property
    def text(self) -> str:
        body = self.body or {}
        return str(body.get("text") or body.get("summary") or "")

    def actions(self) -> list[dict[str, Any]]:
        return list((self.card or {}).get("actions") or [])

    def action(self, verb: str) -> dict[str, Any]:
        return next(a for a in self.actions() if a.get("verb") == verb)


@dataclass
class _Failure:
    method: str
    path_part: str
    status: int
    retry_after: float | None


@dataclass
class FakeConnector:
    """A local Bot Framework connector + OpenID endpoint; see the module docstring."""

    roster: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    refuse_conversations_for: set[str] = field(default_factory=set)
    home_tenants: dict[str, str] = field(default_factory=dict)  # Teams id -> another tenant
    calls: list[Call] = field(default_factory=list)
    refused: list[tuple[Call, int, str]] = field(default_factory=list)  # (call, status, why)
    refusals_expected: bool = False
    posted: dict[str, str] = field(default_factory=dict)  # message id -> its conversation
    uploads: dict[str, bytes] = field(default_factory=dict)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    kid: str = "test-key-1"
    openid_fetches: int = 0
    _failures: list[_Failure] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1764000100000))
    _runner: web.AppRunner | None = None
    _changed: asyncio.Event | None = None
    base_url: str = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        app.router.add_post("/v3/conversations/{conversation}/activities/{reply}", self._send)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._update)
        app.router.add_get("/v3/conversations/{conversation}/pagedmembers", self._members)
        app.router.add_put("/upload/{name}", self._upload)
        app.router.add_get("/openid/.well-known/openidconfiguration", self._openid)
        app.router.add_get("/openid/keys", self._keys)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        self._changed = asyncio.Event()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.refused and not self.refusals_expected:
            raise AssertionError(
                "Teams would have refused what the bot sent:\n"
                + "\n".join(
                    f"{c.method} {c.path}: {status} {why}" for c, status, why in self.refused
                )
            )

    @property
    def service_url(self) -> str:
        return self.base_url + "/"

    @property
    def openid_url(self) -> str:
        return self.base_url + "/openid/.well-known/openidconfiguration"

    # -- control -----------------------------------------------------------------------------
    def fail_next(
        self,
        method: str,
        path_part: str,
        *,
        status: int,
        times: int = 1,
        retry_after: float | None = None,
    ) -> None:
        for _ in range(times):
            self._failures.append(_Failure(method, path_part, status, retry_after))

    def _failure(self, request: web.Request) -> web.Response | None:
        for failure in self._failures:
            if failure.method == request.method and failure.path_part in unquote(request.path):
                self._failures.remove(failure)
                headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
                return web.json_response(
                    {
                        "error": {
                            "code": "Throttled" if failure.status == 429 else "ServiceError",
                            "message": "try again",
                        }
                    },
                    status=failure.status,
                    headers=headers,
                )
        return None

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        assert self._changed is not None
        self._changed.set()

    def sent(self) -> list[Call]:
        return [c for c in self.calls if c.method == "POST" and c.conversation is not None]

    def updates(self) -> list[Call]:
        return [c for c in self.calls if c.method == "PUT" and c.activity_id is not None]

    def created(self) -> list[Call]:
        return [c for c in self.calls if c.method == "POST" and c.path == "/v3/conversations"]

    def sent_to(self, conversation: str) -> list[Call]:
        return [c for c in self.sent() if c.conversation == conversation]

    async def wait_for(self, predicate: Any, *, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Calls matching `predicate` once there are at least `count` of them."""
        assert self._changed is not None
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.calls if predicate(c)]
            if len(found) >= count:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"expected {count} matching connector calls, saw {len(found)}: "
                    + json.dumps([(c.method, c.path, c.text[:80]) for c in self.calls], indent=1)
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))

    # -- handlers ----------------------------------------------------------------------------
    def _refuse(self, call: Call, status: int, code: str, why: str) -> web.Response:
        self.refused.append((call, status, why))
        assert self._changed is not None
        self._changed.set()
        return web.json_response({"error": {"code": code, "message": why}}, status=status)

    def _judge(self, call: Call) -> web.Response | None:
        """Teams' answer to a message it won't post (None when it takes it)."""
        size = activity_size(call.body)
        if size > SIZE_LIMIT:
            return self._refuse(
                call,
                413,
                "MessageSizeTooBig",
                f"Message size {size} bytes (UTF-16) is over the limit of {SIZE_LIMIT}",
            )
        personal = (call.conversation or "").startswith("a:")
        problems = activity_problems(call.body, personal=personal)
        if problems:
            return self._refuse(call, 400, "BadArgument", "; ".join(problems[:5]))
        return None

    async def _send(self, request: web.Request) -> web.Response:
        failed = self._failure(request)
        body = await request.json()
        if failed is not None:
            return failed
        conversation = request.match_info["conversation"]
        call = Call(
            "POST",
            request.path,
            conversation,
            body,
            dict(request.headers),
            reply_to=request.match_info.get("reply"),
        )
        refused = self._judge(call)
        if refused is not None:
            return refused
        call.answered = answered = str(next(self._ids))
        self.posted[answered] = conversation.split(";")[0]
        self._record(call)
        return web.json_response({"id": answered})

    async def _update(self, request: web.Request) -> web.Response:
        failed = self._failure(request)
        body = await request.json()
        if failed is not None:
            return failed
        activity = request.match_info["activity"]
        conversation = request.match_info["conversation"]
        call = Call(
            "PUT", request.path, conversation, body, dict(request.headers), activity_id=activity
        )
        if self.posted.get(activity) != conversation.split(";")[0]:
            return self._refuse(
                call, 404, "NotFound", f"Activity {activity} not found in {conversation}"
            )
        refused = self._judge(call)
        if refused is not None:
            return refused
        self._record(call)
        return web.json_response({"id": activity})

    async def _create(self, request: web.Request) -> web.Response:
        failed = self._failure(request)
        body = await request.json()
        if failed is not None:
            return failed
        members = [m.get("id") for m in body.get("members") or []]
        call = Call("POST", request.path, None, body, dict(request.headers))
        self._record(call)
        tenant = body.get("tenantId") or ((body.get("channelData") or {}).get("tenant") or {}).get(
            "id"
        )
        foreign = [m for m in members if m in self.home_tenants and self.home_tenants[m] != tenant]
        if foreign:  # Teams' answer, which the bot must cope with: not a bad payload
            return web.json_response(
                {
                    "error": {
                        "code": "Forbidden",
                        "message": "A bot can't start a 1:1 chat with a user of another tenant.",
                    }
                },
                status=403,
            )
        if any(m in self.refuse_conversations_for for m in members):
            return web.json_response(
                {
                    "error": {
                        "code": "Forbidden",
                        "message": "The bot is not part of the conversation roster.",
                    }
                },
                status=403,
            )
        if not members or members == [body.get("bot", {}).get("id")]:
            return web.json_response(
                {"error": {"code": "BadArgument", "message": "Bots cannot IM other bots"}},
                status=400,
            )
        new_id = "a:1" + base64.urlsafe_b64encode(members[0].encode()).decode().rstrip("=")
        return web.json_response({"id": new_id}, status=201)

    async def _members(self, request: web.Request) -> web.Response:
        failed = self._failure(request)
        if failed is not None:
            return failed
        conversation = request.match_info["conversation"]
        self._record(Call("GET", request.path, conversation, None, dict(request.headers)))
        members = self.roster.get(conversation)
        if members is None:
            return web.json_response(
                {
                    "error": {
                        "code": "NotFound",
                        "message": f"Conversation {conversation} not found",
                    }
                },
                status=404,
            )
        return web.json_response({"members": members})

    async def _upload(self, request: web.Request) -> web.Response:
        self.uploads[request.match_info["name"]] = await request.read()
        self._record(Call("PUT", request.path, None, None, dict(request.headers)))
        return web.json_response({"id": "file-1"}, status=201)

    async def _openid(self, request: web.Request) -> web.Response:
        self.openid_fetches += 1
        return web.json_response(
            {
                "issuer": "https://api.botframework.com",
                "jwks_uri": self.base_url + "/openid/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _keys(self, request: web.Request) -> web.Response:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        public.update(kid=self.kid, use="sig", endorsements=["msteams"])
        return web.json_response({"keys": [public]})

    # -- tokens ------------------------------------------------------------------------------
    def sign_token(
        self,
        *,
        audience: str = APP_ID,
        service_url: str | None = None,
        issuer: str = "https://api.botframework.com",
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        expires_in: int = 3600,
    ) -> str:
        now = int(time.time())
        claims = {
            "serviceurl": service_url or self.service_url,
            "nbf": now - 10,
            "exp": now + expires_in,
            "iss": issuer,
            "aud": audience,
        }
        return jwt.encode(
            claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid}
        )


class StaticCredentials(AppCredentials):  # type: ignore[misc]
    """The bot's own outbound token, without Microsoft Entra ID."""

    def get_access_token(self, force_refresh: bool = False) -> str:
        return OUTBOUND_TOKEN


class LocalCredentialsFactory(ServiceClientCredentialsFactory):  # type: ignore[misc]
    """The SDK's credentials-factory interface, for one app id, with a static token."""

    def __init__(self, app_id: str = APP_ID) -> None:
        self.app_id = app_id

    async def is_valid_app_id(self, app_id: str) -> bool:
        return app_id == self.app_id

    async def is_authentication_disabled(self) -> bool:
        return False

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> AppCredentials:
        return StaticCredentials(app_id=app_id, oauth_scope=oauth_scope)


# -- activities ---------------------------------------------------------------------------
_activity_ids = itertools.count(1764000200000)


def payload(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((PAYLOADS / f"{name}.json").read_text()))


def _where(
    activity: dict[str, Any],
    *,
    service_url: str,
    channel: str | None,
    personal: str | None,
    thread: str | None,
) -> dict[str, Any]:
    activity["serviceUrl"] = service_url
    if personal is not None:
        activity["conversation"] = {
            "conversationType": "personal",
            "tenantId": TENANT,
            "id": personal,
        }
        activity["channelData"] = {"tenant": {"id": TENANT}}
    elif channel is not None:
        root = thread or activity["id"]
        activity["conversation"] = {
            "isGroup": True,
            "conversationType": "channel",
            "tenantId": TENANT,
            "id": f"{channel};messageid={root}",
        }
        activity["channelData"] = {
            "teamsChannelId": channel,
            "teamsTeamId": TEAM,
            "channel": {"id": channel},
            "team": {"id": TEAM},
            "tenant": {"id": TENANT},
        }
    return activity


def personal_chat(person: Person) -> str:
    return "a:1" + base64.urlsafe_b64encode(person.teams_id.encode()).decode().rstrip("=")


def message(
    text: str,
    *,
    service_url: str,
    person: Person = ANA,
    channel: str | None = CHANNEL,
    personal: bool = False,
    mention_bot: bool = True,
    thread: str | None = None,
    mentions: list[Person] | None = None,
    tenant: str = TENANT,
) -> dict[str, Any]:
    """A message from `person`: in a channel (mentioning the bot) or in their 1:1 chat."""
    activity = payload("message_channel_mention")
    activity["id"] = str(next(_activity_ids))
    activity["from"] = person.account()
    entities = [e for e in activity["entities"] if e["type"] == "clientInfo"]
    words = text
    if mention_bot and not personal:
        words = f"<at>PLN Bot</at> {text}"
        entities.append(
            {
                "mentioned": {"id": BOT_ID, "name": "PLN Bot"},
                "text": "<at>PLN Bot</at>",
                "type": "mention",
            }
        )
    for other in mentions or []:
        entities.append(
            {
                "mentioned": {"id": other.teams_id, "name": other.name},
                "text": f"<at>{other.name}</at>",
                "type": "mention",
            }
        )
    activity["text"] = words
    activity["entities"] = entities
    _where(
        activity,
        service_url=service_url,
        channel=None if personal else channel,
        personal=personal_chat(person) if personal else None,
        thread=thread,
    )
    if tenant != TENANT:
        activity["conversation"]["tenantId"] = tenant
        activity["channelData"]["tenant"] = {"id": tenant}
    return activity


def card_click(
    action: dict[str, Any],
    *,
    service_url: str,
    person: Person,
    reply_to: str,
    channel: str | None = CHANNEL,
    personal: bool = False,
    inputs: dict[str, Any] | None = None,
    submit: bool = False,
) -> dict[str, Any]:
    """Pressing a card action: Action.Execute (an invoke) or its Action.Submit fallback."""
    data = dict((action.get("fallback") or action)["data"] if submit else action["data"])
    data.update(inputs or {})
    if submit:
        activity = payload("message_card_submit")
        activity["value"] = data
    else:
        activity = payload("invoke_adaptive_card_action")
        activity["value"] = {
            "action": {
                "type": "Action.Execute",
                "title": action.get("title"),
                "verb": action.get("verb"),
                "data": data,
            },
            "trigger": "manual",
        }
    activity["id"] = f"f:{uuid.uuid4()}" if not submit else str(next(_activity_ids))
    activity["from"] = person.account()
    activity["replyToId"] = reply_to
    _where(
        activity,
        service_url=service_url,
        channel=None if personal else channel,
        personal=personal_chat(person) if personal else None,
        thread=reply_to,
    )
    return activity


def members_added(*people: Person, service_url: str, team: str = TEAM) -> dict[str, Any]:
    activity = payload("conversation_update_member_added")
    activity["id"] = f"f:{uuid.uuid4()}"
    activity["serviceUrl"] = service_url
    activity["membersAdded"] = [{"id": p.teams_id, "aadObjectId": p.aad} for p in people]
    activity["conversation"]["id"] = team
    activity["channelData"]["team"]["id"] = team
    return activity


def bot_installed_personal(person: Person, *, service_url: str) -> dict[str, Any]:
    activity = payload("conversation_update_bot_added_personal")
    activity["id"] = f"f:{uuid.uuid4()}"
    activity["serviceUrl"] = service_url
    activity["from"] = {"id": person.teams_id, "aadObjectId": person.aad}
    activity["membersAdded"] = [{"id": BOT_ID}, {"id": person.teams_id, "aadObjectId": person.aad}]
    activity["conversation"]["id"] = personal_chat(person)
    return activity


def installation(action: str, *, service_url: str, person: Person = PRIYA) -> dict[str, Any]:
    activity = payload("installation_update_add_team")
    activity["id"] = f"f:{uuid.uuid4()}"
    activity["serviceUrl"] = service_url
    activity["from"] = {"id": person.teams_id, "aadObjectId": person.aad}
    activity["action"] = action
    return activity


def reaction(
    reply_to: str, *, service_url: str, person: Person, added: bool = True, kind: str = "like"
) -> dict[str, Any]:
    activity = payload("message_reaction_like")
    activity["id"] = f"f:{uuid.uuid4()}"
    activity["serviceUrl"] = service_url
    activity["from"] = {"id": person.teams_id, "aadObjectId": person.aad}
    activity["replyToId"] = reply_to
    activity.pop("reactionsAdded", None)
    activity["reactionsAdded" if added else "reactionsRemoved"] = [{"type": kind}]
    activity["conversation"]["id"] = f"{CHANNEL};messageid={reply_to}"
    return activity


def roster_entry(person: Person) -> dict[str, Any]:
    given, _, surname = person.name.partition(" ")
    return {
        "id": person.teams_id,
        "name": person.name,
        "aadObjectId": person.aad,
        "givenName": given,
        "surname": surname,
        "email": f"{given.lower()}@lincoln.example.org",
        "userPrincipalName": f"{given.lower()}@lincoln.example.org",
        "tenantId": TENANT,
        "userRole": "user",
    }
