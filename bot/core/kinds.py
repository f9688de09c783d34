"""What each kind of outbox row sends, declared by the feature that queues it.

Delivery (bot/delivery/) knows how to claim, pace, send and retry a row; what the row *says*
belongs to its feature. The registry sits in the core, between the two, so neither imports
the other. A feature adds its kinds in `register(router)`:

    router.outbox.add("checkin", draw_checkin)                 # a row drawn when it is sent
    router.outbox.add("digest", draw_digest, prepare=prepare_digest)  # slow work first
    router.outbox.live("artifact", draw_artifact)              # a live card, redrawn on send

Adding a kind twice fails loudly, like a command; a row of a kind nobody declared is an error
(the row fails, logged, rather than being guessed at).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot.core.events import ConversationRef, UserRef
from bot.core.messages import Card, Message
from bot.services.llm import ModelClient
from bot.services.prompts import PromptLibrary
from storage.db import Database
from storage.models import Member, OutboxMessage, Workspace


@dataclass(frozen=True)
class Delivery:
    """What a row sends; where it goes is the message's own (`send_message`), with
    `conversation` for a message that names none."""

    message: Message
    conversation: ConversationRef | None = None


@dataclass(frozen=True, kw_only=True)
class Due:
    """An outbox row about to be drawn, with what drawing it may use (one transaction)."""

    session: Session
    prompts: PromptLibrary
    row: OutboxMessage
    workspace: Workspace
    now: datetime
    default_tz: str
    min_group: int

    @property
    def channel(self) -> ConversationRef:
        """The channel the row was queued for."""
        return ConversationRef(
            platform=self.workspace.platform,
            workspace_id=self.workspace.external_id,
            channel_id=self.row.channel_id or "",
        )

    def person(self, member: Member) -> UserRef:
        return UserRef(
            platform=self.workspace.platform,
            workspace_id=self.workspace.external_id,
            user_id=member.user_id,
            name=member.display_name,
        )


Draw = Callable[[Due], Delivery | None]  # None: the row no longer applies (skipped)
Prepare = Callable[[Database, PromptLibrary, ModelClient, OutboxMessage], Awaitable[None]]
DrawLive = Callable[[Session, PromptLibrary, int], tuple[str, Card] | None]


class OutboxKinds:
    """The registry: row kind -> how it is drawn (and prepared); link kind -> live redraw."""

    def __init__(self) -> None:
        self._draw: dict[str, Draw] = {}
        self._prepare: dict[str, Prepare] = {}
        self._live: dict[str, DrawLive] = {}

    def add(self, kind: str, draw: Draw, *, prepare: Prepare | None = None) -> None:
        """`prepare`: slow, optional work before the row is drawn (a model call), run with
        no transaction open; it must never raise (the row goes out without it)."""
        if kind in self._draw:
            raise ValueError(f"outbox kind {kind!r} registered twice")
        self._draw[kind] = draw
        if prepare is not None:
            self._prepare[kind] = prepare

    def live(self, link_kind: str, draw: DrawLive) -> None:
        """A message linked to a `link_kind` object is drawn afresh from it when sent."""
        if link_kind in self._live:
            raise ValueError(f"live link kind {link_kind!r} registered twice")
        self._live[link_kind] = draw

    def draw(self, due: Due) -> Delivery | None:
        try:
            draw = self._draw[due.row.kind]
        except KeyError:
            raise ValueError(f"unknown outbox kind {due.row.kind!r}") from None
        return draw(due)

    def preparer(self, kind: str) -> Prepare | None:
        return self._prepare.get(kind)

    def live_drawer(self, link_kind: str) -> DrawLive | None:
        return self._live.get(link_kind)

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self._draw)
