"""The Slack side of the adapter port: send, update, open a DM, look people up.

Web API calls go through slack_sdk's AsyncWebClient with `base_url` from SLACK_API_URL and
the rate-limit (429 Retry-After) and server-error retry handlers installed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.inbound import PLATFORM
from adapters.slack.render import message_payload, modal_view
from bot.core.events import ConversationRef, MessageRef, UserRef
from bot.core.messages import Message, Visibility
from bot.core.port import DeliveryError, UserInfo
from bot.delivery.ratelimit import KeyedLimiter

log = logging.getLogger(__name__)

TokenLookup = Callable[[str], Awaitable[str | None]]
PERMANENT_ERRORS = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "account_inactive",
    "token_revoked",
    "invalid_auth",
    "user_not_found",
    "cannot_dm_bot",
    "user_not_in_channel",
    # What was sent is refused as it is: sending it again would be refused again.
    "invalid_blocks",
    "invalid_blocks_format",
    "invalid_arguments",
    "msg_too_long",
    "no_text",
    "view_too_large",
    "message_not_found",
    "cant_update_message",
    "invalid_trigger_id",
    "expired_trigger_id",
    "exchanged_trigger_id",
}
# What a person reads when a form could not open, by Slack's error.
_FORM_FAILED = {
    "expired_trigger_id": "Slack gives an app three seconds to open a form, and I was too "
    "slow this time.",
    "exchanged_trigger_id": "that click had already opened a form.",
}


class SlackError(DeliveryError):
    """A Web API call answered `ok: false`; `code` is Slack's error."""

    def __init__(self, message: str, *, code: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.code = code


class ResponseUrlGone(DeliveryError):
    """A response_url that no longer answers: used five times, or older than 30 minutes."""


def form_failed_text(code: str) -> str:
    why = _FORM_FAILED.get(code) or f"Slack said `{code}`."
    return (
        f"Sorry, I couldn't open the form: {why} Nothing was changed. Please try again; "
        "you can also type the command with its words instead (`/pln help` lists them)."
    )


def retry_handlers() -> list[Any]:
    return [
        AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        AsyncServerErrorRetryHandler(max_retry_count=2),
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
    ]


def make_client(
    token: str | None, base_url: str, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    return AsyncWebClient(
        token=token, base_url=base_url, retry_handlers=retry_handlers(), session=session
    )


class SlackPlatform:
    """Implements `bot.port.Platform` for Slack workspaces (single token or OAuth installs)."""

    name = PLATFORM

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None = None,
        find_token: TokenLookup | None = None,
        rate: float = 20.0,
        share: int = 1,
    ):
        self.base_url = base_url
        # Slack allows about one message per second per channel (with short bursts) and a
        # workspace-wide budget; pacing here keeps the outbox under both. One of `share`
        # processes on a host (`serve --processes`) keeps to its part of each.
        self._workspace_pace = KeyedLimiter(rate=rate / share, burst=1.0)
        self._channel_pace = KeyedLimiter(rate=1.0 / share, burst=max(1.0, 4.0 / share))
        self._token = token
        self._find_token = find_token
        self._clients: dict[str, AsyncWebClient] = {}
        self._http: aiohttp.ClientSession | None = None

    async def client(self, team_id: str) -> AsyncWebClient:
        """The Web API client for a workspace: its installation's token, or the single token."""
        if team_id in self._clients:
            return self._clients[team_id]
        token = await self._find_token(team_id) if self._find_token else None
        token = token or self._token
        if not token:
            raise DeliveryError(f"no Slack token for workspace {team_id}", permanent=True)
        # One pooled HTTP session for every workspace's client: slack_sdk otherwise opens a
        # new connection for each call.
        client = make_client(token, self.base_url, session=self._session())
        self._clients[team_id] = client
        return client

    def forget_workspace(self, team_id: str) -> None:
        self._clients.pop(team_id, None)

    async def _paced(self, team_id: str, channel: str) -> None:
        # The channel's turn first: a busy channel then never holds up other channels'
        # messages in the workspace queue.
        await self._channel_pace.acquire(f"{team_id}:{channel}")
        await self._workspace_pace.acquire(team_id)

    async def _call(self, team_id: str, method: str, **kwargs: Any) -> Any:
        if method in ("chat.postMessage", "chat.update"):
            await self._paced(team_id, str(kwargs.get("channel", "")))
        client = await self.client(team_id)
        try:
            return await getattr(client, method.replace(".", "_"))(**kwargs)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            retry_after = (
                exc.response.headers.get("Retry-After") if exc.response.status_code == 429 else None
            )
            raise SlackError(
                f"Slack {method}: {error}",
                code=error,
                retry_after=float(retry_after) if retry_after else None,
                permanent=error in PERMANENT_ERRORS,
            ) from exc

    async def send(self, conversation: ConversationRef, message: Message) -> MessageRef:
        team = conversation.workspace_id
        raw = dict(conversation.raw or {})
        card = message.card
        if card is not None and card.inputs and card.submit is not None and raw.get("trigger_id"):
            view = modal_view(card, channel_id=conversation.channel_id, is_dm=conversation.is_dm)
            return await self.open_modal(
                conversation, view, trigger_id=raw["trigger_id"], person=message.to
            )
        payload = message_payload(message)
        if message.attachment is not None:
            attachment = message.attachment
            client = await self.client(team)
            try:
                await client.files_upload_v2(
                    channel=conversation.channel_id,
                    content=attachment.content,
                    filename=attachment.filename,
                    title=attachment.filename,
                    initial_comment=payload["text"],
                )
            except SlackApiError as exc:
                raise DeliveryError(f"Slack files.upload: {exc.response.get('error')}") from exc
            return MessageRef(conversation=conversation, message_id="")
        private = message.visibility is Visibility.EPHEMERAL or (
            conversation.is_dm and message.visibility is Visibility.CHANNEL
        )
        if private and raw.get("response_url"):
            # Answers to the person who acted go back through response_url: it works in
            # any conversation, including DMs the bot is not a member of.
            try:
                await self._respond(
                    raw["response_url"],
                    {**payload, "response_type": "ephemeral", "replace_original": False},
                )
                return MessageRef(conversation=conversation, message_id="")
            except ResponseUrlGone as gone:
                if message.to is None:
                    raise
                log.info("%s; answering %s another way", gone, message.to.user_id)
                if conversation.is_dm or message.visibility is not Visibility.EPHEMERAL:
                    await self._call(
                        team, "chat.postMessage", channel=message.to.user_id, **payload
                    )
                    return MessageRef(conversation=conversation, message_id="")
        if message.visibility is Visibility.EPHEMERAL and not conversation.is_dm:
            assert message.to is not None
            try:
                result = await self._call(
                    team,
                    "chat.postEphemeral",
                    channel=conversation.channel_id,
                    user=message.to.user_id,
                    **payload,
                )
            except DeliveryError as error:
                if "user_not_in_channel" not in str(error):
                    raise
                # Someone acting on a card outside its channel (a form, a shared link):
                # their answer comes as a direct message instead.
                result = await self._call(
                    team, "chat.postMessage", channel=message.to.user_id, **payload
                )
                return MessageRef(conversation=conversation, message_id="")
            return MessageRef(
                conversation=conversation, message_id=str(result.get("message_ts", ""))
            )
        thread = message.thread_id
        if thread:
            payload["thread_ts"] = thread
        result = await self._call(
            team, "chat.postMessage", channel=conversation.channel_id, **payload
        )
        channel = str(result.get("channel") or conversation.channel_id)
        posted = ConversationRef(
            platform=PLATFORM, workspace_id=team, channel_id=channel, is_dm=conversation.is_dm
        )
        return MessageRef(conversation=posted, message_id=str(result["ts"]))

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._http

    async def _respond(self, url: str, body: dict[str, Any]) -> None:
        """Answer through a slash command's or action's response_url (works in any channel)."""
        async with self._session().post(url, json=body) as response:
            if response.status in (404, 410):
                raise ResponseUrlGone(
                    f"response_url answered {response.status} {await response.text()}",
                    permanent=True,
                )
            if response.status >= 400:
                raise DeliveryError(
                    f"response_url answered {response.status} {await response.text()}",
                    permanent=response.status < 500,
                )

    async def open_modal(
        self,
        conversation: ConversationRef,
        view: dict[str, Any],
        *,
        trigger_id: str,
        person: UserRef | None,
    ) -> MessageRef:
        """Open a modal with a command's or a click's trigger. When Slack won't (the trigger
        lasted its three seconds, a view refused), the person is told privately what
        happened and what to do instead, and that answer stands for the form."""
        try:
            result = await self._call(
                conversation.workspace_id, "views.open", trigger_id=trigger_id, view=view
            )
            return MessageRef(conversation=conversation, message_id=str(result["view"]["id"]))
        except DeliveryError as error:
            if person is None:
                raise
            code = error.code if isinstance(error, SlackError) else "unknown_error"
            (log.error if code == "invalid_arguments" else log.warning)(
                "opening a form for %s failed: %s", person.user_id, error
            )
            raw = {k: v for k, v in (conversation.raw or {}).items() if k != "trigger_id"}
            visibility = Visibility.CHANNEL if conversation.is_dm else Visibility.EPHEMERAL
            notice = Message(text=form_failed_text(code), visibility=visibility, to=person)
            await self.send(replace(conversation, raw=raw), notice)
            return MessageRef(conversation=conversation, message_id="")

    def shows_forms(self, conversation: ConversationRef) -> bool:
        """A modal opens only with the trigger of a command or a click (`FormCheck`)."""
        return bool((conversation.raw or {}).get("trigger_id"))

    async def update(self, ref: MessageRef, message: Message) -> None:
        # chat.update keeps a message's old blocks unless told otherwise: an update without
        # a card (a removed share, a forgotten person) must clear them explicitly.
        payload = {"blocks": [], **message_payload(message)}
        await self._call(
            ref.conversation.workspace_id,
            "chat.update",
            channel=ref.conversation.channel_id,
            ts=ref.message_id,
            **payload,
        )

    async def open_dm(self, user: UserRef) -> ConversationRef:
        # Posting to a user id delivers to the app's DM with them (no conversations.open,
        # whose Tier 3 limit would throttle a fan-out to thousands of members).
        return ConversationRef(
            platform=PLATFORM, workspace_id=user.workspace_id, channel_id=user.user_id, is_dm=True
        )

    async def user_info(self, user: UserRef) -> UserInfo:
        result = await self._call(user.workspace_id, "users.info", user=user.user_id)
        data = result["user"]
        profile = data.get("profile") or {}
        return UserInfo(
            name=profile.get("display_name") or data.get("real_name") or data.get("name", ""),
            timezone=data.get("tz"),
            is_admin=bool(
                data.get("is_admin") or data.get("is_owner") or data.get("is_primary_owner")
            ),
        )

    async def channel_members(self, conversation: ConversationRef) -> list[str]:
        client = await self.client(conversation.workspace_id)
        members: list[str] = []
        cursor = None
        bot_user = await self._bot_user(conversation.workspace_id)
        while True:
            try:
                page = await client.conversations_members(
                    channel=conversation.channel_id, limit=200, cursor=cursor
                )
            except SlackApiError as exc:
                raise DeliveryError(
                    f"Slack conversations.members: {exc.response.get('error')}"
                ) from exc
            page_members: list[str] = page.get("members", [])  # user ids
            members += [m for m in page_members if m != bot_user]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return members

    async def _bot_user(self, team_id: str) -> str | None:
        client = await self.client(team_id)
        cached = getattr(client, "_plnbot_bot_user", None)
        if cached is None:
            try:
                cached = (await client.auth_test()).get("user_id")
            except SlackApiError:
                cached = ""
            client._plnbot_bot_user = cached  # type: ignore[attr-defined]
        return cached or None

    async def publish_home(self, team_id: str, user_id: str, view: dict[str, Any]) -> None:
        await self._call(team_id, "views.publish", user_id=user_id, view=view)

    async def close(self) -> None:
        self._clients.clear()
        if self._http is not None:
            await self._http.close()
