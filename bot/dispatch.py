"""The bot: turns one neutral event into one unit of work and the replies it produced.

Flow: dedupe (a key in the database) -> resolve workspace, member, community -> run the
handler -> commit -> send the replies through the platform. Replies go out only after the
commit, so what a person was told is always what was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from sqlmodel import Session

from bot import (
    checkins,
    coaching,
    digests,
    endorsements,
    evidence,
    goals,
    help,
    home,
    portfolio,
    privacy,
    profiles,
    reflections,
)
from bot.clock import Clock, SystemClock
from bot.config import Settings, check_timezone
from bot.context import AskFirst, Context, Failed, UsageError
from bot.events import (
    ActionEvent,
    CommandEvent,
    ConversationRef,
    Event,
    MemberJoinedEvent,
    MessageEvent,
    MessageRef,
    ReactionEvent,
    UserRef,
)
from bot.links import DashboardLinks
from bot.llm import ModelClient
from bot.messages import Card, Message, Visibility
from bot.port import Platform
from bot.prompts import PromptLibrary
from bot.router import Router
from storage.db import Database
from storage.queries import (
    DuplicateEvent,
    community_for_channel,
    get_or_create_workspace,
    has_receipt,
    link_message,
    record_receipt,
    workspace_and_member,
)

log = logging.getLogger(__name__)

FEATURES = (help, profiles, goals, checkins, reflections, evidence, endorsements, digests)
FEATURES_TAIL = (privacy, portfolio, coaching, home)

MAX_QUESTIONS = 8  # platform questions one event may need (setup asks two)

SOMETHING_WENT_WRONG = (
    "Sorry, something went wrong on my side, and nothing was lost. Please try again in a minute."
)


def build_router() -> Router:
    router = Router()
    for feature in (*FEATURES, *FEATURES_TAIL):
        feature.register(router)
    return router


class Bot:
    """The platform-neutral bot; adapters call `handle(event, platform)`."""

    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        clock: Clock | None = None,
        prompts: PromptLibrary | None = None,
        llm: ModelClient | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock or SystemClock()
        self.prompts = prompts or PromptLibrary.load()
        self.llm = llm or ModelClient.from_settings(settings)
        self.router = build_router()
        self.outbox_wakeup = asyncio.Event()
        self.on_schedules_changed: Callable[[], None] | None = None
        # Adapters that keep something about people in memory forget it with the database.
        self.on_forgotten: list[Callable[[UserRef], None]] = []
        self.links: DashboardLinks | None = None  # set by the web adapter when it is wired
        self._workspace_ids: dict[tuple[str, str], int] = {}

    async def handle(self, event: Event, platform: Platform) -> list[MessageRef]:
        """Handle one event end to end; returns the refs of the messages it posted."""
        outgoing = await self.process(event, platform)
        return await self.deliver(platform, event, outgoing)

    async def process(self, event: Event, platform: Platform) -> list[Message]:
        """The unit of work alone: commit what the event changes, return the replies to send.

        Adapters whose replies are paced by the platform send them separately, so one busy
        channel never holds up the database work of other people's events."""
        outgoing, signals = await self._run(event, platform)
        if "outbox" in signals:
            self.outbox_wakeup.set()
        if "schedules" in signals and self.on_schedules_changed is not None:
            self.on_schedules_changed()
        if "forgotten" in signals:
            for forget in self.on_forgotten:
                forget(event.user)
        return outgoing

    async def _run(self, event: Event, platform: Platform) -> tuple[list[Message], set[str]]:
        """The unit of work; run again (rolled back first) each time a handler needs an answer
        from the platform it doesn't have yet, so no transaction waits on the network."""
        answers: dict[Hashable, Any] = {}
        for _ in range(MAX_QUESTIONS):
            try:
                return await self._attempt(event, platform, answers)
            except AskFirst as question:
                try:
                    answers[question.key] = await question.call()
                except Exception as error:
                    answers[question.key] = Failed(error)
        log.error("%s asked the platform more than %d times", type(event).__name__, MAX_QUESTIONS)
        return [self._private(event, SOMETHING_WENT_WRONG)], set()

    async def _attempt(
        self, event: Event, platform: Platform, answers: dict[Hashable, Any]
    ) -> tuple[list[Message], set[str]]:
        try:
            with self.db.session() as session:
                now = self.clock.now()
                key = f"{event.user.platform}:{event.dedupe_key}" if event.dedupe_key else None
                if key and has_receipt(session, key=key):
                    log.info("duplicate event %s ignored", event.dedupe_key)
                    return [], set()
                workspace, member = workspace_and_member(
                    session,
                    platform=event.user.platform,
                    external_id=event.user.workspace_id,
                    user_id=event.user.user_id,
                    name=event.user.name,
                    now=now,
                )
                assert workspace.id is not None
                if member.timezone is None and event.user.timezone:
                    # The platform's timezone serves until the member sets their own.
                    with contextlib.suppress(ValueError):
                        member.timezone = check_timezone(event.user.timezone)
                community = None
                if not event.conversation.is_dm:
                    community = community_for_channel(
                        session, workspace_id=workspace.id, channel_id=event.conversation.channel_id
                    )
                ctx = Context(
                    event=event,
                    session=session,
                    clock=self.clock,
                    settings=self.settings,
                    prompts=self.prompts,
                    llm=self.llm,
                    platform=platform,
                    workspace=workspace,
                    member=member,
                    community=community,
                    links=self.links,
                    answers=answers,
                )
                await self._dispatch(ctx)
                if key:
                    # Recorded last, in the same transaction as the handler's writes: a
                    # failed event is retried, a handled one never runs twice.
                    record_receipt(session, key=key, now=now)
                signals = {"outbox"} if ctx.wake_outbox else set()
                if ctx.schedules_changed:
                    signals.add("schedules")
                if ctx.forgotten:
                    signals.add("forgotten")
            # Committed: the workspace row is there for good (a rolled-back one wasn't).
            self._workspace_ids[(workspace.platform, workspace.external_id)] = workspace.id
            return ctx.outgoing, signals
        except DuplicateEvent:
            log.info("duplicate event %s ignored (handled concurrently)", event.dedupe_key)
            return [], set()
        except UsageError as problem:
            log.info("usage error from %s: %s", event.user.user_id, problem)
            return [self._private(event, str(problem))], set()
        except Exception:
            log.exception("handling %s failed", type(event).__name__)
            return [self._private(event, SOMETHING_WENT_WRONG)], set()

    @staticmethod
    def _private(event: Event, text: str) -> Message:
        visibility = Visibility.CHANNEL if event.conversation.is_dm else Visibility.EPHEMERAL
        return Message(text=text, visibility=visibility, to=event.user)

    async def _dispatch(self, ctx: Context) -> None:
        event = ctx.event
        if isinstance(event, CommandEvent):
            await self.run_command(ctx, event.text)
        elif isinstance(event, ActionEvent):
            handler = self.router.actions.get(event.action_id)
            if handler is None:
                log.warning("unknown action %r", event.action_id)
                raise UsageError(
                    "That button isn't active any more. Type `help` to see what I can do."
                )
            await handler(ctx)
        elif isinstance(event, MessageEvent):
            await self._on_message(ctx, event)
        elif isinstance(event, ReactionEvent):
            await self.router.listener("reaction")(ctx)
        elif isinstance(event, MemberJoinedEvent):
            await self.router.listener("joined")(ctx)

    def home(self, user: UserRef) -> Card:
        """The member's home card (goals, shares, endorsements received)."""
        with self.db.session() as session:
            _, member = workspace_and_member(
                session,
                platform=user.platform,
                external_id=user.workspace_id,
                user_id=user.user_id,
                name=user.name,
                now=self.clock.now(),
            )
            return home.home_card(session, member)

    async def run_command(self, ctx: Context, text: str) -> None:
        text = text.strip()
        if not text:
            await self.router.commands["help"].handler(ctx, "")
            return
        found = self.router.match(text)
        if found is None:
            family = self.router.family(text)
            if family:
                lines = "\n".join(f"• `{c.usage}` — {c.summary}" for c in family)
                raise UsageError(f"`{text.split()[0]}` needs a little more. Try one of:\n{lines}")
            guess = self.router.suggest(text)
            hint = f" Did you mean `{guess}`?" if guess else ""
            shown = text.split()[0][:40]
            raise UsageError(
                f"I don't know the command “{shown}”.{hint} Type `help` to see them all."
            )
        command, args = found
        if command.coach and not await coaching.is_coach(ctx):
            raise UsageError(
                f"`{command.words}` is for coaches. Ask a coach in your community "
                "to run it, or to make you a coach with `coach add`."
            )
        if command.needs_args and not args:
            raise UsageError(f"Usage: `{command.usage}`")
        await command.handler(ctx, args)

    async def _on_message(self, ctx: Context, event: MessageEvent) -> None:
        text = event.text.strip()
        if event.conversation.thread_id and not event.conversation.is_dm:
            await self.router.listener("thread_reply")(ctx)
            return
        if not event.conversation.is_dm or not text:
            return  # the bot doesn't read channel chatter
        state = ctx.flow()
        if state is not None and text.lower() in ("cancel", "stop"):
            ctx.clear_flow()
            ctx.reply("Okay, stopped. Nothing else was changed.")
            return
        if state is not None and state.flow in self.router.flows:
            await self.router.flows[state.flow](ctx, state.step, text, json.loads(state.data))
            return
        if self.router.is_command(text):
            await self.run_command(ctx, text)
            return
        await self.router.listener("dm_text")(ctx)

    async def deliver(
        self, platform: Platform, event: Event | None, messages: Sequence[Message]
    ) -> list[MessageRef]:
        """Send replies; a failure is logged and never hides the other replies."""
        refs: list[MessageRef] = []
        for message in messages:
            try:
                if message.replace is not None:
                    await platform.update(message.replace, message)
                    continue
                if message.visibility is Visibility.DM:
                    assert message.to is not None
                    conversation = await platform.open_dm(message.to)
                elif message.conversation is not None:
                    conversation = message.conversation
                else:
                    assert event is not None
                    conversation = event.conversation
                ref = await platform.send(conversation, message)
                refs.append(ref)
                if message.link is not None and ref.message_id:
                    self._remember(ref, message)
            except Exception:
                log.exception("could not deliver a %s message", message.visibility)
        return refs

    def _remember(self, ref: MessageRef, message: Message) -> None:
        """What the posted message stands for (a card's artifact), for reactions and replies."""
        assert message.link is not None
        conversation = ref.conversation
        with self.db.session() as session:
            link_message(
                session,
                workspace_id=self._workspace_id(session, conversation),
                channel_id=conversation.channel_id,
                message_ts=ref.message_id,
                kind=message.link.kind,
                object_id=message.link.object_id,
            )

    def _workspace_id(self, session: Session, conversation: ConversationRef) -> int:
        """Workspace ids never change (rows are never deleted): each is looked up once, and
        kept once it is known to be committed."""
        key = (conversation.platform, conversation.workspace_id)
        if key in self._workspace_ids:
            return self._workspace_ids[key]
        workspace = get_or_create_workspace(
            session,
            platform=conversation.platform,
            external_id=conversation.workspace_id,
            now=self.clock.now(),
        )
        assert workspace.id is not None
        return workspace.id
