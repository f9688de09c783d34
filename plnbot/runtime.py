"""The composition root: settings, database, model client, bot, platforms, outbox sender,
scheduler and the web app are wired here and nowhere else."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from aiohttp import web
from sqlmodel import select

from bot.config import ConfigError, Settings
from bot.core.clock import Clock, SystemClock
from bot.core.dispatch import Bot
from bot.core.inbox import InboxWorkers, Intake, Work
from bot.core.port import Platform
from bot.delivery.sender import OutboxSender
from bot.schedules.scheduling import ScheduleRunner
from storage.db import Database, DatabaseError, DatabaseReadOnly
from storage.inbox import unfinished_work
from storage.models import KeyValue

if TYPE_CHECKING:  # the adapters import this module for its Runtime type; no cycle at run time
    from adapters.slack.app import SlackBridge
    from adapters.teams.setup import TeamsEndpoint
    from adapters.web.playground import Playground

log = logging.getLogger("plnbot")


class BoundedRecords(logging.Filter):
    """Keeps a log record short: a library may log a request whole (Bolt logs an unhandled
    request's fields, and a refused one's body at INFO), and an exception's message can quote
    what it was given (an invalid URL, a value). The message is cut to `limit` characters,
    and each line of a traceback too."""

    def __init__(self, limit: int = 500) -> None:
        super().__init__()
        self.limit = limit

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "bounded", False):  # another handler's filter saw it first
            return True
        record.bounded = True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: logging itself reports it
            return True
        if len(message) > self.limit:
            record.msg = f"{message[: self.limit]}… ({len(message)} characters)"
            record.args = None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = "\n".join(
                line if len(line) <= self.limit else f"{line[: self.limit]}…"
                for line in text.splitlines()
            )
        return True


def bound_log_lines() -> None:
    """Every handler of the root logger (the one `plnbot` logs to) keeps lines short."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, BoundedRecords) for f in handler.filters):
            handler.addFilter(BoundedRecords())


def open_database(settings: Settings, *, upgrade_sqlite: bool = True) -> Database:
    """Connect and check the schema; raise ConfigError naming DATABASE_URL when unusable."""
    # Threads for the units of work, the sender's bookkeeping, intake and everything else.
    db = Database(settings.database_url, threads=settings.workers + 4)
    try:
        db.ping()
    except DatabaseError as exc:
        raise ConfigError(f"DATABASE_URL: {exc}") from None
    if db.is_sqlite and upgrade_sqlite:
        db.upgrade()
    elif not db.is_current():
        raise ConfigError(
            "DATABASE_URL: the database schema is not current; run `plnbot db upgrade` first"
        )
    return db


def secret_key(db: Database, settings: Settings) -> str:
    """PLNBOT_SECRET_KEY, or one generated on first run and kept in the database."""
    if settings.secret_key:
        return settings.secret_key
    with db.session() as session:
        row = session.exec(select(KeyValue).where(KeyValue.key == "secret_key")).first()
        if row is None:
            row = KeyValue(key="secret_key", value=secrets.token_urlsafe(32))
            session.add(row)
        return row.value


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bot: Bot
    clock: Clock
    platforms: dict[str, Platform] = field(default_factory=dict)
    web_handlers: list[Any] = field(default_factory=list)
    background: list[asyncio.Task[None]] = field(default_factory=list)
    # What the platforms close (HTTP sessions), run by `stop_workers` once nothing more is
    # sent: closed earlier, a send in flight at SIGTERM would fail and go out again later.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    scheduler: ScheduleRunner | None = None
    host: str = "127.0.0.1"  # where `plnbot serve` listens
    port: int = 3000
    allow_anonymous_teams: bool = False  # only `serve --allow-anonymous-teams`, never implied
    playground: bool | None = None  # None: on when no platform is configured
    # How each platform's adapter works one stored request (filled in by the adapters).
    inbox_work: dict[str, Work] = field(default_factory=dict)
    intake: Intake | None = None
    inbox: InboxWorkers | None = None
    # What each adapter wired, when it is configured (set through `attach`).
    slack: SlackBridge | None = None
    teams: TeamsEndpoint | None = None
    web_playground: Playground | None = None
    _sender: OutboxSender | None = None

    def attach(
        self,
        *,
        slack: SlackBridge | None = None,
        teams: TeamsEndpoint | None = None,
        web_playground: Playground | None = None,
    ) -> None:
        """Where an adapter's setup leaves what it wired (adapters/*/setup.py), for the
        runtime, Socket Mode and the tests to find."""
        if slack is not None:
            self.slack = slack
        if teams is not None:
            self.teams = teams
        if web_playground is not None:
            self.web_playground = web_playground

    @property
    def public_url(self) -> str:
        """Where people reach `plnbot serve` (dashboard links start here)."""
        return (self.settings.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def sender(self) -> OutboxSender:
        if self._sender is None:
            self._sender = OutboxSender(
                db=self.db,
                platforms=self.platforms,
                prompts=self.bot.prompts,
                kinds=self.bot.router.outbox,
                clock=self.clock,
                default_tz=self.settings.timezone,
                llm=self.bot.llm,
                concurrency=self.settings.send_concurrency,
                min_group=self.settings.min_group,
                retention_days=self.settings.retention_days,
            )
        return self._sender

    def accept(self) -> Intake:
        """The intake adapters store requests through (made on the running loop)."""
        if self.intake is None:
            self.intake = Intake(self.db, self.clock, limit=self.settings.inbox_limit)
        return self.intake

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until every stored request is handled and every due message sent (tests, and
        the last seconds of a deploy)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if await self.db.run(self._settled):
                await asyncio.sleep(0.02)  # let a send that just finished write its result
                if await self.db.run(self._settled):
                    return
            await asyncio.sleep(0.01)
        raise TimeoutError(f"work still waiting after {timeout:.1f} s")

    def _settled(self) -> bool:
        with self.db.session() as session:
            return not unfinished_work(session, now=self.clock.now())


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    upgrade_sqlite: bool = True,
    host: str = "127.0.0.1",
    port: int = 3000,
    allow_anonymous_teams: bool = False,
    playground: bool | None = None,
) -> Runtime:
    bound_log_lines()
    db = open_database(settings, upgrade_sqlite=upgrade_sqlite)
    clock = clock or SystemClock()
    bot = Bot(db=db, settings=settings, clock=clock)
    runtime = Runtime(
        settings=settings,
        db=db,
        bot=bot,
        clock=clock,
        host=host,
        port=port,
        allow_anonymous_teams=allow_anonymous_teams,
        playground=playground,
    )
    secret_key(db, settings)
    if settings.slack_enabled or settings.slack_bot_token:
        from adapters.slack.setup import attach_slack

        attach_slack(runtime)
    attach_optional(runtime, "adapters.teams.setup", "attach_teams")
    attach_optional(runtime, "adapters.web.setup", "attach_web")
    return runtime


def attach_optional(runtime: Runtime, module: str, function: str) -> None:
    """Adapters that decide for themselves whether they are configured."""
    import importlib

    try:
        attach = getattr(importlib.import_module(module), function)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return  # that adapter is not part of this build
        raise
    attach(runtime)


def configured_platforms(runtime: Runtime) -> list[str]:
    """The platforms this process serves, as an operator reads them in the log."""
    settings = runtime.settings
    found = []
    if settings.slack_enabled:
        mode = "Socket Mode" if settings.slack_app_token else "HTTP"
        install = "OAuth multi-workspace" if settings.slack_oauth_enabled else "single workspace"
        found.append(f"Slack ({mode}, {install})")
    if runtime.teams is not None:
        found.append(
            "Microsoft Teams"
            if settings.microsoft_app_id
            else "Microsoft Teams (anonymous, for a local Bot Framework Emulator)"
        )
    return found


def make_web_app(runtime: Runtime, *, scheduler: bool = True) -> web.Application:
    """One aiohttp app: health, the platform endpoints, and the background workers."""
    app = web.Application(client_max_size=2 * 1024 * 1024)

    probe = HealthProbe(runtime.db)

    async def healthz(request: web.Request) -> web.Response:
        db = await probe.state()
        if db != "ok":
            return web.json_response({"status": "degraded", "db": db}, status=503)
        return web.json_response({"status": "ok", "db": "ok"})

    app.router.add_get("/healthz", healthz)
    for add_routes in runtime.web_handlers:
        add_routes(app)
    if runtime.teams is None:
        app.router.add_post("/api/messages", teams_not_configured)

    async def start_background(app: web.Application) -> None:
        # Objects made at start-up live for the whole process: keep them out of the garbage
        # collector's full passes, which otherwise pause every request during bursts.
        gc.freeze()
        # Database threads hand the interpreter back to the event loop sooner (1 ms, not
        # 5 ms), so acknowledgements don't queue behind a unit of work's Python.
        sys.setswitchinterval(0.001)
        start_workers(runtime, scheduler=scheduler)

    async def stop_taking(app: web.Application) -> None:
        await stop_accepting(runtime)

    async def stop_background(app: web.Application) -> None:
        await stop_workers(runtime)

    app.on_startup.append(start_background)
    app.on_shutdown.append(stop_taking)
    app.on_cleanup.append(stop_background)
    return app


class HealthProbe:
    """/healthz's view of the database: "ok" when a real write commits, "read-only" when the
    database answers but the write fails (a read-only file, a full disk), "down" when it does
    not answer within `timeout` seconds.

    One probe per `every` seconds per process at most, whatever the number of callers (a load
    balancer, a monitor and Kubernetes all polling): callers in between get the last answer,
    and callers during a probe wait for that one. Each replica rewrites the same one row, a
    few times a second in all.
    """

    def __init__(self, db: Database, *, every: float = 1.0, timeout: float = 5.0) -> None:
        self.db = db
        self.every = every
        self.timeout = timeout
        self.writer = f"{socket.gethostname()}:{os.getpid()}"
        self._answer: tuple[float, str] | None = None
        self._running: asyncio.Task[str] | None = None
        self._write: asyncio.Future[None] | None = None  # the write on its thread

    async def state(self) -> str:
        if self._answer is not None and time.monotonic() - self._answer[0] < self.every:
            return self._answer[1]
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._probe())
        return await asyncio.shield(self._running)

    async def _probe(self) -> str:
        if self._write is not None and not self._write.done():
            # The last write still hangs: don't start another beside it.
            state, why = "down", f"a write has hung for more than {self.timeout:g} s"
        else:
            stamp = f"{time.time():.3f} {self.writer}"
            loop = asyncio.get_running_loop()
            self._write = loop.run_in_executor(None, self.db.check_writes, stamp)
            try:
                await asyncio.wait_for(asyncio.shield(self._write), self.timeout)
                state, why = "ok", ""
            except DatabaseReadOnly as exc:
                state, why = "read-only", str(exc)
            except (DatabaseError, TimeoutError) as exc:
                state, why = "down", str(exc) or f"no answer within {self.timeout:g} s"
        previous = self._answer[1] if self._answer is not None else "ok"
        if state != previous:  # one line per change, not one per probe
            if state == "ok":
                log.warning("health probe: the database keeps writes again")
            else:
                log.warning("health probe: %s (%s)", state, why)
        self._answer = (time.monotonic(), state)
        return state


async def teams_not_configured(request: web.Request) -> web.Response:
    """POST /api/messages while Teams is off: a clear 404, the body never read."""
    return web.json_response(
        {
            "error": "Microsoft Teams is not configured on this server: set MICROSOFT_APP_ID "
            "(or start `plnbot serve --allow-anonymous-teams` for a local Bot Framework Emulator)"
        },
        status=404,
    )


def start_workers(runtime: Runtime, *, scheduler: bool = True) -> None:
    """The inbox workers and the outbox sender always run (commands enqueue); timed jobs
    only when asked."""
    loop = asyncio.get_running_loop()
    bot = runtime.bot
    if runtime.inbox_work:
        intake = runtime.accept()
        runtime.inbox = InboxWorkers(
            runtime.db,
            runtime.clock,
            size=runtime.settings.workers,
            work=runtime.inbox_work,
            intake=intake,
        )
        intake.on_stored.append(runtime.inbox.wake)
        runtime.inbox.start()
    runtime.background.append(loop.create_task(runtime.sender.run_forever(bot.outbox_wakeup)))
    if scheduler:
        wakeup = bot.outbox_wakeup

        def wake() -> None:  # APScheduler runs plain jobs on its own threads
            loop.call_soon_threadsafe(wakeup.set)

        runner = ScheduleRunner(
            db=runtime.db,
            prompts=bot.prompts,
            settings=runtime.settings,
            clock=runtime.clock,
            wake=wake,
        )
        runner.start()
        runtime.scheduler = runner
        bot.on_schedules_changed = runner.rebuild_soon


async def stop_accepting(runtime: Runtime) -> None:
    """SIGTERM, first step: new requests are refused (503: the platform retries)."""
    if runtime.intake is not None:
        runtime.intake.close()


IN_FLIGHT_WAIT = 15.0  # seconds a stopping process waits for sends already in flight


async def stop_workers(runtime: Runtime) -> None:
    """Work what is stored for up to PLNBOT_SHUTDOWN_GRACE seconds, let what is in flight
    finish, send what that produced, then stop. What is left stays stored for next time."""
    grace = runtime.settings.shutdown_grace
    deadline = asyncio.get_running_loop().time() + grace
    if runtime.scheduler is not None:
        runtime.scheduler.shutdown()
    if runtime.inbox is not None:
        await runtime.inbox.drain(grace)
    # What the drained work answered goes out too, while the grace period lasts.
    with contextlib.suppress(TimeoutError, DatabaseError, sa.exc.SQLAlchemyError):
        await runtime.idle(timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
    runtime.sender.stop()
    runtime.bot.outbox_wakeup.set()
    if runtime.background:
        # A send already on its way must finish and be marked sent: cancelled mid-request it
        # would be sent again after the restart (Slack has no idempotency key). The sender
        # claims nothing more, so this waits only for what is in flight.
        _, late = await asyncio.wait(runtime.background, timeout=IN_FLIGHT_WAIT)
        for task in late:
            task.cancel()
        await asyncio.gather(*runtime.background, return_exceptions=True)
    runtime.background.clear()
    for close in reversed(runtime.closers):
        try:
            await close()
        except Exception:
            log.exception("closing %s failed", getattr(close, "__qualname__", close))
    runtime.closers.clear()
