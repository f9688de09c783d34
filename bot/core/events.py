"""Neutral inbound events: what adapters turn platform payloads into.

`raw` keeps the platform payload for the edge only; the core never reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class UserRef:
    """A person on a platform. `workspace_id` is the Slack team or the Teams tenant."""

    platform: str
    workspace_id: str
    user_id: str
    name: str = ""
    timezone: str | None = field(default=None, compare=False)  # the platform's, if known


@dataclass(frozen=True, kw_only=True)
class ConversationRef:
    """Where an event happened or a message goes; `raw` may carry an opaque platform blob
    (a Teams ConversationReference) that only the adapter reads."""

    platform: str
    workspace_id: str
    channel_id: str
    thread_id: str | None = None
    is_dm: bool = False
    name: str = field(default="", compare=False)
    raw: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True, kw_only=True)
class MessageRef:
    """A message that was posted, so it can be updated or recognised later."""

    conversation: ConversationRef
    message_id: str


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every inbound event. `dedupe_key`, when set, makes a replay a no-op."""

    user: UserRef
    conversation: ConversationRef
    dedupe_key: str | None = None
    raw: Any = field(default=None, compare=False, hash=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class CommandEvent(Event):
    """`/pln <text>` in Slack, or the same words to the bot in Teams."""

    text: str


@dataclass(frozen=True, kw_only=True)
class MessageEvent(Event):
    """Free text to the bot: a DM, or a reply in a thread (`conversation.thread_id`)."""

    text: str
    message_id: str = ""


@dataclass(frozen=True, kw_only=True)
class ActionEvent(Event):
    """A button press or a form submit. `values` holds the form's inputs by input id."""

    action_id: str
    value: str = ""
    values: Mapping[str, str] = field(default_factory=dict)
    message: MessageRef | None = None


@dataclass(frozen=True, kw_only=True)
class ReactionEvent(Event):
    """A reaction added to or removed from a message."""

    reaction: str
    message: MessageRef
    added: bool = True


@dataclass(frozen=True, kw_only=True)
class MemberJoinedEvent(Event):
    """Someone joined a channel (or a team/chat with the bot)."""
