"""Test doubles for the core's ports. `RecordingPlatform`, an in-memory platform at the
adapter port, records what the bot sends, like errbot's test backend: tests read `sent` (or
`pop()`) to check the dialogue. `FrozenClock` moves only when told to."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.core.events import ConversationRef, MessageRef, UserRef
from bot.core.messages import Message, Visibility
from bot.core.port import DeliveryError, UserInfo


@dataclass
class Sent:
    conversation: ConversationRef
    message: Message
    ref: MessageRef

    @property
    def text(self) -> str:
        return self.message.text

    @property
    def ephemeral(self) -> bool:
        return self.message.visibility is Visibility.EPHEMERAL


@dataclass
class RecordingPlatform:
    name: str = "test"
    workspace_id: str = "W1"
    sent: list[Sent] = field(default_factory=list)
    updates: list[tuple[MessageRef, Message]] = field(default_factory=list)
    admins: set[str] = field(default_factory=set)
    timezones: dict[str, str] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    fail_next: list[DeliveryError] = field(default_factory=list)
    forms: bool = False  # like Slack from a typed DM: a card's inputs don't show as a form
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def shows_forms(self, conversation: ConversationRef) -> bool:
        return self.forms

    async def send(self, conversation: ConversationRef, message: Message) -> MessageRef:
        if self.fail_next:
            raise self.fail_next.pop(0)
        ref = MessageRef(conversation=conversation, message_id=f"m{next(self._ids)}")
        self.sent.append(Sent(conversation, message, ref))
        return ref

    async def update(self, ref: MessageRef, message: Message) -> None:
        self.updates.append((ref, message))

    async def open_dm(self, user: UserRef) -> ConversationRef:
        return ConversationRef(
            platform=user.platform,
            workspace_id=user.workspace_id,
            channel_id=f"D-{user.user_id}",
            is_dm=True,
        )

    async def user_info(self, user: UserRef) -> UserInfo:
        return UserInfo(
            name=user.name,
            timezone=self.timezones.get(user.user_id),
            is_admin=user.user_id in self.admins,
        )

    async def channel_members(self, conversation: ConversationRef) -> list[str]:
        return list(self.members.get(conversation.channel_id, []))

    def pop(self) -> list[Sent]:
        out, self.sent = self.sent, []
        return out

    def texts(self) -> list[str]:
        return [s.text for s in self.sent]

    def dms_to(self, user_id: str) -> list[Sent]:
        return [s for s in self.sent if s.conversation.channel_id == f"D-{user_id}"]

    def in_channel(self, channel_id: str) -> list[Sent]:
        return [s for s in self.sent if s.conversation.channel_id == channel_id and not s.ephemeral]


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(UTC)
