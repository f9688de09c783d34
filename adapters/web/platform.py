"""The playground's side of the adapter port: messages are kept for the page to poll.

The playground is one pretend workspace (`playground`) with a community channel and a DM per
persona: a coach and three teachers. What the bot sends, and what the personas type, lands in
an in-memory log that the page reads through the JSON API. The log is for trying the bot in a
browser: it is bounded and starts empty after a restart (the database keeps the real data:
goals, check-ins, shares, endorsements, digests).
"""

from __future__ import annotations

import itertools
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime

from bot.core.clock import Clock
from bot.core.events import ConversationRef, MessageRef, UserRef
from bot.core.messages import Card, Message, Visibility
from bot.core.port import DeliveryError, UserInfo

PLATFORM = "web"
WORKSPACE = "playground"
CHANNEL = "C_PLAYGROUND"
CHANNEL_NAME = "pln-playground"
BOT = "bot"
MAX_MESSAGES = 300  # per conversation
MAX_FILES = 40


@dataclass(frozen=True, kw_only=True)
class Persona:
    user_id: str
    name: str
    role: str
    is_coach: bool = False


PERSONAS = (
    Persona(user_id="W_CASEY", name="Casey", role="Instructional coach", is_coach=True),
    Persona(user_id="W_ANA", name="Ana", role="Teacher, Grade 5"),
    Persona(user_id="W_BEN", name="Ben", role="Teacher, Science"),
    Persona(user_id="W_CARA", name="Cara", role="Teacher, English"),
)
PERSONA_BY_ID = {p.user_id: p for p in PERSONAS}


def dm_channel(user_id: str) -> str:
    return f"D_{user_id}"


def channel_ref() -> ConversationRef:
    return ConversationRef(
        platform=PLATFORM, workspace_id=WORKSPACE, channel_id=CHANNEL, name=CHANNEL_NAME
    )


def dm_ref(user_id: str) -> ConversationRef:
    return ConversationRef(
        platform=PLATFORM, workspace_id=WORKSPACE, channel_id=dm_channel(user_id), is_dm=True
    )


def user_ref(persona: Persona) -> UserRef:
    return UserRef(
        platform=PLATFORM, workspace_id=WORKSPACE, user_id=persona.user_id, name=persona.name
    )


@dataclass
class StoredFile:
    filename: str
    content: bytes
    mime_type: str


@dataclass
class StoredMessage:
    id: str
    channel_id: str
    author: str  # a persona's user id, or BOT
    at: datetime
    text: str
    card: Card | None = None
    visible_to: str | None = None  # an ephemeral message: only this persona sees it
    thread_id: str | None = None
    file_id: str | None = None
    file_name: str = ""
    reactions: dict[str, set[str]] = field(default_factory=dict)
    edited: bool = False


class MessageLog:
    """Conversations as lists of messages, with a version that changes on every write (the
    page polls and redraws only when it moved)."""

    def __init__(self) -> None:
        self.conversations: dict[str, list[StoredMessage]] = {}
        self.by_id: dict[str, StoredMessage] = {}
        self.files: OrderedDict[str, StoredFile] = OrderedDict()
        self.version = 0
        self._ids = itertools.count(1)
        # Ids differ from one process to the next: the database remembers which message
        # stood for which share or prompt, so a restarted log must never reuse an old id.
        self._prefix = f"m{secrets.token_hex(4)}-"

    def add(self, message: StoredMessage) -> StoredMessage:
        conversation = self.conversations.setdefault(message.channel_id, [])
        conversation.append(message)
        self.by_id[message.id] = message
        if len(conversation) > MAX_MESSAGES:
            for old in conversation[: len(conversation) - MAX_MESSAGES]:
                self.by_id.pop(old.id, None)
            del conversation[: len(conversation) - MAX_MESSAGES]
        self.version += 1
        return message

    def next_id(self) -> str:
        return f"{self._prefix}{next(self._ids)}"

    def add_file(self, filename: str, content: bytes, mime_type: str) -> str:
        file_id = secrets.token_urlsafe(18)
        self.files[file_id] = StoredFile(filename=filename, content=content, mime_type=mime_type)
        while len(self.files) > MAX_FILES:
            self.files.popitem(last=False)
        return file_id

    def visible(self, channel_id: str, viewer: str) -> list[StoredMessage]:
        return [
            m
            for m in self.conversations.get(channel_id, [])
            if m.visible_to is None or m.visible_to == viewer
        ]

    def touch(self) -> None:
        self.version += 1


class WebPlatform:
    """Implements `bot.port.Platform` for the browser playground."""

    name = PLATFORM

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.log = MessageLog()

    def record_typed(
        self, persona: Persona, conversation: ConversationRef, text: str, *, command: bool
    ) -> StoredMessage:
        """What a persona typed, shown in the conversation. A command in the channel is seen
        only by its author (as a slash command is), a thread reply by everyone."""
        return self.log.add(
            StoredMessage(
                id=self.log.next_id(),
                channel_id=conversation.channel_id,
                author=persona.user_id,
                at=self.clock.now(),
                text=text,
                thread_id=conversation.thread_id,
                visible_to=persona.user_id if command and not conversation.is_dm else None,
            )
        )

    async def send(self, conversation: ConversationRef, message: Message) -> MessageRef:
        if conversation.workspace_id != WORKSPACE:
            raise DeliveryError(f"unknown playground workspace {conversation.workspace_id}")
        visible_to = None
        if message.visibility is Visibility.EPHEMERAL and not conversation.is_dm:
            visible_to = message.to.user_id if message.to else None
        file_id, file_name = None, ""
        if message.attachment is not None:
            attachment = message.attachment
            file_id = self.log.add_file(
                attachment.filename, attachment.content, attachment.mime_type
            )
            file_name = attachment.filename
        thread = message.thread_id or None
        stored = self.log.add(
            StoredMessage(
                id=self.log.next_id(),
                channel_id=conversation.channel_id,
                author=BOT,
                at=self.clock.now(),
                text=message.text,
                card=message.card,
                visible_to=visible_to,
                thread_id=thread,
                file_id=file_id,
                file_name=file_name,
            )
        )
        posted = replace(conversation, thread_id=None, raw=None)
        return MessageRef(conversation=posted, message_id=stored.id)

    async def update(self, ref: MessageRef, message: Message) -> None:
        stored = self.log.by_id.get(ref.message_id)
        if stored is None:
            raise DeliveryError(f"no message {ref.message_id} to update", permanent=True)
        stored.text, stored.card, stored.edited = message.text, message.card, True
        self.log.touch()

    async def open_dm(self, user: UserRef) -> ConversationRef:
        return dm_ref(user.user_id)

    async def user_info(self, user: UserRef) -> UserInfo:
        persona = PERSONA_BY_ID.get(user.user_id)
        if persona is None:
            return UserInfo(name=user.name)
        # The coach persona is the playground's admin, so it has coach rights from the start.
        return UserInfo(name=persona.name, timezone=None, is_admin=persona.is_coach)

    async def channel_members(self, conversation: ConversationRef) -> list[str]:
        if conversation.channel_id == CHANNEL:
            return [p.user_id for p in PERSONAS]
        return []
