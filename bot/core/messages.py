"""Neutral outgoing messages: text always set (notification and fallback), an optional card
that each platform renders natively (Block Kit, Adaptive Card, HTML)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bot.core.events import ConversationRef, MessageRef, UserRef


class Visibility(StrEnum):
    CHANNEL = "channel"  # everyone in the conversation
    EPHEMERAL = "ephemeral"  # only the person who acted, in that conversation
    DM = "dm"  # a direct message to `Message.to`


@dataclass(frozen=True, kw_only=True)
class Button:
    label: str
    action_id: str
    value: str = ""
    style: str | None = None  # "primary" | "danger"
    url: str | None = None  # a link button (opens a page) instead of an action


@dataclass(frozen=True, kw_only=True)
class Option:
    label: str
    value: str


@dataclass(frozen=True, kw_only=True)
class Input:
    """A form field. `kind`: text | multiline | select."""

    id: str
    label: str
    kind: str = "text"
    options: tuple[Option, ...] = ()
    initial: str = ""
    placeholder: str = ""
    optional: bool = True
    max_length: int | None = None


@dataclass(frozen=True, kw_only=True)
class Field:
    label: str
    value: str


@dataclass(frozen=True, kw_only=True)
class Card:
    """A platform-neutral card. A card with inputs is a form; `submit` names its action."""

    title: str = ""
    body: str = ""
    fields: tuple[Field, ...] = ()
    inputs: tuple[Input, ...] = ()
    buttons: tuple[Button, ...] = ()
    submit: Button | None = None
    footer: str = ""


@dataclass(frozen=True, kw_only=True)
class Attachment:
    """A file sent with a message (an export)."""

    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"


@dataclass(frozen=True, kw_only=True)
class Link:
    """After sending, remember that the posted message stands for this object."""

    kind: str
    object_id: int


@dataclass(frozen=True, kw_only=True)
class Message:
    text: str
    card: Card | None = None
    visibility: Visibility = Visibility.CHANNEL
    to: UserRef | None = None  # the recipient of a DM or an ephemeral message
    conversation: ConversationRef | None = None  # default: where the event happened
    thread_id: str | None = None
    replace: MessageRef | None = None  # update this message instead of posting
    attachment: Attachment | None = None
    link: Link | None = field(default=None, compare=False)
    # Drawn again from `link` just before it is sent: a card whose counts may change while
    # it waits (an endorsement arriving before the card is posted or updated).
    live: bool = False

    def __post_init__(self) -> None:
        if not self.text:
            raise ValueError("a message always has text (it is the notification and fallback)")
