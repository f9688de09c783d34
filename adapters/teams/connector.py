"""The Bot Framework connector, pooled: one client per service URL, one aiohttp session.

botbuilder's CloudAdapter builds a new `ConnectorClient` (a requests session on a thread, and
msrest's retry policy) for every turn and every proactive message, and a user-token client
next to it. Here the adapter gets them from `PooledAuthentication`, which wraps the SDK's own
`BotFrameworkAuthentication` (so JWT validation stays the SDK's) and hands out clients that
share keep-alive connections. Every outbound call goes through two policies:

* pacing: Teams allows a bot 7 messages a second in one conversation (8 in 2 s, 60 in 30 s,
  1,800 an hour) and about 50 requests a second per tenant; calls wait for their slot
  instead of earning a 429;
* retries: 429, 412, 502 and 504 (and a refused connection) are retried with exponential
  backoff and jitter, honouring `Retry-After`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
import jwt
from botbuilder.schema import Activity
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    ServiceClientCredentialsFactory,
    UserTokenClient,
)
from msrest import Serializer
from msrest.pipeline import (
    AsyncHTTPPolicy,
    AsyncHTTPSender,
    AsyncPipeline,
    Request,
    Response,
    SansIOHTTPPolicy,
)
from msrest.pipeline.universal import RawDeserializer
from msrest.universal_http.aiohttp import AioHttpClientResponse

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES = frozenset({412, 429, 502, 504})
MAX_RETRIES = 4
BACKOFF_BASE = 0.5  # seconds; doubles per try
BACKOFF_CAP = 8.0
USER_AGENT = "PLNBot (botbuilder-python; pooled connector)"

# (window in seconds, most operations in it); Teams documents these per bot per conversation.
CONVERSATION_LIMITS: tuple[tuple[float, int], ...] = ((1, 7), (2, 8), (30, 60), (3600, 1800))
TENANT_LIMITS: tuple[tuple[float, int], ...] = ((1, 50),)


def shared_limits(
    limits: tuple[tuple[float, int], ...], share: int
) -> tuple[tuple[float, int], ...]:
    """One of `share` processes' part of each limit (at least one call per window)."""
    return tuple((window, max(1, count // share)) for window, count in limits)


TENANT_KWARG = "pln_tenant"  # operation_config our calls pass, so pacing needn't parse bodies
_CONVERSATION_IN_URL = re.compile(r"/v3/conversations/([^/?]+)/activities")


class Pacer:
    """Sliding-window limits per key; `slot(key)` waits until one more call fits.

    A call reserves its slot before it sleeps, so concurrent callers queue in order instead of
    all waking at once. Keys idle for longer than the longest window are forgotten.
    """

    def __init__(
        self, limits: tuple[tuple[float, int], ...], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.horizon = max(window for window, _ in limits)
        self.depth = max(count for _, count in limits)
        self._log: dict[str, deque[float]] = {}
        self._calls = 0

    def reserve(self, key: str) -> float:
        """Reserve the next free slot for `key`; returns how long to wait for it."""
        now = self.clock()
        log_ = self._log.get(key)
        if log_ is None:
            log_ = self._log[key] = deque(maxlen=self.depth)
        while log_ and log_[0] <= now - self.horizon:
            log_.popleft()
        at = max(now, log_[-1]) if log_ else now
        for window, count in self.limits:
            if len(log_) >= count:
                at = max(at, log_[-count] + window)
        log_.append(at)
        self._calls += 1
        if self._calls % 1000 == 0:
            self._forget_idle(now)
        return at - now

    async def slot(self, key: str) -> None:
        wait = self.reserve(key)
        if wait > 0:
            await asyncio.sleep(wait)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._log.items() if not v or v[-1] <= now - self.horizon]:
            del self._log[key]


def pacing_keys(url: str, body: Any) -> tuple[str | None, str | None]:
    """(conversation, tenant) a connector call counts against, from its URL and JSON body."""
    conversation = None
    match = _CONVERSATION_IN_URL.search(url)
    if match:
        conversation = match.group(1).split("%3B")[0].split(";")[0]  # a thread is its channel
    tenant = None
    if isinstance(body, (str, bytes)) and body:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            conv = data.get("conversation") or {}
            channel_data = data.get("channelData") or {}
            tenant = (
                (conv.get("tenantId") if isinstance(conv, dict) else None)
                or data.get("tenantId")
                or (
                    (channel_data.get("tenant") or {}).get("id")
                    if isinstance(channel_data, dict)
                    else None
                )
            )
    return conversation, tenant


def backoff_delay(attempt: int, retry_after: str | None) -> float:
    """Seconds before try `attempt + 1`: Retry-After when given, else capped exponential with
    full jitter (so many clients retrying at once spread out)."""
    if retry_after:
        try:
            return min(BACKOFF_CAP * 4, max(0.0, float(retry_after))) * random.uniform(1.0, 1.2)
        except ValueError:
            pass
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
    return random.uniform(ceiling / 2, ceiling)


class PaceAndRetryPolicy(AsyncHTTPPolicy):
    """Waits for a pacing slot, then retries transient failures with backoff and jitter."""

    def __init__(self, conversations: Pacer, tenants: Pacer, service_url: str) -> None:
        super().__init__()
        self.conversations = conversations
        self.tenants = tenants
        self.service_url = service_url
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def send(self, request: Request, **kwargs: Any) -> Response:
        http = request.http_request
        tenant = kwargs.pop(TENANT_KWARG, None)  # our own calls say; else read the body
        conversation, body_tenant = pacing_keys(http.url, None if tenant else http.data)
        tenant = tenant or body_tenant
        attempt = 0
        while True:
            if conversation and http.method in ("POST", "PUT"):
                await self.conversations.slot(conversation)
            await self.tenants.slot(tenant or self.service_url)
            assert self.next is not None  # set when the pipeline is built, before any send
            try:
                response: Response = await self.next.send(request, **kwargs)
            except aiohttp.ClientConnectorError as exc:
                if attempt >= MAX_RETRIES:
                    raise
                delay = backoff_delay(attempt, None)
                log.warning("connector unreachable (%s); retrying in %.1fs", exc, delay)
            else:
                status = response.http_response.status_code
                if status not in RETRY_STATUSES or attempt >= MAX_RETRIES:
                    return response
                delay = backoff_delay(attempt, response.http_response.headers.get("Retry-After"))
                log.info("connector answered %s; retry %d in %.2fs", status, attempt + 1, delay)
            attempt += 1
            await self.sleep(delay)


class BearerPolicy(AsyncHTTPPolicy):
    """Adds the bot's token; MSAL is synchronous, so tokens are fetched on a thread and kept
    until five minutes before they expire."""

    def __init__(self, credentials: Any) -> None:
        super().__init__()
        self.credentials = credentials
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str | None:
        if not getattr(self.credentials, "microsoft_app_id", None):
            return None  # anonymous (local emulator): no token
        if self._token is None or time.time() > self._expires:
            async with self._lock:
                if self._token is None or time.time() > self._expires:
                    token = await asyncio.to_thread(self.credentials.get_access_token)
                    try:
                        claims = jwt.decode(token, options={"verify_signature": False})
                        expires = float(claims.get("exp", 0)) or time.time() + 600
                    except jwt.PyJWTError:
                        expires = time.time() + 600
                    self._token, self._expires = token, expires - 300
        return self._token

    async def send(self, request: Request, **kwargs: Any) -> Response:
        token = await self.token()
        if token:
            request.http_request.headers["Authorization"] = f"Bearer {token}"
        assert self.next is not None  # set when the pipeline is built, before any send
        return await self.next.send(request, **kwargs)


class AiohttpSender(AsyncHTTPSender):
    """Sends msrest requests over one shared aiohttp session (keep-alive, pooled)."""

    def __init__(self, session: Callable[[], aiohttp.ClientSession]) -> None:
        self._session = session

    async def __aenter__(self) -> AiohttpSender:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    def build_context(self) -> Any:
        return None

    async def send(self, request: Request, **config: Any) -> Response:
        http = request.http_request
        response = await self._session().request(
            http.method, http.url, headers=dict(http.headers), data=http.data
        )
        wrapped = AioHttpClientResponse(http, response)
        await wrapped.load_body()
        return Response(request, wrapped)


class JsonReadySerializer(Serializer):
    """msrest's serializer, except that a body that is already JSON (a dict) is sent as is."""

    def body(self, data: Any, data_type: str, **kwargs: Any) -> Any:
        if isinstance(data, dict):
            return data
        return super().body(data, data_type, **kwargs)


class PooledConnectorFactory(ConnectorFactory):
    """One ConnectorClient per (service URL, audience), reused by every turn and send."""

    def __init__(
        self,
        *,
        app_id: str,
        credentials_factory: ServiceClientCredentialsFactory,
        oauth_scope: str,
        login_endpoint: str,
        validate_authority: bool,
        session: Callable[[], aiohttp.ClientSession],
        conversations: Pacer,
        tenants: Pacer,
    ) -> None:
        self.app_id = app_id
        self.credentials_factory = credentials_factory
        self.oauth_scope = oauth_scope
        self.login_endpoint = login_endpoint
        self.validate_authority = validate_authority
        self.session = session
        self.conversations = conversations
        self.tenants = tenants
        self._clients: dict[tuple[str, str], ConnectorClient] = {}
        self._lock = asyncio.Lock()

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        key = (service_url, audience or self.oauth_scope)
        client = self._clients.get(key)
        if client is not None:
            return client
        async with self._lock:
            client = self._clients.get(key)
            if client is None:
                credentials = await self.credentials_factory.create_credentials(
                    self.app_id, key[1], self.login_endpoint, self.validate_authority
                )
                client = self._build(service_url, credentials)
                self._clients[key] = client
        return client

    def _build(self, service_url: str, credentials: Any) -> ConnectorClient:
        policies: list[AsyncHTTPPolicy | SansIOHTTPPolicy] = [
            PaceAndRetryPolicy(self.conversations, self.tenants, service_url),
            BearerPolicy(credentials),
            RawDeserializer(),
        ]
        sender = AiohttpSender(self.session)

        def pipeline(config: Any) -> AsyncPipeline:
            config.user_agent_policy.add_user_agent(USER_AGENT)
            return AsyncPipeline([config.user_agent_policy, *policies], sender)

        client = ConnectorClient(credentials, base_url=service_url, pipeline_type=pipeline)
        # Our activities are built as Bot Framework JSON already (adapters/teams/render.py);
        # msrest would turn each into a model and back (a few ms of CPU for a card).
        fast = JsonReadySerializer(client._serialize.dependencies)
        client._serialize = fast
        client.conversations._serialize = fast
        return client


class AuthLoop:
    """A thread with its own event loop for the SDK's token validation.

    The SDK fetches Microsoft's signing keys with blocking `requests` calls (at start, daily,
    and when an unknown key id shows up); on this thread that never stalls the bot's loop.
    """

    def __init__(self, timeout: float = 15.0) -> None:
        self.timeout = timeout
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="teams-jwt", daemon=True)
        self.thread.start()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


class PooledAuthentication(BotFrameworkAuthentication):
    """The SDK's authentication, with pooled connectors and one user-token client per app.

    Inbound tokens are validated by the wrapped SDK object; any failure (a bad signature, a
    malformed token, keys that could not be fetched) becomes PermissionError, so the request
    gets 401 and nothing is stored.
    """

    def __init__(
        self,
        inner: BotFrameworkAuthentication,
        connectors: PooledConnectorFactory,
        *,
        anonymous: bool,
        auth_loop: AuthLoop | None = None,
    ) -> None:
        self.inner = inner
        self.connectors = connectors
        self.anonymous = anonymous
        self.auth_loop = auth_loop
        self._token_clients: dict[str, UserTokenClient] = {}
        # Validated tokens, until they expire: the Bot Framework service sends the same token
        # with every activity for up to an hour, and checking its RS256 signature again each
        # time changes nothing. The key is the whole token plus what it was checked against
        # (channel and serviceUrl), so only an identical, already-verified token hits.
        self._validated: dict[tuple[str, str, str], tuple[float, AuthenticateRequestResult]] = {}

    async def authenticate_request(
        self, activity: Activity, auth_header: str | None
    ) -> AuthenticateRequestResult:
        # Anonymous mode never looks at a token (validating one would need Microsoft's keys).
        header = None if self.anonymous else (auth_header or None)
        if not self.anonymous and not header:
            raise PermissionError("no Authorization header")
        key = (header or "", activity.channel_id or "", activity.service_url or "")
        cached = self._validated.get(key) if header else None
        if cached is not None and time.time() < cached[0]:
            return self._result(cached[1])
        try:
            call = self.inner.authenticate_request(activity, header)
            result = await (self.auth_loop.run(call) if self.auth_loop else call)
        except PermissionError:
            raise
        except Exception as exc:  # malformed token, unknown key, keys unreachable, timeout
            raise PermissionError(f"token not accepted: {exc.__class__.__name__}") from exc
        result.connector_factory = self.connectors
        expires = (result.claims_identity.claims or {}).get("exp") if header else None
        if isinstance(expires, (int, float)) and expires > time.time():
            if len(self._validated) >= 2048:
                now = time.time()
                self._validated = {k: v for k, v in self._validated.items() if v[0] > now}
                if len(self._validated) >= 2048:
                    self._validated.clear()
            self._validated[key] = (float(expires), result)
        return self._result(result)

    @staticmethod
    def _result(validated: AuthenticateRequestResult) -> AuthenticateRequestResult:
        result = AuthenticateRequestResult()
        result.claims_identity = validated.claims_identity
        result.audience = validated.audience
        result.caller_id = validated.caller_id
        result.connector_factory = validated.connector_factory
        return result

    async def authenticate_streaming_request(
        self, auth_header: str, channel_id_header: str
    ) -> AuthenticateRequestResult:
        raise PermissionError("streaming connections are not supported")

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return self.connectors

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        # Built lazily once: the SDK makes one per turn (a client and a retry policy each time),
        # and PLN Bot never signs users in.
        key = self.connectors.app_id or ""
        client = self._token_clients.get(key)
        if client is None:
            client = await self.inner.create_user_token_client(claims_identity)
            self._token_clients[key] = client
        return client

    def create_bot_framework_client(self) -> Any:
        return self.inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return str(self.inner.get_originating_audience())

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        raise PermissionError("skill callbacks are not supported")
