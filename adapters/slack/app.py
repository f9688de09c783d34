"""The Bolt app: every Slack request is verified, acked first, then handed to the core.

Listeners store the request in the inbox and ack (Slack's 3-second limit); the inbox's
workers translate it to a neutral event and run the unit of work, whose replies go out
through the outbox. A request Slack was told about is never lost to a crash or a deploy.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from sqlalchemy.engine import Engine

from adapters.slack import inbound
from adapters.slack.platform import SlackPlatform, make_client
from adapters.slack.render import card_blocks, modal_view
from adapters.slack.stores import InstallationStore, StateStore
from bot.config import Settings
from bot.core.dispatch import Bot
from bot.core.events import ConversationRef, Event, ReactionEvent, UserRef
from bot.core.inbox import Claim, Intake
from bot.core.port import UserInfo
from bot.features.evidence import FORM_NOTES, member_share_form
from storage.inbox import NewEvent
from storage.queries import scoped_key

log = logging.getLogger(__name__)

SHARE_SHORTCUT = "share_evidence"
BOT_SCOPES = [
    "app_mentions:read",
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


# What each stored kind of request becomes when it is worked.
_EVENTS: dict[str, Callable[[dict[str, Any]], Event | None]] = {
    "command": inbound.command_event,
    "mention": inbound.mention_event,
    "message": inbound.message_event,
    "reaction": inbound.reaction_event,
    "joined": inbound.joined_event,
    "action": inbound.action_event,
    "view": inbound.view_event,
}


class SlackBridge:
    """Holds the Bolt app and the platform. Each verified request is stored in the inbox
    before Bolt acknowledges it, and worked from there (`work`) by the inbox's workers."""

    def __init__(
        self,
        *,
        bot: Bot,
        settings: Settings,
        platform: SlackPlatform,
        intake: Callable[[], Intake],
        oauth: AsyncOAuthSettings | None = None,
    ):
        self.bot = bot
        self.settings = settings
        self.platform = platform
        self.intake = intake
        self._people: dict[tuple[str, str], UserInfo] = {}

        # A person who asked to be forgotten leaves no name behind in memory either.
        def forget_name(user: UserRef) -> None:
            self._people.pop((user.workspace_id, user.user_id), None)

        bot.on_forgotten.append(forget_name)
        self._lookups: dict[tuple[str, str], asyncio.Future[UserInfo]] = {}
        kwargs: dict[str, Any] = {
            "signing_secret": settings.slack_signing_secret or "socket-mode",
            "client": make_client(settings.slack_bot_token, settings.slack_api_url),
            # Listeners store the request and ack, nothing more, so Bolt can answer as soon
            # as they return instead of polling for the ack.
            "process_before_response": True,
            "raise_error_for_unhandled_request": False,
        }
        if oauth is not None:
            kwargs["oauth_settings"] = oauth
        self.app = AsyncApp(**kwargs)
        if oauth is not None:
            self.app.enable_token_revocation_listeners()
        else:
            # With one token there are no installations to delete, but Slack still sends
            # these (and retries a 404): answer 200 and say plainly what happened.
            self.app.event("app_uninstalled")(self._uninstalled)
            self.app.event("tokens_revoked")(self._uninstalled)
        self._register()

    async def accept(self, kind: str, body: dict[str, Any]) -> None:
        """Store a request durably (before the ack), keyed so a Slack retry is recognised,
        in its person's lane. Requests that are nothing for the bot are not stored."""
        team = _team_of(body)
        if kind in _EVENTS:
            event = _EVENTS[kind](body)
            if event is None or not event.user.user_id or self._ignored(event):
                return
            key = self.bot.receipt_key(event) or f"{kind}:{uuid.uuid4().hex}"
            user = event.user.user_id
        else:  # app_home_opened, the message shortcut
            user = str(
                (body.get("event") or {}).get("user") or (body.get("user") or {}).get("id") or ""
            )
            if not user:
                return
            ident = body.get("event_id") or body.get("trigger_id") or uuid.uuid4().hex
            key = scoped_key(inbound.PLATFORM, team, kind, str(ident))
        await self.intake().put(
            NewEvent(
                key=key,
                platform=inbound.PLATFORM,
                lane=f"{inbound.PLATFORM}:{team}:{user}",
                kind=kind,
                payload=json.dumps(body, separators=(",", ":")),
            )
        )

    async def _uninstalled(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        team = _team_of(body)
        event = body.get("event") or {}
        self.platform.forget_workspace(team)
        if event.get("type") == "app_uninstalled":
            log.error(
                "Slack: the app was uninstalled from workspace %s; SLACK_BOT_TOKEN no longer "
                "works there. Reinstall the app and set the new bot token to use it again.",
                team,
            )
        else:
            tokens = event.get("tokens") or {}
            log.error(
                "Slack: tokens were revoked in workspace %s (bot users %s, users %s); if "
                "SLACK_BOT_TOKEN was one, reinstall the app and set the new bot token.",
                team,
                ", ".join(tokens.get("bot") or []) or "none",
                ", ".join(tokens.get("oauth") or []) or "none",
            )

    def _ignored(self, event: Event) -> bool:
        """A reaction other than the endorsing one: nothing for the bot (most reactions)."""
        return (
            isinstance(event, ReactionEvent)
            and event.reaction.split("::")[0] != self.settings.slack_endorse_reaction
        )

    async def work(self, claim: Claim) -> None:
        """Work one stored request: the unit of work (its replies queued in the outbox in the
        same transaction), or a home tab or a share form to show."""
        body = json.loads(claim.event.payload)
        kind = claim.event.kind
        if kind == "home":
            await self._publish_home(body)
        elif kind == "shortcut":
            await self._open_share_modal(body)
        else:
            event = _EVENTS[kind](body)
            if event is None or not event.user.user_id:
                return
            if not await self.bot.wants(event):  # asked before users.info: leave no trace
                return
            event = await self._with_name(event)
            await self.bot.process(event, self.platform, finish=claim.finish)

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

    async def _publish_home(self, body: dict[str, Any]) -> None:
        event = body.get("event") or {}
        team = _team_of(body)
        user = UserRef(platform=inbound.PLATFORM, workspace_id=team, user_id=event.get("user", ""))
        card = await self.bot.db.run(self.bot.home, user)
        view = {"type": "home", "blocks": card_blocks(card)}
        await self.platform.publish_home(team, user.user_id, view)

    def _register(self) -> None:
        app = self.app

        def storing(kind: str) -> Callable[..., Awaitable[None]]:
            async def listener(ack: AsyncAck, body: dict[str, Any]) -> None:
                await self.accept(kind, body)
                await ack()

            return listener

        app.command("/pln")(storing("command"))
        app.event("app_mention")(storing("mention"))
        app.event("message")(storing("message"))
        app.event("reaction_added")(storing("reaction"))
        app.event("reaction_removed")(storing("reaction"))
        app.event("member_joined_channel")(storing("joined"))
        app.action(re.compile(r".+"))(storing("action"))
        app.view(re.compile(r".+"))(storing("view"))
        app.shortcut(SHARE_SHORTCUT)(storing("shortcut"))

        @app.event("app_home_opened")
        async def home(ack: AsyncAck, body: dict[str, Any]) -> None:
            if (body.get("event") or {}).get("tab") in (None, "home"):
                await self.accept("home", body)
            await ack()

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
        channel = (body.get("channel") or {}).get("id", "")
        team = _team_of(body)
        person = UserRef(
            platform=inbound.PLATFORM,
            workspace_id=team,
            user_id=str((body.get("user") or {}).get("id") or ""),
        )
        # The member's own form (their goals to choose from), as every other way in opens it.
        prefill = {"url": url, "title": title, "description": text}
        form = await self.bot.db.run(
            self.bot.for_member,
            person,
            functools.partial(member_share_form, channel_id=channel, prefill=prefill),
        )
        longer = (
            f"\n_This message is longer than the box holds ({FORM_NOTES:,} characters), so "
            "only its beginning is filled in._"
            if len(text) > FORM_NOTES
            else ""
        )
        card = replace(form, title="Share as evidence", body=form.body + longer)
        view = modal_view(card, channel_id=channel, is_dm=channel.startswith("D"))
        # Where the person is told, privately, when the form can't open.
        where = ConversationRef(
            platform=inbound.PLATFORM,
            workspace_id=team,
            channel_id=channel,
            is_dm=channel.startswith("D"),
            raw={"response_url": body.get("response_url")},
        )
        try:
            await self.platform.open_modal(
                where, view, trigger_id=str(body.get("trigger_id") or ""), person=person
            )
        except Exception:
            log.exception("opening the share modal failed, and so did telling %s", person.user_id)


def oauth_settings(
    settings: Settings,
    engine: Engine,
    *,
    on_change: Callable[[str, str | None], None] | None = None,
) -> AsyncOAuthSettings:
    """Bolt's OAuth flow with installations and state kept in our own database;
    `on_change(team_id, installer)` is told of every install and uninstall."""
    assert settings.slack_client_id is not None
    return AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        scopes=BOT_SCOPES,
        installation_store=InstallationStore(
            settings.slack_client_id, engine, on_change, token_key=settings.token_key
        ),
        state_store=StateStore(engine),
        install_path="/slack/install",
        redirect_uri_path="/slack/oauth_redirect",
    )


def _team_of(body: dict[str, Any]) -> str:
    return str((body.get("team") or {}).get("id") or body.get("team_id") or "")
