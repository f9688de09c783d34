"""Wire Microsoft Teams into `plnbot serve`: botbuilder's CloudAdapter at POST /api/messages.

When Teams is on:
- `MICROSOFT_APP_ID` set: every request's JWT is validated by the SDK (a missing or bad token
  gets 401 and nothing is stored). `MICROSOFT_APP_TYPE` (MultiTenant, SingleTenant,
  UserAssignedMSI) and `MICROSOFT_APP_TENANT_ID` choose how the bot gets its own tokens.
- no app id, `plnbot serve --allow-anonymous-teams`: anonymous, for a local Bot Framework
  Emulator, with a loud warning in the log. Never implied by the address serve listens on: a
  reverse proxy on the same host makes every request look local.
- no app id, no flag: Teams is off (POST /api/messages answers 404 saying so, and reads
  nothing); if other MICROSOFT_* settings say Teams was wanted, start-up refuses naming
  MICROSOFT_APP_ID.

A request is authenticated before its body is parsed into an activity: without a token (when
one is needed) it is refused unread; the token is checked against the two strings it is bound
to (channelId, serviceUrl) and only then is the activity read. Anything that is not a Bot
Framework activity gets 400, never 500.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity
from botframework.connector.auth import (
    AuthenticationConfiguration,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    BotFrameworkAuthenticationFactory,
    ServiceClientCredentialsFactory,
)
from msrest.serialization import Deserializer

from adapters.teams.app import TeamsBridge
from adapters.teams.connector import (
    CONVERSATION_LIMITS,
    TENANT_LIMITS,
    AuthLoop,
    Pacer,
    PooledAuthentication,
    PooledConnectorFactory,
    shared_limits,
)
from adapters.teams.inbound import PLATFORM, teams_conversation_id, tenant_of
from adapters.teams.platform import TeamsPlatform
from adapters.teams.references import References
from adapters.teams.render import Signer
from bot.config import ConfigError, Settings
from bot.core.inbox import Lanes, Refused
from storage.inbox import NewEvent
from storage.queries import scoped_key

if TYPE_CHECKING:
    from plnbot.runtime import Runtime

log = logging.getLogger(__name__)

APP_TYPES = {
    "multitenant": "MultiTenant",
    "singletenant": "SingleTenant",
    "userassignedmsi": "UserAssignedMSI",
}


@dataclass(frozen=True, kw_only=True)
class TeamsIdentity:
    """Who the bot is to the Bot Framework, and which cloud's endpoints it trusts.

    The endpoint fields are None for Microsoft's public cloud; tests (and sovereign clouds)
    point them elsewhere. `credentials_factory` replaces the SDK's password/MSI factory.
    """

    app_id: str | None = None
    app_password: str | None = None
    app_type: str = "MultiTenant"
    tenant_id: str | None = None
    openid_metadata_url: str | None = None
    token_issuer: str | None = None
    login_url: str | None = None
    oauth_scope: str | None = None
    credentials_factory: ServiceClientCredentialsFactory | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TeamsIdentity:
        """Check the MICROSOFT_* settings together; ConfigError names what is wrong."""
        app_type = APP_TYPES.get((settings.microsoft_app_type or "MultiTenant").lower())
        if app_type is None:
            raise ConfigError(
                f"MICROSOFT_APP_TYPE: {settings.microsoft_app_type!r} is not one of "
                "MultiTenant, SingleTenant, UserAssignedMSI"
            )
        identity = cls(
            app_id=settings.microsoft_app_id or None,
            app_password=settings.microsoft_app_password or None,
            app_type=app_type,
            tenant_id=settings.microsoft_app_tenant_id or None,
        )
        if identity.app_id:
            if app_type != "UserAssignedMSI" and not identity.app_password:
                raise ConfigError(
                    "MICROSOFT_APP_PASSWORD: needed with MICROSOFT_APP_ID (the bot's client secret)"
                )
            if app_type != "MultiTenant" and not identity.tenant_id:
                raise ConfigError(
                    f"MICROSOFT_APP_TENANT_ID: needed when MICROSOFT_APP_TYPE is {app_type}"
                )
        return identity

    @property
    def login_endpoint(self) -> str:
        # The SDK's credentials add the tenant (MICROSOFT_APP_TENANT_ID, or botframework.com
        # for multi-tenant bots) to this prefix.
        return self.login_url or AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX

    @property
    def scope(self) -> str:
        return self.oauth_scope or AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE

    def credentials(self) -> ServiceClientCredentialsFactory:
        if self.credentials_factory is not None:
            return self.credentials_factory
        configuration = SimpleNamespace(
            APP_ID=self.app_id,
            APP_PASSWORD=self.app_password,
            APP_TYPE=self.app_type,
            APP_TENANTID=self.tenant_id,
        )
        return ConfigurationServiceClientCredentialFactory(configuration)

    def sdk_authentication(self) -> BotFrameworkAuthentication:
        """The SDK's own authentication (JWT validation), for this identity and cloud."""
        configuration = AuthenticationConfiguration(
            tenant_id=self.tenant_id if self.app_type != "MultiTenant" else None
        )
        if self.openid_metadata_url or self.token_issuer or self.login_url:
            return BotFrameworkAuthenticationFactory.create(
                validate_authority=True,
                to_channel_from_bot_login_url=self.login_endpoint,
                to_channel_from_bot_oauth_scope=self.scope,
                to_bot_from_channel_token_issuer=self.token_issuer
                or AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER,
                oauth_url=AuthenticationConstants.OAUTH_URL,
                to_bot_from_channel_open_id_metadata_url=self.openid_metadata_url
                or AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL,
                to_bot_from_emulator_open_id_metadata_url=self.openid_metadata_url
                or AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL,
                caller_id="urn:botframework:azure",
                credential_factory=self.credentials(),
                auth_configuration=configuration,
            )
        return BotFrameworkAuthenticationFactory.create(
            credential_factory=self.credentials(), auth_configuration=configuration
        )


def _wanted_without_app_id(settings: Settings) -> bool:
    return bool(settings.microsoft_app_password or settings.microsoft_app_tenant_id)


class TeamsEndpoint:
    """Owns the adapter, the pooled connector and the bridge; serves POST /api/messages."""

    def __init__(self, runtime: Runtime, identity: TeamsIdentity, *, anonymous: bool) -> None:
        from plnbot.runtime import secret_key

        self.runtime = runtime
        self.anonymous = anonymous
        self._session: aiohttp.ClientSession | None = None
        share = runtime.settings.processes  # `serve --processes`: each its part of the limits
        self.conversation_pacer = Pacer(shared_limits(CONVERSATION_LIMITS, share))
        self.tenant_pacer = Pacer(shared_limits(TENANT_LIMITS, share))
        self.connectors = PooledConnectorFactory(
            app_id=identity.app_id or "",
            credentials_factory=identity.credentials(),
            oauth_scope=identity.scope,
            login_endpoint=identity.login_endpoint,
            validate_authority=True,
            session=self.session,
            conversations=self.conversation_pacer,
            tenants=self.tenant_pacer,
        )
        self.auth_loop = None if anonymous else AuthLoop()
        self.auth = PooledAuthentication(
            identity.sdk_authentication(),
            self.connectors,
            anonymous=anonymous,
            auth_loop=self.auth_loop,
        )
        self.adapter = CloudAdapter(self.auth)
        self.adapter.on_turn_error = self._turn_error
        self.references = References(runtime.db, runtime.clock)
        self.turns = Lanes(runtime.settings.workers)
        runtime.bot.on_forgotten.append(lambda user: self.references.forget_seen())
        self.signer = Signer(secret_key(runtime.db, runtime.settings))
        self.platform = TeamsPlatform(
            adapter=self.adapter,
            app_id=identity.app_id or "",
            references=self.references,
            signer=self.signer,
            connectors=self.connectors,
        )
        self.bridge = TeamsBridge(
            bot=runtime.bot,
            settings=runtime.settings,
            platform=self.platform,
            references=self.references,
            signer=self.signer,
            http=self.session,
        )

    def session(self) -> aiohttp.ClientSession:
        """One keep-alive connection pool for every connector call and upload."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=200, limit_per_host=64, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=30, connect=10),
            )
        return self._session

    @staticmethod
    async def _turn_error(context: Any, error: Exception) -> None:
        log.error("Teams turn failed: %s", error.__class__.__name__, exc_info=error)

    def register_platform(self) -> None:
        self.runtime.platforms.setdefault(PLATFORM, self.platform)

    async def messages(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if not self.anonymous and not header:
            log.info("Teams request refused: no Authorization header")
            return web.json_response({"error": "unauthorized"}, status=401)  # body unread
        if "application/json" not in request.headers.get("Content-Type", ""):
            return web.json_response({"error": "expected application/json"}, status=415)
        raw = await request.read()
        body = _json_object(raw)
        try:
            # The token is bound to the channel and the serviceUrl it was issued for: those
            # two strings are all that is read before it is checked.
            authenticated = await self.auth.authenticate_request(
                _bound_to(body), None if self.anonymous else header
            )
        except PermissionError as exc:
            log.info("Teams request refused: %s", exc)
            return web.json_response({"error": "unauthorized"}, status=401)
        activity = _activity(body)
        if activity is None or body is None:
            log.warning("malformed Teams request refused (%d bytes)", len(raw))
            return web.json_response({"error": "not a Bot Framework activity"}, status=400)
        if activity.type != "invoke" or activity.name == "fileConsent/invoke":
            try:
                await self.runtime.accept().admit()
                if activity.type == "invoke":
                    # A file's consent: stored, answered at once; the upload (network work
                    # that may take long) is done by the inbox's workers.
                    await self.runtime.accept().put(_new_event(activity, body))
                    return web.json_response({}, status=200)
            except Refused as why:
                log.warning("Teams activity refused for now (%s)", why)
                return web.json_response(
                    {"error": "busy, try again"}, status=503, headers={"Retry-After": "1"}
                )
            # Committed before it is answered: Teams waits up to 15 s for a turn, and a unit
            # of work takes milliseconds. Its replies go through the outbox, so the turn never
            # waits on Teams' pacing. PLNBOT_WORKERS at once, one person's in order.
            try:
                async with self.turns.slot(_lane(activity)):
                    await self.bridge.on_activity(activity)
            except Exception:
                log.exception("Teams activity %s failed; Teams will send it again", activity.type)
                return web.json_response({"error": "internal error"}, status=500)
            return web.Response(status=200)
        try:
            invoke = await self.adapter.process_activity(
                authenticated, activity, self.bridge.on_turn
            )
        except Exception:
            log.exception("Teams activity %s failed", activity.type)
            return web.json_response({"error": "internal error"}, status=500)
        if invoke is not None:
            return web.json_response(invoke.body, status=invoke.status or 200)
        return web.Response(status=200)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/messages", self.messages)

    async def close(self) -> None:
        """The connector's HTTP session and the token loop, once nothing more is sent."""
        if self._session is not None:
            await self._session.close()
        if self.auth_loop is not None:
            self.auth_loop.close()


def _json_object(raw: bytes) -> dict[str, Any] | None:
    """The request body as a JSON object, or None (not UTF-8, not JSON, too deep, not an
    object)."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        return None
    return body if isinstance(body, dict) else None


def _bound_to(body: dict[str, Any] | None) -> Activity:
    """Only what a Bot Framework token is checked against: the channel and the serviceUrl."""
    fields = body or {}
    channel, service_url = fields.get("channelId"), fields.get("serviceUrl")
    return Activity(
        channel_id=channel if isinstance(channel, str) else None,
        service_url=service_url if isinstance(service_url, str) else None,
    )


# What `Activity.deserialize` does, with the schema's models gathered once rather than on every
# call (a fifth of its time).
_DESERIALIZE = Deserializer(Activity._infer_class_models())


def _activity(body: dict[str, Any] | None) -> Activity | None:
    """The authenticated body as an Activity, or None when it isn't one (of a shape the
    bridge can read: see `_ACTIVITY`)."""
    if body is None or not isinstance(body.get("type"), str) or not body["type"]:
        return None
    if not isinstance(body.get("serviceUrl"), str):  # nowhere to answer (and no token binding)
        return None
    if not _fits(body, _ACTIVITY):
        return None
    try:
        return _DESERIALIZE("Activity", body)
    except Exception:  # msrest's DeserializationError and whatever an odd field raises
        return None


# What the bridge (app.py, inbound.py, references.py) reads of an activity, and the types and
# sizes it relies on: ids fit their columns (a tenant or an AAD object id is a workspace's or
# a member's id: 64 characters; Teams' own ids 500), names fit 200, lists hold objects. A
# field that is missing or null is fine; unknown fields are left alone.
Shape = tuple[Any, ...] | dict[str, Any]
_FLAG = ("flag",)


def _text(limit: int | None = None) -> tuple[str, int | None]:
    return ("text", limit)


def _list(item: Shape) -> tuple[str, Shape]:
    return ("list", item)


_ACCOUNT = {"id": _text(500), "name": _text(200), "aadObjectId": _text(64), "role": _text(64)}
_ACTIVITY: dict[str, Shape] = {
    "type": _text(64),
    "name": _text(255),
    "id": _text(500),
    "serviceUrl": _text(500),
    "channelId": _text(64),
    "text": _text(),
    "replyToId": _text(500),
    "action": _text(64),
    "from": _ACCOUNT,
    "recipient": _ACCOUNT,
    "conversation": {
        "id": _text(500),
        "name": _text(200),
        "conversationType": _text(64),
        "tenantId": _text(64),
        "isGroup": _FLAG,
    },
    "channelData": {
        "tenant": {"id": _text(64)},
        "channel": {"id": _text(500), "name": _text(200), "type": _text(64)},
        "team": {"id": _text(500), "name": _text(200)},
        "eventType": _text(64),
    },
    "entities": _list(
        {
            "type": _text(64),
            "mentioned": {"id": _text(500), "name": _text(200)},
            "text": _text(),
            "timezone": _text(64),
        }
    ),
    "membersAdded": _list(_ACCOUNT),
    "membersRemoved": _list(_ACCOUNT),
    "reactionsAdded": _list({"type": _text(64)}),
    "reactionsRemoved": _list({"type": _text(64)}),
    "attachments": _list({"contentType": _text(255), "name": _text(200)}),
}


def _fits(value: Any, shape: Shape) -> bool:
    """Whether `value` (null counts as missing) has `shape`."""
    if value is None:
        return True
    if isinstance(shape, dict):
        return isinstance(value, dict) and all(
            _fits(value[key], inner) for key, inner in shape.items() if key in value
        )
    kind, *arguments = shape
    if kind == "text":
        limit = arguments[0]
        return isinstance(value, str) and (limit is None or len(value) <= limit)
    if kind == "list":
        return isinstance(value, list) and all(
            isinstance(element, dict) and _fits(element, arguments[0]) for element in value
        )
    return isinstance(value, bool)  # a flag


def _lane(activity: Activity) -> str:
    """The person an activity is from (their events run one at a time, in order)."""
    person = activity.from_property
    who = (person.aad_object_id or person.id) if person else ""
    return scoped_key(PLATFORM, tenant_of(activity), who or teams_conversation_id(activity))


def _new_event(activity: Activity, body: dict[str, Any]) -> NewEvent:
    tenant = tenant_of(activity)
    conversation = teams_conversation_id(activity)
    ident = activity.id or uuid.uuid4().hex
    return NewEvent(
        key=scoped_key(PLATFORM, tenant, conversation, str(activity.type), ident, limit=300),
        platform=PLATFORM,
        lane=_lane(activity),
        kind=str(activity.type),
        payload=json.dumps(body, separators=(",", ":")),
    )


def attach_teams(
    runtime: Runtime, *, identity: TeamsIdentity | None = None
) -> TeamsEndpoint | None:
    """Mount Teams when it is configured (see the module docstring); None when it is off."""
    settings = runtime.settings
    identity = identity or TeamsIdentity.from_settings(settings)
    anonymous = not identity.app_id
    if anonymous:
        if not runtime.allow_anonymous_teams:
            if _wanted_without_app_id(settings):
                raise ConfigError(
                    "MICROSOFT_APP_ID: not set, so Teams requests can't be authenticated; set "
                    "it (or pass --allow-anonymous-teams for a local Bot Framework Emulator)"
                )
            log.debug("Microsoft Teams is off: no MICROSOFT_APP_ID")
            return None
        log.warning(
            "!!! Microsoft Teams runs WITHOUT authentication at /api/messages (no "
            "MICROSOFT_APP_ID, --allow-anonymous-teams): anyone who can reach %s:%s can act "
            "as any Teams user and make the bot post to any URL. Use this only with a local "
            "Bot Framework Emulator.",
            runtime.host,
            runtime.port,
        )
    endpoint = TeamsEndpoint(runtime, identity, anonymous=anonymous)
    runtime.inbox_work[PLATFORM] = endpoint.bridge.work
    # The outbox reaches Teams from the start, so replies stored before a restart go out
    # without waiting for the next activity.
    endpoint.register_platform()
    runtime.web_handlers.append(endpoint.add_routes)
    runtime.closers.append(endpoint.close)  # after the last send (plnbot/runtime.py)
    runtime.attach(teams=endpoint)
    return endpoint
