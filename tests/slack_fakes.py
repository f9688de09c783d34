"""Test doubles for the Slack platform.

``FakeSlackAPI`` is a small aiohttp server on 127.0.0.1 that answers the Slack Web API
methods PLN Bot uses the way Slack does (response shapes, error codes, pagination,
rate limiting) and records every call.  Point ``slack_sdk``/``slack_bolt`` clients at
``fake.base_url``.

The module-level helpers build inbound HTTP bodies exactly as Slack sends them to an
app: signed slash-command forms, Events API envelopes and interactivity payloads.
Shapes follow real recorded payloads (see ``tests/payloads/slack/``).

Things that real Slack does and these helpers reproduce on purpose:

* JSON bodies are compact and escape ``/`` as ``\\/`` and non-ASCII as ``\\uXXXX``
  (Slack's encoder does), so never re-serialise a body before checking its signature.
* Slash commands are ``application/x-www-form-urlencoded``; every value is a string,
  including ``is_enterprise_install=false``.
* Interactivity requests are a form with a single ``payload`` field holding JSON.

The fake is as strict as Slack about what the bot sends (the rules: tests/block_kit.py):
blocks and views Slack would refuse are refused with the error Slack gives
(``invalid_blocks`` with ``errors`` for messages, ``invalid_arguments`` with
``response_metadata.messages`` for views, ``msg_too_long``, ``no_text``,
``invalid_trigger_id``/``exchanged_trigger_id``, ``message_not_found`` for an update of a
message that was never posted), and a response_url answers 400 ``invalid_blocks`` as Slack's
does. Every refusal is kept in ``rejected``; ``stop()`` fails when any is left, so a payload
that real Slack would refuse fails the test that sent it even when the bot shrugged the error
off. A test that provokes refusals on purpose takes them with ``take_rejections()``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import re
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from tests import block_kit

__all__ = [
    "DEFAULT_USERS",
    "VERIFICATION_TOKEN",
    "FakeSlackAPI",
    "block_actions_payload",
    "event_body",
    "interactive_body",
    "message_action_payload",
    "sign",
    "slack_json",
    "slash_command_body",
    "url_verification_body",
    "view_submission_payload",
]

# The deprecated "verification token" Slack still puts in every payload.
VERIFICATION_TOKEN = "Jhj5dZrVaK7ZwHHjRyZWjbDl"

# Params that slack_sdk (or a hand-built form) may send as JSON-encoded strings.
_JSON_STRING_PARAMS = frozenset(
    {"blocks", "attachments", "view", "files", "metadata", "unfurls", "user_auth_blocks"}
)

# Used when FakeSlackAPI(users=None): matches the helper defaults below.
DEFAULT_USERS: dict[str, dict[str, Any]] = {
    "U_TEACHER1": {
        "name": "teacher1",
        "real_name": "Ana Rivera",
        "display_name": "Ms. Rivera",
        "tz": "America/New_York",
    },
    "U_TEACHER2": {
        "name": "teacher2",
        "real_name": "Tomas Okafor",
        "display_name": "",  # Slack sends "" when no display name is set
        "tz": "America/Chicago",
    },
    "U_ADMIN": {
        "name": "pln.admin",
        "real_name": "Priya Natarajan",
        "display_name": "Priya (PLN lead)",
        "tz": "America/Los_Angeles",
        "is_admin": True,
    },
}

# users.info "tz_label" is the long name of the zone's current offset.
_TZ_LABELS = {
    "EST": "Eastern Standard Time",
    "EDT": "Eastern Daylight Time",
    "CST": "Central Standard Time",
    "CDT": "Central Daylight Time",
    "MST": "Mountain Standard Time",
    "MDT": "Mountain Daylight Time",
    "PST": "Pacific Standard Time",
    "PDT": "Pacific Daylight Time",
    "AKST": "Alaska Standard Time",
    "AKDT": "Alaska Daylight Time",
    "HST": "Hawaii-Aleutian Standard Time",
    "GMT": "Greenwich Mean Time",
    "BST": "British Summer Time",
    "CET": "Central European Time",
    "CEST": "Central European Summer Time",
}

# How long the wait helpers wait: a bound for a test that would otherwise hang, not a
# latency check (those are explicit), so a busy shared machine doesn't fail a test.
WAIT_SECONDS = 10.0
_BASE_TS_SECONDS = 1700000000
_CREATED = 1699000000  # "created" timestamps for channels/users
_OAUTH_SCOPES = (
    "app_mentions:read,channels:history,channels:read,chat:write,commands,files:write,"
    "groups:history,groups:read,im:history,im:read,im:write,reactions:read,reactions:write,"
    "team:read,users:read"
)


# --------------------------------------------------------------------------------------
# JSON / signing helpers
# --------------------------------------------------------------------------------------


def slack_json(obj: Any) -> str:
    """Serialise like Slack: compact, ASCII-only, forward slashes escaped as ``\\/``.

    ``/`` can only occur inside JSON strings, so escaping it after dumping is safe.
    """
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")


def sign(body: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers X-Slack-Request-Timestamp and X-Slack-Signature (v0 HMAC-SHA256) for a body."""
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    base = f"v0:{ts}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


_trigger_counter = itertools.count(1)


def _trigger_id() -> str:
    """Something shaped like Slack's ``<digits>.<digits>.<32 hex>`` trigger ids."""
    n = next(_trigger_counter)
    tail = hashlib.md5(f"trigger-{n}".encode(), usedforsecurity=False).hexdigest()
    return f"{7403120000000 + n}.{738474920}.{tail}"


def _action_ts() -> str:
    return f"{time.time():.6f}"


def _event_context(event_type: str, team_id: str, api_app_id: str, channel: str | None) -> str:
    ctx = {"et": event_type, "tid": team_id, "aid": api_app_id}
    if channel:
        ctx["cid"] = channel
    raw = json.dumps(ctx, separators=(",", ":")).encode()
    return "4-" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _response_url(kind: str, team_id: str) -> str:
    n = next(_trigger_counter)
    return f"https://hooks.slack.com/{kind}/{team_id}/{5800000000000 + n}/xEl65bpIwt34bx8HkKc5RvNc"


def _team(team_id: str, domain: str = "pln-teachers") -> dict[str, Any]:
    return {"id": team_id, "domain": domain}


def _user(user_id: str, team_id: str, name: str | None = None) -> dict[str, Any]:
    name = name or user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


# --------------------------------------------------------------------------------------
# Inbound request bodies (what Slack POSTs to the app)
# --------------------------------------------------------------------------------------


def slash_command_body(
    text: str,
    *,
    user_id: str = "U_TEACHER1",
    user_name: str = "teacher1",
    channel_id: str = "C_PLN",
    channel_name: str = "pln-math",
    team_id: str = "T0001",
    command: str = "/pln",
    response_url: str = "http://127.0.0.1:1/response/x",
    trigger_id: str = "13345224609.738474920.8088930838d88f008e0",
    team_domain: str = "pln-teachers",
    api_app_id: str = "A0001",
    token: str = VERIFICATION_TOKEN,
) -> str:
    """urlencoded form body exactly like Slack sends (same field order, all strings).

    DMs with the bot arrive with ``channel_name=directmessage`` and a ``D…`` channel id.
    """
    fields = [
        ("token", token),
        ("team_id", team_id),
        ("team_domain", team_domain),
        ("channel_id", channel_id),
        ("channel_name", channel_name),
        ("user_id", user_id),
        ("user_name", user_name),
        ("command", command),
        ("text", text),
        ("api_app_id", api_app_id),
        ("is_enterprise_install", "false"),
        ("response_url", response_url),
        ("trigger_id", trigger_id),
    ]
    return urlencode(fields)


def event_body(
    event: dict[str, Any],
    *,
    event_id: str,
    team_id: str = "T0001",
    api_app_id: str = "A0001",
    event_time: int | None = None,
    bot_user_id: str = "UBOT",
    token: str = VERIFICATION_TOKEN,
) -> str:
    """Events API ``event_callback`` envelope as JSON text.

    ``event_time`` defaults to the integer part of ``event["event_ts"]`` (or now).
    ``authorizations`` holds a single entry for the installation (the bot user).
    """
    if event_time is None:
        ets = event.get("event_ts")
        event_time = int(float(ets)) if ets else int(time.time())
    channel = event.get("channel") if isinstance(event.get("channel"), str) else None
    envelope = {
        "token": token,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": _event_context(str(event.get("type")), team_id, api_app_id, channel),
    }
    return slack_json(envelope)


def url_verification_body(challenge: str, *, token: str = VERIFICATION_TOKEN) -> str:
    """The one-off request Slack sends when the Request URL is saved."""
    return slack_json({"token": token, "challenge": challenge, "type": "url_verification"})


def interactive_body(payload: dict[str, Any]) -> str:
    """``payload=<urlencoded json>`` as Slack POSTs interactivity requests."""
    return urlencode({"payload": slack_json(payload)})


def block_actions_payload(
    *,
    action_id: str,
    value: str,
    user_id: str,
    channel_id: str,
    message_ts: str,
    team_id: str = "T0001",
    block_id: str = "b1",
    action_ts: str | None = None,
    response_url: str = "http://127.0.0.1:1/response/x",
    user_name: str | None = None,
    channel_name: str = "pln-math",
    api_app_id: str = "A0001",
    bot_user_id: str = "UBOT",
    bot_id: str = "B0001",
    button_text: str = "Click",
    message: dict[str, Any] | None = None,
    is_ephemeral: bool = False,
    thread_ts: str | None = None,
    state_values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``block_actions`` payload for a button click on a (bot) message.

    ``message`` defaults to the bot message containing the button.  Slack omits
    ``message`` for clicks on ephemeral messages, so it is dropped when ``is_ephemeral``.
    """
    action = {
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": button_text, "emoji": True},
        "value": value,
        "type": "button",
        "action_ts": action_ts or _action_ts(),
    }
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel_id,
        "is_ephemeral": is_ephemeral,
    }
    if thread_ts:
        container["thread_ts"] = thread_ts
    if message is None:
        message = {
            "user": bot_user_id,
            "type": "message",
            "ts": message_ts,
            "bot_id": bot_id,
            "app_id": api_app_id,
            "text": "PLN Bot message",
            "team": team_id,
            "blocks": [
                {
                    "type": "actions",
                    "block_id": block_id,
                    "elements": [
                        {
                            "type": "button",
                            "action_id": action_id,
                            "text": {"type": "plain_text", "text": button_text, "emoji": True},
                            "value": value,
                        }
                    ],
                }
            ],
        }
        if thread_ts:
            message["thread_ts"] = thread_ts
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, team_id, user_name),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": _trigger_id(),
        "team": _team(team_id),
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "message": message,
        "state": {"values": state_values or {}},
        "response_url": response_url,
        "actions": [action],
    }
    if is_ephemeral:
        del payload["message"]
    return payload


def view_submission_payload(
    *,
    callback_id: str,
    user_id: str,
    values: dict[str, dict[str, dict[str, Any]]],
    private_metadata: str = "",
    team_id: str = "T0001",
    api_app_id: str = "A0001",
    bot_id: str = "B0001",
    view_id: str = "V0001MODAL",
    title: str = "PLN Bot",
    user_name: str | None = None,
    response_urls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A modal ``view_submission``.

    ``values`` is Slack's ``view.state.values`` shape:
    ``{block_id: {action_id: {"type": "plain_text_input", "value": "..."}}}``.
    Matching ``input`` blocks are generated for ``view.blocks``.
    """
    blocks = []
    for block_id, actions in values.items():
        for action_id, state in actions.items():
            blocks.append(
                {
                    "type": "input",
                    "block_id": block_id,
                    "label": {"type": "plain_text", "text": block_id, "emoji": True},
                    "optional": False,
                    "dispatch_action": False,
                    "element": {
                        "type": state.get("type", "plain_text_input"),
                        "action_id": action_id,
                    },
                }
            )
    view = {
        "id": view_id,
        "team_id": team_id,
        "type": "modal",
        "blocks": blocks,
        "private_metadata": private_metadata,
        "callback_id": callback_id,
        "state": {"values": values},
        "hash": "1718031700.Ix2kQrTn",
        "title": {"type": "plain_text", "text": title, "emoji": True},
        "clear_on_close": False,
        "notify_on_close": False,
        "close": {"type": "plain_text", "text": "Cancel", "emoji": True},
        "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
        "previous_view_id": None,
        "root_view_id": view_id,
        "app_id": api_app_id,
        "external_id": "",
        "app_installed_team_id": team_id,
        "bot_id": bot_id,
    }
    return {
        "type": "view_submission",
        "team": _team(team_id),
        "user": _user(user_id, team_id, user_name),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": _trigger_id(),
        "view": view,
        "response_urls": response_urls or [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def message_action_payload(
    *,
    callback_id: str,
    user_id: str,
    channel_id: str,
    message: dict[str, Any],
    team_id: str = "T0001",
    channel_name: str = "pln-math",
    user_name: str | None = None,
    response_url: str | None = None,
    action_ts: str | None = None,
) -> dict[str, Any]:
    """A message shortcut (``message_action``) on ``message`` (needs at least ``ts``)."""
    return {
        "type": "message_action",
        "token": VERIFICATION_TOKEN,
        "action_ts": action_ts or _action_ts(),
        "team": _team(team_id),
        "user": _user(user_id, team_id, user_name),
        "channel": {"id": channel_id, "name": channel_name},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": _trigger_id(),
        "response_url": response_url or _response_url("app", team_id),
        "message_ts": message["ts"],
        "message": message,
    }


# --------------------------------------------------------------------------------------
# Fake Web API server
# --------------------------------------------------------------------------------------


class _SlackError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class _Refused(_SlackError):
    """A payload Slack would refuse: the bot's fault, recorded in ``rejected``."""


@dataclass
class Rejection:
    """A call (or a response_url post) refused because of what the bot sent."""

    method: str
    params: dict[str, Any]
    answer: dict[str, Any]

    def __str__(self) -> str:
        found = self.answer.get("errors") or (self.answer.get("response_metadata") or {}).get(
            "messages", []
        )
        detail = "; ".join(str(f) for f in found[:5])
        return f"{self.method}: {self.answer.get('error')}" + (f" ({detail})" if detail else "")


# "132456.7890123.abcdef": what views.open expects a trigger_id to look like.
_TRIGGER_SHAPE = re.compile(r"^\d+\.\d+\.[0-9a-zA-Z]+$")


@dataclass
class _Failure:
    status: int
    retry_after: int
    error: str | None
    remaining: int


def _csv(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


class FakeSlackAPI:
    """Records every Web API call the bot makes; answers like Slack.

    * ``calls``: ``(method, params)`` in arrival order; ``params`` merges query string,
      form/JSON body, JSON-string fields decoded, plus ``"_token"`` (bearer token, the
      legacy ``token`` param, or ``None``).  Calls answered by ``fail_next`` go to
      ``failed_calls`` instead, so a retried call shows up in ``calls`` once.
    * ``responses``: bodies POSTed to ``response_url(token)`` URLs, each with
      ``"_token"`` set to the URL's token.
    * ``messages``: live bot messages keyed by ``(channel, ts)`` (updated/deleted by
      ``chat.update``/``chat.delete``); ``uploads``: ``file_id -> bytes``.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
        users: dict[str, dict[str, Any]] | None = None,
        channel_members: dict[str, list[str]] | None = None,
        bot_id: str = "B0001",
        app_id: str = "A0001",
        team_name: str = "PLN Teachers",
        team_domain: str = "pln-teachers",
        channels: dict[str, dict[str, Any]] | None = None,
        rate_limit: float | None = None,
        port: int = 0,
        strict: bool = True,
    ) -> None:
        self.team_id = team_id
        # Refusals left in `rejected` fail `stop()` (see the module docstring).
        self.strict = strict
        self.rejected: list[Rejection] = []
        self._exchanged_triggers: set[str] = set()
        self._expired_triggers: set[str] = set()
        self._expired_response_urls: set[str] = set()
        # Workspace-wide chat.postMessage budget (messages per second); over it: 429.
        self.rate_limit = rate_limit
        self.rate_limited = 0
        self._recent_posts: list[float] = []
        # Seconds a method takes to answer (a busy Slack), e.g. {"users.info": 0.4}.
        self.latency: dict[str, float] = {}
        self._bind_port = port
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.users: dict[str, dict[str, Any]] = dict(DEFAULT_USERS if users is None else users)
        if channel_members is None:
            channel_members = {"C_PLN": [*DEFAULT_USERS, bot_user_id]}
        self.channel_members: dict[str, list[str]] = {
            k: list(v) for k, v in channel_members.items()
        }
        # Optional per-channel overrides for conversations.info (name, is_private, ...).
        self.channels: dict[str, dict[str, Any]] = dict(channels or {})

        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failed_calls: list[tuple[str, dict[str, Any]]] = []
        self.responses: list[dict[str, Any]] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, bytes] = {}
        self.reactions: set[tuple[str, str, str]] = set()  # (channel, ts, name)
        self.revoked_tokens: dict[str, str] = {}
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: list[dict[str, Any]] = []

        self._failures: dict[str, list[_Failure]] = {}
        self._ts_counter = itertools.count(1)
        self._id_counter = itertools.count(1)
        self._opened_dms: set[str] = set()
        self._changed: asyncio.Condition | None = None  # created in start(), on the loop
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ---- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port and start serving."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{token}", self._handle_response_url)
        app.router.add_route("*", "/upload/v1/{file_id}", self._handle_upload)
        app.router.add_get("/_calls/{method}", self._handle_recorded)
        app.router.add_get("/socket", self._handle_socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._bind_port))
        self._port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()
        self._changed = asyncio.Condition()

    async def stop(self, *, check: bool = True) -> None:
        """Stop serving; then (`check`) fail if Slack would have refused anything sent."""
        for socket_ in self.sockets:
            await socket_.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if check and self.strict and self.rejected:
            found, self.rejected = self.rejected, []
            lines = "\n  ".join(str(r) for r in found[:10])
            raise AssertionError(f"Slack would have refused {len(found)} payload(s):\n  {lines}")

    async def __aenter__(self) -> FakeSlackAPI:
        await self.start()
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        await self.stop(check=exc_type is None)  # never hide the test's own failure

    @property
    def root_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeSlackAPI is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """For ``slack_sdk`` clients' ``base_url`` (ends with a slash)."""
        return f"{self.root_url}/api/"

    def response_url(self, token: str) -> str:
        return f"{self.root_url}/response/{token}"

    # ---- inspection / control ------------------------------------------------------

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    def responses_to(self, token: str) -> list[dict[str, Any]]:
        return [r for r in self.responses if r.get("_token") == token]

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int = 1,
        times: int = 1,
        error: str | None = None,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail.

        429 answers ``{"ok": false, "error": "ratelimited"}`` with a Retry-After header;
        5xx answers ``{"ok": false, "error": "fatal_error"}``; ``status=200`` with
        ``error="channel_not_found"`` (say) simulates an ordinary API error.
        """
        self._failures.setdefault(method, []).append(
            _Failure(status=status, retry_after=retry_after, error=error, remaining=times)
        )

    def take_rejections(self) -> list[Rejection]:
        """The refusals so far, forgotten by the fake (for tests that provoke them)."""
        found, self.rejected = self.rejected, []
        return found

    def expire_trigger(self, trigger_id: str) -> None:
        """views.open with this trigger answers ``expired_trigger_id`` (Slack's triggers last
        three seconds)."""
        self._expired_triggers.add(trigger_id)

    def expire_response_url(self, token: str) -> None:
        """``response_url(token)`` answers 404 ``expired_url``, as Slack's do after 30
        minutes (or five uses)."""
        self._expired_response_urls.add(token)

    def sent_texts(self) -> list[tuple[str, str]]:
        """``(where, text)`` for every message text the bot sent (calls and responses)."""
        texts = [
            (method, str(params.get("text") or ""))
            for method, params in self.calls
            if method in ("chat.postMessage", "chat.postEphemeral", "chat.update")
        ]
        texts += [("response_url", str(r.get("text") or "")) for r in self.responses]
        return texts

    def assert_fallbacks(self, limit: int = block_kit.FALLBACK_TEXT) -> None:
        """Fail when any top-level `text` sent was longer than Slack advises (4,000)."""
        long = [(where, len(text)) for where, text in self.sent_texts() if len(text) > limit]
        assert not long, f"fallback text over {limit:,} characters: {long}"

    def revoke_token(self, token: str, *, error: str = "token_revoked") -> None:
        """Calls with ``token`` answer ``ok: false`` (``token_revoked``/``invalid_auth``/...)."""
        self.revoked_tokens[token] = error

    def reset(self) -> None:
        """Forget recorded calls/responses (state such as messages and views is kept)."""
        self.calls.clear()
        self.failed_calls.clear()
        self.responses.clear()

    async def wait_for(
        self, method: str, count: int = 1, timeout: float = WAIT_SECONDS
    ) -> list[dict]:
        """Wait until ``method`` has been called ``count`` times (for acked-then-run listeners)."""
        assert self._changed is not None, "FakeSlackAPI is not started"
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.calls_to(method)) >= count), timeout
            )
        return self.calls_to(method)

    async def wait_for_response(self, count: int = 1, timeout: float = WAIT_SECONDS) -> list[dict]:
        assert self._changed is not None, "FakeSlackAPI is not started"
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.responses) >= count), timeout
            )
        return list(self.responses)

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    # ---- id / ts generation -------------------------------------------------------

    def _next_ts(self) -> str:
        n = next(self._ts_counter)
        return f"{_BASE_TS_SECONDS + n // 10000}.{(n % 10000) * 100:06d}"

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._id_counter):010d}"

    # ---- HTTP handlers --------------------------------------------------------------

    @staticmethod
    async def _read_params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if not request.can_read_body:
            return params
        if request.content_type == "multipart/form-data":
            form = await request.post()
            for key, value in form.items():
                params[key] = value.file.read() if isinstance(value, web.FileField) else value
            return params
        raw = await request.read()
        text = raw.decode("utf-8", errors="replace")
        if request.content_type == "application/json" or text.lstrip().startswith("{"):
            body = json.loads(text) if text.strip() else {}
            if isinstance(body, dict):
                params.update(body)
        else:
            params.update(parse_qsl(text, keep_blank_values=True))
        return params

    @staticmethod
    def _decode_json_strings(params: dict[str, Any]) -> None:
        for key in _JSON_STRING_PARAMS:
            value = params.get(key)
            if isinstance(value, str) and value[:1] in ("[", "{"):
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(value)

    @staticmethod
    def _json(body: dict[str, Any], status: int = 200, headers: dict | None = None):
        return web.Response(
            status=status,
            text=json.dumps(body),
            content_type="application/json",
            charset="utf-8",
            headers=headers,
        )

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._read_params(request)
        self._decode_json_strings(params)

        auth = request.headers.get("Authorization", "")
        token: str | None = None
        basic_client_id: str | None = None
        if auth.startswith("Bearer "):
            token = auth[len("Bearer ") :].strip() or None
        elif auth.startswith("Basic "):
            try:
                basic_client_id = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            except ValueError:
                basic_client_id = None
        if token is None and isinstance(params.get("token"), str):
            token = params.pop("token")
        params["_token"] = token

        failure = self._take_failure(method)
        if failure is None and method == "chat.postMessage" and self.rate_limit:
            failure = self._over_rate_limit()
        if failure is not None:
            self.failed_calls.append((method, params))
            return self._failure_response(failure)

        if method in self.latency:
            await asyncio.sleep(self.latency[method])
        self.calls.append((method, params))
        await self._notify()

        headers = {"X-OAuth-Scopes": _OAUTH_SCOPES, "X-Accepted-OAuth-Scopes": ""}
        if method.startswith("oauth."):
            if basic_client_id is None and not params.get("client_id"):
                return self._json({"ok": False, "error": "invalid_client_id"})
        elif token is None:
            return self._json({"ok": False, "error": "not_authed"})
        elif token in self.revoked_tokens:
            return self._json({"ok": False, "error": self.revoked_tokens[token]})

        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        try:
            body = handler(params) if handler is not None else {"ok": True}
        except _SlackError as exc:
            body = {"ok": False, "error": exc.error, **exc.extra}
            if isinstance(exc, _Refused):
                self.rejected.append(Rejection(method=method, params=params, answer=body))
        return self._json(body, headers=headers)

    async def _handle_recorded(self, request: web.Request) -> web.Response:
        """For tests in other processes: the recorded calls to one method, and counters."""
        calls = [
            {k: v for k, v in params.items() if k in ("channel", "text", "ts", "user")}
            for params in self.calls_to(request.match_info["method"])
        ]
        return web.json_response(
            {
                "calls": calls,
                "rate_limited": self.rate_limited,
                "rejected": [str(r) for r in self.rejected],
            }
        )

    def _over_rate_limit(self) -> _Failure | None:
        """A sliding one-second window, like Slack's per-workspace posting limit."""
        now = time.monotonic()
        self._recent_posts = [t for t in self._recent_posts if now - t < 1.0]
        if len(self._recent_posts) >= (self.rate_limit or 0):
            self.rate_limited += 1
            return _Failure(status=429, retry_after=1, remaining=1, error=None)
        self._recent_posts.append(now)
        return None

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure

    def _failure_response(self, failure: _Failure) -> web.Response:
        if failure.status == 429:
            return self._json(
                {"ok": False, "error": failure.error or "ratelimited"},
                status=429,
                headers={"Retry-After": str(failure.retry_after)},
            )
        if failure.status >= 500:
            return self._json(
                {"ok": False, "error": failure.error or "fatal_error"}, failure.status
            )
        return self._json({"ok": False, "error": failure.error or "internal_error"}, failure.status)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        raw = await request.read()
        text = raw.decode("utf-8", errors="replace")
        try:
            body = json.loads(text) if text.strip() else {}
        except ValueError:
            body = dict(parse_qsl(text, keep_blank_values=True))
        if not isinstance(body, dict):
            body = {"_body": body}
        body["_token"] = request.match_info["token"]
        if body["_token"] in self._expired_response_urls:
            return web.Response(status=404, text="expired_url", content_type="text/plain")
        try:
            if not body.get("delete_original"):
                self._check_message(body)
        except _SlackError as exc:
            # Like an incoming webhook: HTTP 400 and the error as plain text.
            answer = {"ok": False, "error": exc.error, **exc.extra}
            self.rejected.append(Rejection(method="response_url", params=body, answer=answer))
            await self._notify()
            return web.Response(status=400, text=exc.error, content_type="text/plain")
        self.responses.append(body)
        await self._notify()
        return self._json({"ok": True})

    async def _handle_upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if request.content_type == "multipart/form-data":
            form = await request.post()
            data = b""
            for value in form.values():
                if isinstance(value, web.FileField):
                    data = value.file.read()
                    break
                data = str(value).encode()
        else:
            data = await request.read()
        self.uploads[file_id] = data
        # files.slack.com answers text/plain "OK - <bytes>"
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    # ---- object builders ---------------------------------------------------------

    def _bot_profile(self) -> dict[str, Any]:
        icon = "https://a.slack-edge.com/80588/img/plugins/app/bot_48.png"
        return {
            "id": self.bot_id,
            "app_id": self.app_id,
            "name": "PLN Bot",
            "icons": {"image_36": icon, "image_48": icon, "image_72": icon},
            "deleted": False,
            "updated": _CREATED,
            "team_id": self.team_id,
        }

    def _dm_channel(self, user_id: str) -> str:
        return "D" + user_id

    def _resolve_channel(self, channel: str) -> str:
        # Posting to a user id delivers to (and answers with) the bot's DM with them.
        if channel[:1] in ("U", "W"):
            return self._dm_channel(channel)
        return channel

    def _message(self, params: dict[str, Any], ts: str, channel: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "user": self.bot_user_id,
            "type": "message",
            "ts": ts,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": params.get("text") or "",
            "team": self.team_id,
            "bot_profile": self._bot_profile(),
        }
        blocks = params.get("blocks")
        if isinstance(blocks, list):
            out = []
            for i, block in enumerate(blocks):
                block = dict(block) if isinstance(block, dict) else block
                if isinstance(block, dict) and "block_id" not in block:
                    # Slack assigns a short random block_id to blocks sent without one.
                    digest = hashlib.sha1(f"{ts}:{i}".encode(), usedforsecurity=False)
                    block["block_id"] = base64.b64encode(digest.digest()).decode()[:4]
                out.append(block)
            message["blocks"] = out
        if params.get("attachments"):
            message["attachments"] = params["attachments"]
        if params.get("metadata"):
            message["metadata"] = params["metadata"]
        thread_ts = params.get("thread_ts")
        if thread_ts:
            message["thread_ts"] = str(thread_ts)
            parent = self.messages.get((channel, str(thread_ts)))
            message["parent_user_id"] = parent["user"] if parent else self.bot_user_id
        return message

    def _user_object(self, user_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        spec = dict(spec)
        profile_extra = dict(spec.pop("profile", None) or {})
        name = spec.pop("name", user_id.lower())
        real_name = spec.pop("real_name", name)
        display_name = spec.pop("display_name", profile_extra.pop("display_name", ""))
        email = spec.pop("email", f"{name}@example.edu")
        tz = spec.pop("tz", "America/New_York")
        try:
            now = datetime.now(ZoneInfo(tz))
            tz_offset = int(now.utcoffset().total_seconds())  # type: ignore[union-attr]
            abbrev = now.tzname() or tz
            tz_label = _TZ_LABELS.get(abbrev, abbrev)
        except (ZoneInfoNotFoundError, ValueError):
            tz_offset, tz_label = 0, tz
        is_bot = bool(spec.pop("is_bot", False))
        first, _, last = real_name.partition(" ")
        avatar = "https://secure.gravatar.com/avatar/0f1e2d3c4b5a69788796a5b4c3d2e1f0.jpg?s={}"
        profile = {
            "title": "",
            "phone": "",
            "skype": "",
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": display_name,
            "display_name_normalized": display_name,
            "fields": None,
            "status_text": "",
            "status_emoji": "",
            "status_emoji_display_info": [],
            "status_expiration": 0,
            "avatar_hash": "g0f1e2d3c4b5",
            "first_name": first,
            "last_name": last,
            "image_24": avatar.format(24),
            "image_32": avatar.format(32),
            "image_48": avatar.format(48),
            "image_72": avatar.format(72),
            "image_192": avatar.format(192),
            "image_512": avatar.format(512),
            "status_text_canonical": "",
            "team": self.team_id,
        }
        if is_bot:
            profile.update(
                {"bot_id": self.bot_id, "api_app_id": self.app_id, "always_active": True}
            )
        else:
            profile["email"] = email
        profile.update(profile_extra)
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "color": "9f69e7",
            "real_name": real_name,
            "tz": tz,
            "tz_label": spec.pop("tz_label", tz_label),
            "tz_offset": spec.pop("tz_offset", tz_offset),
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": _CREATED,
            "is_email_confirmed": not is_bot,
            "who_can_share_contact_card": "EVERYONE",
        }
        user.update(spec)
        return user

    def _known_users(self) -> dict[str, dict[str, Any]]:
        known = {
            self.bot_user_id: {"name": "plnbot", "real_name": "PLN Bot", "is_bot": True},
        }
        known.update(self.users)
        return known

    def _view_object(self, view: Any, *, view_id: str, default_type: str) -> dict[str, Any]:
        view = dict(view) if isinstance(view, dict) else {}
        vtype = view.get("type", default_type)
        obj = {
            "id": view_id,
            "team_id": self.team_id,
            "type": vtype,
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
            "title": view.get("title", {"type": "plain_text", "text": "View Title", "emoji": True}),
            "clear_on_close": view.get("clear_on_close", False),
            "notify_on_close": view.get("notify_on_close", False),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        return obj

    # ---- what Slack refuses -------------------------------------------------------------

    @staticmethod
    def _check_message(params: dict[str, Any]) -> None:
        """chat.postMessage / postEphemeral / update and response_url bodies: `text` or
        blocks, text within 40,000 characters, blocks that Block Kit accepts."""
        blocks = params.get("blocks")
        if blocks is not None and not isinstance(blocks, list):
            raise _Refused("invalid_blocks_format")
        if not (params.get("text") or blocks or params.get("attachments")):
            raise _Refused("no_text")
        text = params.get("text")
        if isinstance(text, str) and len(text) > block_kit.MESSAGE_TEXT:
            raise _Refused("msg_too_long")
        found = block_kit.problems(blocks) if blocks else []
        if found:
            raise _Refused(
                "invalid_blocks",
                errors=found,
                response_metadata={"messages": block_kit.slack_messages(found)},
            )

    @staticmethod
    def _check_view(view: Any, kind: str) -> dict[str, Any]:
        """views.*: a view object of the right type that Block Kit accepts."""
        if not isinstance(view, dict):
            raise _Refused(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: view"]},
            )
        found = block_kit.problems(view)
        if view.get("type") != kind:
            found.insert(0, f"must be {kind!r} here [json-pointer:/view/type]")
        if found:
            raise _Refused(
                "invalid_arguments", response_metadata={"messages": block_kit.slack_messages(found)}
            )
        if len(json.dumps(view).encode()) > block_kit.VIEW_BYTES:
            raise _Refused("view_too_large")
        return view

    def _exchange_trigger(self, params: dict[str, Any]) -> str:
        trigger = params.get("trigger_id") or params.get("interactivity_pointer")
        if not trigger:
            raise _Refused(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: trigger_id"]},
            )
        trigger = str(trigger)
        if not _TRIGGER_SHAPE.match(trigger):
            raise _Refused("invalid_trigger_id")
        if trigger in self._expired_triggers:
            raise _SlackError("expired_trigger_id")
        if trigger in self._exchanged_triggers:
            raise _Refused("exchanged_trigger_id")
        return trigger

    # ---- Web API methods ------------------------------------------------------------

    # ---- Socket Mode ---------------------------------------------------------------

    def _m_apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self._port}/socket"}

    async def _handle_socket(self, request: web.Request) -> web.WebSocketResponse:
        """A Socket Mode connection: says hello, relays envelopes, records the acks."""
        socket_ = web.WebSocketResponse(autoping=True)
        await socket_.prepare(request)
        self.sockets.append(socket_)
        await socket_.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": self.app_id}}
        )
        async for frame in socket_:
            if frame.type == web.WSMsgType.TEXT:
                self.socket_acks.append(json.loads(frame.data))
                await self._notify()
        return socket_

    async def socket_send(self, kind: str, payload: dict[str, Any]) -> str:
        """Push an envelope (`slash_commands`, `events_api`, `interactive`) to the app."""
        envelope_id = str(uuid.uuid4())
        for _ in range(100):
            if self.sockets:
                break
            await asyncio.sleep(0.05)
        await self.sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return envelope_id

    def _m_api_test(self, params: dict[str, Any]) -> dict[str, Any]:
        args = {k: v for k, v in params.items() if not k.startswith("_")}
        return {"ok": True, "args": args} if args else {"ok": True}

    def _m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": "plnbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        if not channel:
            raise _SlackError("channel_not_found")
        self._check_message(params)
        channel = self._resolve_channel(str(channel))
        ts = self._next_ts()
        message = self._message(params, ts, channel)
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _m_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, user = params.get("channel"), params.get("user")
        if not channel:
            raise _SlackError("channel_not_found")
        if not user:
            raise _SlackError("user_not_found")
        self._check_message(params)
        members = self.channel_members.get(str(channel))
        if members is not None and user not in members:
            raise _SlackError("user_not_in_channel")
        return {"ok": True, "message_ts": self._next_ts()}

    def _m_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = params.get("channel"), params.get("ts")
        if not channel:
            raise _SlackError("channel_not_found")
        if not ts:
            raise _Refused("message_not_found")
        channel, ts = self._resolve_channel(str(channel)), str(ts)
        existing = self.messages.get((channel, ts))
        if existing is None:  # only a message that was posted (and not deleted) updates
            raise _Refused("message_not_found")
        self._check_message(params)
        message = self._message(params, ts, channel)
        message = {**existing, **{k: v for k, v in message.items() if k != "bot_profile"}}
        if "thread_ts" in existing:
            message["thread_ts"] = existing["thread_ts"]
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        self.messages[(channel, ts)] = message
        message_out = {k: v for k, v in message.items() if k not in ("ts", "bot_profile")}
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": message.get("text", ""),
            "message": message_out,
        }

    def _m_chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = params.get("channel"), params.get("ts")
        if not channel:
            raise _SlackError("channel_not_found")
        if not ts:
            raise _SlackError("message_not_found")
        channel = self._resolve_channel(str(channel))
        self.messages.pop((channel, str(ts)), None)
        return {"ok": True, "channel": channel, "ts": str(ts)}

    def _m_conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("channel"):
            return {
                "ok": True,
                "no_op": True,
                "already_open": True,
                "channel": {"id": params["channel"]},
            }
        users = _csv(params.get("users"))
        if not users:
            raise _SlackError("users_list_not_supplied")
        known = self._known_users()
        for uid in users:
            if uid not in known:
                raise _SlackError("user_not_found")
        if len(users) == 1:
            channel_id = self._dm_channel(users[0])
        else:
            digest = hashlib.sha1(",".join(sorted(users)).encode(), usedforsecurity=False)
            channel_id = "G" + digest.hexdigest()[:10].upper()
        channel: dict[str, Any] = {"id": channel_id}
        if _truthy(params.get("return_im")) and len(users) == 1:
            channel.update(
                {
                    "created": _CREATED,
                    "is_archived": False,
                    "is_im": True,
                    "is_org_shared": False,
                    "context_team_id": self.team_id,
                    "updated": _CREATED * 1000,
                    "user": users[0],
                    "last_read": "0000000000.000000",
                    "latest": None,
                    "unread_count": 0,
                    "unread_count_display": 0,
                    "is_open": True,
                    "priority": 0,
                }
            )
        if channel_id in self._opened_dms:
            return {"ok": True, "no_op": True, "already_open": True, "channel": channel}
        self._opened_dms.add(channel_id)
        return {"ok": True, "channel": channel}

    @staticmethod
    def _cursor_for(user_id: str) -> str:
        return base64.b64encode(f"user:{user_id}".encode()).decode()

    def _m_conversations_members(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        if not channel or channel not in self.channel_members:
            raise _SlackError("channel_not_found")
        members = self.channel_members[channel]
        try:
            limit = int(params.get("limit") or 100)
        except ValueError:
            raise _SlackError("invalid_limit") from None
        limit = max(1, min(limit, 1000))
        start = 0
        cursor = params.get("cursor")
        if cursor:
            try:
                decoded = base64.b64decode(cursor, validate=True).decode()
            except ValueError:
                raise _SlackError("invalid_cursor") from None
            uid = decoded.removeprefix("user:")
            if not decoded.startswith("user:") or uid not in members:
                raise _SlackError("invalid_cursor")
            start = members.index(uid)
        page = members[start : start + limit]
        next_cursor = ""
        if start + limit < len(members):
            next_cursor = self._cursor_for(members[start + limit])
        return {"ok": True, "members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _m_conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id = params.get("channel")
        if not channel_id:
            raise _SlackError("channel_not_found")
        override = self.channels.get(channel_id, {})
        if channel_id.startswith("D"):
            user = channel_id[1:] if channel_id[1:] in self._known_users() else None
            channel: dict[str, Any] = {
                "id": channel_id,
                "created": _CREATED,
                "is_archived": False,
                "is_im": True,
                "is_org_shared": False,
                "context_team_id": self.team_id,
                "updated": _CREATED * 1000,
                "user": user,
                "is_user_deleted": False,
                "priority": 0,
            }
        else:
            name = override.get("name", channel_id.lower())
            private = bool(override.get("is_private", channel_id.startswith("G")))
            members = self.channel_members.get(channel_id, [])
            channel = {
                "id": channel_id,
                "name": name,
                "is_channel": not private,
                "is_group": private,
                "is_im": False,
                "is_mpim": False,
                "is_private": private,
                "created": _CREATED,
                "is_archived": False,
                "is_general": False,
                "unlinked": 0,
                "name_normalized": name,
                "is_shared": False,
                "is_org_shared": False,
                "is_pending_ext_shared": False,
                "pending_shared": [],
                "context_team_id": self.team_id,
                "updated": _CREATED * 1000,
                "parent_conversation": None,
                "creator": next(iter(self.users), self.bot_user_id),
                "is_ext_shared": False,
                "shared_team_ids": [self.team_id],
                "pending_connected_team_ids": [],
                "is_member": self.bot_user_id in members,
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0},
                "properties": {},
                "previous_names": [],
            }
            if _truthy(params.get("include_num_members")):
                channel["num_members"] = len(members)
        channel.update(override)
        return {"ok": True, "channel": channel}

    def _m_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = params.get("user")
        known = self._known_users()
        if not user_id or user_id not in known:
            raise _SlackError("user_not_found")
        return {"ok": True, "user": self._user_object(user_id, known[user_id])}

    def _m_views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = self._exchange_trigger(params)
        self._check_view(params.get("view"), "modal")
        self._exchanged_triggers.add(trigger)  # a trigger opens one view
        view_id = self._next_id("V")
        view = self._view_object(params["view"], view_id=view_id, default_type="modal")
        self.views[view_id] = view
        return {"ok": True, "view": view}

    _m_views_push = _m_views_open

    def _m_views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = params.get("user_id")
        if not user_id:
            raise _Refused(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: user_id"]},
            )
        self._check_view(params.get("view"), "home")
        view_id = next(
            (
                vid
                for vid, v in self.views.items()
                if v.get("type") == "home" and v.get("_user_id") == user_id
            ),
            None,
        ) or self._next_id("V")
        view = self._view_object(params["view"], view_id=view_id, default_type="home")
        self.views[view_id] = {**view, "_user_id": user_id}
        return {"ok": True, "view": view}

    def _m_views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        view_id = params.get("view_id")
        external_id = params.get("external_id")
        if not view_id and external_id:
            view_id = next(
                (vid for vid, v in self.views.items() if v.get("external_id") == external_id),
                None,
            )
            if view_id is None:
                raise _SlackError("not_found")
        if not view_id:
            raise _Refused("invalid_arguments")
        if view_id not in self.views:
            raise _SlackError("not_found")
        previous = self.views[view_id]
        self._check_view(params.get("view"), previous.get("type", "modal"))
        view = self._view_object(
            params["view"], view_id=view_id, default_type=previous.get("type", "modal")
        )
        self.views[view_id] = {
            **view,
            **({"_user_id": previous["_user_id"]} if "_user_id" in previous else {}),
        }
        return {"ok": True, "view": view}

    def _m_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("filename") or not params.get("length"):
            raise _SlackError("invalid_arguments")
        file_id = self._next_id("F")
        return {
            "ok": True,
            "upload_url": f"{self.root_url}/upload/v1/{file_id}",
            "file_id": file_id,
        }

    def _m_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files")
        if not isinstance(files, list) or not files:
            raise _SlackError("invalid_arguments")
        out = []
        for f in files:
            if not isinstance(f, dict) or not f.get("id"):
                raise _SlackError("invalid_arguments")
            out.append({"id": f["id"], "title": f.get("title") or ""})
        return {"ok": True, "files": out}

    def _m_oauth_v2_access(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("code") and params.get("grant_type") != "refresh_token":
            raise _SlackError("invalid_code")
        installer = next(iter(self.users), "U_TEACHER1")
        return {
            "ok": True,
            "app_id": self.app_id,
            "authed_user": {"id": installer},
            "scope": _OAUTH_SCOPES,
            "token_type": "bot",
            "access_token": "xoxb-7403120000000-7403120000001-Zq8Xw1LmN4pRt6Yb2Cd9Ef0G",
            "bot_user_id": self.bot_user_id,
            "team": {"id": self.team_id, "name": self.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _m_reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, name, ts = params.get("channel"), params.get("name"), params.get("timestamp")
        if not channel:
            raise _SlackError("channel_not_found")
        if not name:
            raise _SlackError("invalid_name")
        if not ts:
            raise _SlackError("message_not_found")
        key = (str(channel), str(ts), str(name).strip(":"))
        if key in self.reactions:
            raise _SlackError("already_reacted")
        self.reactions.add(key)
        return {"ok": True}

    def _m_reactions_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (
            str(params.get("channel")),
            str(params.get("timestamp")),
            str(params.get("name", "")).strip(":"),
        )
        if key not in self.reactions:
            raise _SlackError("no_reaction")
        self.reactions.discard(key)
        return {"ok": True}

    def _m_team_info(self, params: dict[str, Any]) -> dict[str, Any]:
        icon = "https://a.slack-edge.com/80588/img/avatars-teams/ava_0001-{}.png"
        return {
            "ok": True,
            "team": {
                "id": self.team_id,
                "name": self.team_name,
                "url": f"https://{self.team_domain}.slack.com/",
                "domain": self.team_domain,
                "email_domain": "example.edu",
                "icon": {
                    "image_default": True,
                    **{f"image_{n}": icon.format(n) for n in (34, 44, 68, 88, 102, 132, 230)},
                },
                "avatar_base_url": "https://ca.slack-edge.com/",
                "is_verified": False,
                "lob_sales_home_enabled": False,
            },
        }
