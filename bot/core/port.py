"""The adapter port: the few things the core asks of a platform, and `send_message`, which
sends one message over it where the message says it goes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.core.events import ConversationRef, MessageRef, UserRef
from bot.core.messages import Message, Visibility


@dataclass(frozen=True, kw_only=True)
class UserInfo:
    """What a platform can tell about a person."""

    name: str = ""
    timezone: str | None = None
    is_admin: bool = False


class DeliveryError(Exception):
    """A platform refused a message. `retry_after` is set for rate limits."""

    def __init__(self, reason: str, *, retry_after: float | None = None, permanent: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent


class Platform(Protocol):
    """What the core needs from Slack, Teams, the web playground or a test double."""

    name: str

    async def send(self, conversation: ConversationRef, message: Message) -> MessageRef:
        """Post `message` in `conversation` (ephemeral to `message.to` when asked)."""
        ...

    async def update(self, ref: MessageRef, message: Message) -> None:
        """Replace a message the bot posted earlier."""
        ...

    async def open_dm(self, user: UserRef) -> ConversationRef:
        """The direct conversation with `user`, opened if needed."""
        ...

    async def user_info(self, user: UserRef) -> UserInfo:
        """Name, timezone and admin flag, as far as the platform knows them."""
        ...

    async def channel_members(self, conversation: ConversationRef) -> list[str]:
        """Platform user ids of a channel's members (empty when unknown)."""
        ...


@runtime_checkable
class ReachCheck(Protocol):
    """Optional: a platform that can tell whom it can't message directly yet (Teams can only
    open a 1:1 chat with someone the bot has met), so a coach is told instead of guessing."""

    async def unreachable(self, users: list[UserRef]) -> list[UserRef]:
        """The `users` a direct message can't reach now."""
        ...


@runtime_checkable
class FormCheck(Protocol):
    """Optional: a platform that can show a form only in some conversations (Slack opens a
    modal only with a fresh trigger, from a command or a click, never from a typed DM)."""

    def shows_forms(self, conversation: ConversationRef) -> bool:
        """Whether a card with inputs sent in answer here appears as a form."""
        ...


async def send_message(
    platform: Platform, message: Message, default: ConversationRef | None = None
) -> MessageRef | None:
    """Send one message where it says it goes: an update of a posted message, a DM, its
    conversation, else `default` (where the event happened). The ref of a new post."""
    if message.replace is not None:
        await platform.update(message.replace, message)
        return None
    if message.visibility is Visibility.DM:
        assert message.to is not None
        conversation: ConversationRef | None = await platform.open_dm(message.to)
    else:
        conversation = message.conversation or default
    assert conversation is not None
    return await platform.send(conversation, message)
