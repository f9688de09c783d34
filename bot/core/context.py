"""What a handler gets: the event, one unit of work, the clock, and ways to answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from sqlmodel import Session, SQLModel, select

from bot.config import Settings
from bot.core.clock import Clock
from bot.core.events import ActionEvent, ConversationRef, Event, UserRef
from bot.core.messages import Card, Link, Message, Visibility
from bot.core.port import Platform, UserInfo
from storage.models import Community, FlowState, Member, Workspace
from storage.queries import save_flow

if TYPE_CHECKING:
    from bot.services.links import DashboardLinks
    from bot.services.llm import ModelClient
    from bot.services.prompts import PromptLibrary


T = TypeVar("T")
R = TypeVar("R", bound=SQLModel)


def belongs(session: Session, row: SQLModel, member: Member) -> bool:
    """Whether `member` may act on `row`: theirs when it is personal (it names a member),
    else in their workspace (directly, or through its community)."""
    if isinstance(row, Member):
        return row.workspace_id == member.workspace_id
    if (owner := getattr(row, "member_id", None)) is not None:
        return bool(owner == member.id)
    if (workspace := getattr(row, "workspace_id", None)) is not None:
        return bool(workspace == member.workspace_id)
    if (community_id := getattr(row, "community_id", None)) is not None:
        community = session.get(Community, community_id)
        return community is not None and community.workspace_id == member.workspace_id
    return False


class UsageError(Exception):
    """Bad input from a person: the message says kindly what to do instead."""


class AskFirst(BaseException):
    """A handler needs the platform's answer it doesn't have yet.

    No transaction stays open while we wait on the network (on SQLite an open write would
    stall every other event in the process), so the unit of work is rolled back, the question
    asked, and the unit run again with the answer. A BaseException, so a handler's own
    `except Exception` around the question doesn't swallow it."""

    def __init__(self, key: Hashable, call: Callable[[], Awaitable[Any]]) -> None:
        super().__init__(key)
        self.key = key
        self.call = call


@dataclass(frozen=True)
class Failed:
    """The platform's question raised this; raised again where the handler asked it."""

    error: Exception


@dataclass
class Context:
    """Per-event state. Replies are collected and sent after the unit of work commits."""

    event: Event
    session: Session
    clock: Clock
    settings: Settings
    prompts: PromptLibrary
    llm: ModelClient
    platform: Platform
    workspace: Workspace
    member: Member
    community: Community | None
    outgoing: list[Message] = field(default_factory=list)
    wake_outbox: bool = False
    schedules_changed: bool = False
    forgotten: bool = False  # the person asked to be forgotten (adapters drop their caches)
    links: DashboardLinks | None = None  # signed dashboard links, when the web side is wired
    answers: dict[Hashable, Any] = field(default_factory=dict)  # asked before this run

    @property
    def now(self) -> datetime:
        return self.clock.now()

    @property
    def user(self) -> UserRef:
        return self.event.user

    @property
    def conversation(self) -> ConversationRef:
        return self.event.conversation

    def member_zone(self, member: Member | None = None) -> ZoneInfo:
        member = member or self.member
        return ZoneInfo(member.timezone or self.settings.timezone)

    def reply(self, text: str, card: Card | None = None, *, link: Link | None = None) -> None:
        """Answer only the person who acted (ephemeral in a channel, plain in a DM)."""
        visibility = Visibility.CHANNEL if self.conversation.is_dm else Visibility.EPHEMERAL
        self.outgoing.append(
            Message(text=text, card=card, visibility=visibility, to=self.user, link=link)
        )

    def post(
        self,
        text: str,
        card: Card | None = None,
        *,
        link: Link | None = None,
        thread_id: str | None = None,
        conversation: ConversationRef | None = None,
        live: bool = False,
    ) -> None:
        """Post where everyone in the conversation sees it (`live`: drawn again from `link`
        when it is sent)."""
        self.outgoing.append(
            Message(
                text=text,
                card=card,
                link=link,
                thread_id=thread_id,
                conversation=conversation,
                live=live,
            )
        )

    def channel(self, channel_id: str) -> ConversationRef:
        """A channel of the actor's workspace: to post there, or to name a message in it."""
        return ConversationRef(
            platform=self.user.platform, workspace_id=self.user.workspace_id, channel_id=channel_id
        )

    def redraw(self, text: str, card: Card | None = None) -> None:
        """Replace the message whose button was pressed (nothing when the platform did not
        say which), so its buttons say what a press does now."""
        event = self.event
        if isinstance(event, ActionEvent) and event.message is not None:
            self.send(Message(text=text, card=card, replace=event.message))

    def dm(self, text: str, card: Card | None = None, *, to: UserRef | None = None) -> None:
        """Send a direct message (to the person who acted unless `to` is given)."""
        self.outgoing.append(
            Message(text=text, card=card, visibility=Visibility.DM, to=to or self.user)
        )

    def send(self, message: Message) -> None:
        self.outgoing.append(message)

    def owned(self, model: type[R], value: object) -> R | None:
        """The `model` row a payload names (a card's value, a flow's data), or None unless it
        belongs here: personal rows (a check-in, a goal) to the person acting, the rest to
        their workspace. Every id that arrives from outside is resolved through this one
        check, so a forged or foreign id (another workspace, the playground next to Slack)
        finds nothing."""
        text = str(value).strip()
        if not text.isdigit() or len(text) > 18:
            return None
        row = self.session.get(model, int(text))
        return row if row is not None and belongs(self.session, row, self.member) else None

    def user_ref(self, member: Member) -> UserRef:
        return UserRef(
            platform=self.user.platform,
            workspace_id=self.user.workspace_id,
            user_id=member.user_id,
            name=member.display_name,
        )

    async def ask(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        """The platform's answer to `call` (named by `key`), asked outside the transaction.

        `key` must name the question the same way on every run of the unit: never by row ids
        made in it (a rolled-back insert gives a new id next time on PostgreSQL)."""
        if key not in self.answers:
            raise AskFirst(key, call)
        answer = self.answers[key]
        if isinstance(answer, Failed):
            raise answer.error
        return answer  # type: ignore[no-any-return]

    async def user_info(self) -> UserInfo:
        try:
            return await self.ask(("user_info", self.user.user_id), self._user_info)
        except Exception:  # a platform look-up failing must not block the person
            return UserInfo()

    async def _user_info(self) -> UserInfo:
        return await self.platform.user_info(self.user)

    # Multi-step flows live in the database, so a restart or another replica continues them.
    def flow(self) -> FlowState | None:
        return self.session.exec(
            select(FlowState).where(FlowState.member_id == self.member.id)
        ).first()

    def set_flow(self, flow: str, step: str, data: dict[str, Any] | None = None) -> None:
        assert self.member.id is not None
        save_flow(
            self.session,
            member_id=self.member.id,
            flow=flow,
            step=step,
            data=data or {},
            now=self.now,
        )

    def clear_flow(self) -> None:
        state = self.flow()
        if state is not None:
            self.session.delete(state)
