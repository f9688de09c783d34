"""A dialogue helper: people say things in channels and DMs; the test reads the replies."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.core.dispatch import Bot
from bot.core.events import (
    ActionEvent,
    CommandEvent,
    ConversationRef,
    MemberJoinedEvent,
    MessageEvent,
    MessageRef,
    ReactionEvent,
    UserRef,
)
from bot.delivery.sender import OutboxSender
from tests.doubles import FrozenClock, RecordingPlatform, Sent

CHANNEL = "C_PLN"


@dataclass
class Story:
    bot: Bot
    platform: RecordingPlatform
    clock: FrozenClock
    sender: OutboxSender
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def user(self, user_id: str) -> UserRef:
        return UserRef(
            platform=self.platform.name,
            workspace_id=self.platform.workspace_id,
            user_id=user_id,
            name=user_id.removeprefix("U_").title(),
        )

    def channel(self, channel_id: str = CHANNEL, thread_id: str | None = None) -> ConversationRef:
        return ConversationRef(
            platform=self.platform.name,
            workspace_id=self.platform.workspace_id,
            channel_id=channel_id,
            thread_id=thread_id,
            name="pln-math",
        )

    def dm_with(self, user_id: str) -> ConversationRef:
        return ConversationRef(
            platform=self.platform.name,
            workspace_id=self.platform.workspace_id,
            channel_id=f"D-{user_id}",
            is_dm=True,
        )

    async def command(
        self, user_id: str, text: str, *, channel: str | None = CHANNEL, key: str | None = None
    ) -> list[Sent]:
        """`/pln <text>` in a channel (or, with channel=None, the words in a DM)."""
        self.platform.pop()
        conversation = self.channel(channel) if channel else self.dm_with(user_id)
        await self.bot.handle(
            CommandEvent(
                user=self.user(user_id), conversation=conversation, text=text, dedupe_key=key
            ),
            self.platform,
        )
        return self.platform.pop()

    async def say(self, user_id: str, text: str, *, key: str | None = None) -> list[Sent]:
        """Free text in the DM with the bot."""
        self.platform.pop()
        event = MessageEvent(
            user=self.user(user_id), conversation=self.dm_with(user_id), text=text, dedupe_key=key
        )
        await self.bot.handle(event, self.platform)
        return self.platform.pop()

    async def reply_in_thread(
        self, user_id: str, thread_id: str, text: str, channel: str = CHANNEL
    ) -> list[Sent]:
        self.platform.pop()
        event = MessageEvent(
            user=self.user(user_id), conversation=self.channel(channel, thread_id), text=text
        )
        await self.bot.handle(event, self.platform)
        return self.platform.pop()

    async def press(
        self,
        user_id: str,
        action_id: str,
        value: str = "",
        values: Mapping[str, str] | None = None,
        *,
        channel: str | None = CHANNEL,
        key: str | None = None,
    ) -> list[Sent]:
        self.platform.pop()
        conversation = self.channel(channel) if channel else self.dm_with(user_id)
        event = ActionEvent(
            user=self.user(user_id),
            conversation=conversation,
            action_id=action_id,
            value=value,
            values=dict(values or {}),
            dedupe_key=key,
        )
        await self.bot.handle(event, self.platform)
        return self.platform.pop()

    async def react(
        self, user_id: str, message: MessageRef, reaction: str = "star", added: bool = True
    ) -> list[Sent]:
        self.platform.pop()
        event = ReactionEvent(
            user=self.user(user_id),
            conversation=message.conversation,
            reaction=reaction,
            message=message,
            added=added,
        )
        await self.bot.handle(event, self.platform)
        return self.platform.pop()

    async def join(self, user_id: str, channel: str = CHANNEL) -> list[Sent]:
        self.platform.pop()
        await self.bot.handle(
            MemberJoinedEvent(user=self.user(user_id), conversation=self.channel(channel)),
            self.platform,
        )
        return self.platform.pop()

    async def deliver(self) -> list[Sent]:
        """Run the outbox sender once and return what it sent."""
        self.platform.pop()
        await self.sender.deliver_due()
        return self.platform.pop()
