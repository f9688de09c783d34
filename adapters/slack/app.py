"""The Bolt app: every Slack request is verified, acked first, then handed to the core.

Listeners ack straight away (Slack's 3-second limit), then translate the payload to a
neutral event and let the bot do the database work and replies after the ack.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from sqlalchemy.engine import Engine

from adapters.slack import inbound
from adapters.slack.deferred import DeferredWork
from adapters.slack.platform import SlackPlatform, make_client
from adapters.slack.render import card_blocks, modal_view
from adapters.slack.stores import InstallationStore, StateStore
from bot.config import Settings
from bot.dispatch import Bot
from bot.events import Event, UserRef
from bot.evidence import share_form
from bot.messages import Button, Card
from bot.port import UserInfo

log = logging.getLogger(__name__)

SHARE_SHORTCUT = "share_evidence"
BOT_SCOPES = [
    "commands",
    "chat:write",
    "im:write",
    "im:history",
    "channels:read",
    "groups:read",
    "channels:history",
    "groups:history",
    "reactions:read",
    "users:read",
    "files:write",
]
_URL = re.compile(r"https?://[^\s<>|]+")


class SlackBridge:
    """Holds the Bolt app and the platform; runs the core for each verified request."""

    def __init__(
        self,
        *,
        bot: Bot,
        settings: Settings,
        platform: SlackPlatform,
        oauth: AsyncOAuthSettings | None = None,
    ):
        self.bot = bot
        self.settings = settings
        self.platform = platform
        self._people: dict[tuple[str, str], UserInfo] = {}
        self.work = DeferredWork()
        self._sending: set[asyncio.Task[list[Any]]] = set()
        self._lookups: dict[tuple[str, str], asyncio.Future[UserInfo]] = {}
        kwargs: dict[str, Any] = {
            "signing_secret": settings.slack_signing_secret or "socket-mode",
            "client": make_client(settings.slack_bot_token, settings.slack_api_url),
            # Listeners ack and return at once (the work is deferred), so Bolt can answer
            # as soon as they return instead of polling for the ack.
            "process_before_response": True,
            "raise_error_for_unhandled_request": False,
        }
        if oauth is not None:
            kwargs["oauth_settings"] = oauth
        self.app = AsyncApp(**kwargs)
        if oauth is not None:
            self.app.enable_token_revocation_listeners()
        self._register()

    def defer(self, event: Event | None) -> None:
        """Hand an acknowledged event to the deferred work queue (in order per person)."""
        if event is None or not event.user.user_id:
            return
        self.work.submit(f"{event.user.workspace_id}:{event.user.user_id}", lambda: self.run(event))

    async def run(self, event: Event | None) -> None:
        """Handle a neutral event; never lets an exception reach Slack. The database work
        runs here, in order; the replies go out on their own, paced per channel."""
        if event is None or not event.user.user_id:
            return
        try:
            event = await self._with_name(event)
            outgoing = await self.bot.process(event, self.platform)
        except Exception:
            log.exception("Slack event %s failed", type(event).__name__)
            return
        if outgoing:
            task = asyncio.get_running_loop().create_task(
                self.bot.deliver(self.platform, event, outgoing)
            )
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _with_name(self, event: Event) -> Event:
        """Members are shown by their Slack display name, and their Slack timezone serves
        until they set one; look both up once per process (concurrent first looks share one
        users.info call)."""
        key = (event.user.workspace_id, event.user.user_id)
        if key not in self._people:
            pending = self._lookups.get(key)
            if pending is None:
                pending = asyncio.ensure_future(self.platform.user_info(event.user))
                self._lookups[key] = pending
            try:
                self._people[key] = await asyncio.shield(pending)
            except Exception:
                return event
            finally:
                self._lookups.pop(key, None)
        info = self._people[key]
        return replace(
            event,
            user=replace(event.user, name=info.name or event.user.name, timezone=info.timezone),
        )

    async def idle(self) -> None:
        """Wait until queued work and its replies are done (tests, shutdown)."""
        await self.work.join()
        while self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)

    def _register(self) -> None:
        app = self.app

        @app.command("/pln")
        async def command(ack: AsyncAck, body: dict[str, Any]) -> None:
            await ack()
            self.defer(inbound.command_event(body))

        @app.event("message")
        async def message(ack: AsyncAck, body: dict[str, Any]) -> None:
            await ack()
            self.defer(inbound.message_event(body))

        @app.event("reaction_added")
        async def reaction_added(ack: AsyncAck, body: dict[str, Any]) -> None:
            await ack()
            self.defer(inbound.reaction_event(body))

        @app.event("reaction_removed")
        async def reaction_removed(ack: AsyncAck, body: dict[str, Any]) -> None:
            await ack()
            self.defer(inbound.reaction_event(body))

        @app.event("member_joined_channel")
        async def joined(ack: AsyncAck, body: dict[str, Any]) -> None:
            await ack()
            self.defer(inbound.joined_event(body))

        @app.event("app_home_opened")
        async def home(ack: AsyncAck, body: dict[str, Any]) -> None:
            await ack()
            event = body.get("event") or {}
            if event.get("tab") not in (None, "home"):
                return
            team = body.get("team_id", "")
            user = UserRef(
                platform=inbound.PLATFORM, workspace_id=team, user_id=event.get("user", "")
            )

            async def publish() -> None:
                card = self.bot.home(user)
                view = {"type": "home", "blocks": card_blocks(card)}
                await self.platform.publish_home(team, user.user_id, view)

            self.work.submit(f"{team}:{user.user_id}", publish)

        @app.action(re.compile(r".+"))
        async def action(ack: AsyncAck, body: dict[str, Any]) -> None:
            await ack()
            self.defer(inbound.action_event(body))

        @app.view(re.compile(r".+"))
        async def view(ack: AsyncAck, body: dict[str, Any]) -> None:
            await ack()
            self.defer(inbound.view_event(body))

        @app.shortcut(SHARE_SHORTCUT)
        async def share_shortcut(ack: AsyncAck, body: dict[str, Any], client: Any) -> None:
            await ack()
            user = (body.get("user") or {}).get("id", "")
            self.work.submit(f"{_team_of(body)}:{user}", lambda: self._open_share_modal(body))

        @app.error
        async def on_error(error: Exception, body: dict[str, Any]) -> None:
            log.error("Slack listener error: %s", error.__class__.__name__, exc_info=error)

    async def _open_share_modal(self, body: dict[str, Any]) -> None:
        """ "Share as evidence" on any message: a share form prefilled from the message."""
        message = body.get("message") or {}
        text = inbound.plain_text(message.get("text", ""))
        files = message.get("files") or []
        url_match = _URL.search(text)
        url = url_match.group(0) if url_match else (files[0].get("permalink", "") if files else "")
        first_line = _URL.sub("", text).strip().split("\n", 1)[0][:200]
        title = first_line or (files[0].get("title", "") if files else "")
        form = share_form()
        inputs = tuple(
            type(field)(
                **{
                    **field.__dict__,
                    "initial": {"url": url, "title": title, "description": text}.get(field.id, ""),
                }
            )
            for field in form.inputs
        )
        channel = (body.get("channel") or {}).get("id", "")
        card = Card(
            title="Share as evidence",
            body=form.body,
            inputs=inputs,
            submit=Button(label="Share", action_id="share_submit", value=channel),
        )
        view = modal_view(card, channel_id=channel, is_dm=channel.startswith("D"))
        team = (body.get("team") or {}).get("id", "")
        try:
            client = await self.platform.client(team)
            await client.views_open(trigger_id=body["trigger_id"], view=view)
        except Exception:
            log.exception("opening the share modal failed")


def oauth_settings(settings: Settings, engine: Engine) -> AsyncOAuthSettings:
    """Bolt's OAuth flow with installations and state kept in our own database."""
    assert settings.slack_client_id is not None
    return AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        scopes=BOT_SCOPES,
        installation_store=InstallationStore(settings.slack_client_id, engine),
        state_store=StateStore(engine),
        install_path="/slack/install",
        redirect_uri_path="/slack/oauth_redirect",
    )


def _team_of(body: dict[str, Any]) -> str:
    return str((body.get("team") or {}).get("id") or body.get("team_id") or "")
