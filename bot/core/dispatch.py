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
from collections.abc import Callable, Coroutine, Hashable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlmodel import Session

from bot.config import Settings, check_timezone
from bot.core.clock import Clock, SystemClock
from bot.core.context import AskFirst, Context, Failed, UsageError
from bot.core.events import (
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
from bot.core.messages import Card, Message, Visibility
from bot.core.port import Platform, send_message
from bot.core.router import Router
from bot.delivery.rows import queue_replies
from bot.features import (
    checkins,
    coaches,
    communities,
    cycles,
    digests,
    enactments,
    endorsements,
    evidence,
    goals,
    help,
    home,
    me,
    pausing,
    portfolio,
    privacy,
    profiles,
    reflections,
    reports,
)
from bot.services.links import DashboardLinks
from bot.services.llm import ModelClient
from bot.services.prompts import PromptLibrary
from storage.db import Database
from storage.models import Member
from storage.queries import (
    DuplicateEvent,
    claim_receipt,
    get_or_create_workspace,
    link_message,
    member_and_community,
    scoped_key,
    workspace_and_member,
)

log = logging.getLogger(__name__)
QUESTION_LIFETIME = timedelta(hours=48)  # a question left unanswered this long has closed
T = TypeVar("T")

# Registered in this order, which is the order `help` lists their commands in.
FEATURES = (
    help,
    profiles,
    goals,
    checkins,
    reflections,
    evidence,
    endorsements,
    enactments,
    digests,
    me,
    privacy,
    pausing,
    portfolio,
    communities,
    reports,
    coaches,
    cycles,
    home,
)

Finish = Callable[[Session], None]  # marks the inbound request handled, in the unit's session
MAX_QUESTIONS = 8  # platform questions one event may need (setup asks two)

SOMETHING_WENT_WRONG = (
    "Sorry, something went wrong on my side, and nothing was lost. Please try again in a minute."
)


def run_to_end(unit: Coroutine[Any, Any, T]) -> T:
    """Run a unit of work's coroutine to its end on this (database) thread. A unit awaits
    nothing real: what it needs from the network it gets through `Context.ask`, which leaves
    the unit (AskFirst) for the question to be asked on the event loop."""
    try:
        unit.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    unit.close()
    raise RuntimeError("a unit of work awaited something; ask the platform with Context.ask")


def build_router() -> Router:
    router = Router()
    for feature in FEATURES:
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
        """Handle one event end to end, replies sent at once (the playground, tests)."""
        outgoing = await self.process(event, platform)
        return await self.deliver(platform, event, outgoing)

    async def process(
        self,
        event: Event,
        platform: Platform,
        *,
        finish: Finish | None = None,
        answer_here: Callable[[Message], bool] | None = None,
    ) -> list[Message]:
        """The unit of work: commit what the event changes; returns the replies to send.

        With `finish` (durable: the inbox's workers), the replies are written to the outbox
        in the unit's own transaction and `finish(session)` marks the inbound request handled
        in it too, so a crash either loses both or neither. Only the replies `answer_here`
        picks (a Teams card click's private answer, which is its HTTP response) are returned."""
        outgoing, signals = await self._run(event, platform, finish, answer_here)
        if "outbox" in signals:
            self.outbox_wakeup.set()
        if "schedules" in signals and self.on_schedules_changed is not None:
            self.on_schedules_changed()
        if "forgotten" in signals:
            for forget in self.on_forgotten:
                forget(event.user)
        return outgoing

    async def _run(
        self,
        event: Event,
        platform: Platform,
        finish: Finish | None,
        answer_here: Callable[[Message], bool] | None = None,
    ) -> tuple[list[Message], set[str]]:
        """The unit of work, on a database thread; run again (rolled back first) each time a
        handler needs an answer from the platform it doesn't have yet, so no transaction
        waits on the network and the event loop never waits on the database."""
        answers: dict[Hashable, Any] = {}
        for _ in range(MAX_QUESTIONS):
            try:
                return await self.db.run(
                    run_to_end, self._attempt(event, platform, answers, finish, answer_here)
                )
            except AskFirst as question:
                try:
                    answers[question.key] = await question.call()
                except Exception as error:
                    answers[question.key] = Failed(error)
        log.error("%s asked the platform more than %d times", type(event).__name__, MAX_QUESTIONS)
        return await self.db.run(self._answer_alone, event, SOMETHING_WENT_WRONG, finish)

    async def _attempt(
        self,
        event: Event,
        platform: Platform,
        answers: dict[Hashable, Any],
        finish: Finish | None,
        answer_here: Callable[[Message], bool] | None,
    ) -> tuple[list[Message], set[str]]:
        key = self.receipt_key(event)
        try:
            with self.db.session() as session:
                now = self.clock.now()
                if not self.concerns(session, event):
                    if finish is not None:
                        finish(session)
                    return [], set()
                # Claimed first, in the unit's own transaction: a failed event leaves no
                # receipt and is handled again when retried; a handled one never runs twice.
                if key and not claim_receipt(session, key=key, now=now):
                    log.info("duplicate event %s ignored", event.dedupe_key)
                    if finish is not None:
                        finish(session)
                    return [], set()
                workspace, member, community = member_and_community(
                    session,
                    platform=event.user.platform,
                    external_id=event.user.workspace_id,
                    user_id=event.user.user_id,
                    name=event.user.name,
                    channel_id=None if event.conversation.is_dm else event.conversation.channel_id,
                    now=now,
                )
                assert workspace.id is not None
                if member.timezone is None and event.user.timezone:
                    # The platform's timezone serves until the member sets their own.
                    with contextlib.suppress(ValueError):
                        member.timezone = check_timezone(event.user.timezone)
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
                signals = {"outbox"} if ctx.wake_outbox else set()
                if ctx.schedules_changed:
                    signals.add("schedules")
                if ctx.forgotten:
                    signals.add("forgotten")
                outgoing = ctx.outgoing
                if finish is not None:
                    here = [m for m in outgoing if answer_here is not None and answer_here(m)]
                    later = [m for m in outgoing if not any(m is h for h in here)]
                    if queue_replies(
                        session,
                        workspace_id=workspace.id,
                        default=event.conversation,
                        messages=later,
                        now=now,
                    ):
                        signals.add("outbox")
                    finish(session)
                    outgoing = here
            # Committed: the workspace row is there for good (a rolled-back one wasn't).
            self._workspace_ids[(workspace.platform, workspace.external_id)] = workspace.id
            return outgoing, signals
        except DuplicateEvent:
            log.info("duplicate event %s ignored (handled concurrently)", event.dedupe_key)
            if finish is not None:
                with contextlib.suppress(DuplicateEvent), self.db.session() as session:
                    finish(session)
            return [], set()
        except UsageError as problem:
            log.info("usage error from %s: %s", event.user.user_id, problem)
            return self._answer_alone(event, str(problem), finish, answer_here)
        except Exception:
            log.exception("handling %s failed", type(event).__name__)
            return self._answer_alone(event, SOMETHING_WENT_WRONG, finish, answer_here)

    def concerns(self, session: Session, event: Event) -> bool:
        """Whether the event is anything to the bot, asked before a receipt, a member row or
        a name look-up is made (a reaction to any message but a posted share is not)."""
        wanted = self.router.wanted.get("reaction") if isinstance(event, ReactionEvent) else None
        return wanted is None or wanted(session, self.settings, event)

    async def wants(self, event: Event) -> bool:
        """`concerns`, from the event loop (adapters ask before looking a person up)."""
        if not isinstance(event, ReactionEvent) or "reaction" not in self.router.wanted:
            return True

        def ask() -> bool:
            with self.db.session() as session:
                return self.concerns(session, event)

        return await self.db.run(ask)

    def receipt_key(self, event: Event) -> str | None:
        """The event's dedupe key scoped by platform, workspace and conversation: platform
        ids are unique only there (Teams message ids are timestamps within a conversation)."""
        if not event.dedupe_key:
            return None
        user, where = event.user, event.conversation
        return scoped_key(user.platform, user.workspace_id, where.channel_id, event.dedupe_key)

    def _answer_alone(
        self,
        event: Event,
        text: str,
        finish: Finish | None,
        answer_here: Callable[[Message], bool] | None = None,
    ) -> tuple[list[Message], set[str]]:
        """The one answer to an event whose unit of work was rolled back (bad input, an
        error): sent at once, or queued durably with the request marked handled."""
        message = self._private(event, text)
        if finish is None or (answer_here is not None and answer_here(message)):
            return [message], set()
        with contextlib.suppress(DuplicateEvent), self.db.session() as session:
            self._queue(session, event.conversation, [message])
            finish(session)
        return [], {"outbox"}

    def _queue(
        self, session: Session, default: ConversationRef | None, messages: list[Message]
    ) -> None:
        where = default or messages[0].conversation or messages[0].to
        assert where is not None
        workspace = get_or_create_workspace(
            session, platform=where.platform, external_id=where.workspace_id, now=self.clock.now()
        )
        assert workspace.id is not None
        queue_replies(
            session,
            workspace_id=workspace.id,
            default=default,
            messages=messages,
            now=self.clock.now(),
        )

    async def send_later(
        self, messages: list[Message], *, default: ConversationRef | None = None, once: str = ""
    ) -> bool:
        """Queue messages outside a unit of work (a greeting) in the outbox; with `once`, a
        receipt key recorded in the same transaction, and False when it was recorded before."""

        def queue() -> bool:
            with self.db.session() as session:
                if once and not claim_receipt(session, key=once, now=self.clock.now()):
                    return False
                if messages:
                    self._queue(session, default, messages)
                return True

        queued = await self.db.run(queue)
        if queued:
            self.outbox_wakeup.set()
        return queued

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

    def for_member(self, user: UserRef, draw: Callable[[Session, Member], T]) -> T:
        """What `draw` makes for one member outside a unit of work (the home tab, a form
        the platform opens itself), in one transaction."""
        with self.db.session() as session:
            _, member = workspace_and_member(
                session,
                platform=user.platform,
                external_id=user.workspace_id,
                user_id=user.user_id,
                name=user.name,
                now=self.clock.now(),
            )
            return draw(session, member)

    def home(self, user: UserRef) -> Card:
        """The member's home card (goals, shares, endorsements received) at the bot's clock."""
        now = self.clock.now()
        return self.for_member(user, lambda session, member: home.home_card(session, member, now))

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
        if command.coach and not await coaches.is_coach(ctx):
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
        expired = state is not None and ctx.now - state.updated_at > QUESTION_LIFETIME
        if expired:
            ctx.clear_flow()
            state = None
        if text.lower() in ("cancel", "stop"):
            if state is not None:
                ctx.clear_flow()
                ctx.reply("Okay, stopped: I've dropped that question. Nothing else was changed.")
            else:
                ctx.reply("There's nothing waiting to cancel. Type `help` to see what I can do.")
            return
        if state is not None and state.flow in self.router.flows:
            if not self.router.is_exact_command(text):
                await self.router.flows[state.flow](ctx, state.step, text, json.loads(state.data))
                return
            # A command always runs; the question waits and is mentioned again.
            await self.run_command(ctx, text)
            if ctx.flow() is not None:
                waiting = self.router.waiting.get(state.flow, "my question")
                ctx.reply(
                    f"(I'm still waiting on {waiting}: answer it when you're ready, or type `cancel` to drop it.)"
                )
            return
        if self.router.is_command(text):
            await self.run_command(ctx, text)
            return
        if expired:
            ctx.reply(
                "The question I asked earlier has closed, so I didn't take that as an answer. "
                "Type `checkin` or `profile` to start again, or `help` to see everything."
            )
            return
        await self.router.listener("dm_text")(ctx)

    async def deliver(
        self, platform: Platform, event: Event | None, messages: Sequence[Message]
    ) -> list[MessageRef]:
        """Send replies now; a failure is logged and never hides the other replies."""
        refs: list[MessageRef] = []
        for message in messages:
            try:
                ref = await send_message(
                    platform, message, event.conversation if event is not None else None
                )
                if ref is None:
                    continue
                refs.append(ref)
                if message.link is not None and ref.message_id:
                    await self.db.run(self._remember, ref, message)
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
