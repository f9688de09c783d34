"""The command router: words -> handler, with usage, help and coach-only marks.

Handlers are module-level, typed functions; each feature's `register(router)` lists its
registrations in plain-call form, in the order `help` shows the commands:

    async def add_goal(ctx: Context, args: str) -> None: ...

    def register(router: Router) -> None:
        router.command("goal add", add_goal, usage="goal add <text>", summary="set a goal")
        router.action("endorse", press_endorse)
        router.flow("checkin", checkin_step, waiting="your check-in")
        router.on("reaction", endorse_by_reaction, wanted=endorsable)

Each registration also works as a decorator (`@router.action("endorse")`). Registering the
same command words, action id, flow name or listener kind twice raises ValueError: a second
registration would otherwise silently replace the first.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from sqlmodel import Session

from bot.config import Settings
from bot.core.context import Context
from bot.core.events import Event
from bot.core.kinds import OutboxKinds

CommandHandler = Callable[[Context, str], Awaitable[None]]
ActionHandler = Callable[[Context], Awaitable[None]]
FlowHandler = Callable[[Context, str, str, dict[str, Any]], Awaitable[None]]
Wanted = Callable[[Session, Settings, Event], bool]

C = TypeVar("C", bound=CommandHandler)
A = TypeVar("A", bound=ActionHandler)
F = TypeVar("F", bound=FlowHandler)


@dataclass(frozen=True, kw_only=True)
class Command:
    words: str
    usage: str
    summary: str
    handler: CommandHandler
    coach: bool = False
    needs_args: bool = False


def _once(table: dict[str, Any], key: str, what: str) -> None:
    """Refuse a second registration under `key`: it would silently replace the first."""
    if key in table:
        raise ValueError(f"{what} {key!r} registered twice")


class Router:
    """Holds every command, action and flow; features add theirs in `register(router)`."""

    def __init__(self) -> None:
        self.commands: dict[str, Command] = {}
        self.actions: dict[str, ActionHandler] = {}
        self.flows: dict[str, FlowHandler] = {}
        self.listeners: dict[str, ActionHandler] = {}
        self.wanted: dict[str, Wanted] = {}
        self.waiting: dict[str, str] = {}
        self.outbox = OutboxKinds()  # what the features' outbox rows say (bot/core/kinds.py)

    @overload
    def command(
        self,
        words: str,
        handler: C,
        *,
        usage: str | None = None,
        summary: str,
        coach: bool = False,
        needs_args: bool = False,
    ) -> C: ...

    @overload
    def command(
        self,
        words: str,
        handler: None = None,
        *,
        usage: str | None = None,
        summary: str,
        coach: bool = False,
        needs_args: bool = False,
    ) -> Callable[[C], C]: ...

    def command(
        self,
        words: str,
        handler: C | None = None,
        *,
        usage: str | None = None,
        summary: str,
        coach: bool = False,
        needs_args: bool = False,
    ) -> C | Callable[[C], C]:
        """`words` (one or two, lower case) run `handler(ctx, args)`; `usage` and `summary`
        are what `help` shows, `coach` marks it coach-only, `needs_args` that it takes words."""

        def register(fn: C) -> C:
            _once(self.commands, words, "command")
            self.commands[words] = Command(
                words=words,
                usage=usage or words,
                summary=summary,
                handler=fn,
                coach=coach,
                needs_args=needs_args,
            )
            return fn

        return register(handler) if handler is not None else register

    @overload
    def action(self, action_id: str, handler: A) -> A: ...

    @overload
    def action(self, action_id: str, handler: None = None) -> Callable[[A], A]: ...

    def action(self, action_id: str, handler: A | None = None) -> A | Callable[[A], A]:
        """A button press or form submit with this `action_id` runs `handler(ctx)`."""

        def register(fn: A) -> A:
            _once(self.actions, action_id, "action")
            self.actions[action_id] = fn
            return fn

        return register(handler) if handler is not None else register

    @overload
    def flow(self, name: str, handler: F, *, waiting: str = "my question") -> F: ...

    @overload
    def flow(
        self, name: str, handler: None = None, *, waiting: str = "my question"
    ) -> Callable[[F], F]: ...

    def flow(
        self, name: str, handler: F | None = None, *, waiting: str = "my question"
    ) -> F | Callable[[F], F]:
        """A multi-step conversation in the DM. `waiting` names its open question when a
        command runs meanwhile ("your check-in"): commands always run, the question waits."""

        def register(fn: F) -> F:
            _once(self.flows, name, "flow")
            self.flows[name] = fn
            self.waiting[name] = waiting
            return fn

        return register(handler) if handler is not None else register

    @overload
    def on(self, kind: str, handler: A, *, wanted: Wanted | None = None) -> A: ...

    @overload
    def on(
        self, kind: str, handler: None = None, *, wanted: Wanted | None = None
    ) -> Callable[[A], A]: ...

    def on(
        self, kind: str, handler: A | None = None, *, wanted: Wanted | None = None
    ) -> A | Callable[[A], A]:
        """Listen for `reaction`, `joined`, `thread_reply` or `dm_text` events. `wanted`, when
        given, is asked first (a read, before anything about the person is stored or looked
        up): most reactions are nothing to the bot and must leave no trace."""

        def register(fn: A) -> A:
            _once(self.listeners, kind, "listener")
            self.listeners[kind] = fn
            if wanted is not None:
                self.wanted[kind] = wanted
            return fn

        return register(handler) if handler is not None else register

    def listener(self, kind: str) -> ActionHandler:
        return self.listeners.get(kind, _ignore)

    def match(self, text: str) -> tuple[Command, str] | None:
        """The longest registered command that starts `text`, and the rest as arguments."""
        words = text.split()
        for size in (2, 1):
            if len(words) < size:
                continue
            key = " ".join(words[:size]).lower()
            if key in self.commands:
                rest = text.strip()
                for _ in range(size):
                    rest = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
                return self.commands[key], rest.strip()
        return None

    def is_command(self, text: str) -> bool:
        return self.match(text) is not None or self.family(text) is not None

    def is_exact_command(self, text: str) -> bool:
        """`text` reads as a whole command: its words, with arguments only where it takes
        them. While a question waits this is what runs as a command ("me" does, "me too,
        it went well" is an answer)."""
        found = self.match(text)
        if found is None:
            return False
        command, args = found
        takes_args = command.needs_args or "<" in command.usage or "[" in command.usage
        return takes_args or not args

    def family(self, text: str) -> list[Command] | None:
        """Commands that share the first word (`goal` -> goal add, goal list, goal done)."""
        first = text.split()[0].lower() if text.split() else ""
        family = [c for key, c in self.commands.items() if key.split()[0] == first]
        return family or None

    def suggest(self, text: str) -> str | None:
        first = text.split()[0].lower() if text.split() else ""
        names = sorted({key.split()[0] for key in self.commands})
        close = difflib.get_close_matches(first, names, n=1, cutoff=0.6)
        return close[0] if close else None


async def _ignore(ctx: Context) -> None:
    return None
