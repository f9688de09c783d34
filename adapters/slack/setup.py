"""Wire Slack into `plnbot serve`: the platform, the Bolt app and its HTTP routes.

POST /slack/events checks the signature on the raw bytes before anything else (401, and the
body is never read further), then reads the body strictly (adapters/slack/payloads.py: 400
for anything signed that is not a Slack request of a shape the bot can read, logged with its
size only) and only then hands it to Bolt. No request body reaches the log: Bolt's loggers
keep their records short.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.request.async_request import AsyncBoltRequest

from adapters.slack import payloads
from adapters.slack.app import SlackBridge, oauth_settings
from adapters.slack.inbound import PLATFORM
from adapters.slack.platform import SlackPlatform
from bot.core.inbox import Refused
from storage.queries import get_or_create_workspace

if TYPE_CHECKING:
    from plnbot.runtime import Runtime

log = logging.getLogger(__name__)


def attach_slack(runtime: Runtime) -> SlackBridge:
    settings = runtime.settings

    def installation_changed(team_id: str, installer: str | None) -> None:
        """Told by the installation store (made below, with this) of installs and
        uninstalls: `platform` exists by the time any request arrives."""
        platform.forget_workspace(team_id)
        if installer and team_id:
            with runtime.db.session() as session:
                workspace = get_or_create_workspace(
                    session, platform=PLATFORM, external_id=team_id, now=runtime.clock.now()
                )
                workspace.installed_by = installer
                session.add(workspace)

    oauth = None
    store = None
    if settings.slack_oauth_enabled:
        oauth = oauth_settings(settings, runtime.db.engine, on_change=installation_changed)
        store = oauth.installation_store
    platform = SlackPlatform(
        base_url=settings.slack_api_url,
        token=settings.slack_bot_token,
        find_token=store.bot_token if store is not None else None,  # type: ignore[attr-defined]
        rate=settings.slack_rate,
        share=settings.processes,
    )
    bridge = SlackBridge(
        bot=runtime.bot,
        settings=settings,
        platform=platform,
        intake=runtime.accept,
        oauth=oauth,
    )
    runtime.platforms[PLATFORM] = platform
    runtime.inbox_work[PLATFORM] = bridge.work

    secret = settings.slack_signing_secret
    verifier = payloads.RawSignatureVerifier(secret) if secret else None
    bound_bolt_logs(bridge)

    async def events(request: web.Request) -> web.Response:
        if verifier is None:  # token-only (worker) or Socket Mode: no way to verify requests
            return web.json_response({"error": "SLACK_SIGNING_SECRET is not set"}, status=503)
        raw = await request.read()
        if not verifier.is_valid_request(raw, request.headers):
            log.info("Slack request with a bad or stale signature refused (%d bytes)", len(raw))
            return web.json_response({"error": "invalid request signature"}, status=401)
        try:
            body = payloads.read(raw, request.content_type)
            # Bolt takes the body as read and checked here; "socket_mode" is how it is told
            # so, and only skips its own signature check (done above, on the raw bytes).
            bolt_request = AsyncBoltRequest(
                body=body,
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]
                mode="socket_mode",
            )
        except payloads.Malformed as why:
            log.warning("malformed Slack request refused (%d bytes): %s", len(raw), why)
            return web.json_response({"error": f"malformed request: {why}"}, status=400)
        except Exception:  # Bolt could not make a request of it: still the sender's fault
            log.warning("malformed Slack request refused (%d bytes)", len(raw))
            return web.json_response({"error": "malformed request"}, status=400)
        try:
            await runtime.accept().admit()
        except Refused as why:
            log.warning("Slack request refused for now (%s); Slack will retry it", why)
            return web.json_response(
                {"error": "busy, try again"}, status=503, headers={"Retry-After": "1"}
            )
        response = await bridge.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    async def install(request: web.Request) -> web.Response:
        flow = bridge.app.oauth_flow
        if flow is None:
            raise web.HTTPNotFound(text="Slack OAuth is not configured (set SLACK_CLIENT_ID).")
        return await to_aiohttp_response(
            await flow.handle_installation(await to_bolt_request(request))
        )

    async def oauth_redirect(request: web.Request) -> web.Response:
        flow = bridge.app.oauth_flow
        if flow is None:
            raise web.HTTPNotFound(text="Slack OAuth is not configured (set SLACK_CLIENT_ID).")
        return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

    def add_routes(app: web.Application) -> None:
        app.router.add_post("/slack/events", events)
        app.router.add_get("/slack/install", install)
        app.router.add_get("/slack/oauth_redirect", oauth_redirect)

    runtime.web_handlers.append(add_routes)
    runtime.closers.append(platform.close)  # after the last send (plnbot/runtime.py)
    runtime.attach(slack=bridge)
    return bridge


def bound_bolt_logs(bridge: SlackBridge) -> None:
    """Bolt logs some requests whole (an unhandled one's fields; a refused one's body, at
    INFO): every logger it has made for this app keeps its records short instead."""
    from plnbot.runtime import BoundedRecords

    prefixes = ("slack_bolt", "slack_sdk", bridge.app.name)
    bounded = BoundedRecords()
    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith(prefixes):
            logger = logging.getLogger(name)
            if not any(isinstance(f, BoundedRecords) for f in logger.filters):
                logger.addFilter(bounded)


def attach_socket_mode(runtime: Runtime, app: web.Application) -> None:
    """Receive Slack requests over Socket Mode (SLACK_APP_TOKEN) instead of HTTP."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    bridge = runtime.slack
    if bridge is None:
        raise RuntimeError("Socket Mode needs Slack attached first (attach_slack)")
    handler = AsyncSocketModeHandler(bridge.app, runtime.settings.slack_app_token)

    async def connect(app: web.Application) -> None:
        await handler.connect_async()
        log.info("Slack Socket Mode connected")

    async def disconnect(app: web.Application) -> None:
        await handler.close_async()

    app.on_startup.append(connect)
    app.on_cleanup.append(disconnect)
