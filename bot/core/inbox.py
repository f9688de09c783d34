"""Inbound requests, made durable before they are acknowledged and worked from the database.

`Intake` stores a request (one row in `inbox`) before the adapter answers the platform: a
crash or a deploy after the answer loses nothing. Rows arriving together are written in one
transaction (a group commit), on a database thread. When the backlog is over `limit`, a new
request waits for room, briefly, and is then refused so the platform retries later
(backpressure instead of an unbounded queue).

`InboxWorkers` runs a fixed number of units of work at once. It claims rows first in their
lane (a person), so one person's events run one at a time and in order, across every process
on the database; each unit marks its row handled in its own transaction. Work is claimed as
soon as it is stored (a local wake-up) and otherwise every `poll` seconds (rows stored by
another replica, or taken back from a crashed one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.core.clock import Clock
from storage.db import Database
from storage.inbox import (
    INBOX,
    ClaimedEvent,
    NewEvent,
    add_events,
    backlog,
    claim_events,
    finish_event,
    release_events,
    take_back,
    worker_name,
)
from storage.queries import DuplicateEvent

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=2)
COUNT_EVERY = timedelta(seconds=0.25)


class Refused(Exception):
    """The request can't be taken now (stopping, or the backlog is full): answer 503."""


@dataclass
class Claim:
    """A claimed inbound request, for the adapter that works it."""

    event: ClaimedEvent
    worker: str
    clock: Clock
    finished: bool = False  # marked handled by the unit of work itself

    def finish(self, session: Session) -> None:
        """Mark the request handled in `session` (the unit of work's transaction); raises
        DuplicateEvent if this worker no longer holds it, which rolls the unit back."""
        if not finish_event(
            session, event_id=self.event.id, worker=self.worker, now=self.clock.now()
        ):
            raise DuplicateEvent(f"inbox:{self.event.id}")
        self.finished = True  # once committed; a rollback leaves the row claimed for a rerun


Work = Callable[[Claim], Awaitable[None]]


class Lanes:
    """Work done where it arrives (a Teams turn): `size` at once, one per lane at a time, in
    the order they came (asyncio's locks are first come, first served)."""

    def __init__(self, size: int) -> None:
        self._slots = asyncio.Semaphore(size)
        self._lanes: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, lane: str) -> AsyncIterator[None]:
        lock, users = self._lanes.get(lane, (asyncio.Lock(), 0))
        self._lanes[lane] = (lock, users + 1)
        try:
            async with lock, self._slots:
                yield
        finally:
            lock, users = self._lanes[lane]
            if users == 1:
                del self._lanes[lane]
            else:
                self._lanes[lane] = (lock, users - 1)


class Intake:
    def __init__(self, db: Database, clock: Clock, *, limit: int, wait: float = 2.0) -> None:
        self.db = db
        self.clock = clock
        self.limit = limit
        self.wait = wait
        self.backlog = 0  # requests stored and not yet handled, as last counted (+ since)
        self.on_stored: list[Callable[[], None]] = []
        self._waiting: list[tuple[NewEvent, asyncio.Future[bool]]] = []
        self._writing = False
        self._room = asyncio.Event()
        self._closed = False

    async def admit(self) -> None:
        """Wait (briefly) until there is room for a request; Refused if there is none."""
        if self._closed:
            raise Refused("stopping")
        if self.backlog >= self.limit:
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), timeout=self.wait)
            if self.backlog >= self.limit or self._closed:
                raise Refused(f"backlog of {self.backlog} requests")

    async def put(self, event: NewEvent) -> bool:
        """Store `event`; True when it is new, False for a retry of one already stored."""
        await self.admit()
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((event, future))
        if not self._writing:
            self._writing = True
            asyncio.get_running_loop().create_task(self._write())
        return await future

    async def _write(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    fresh = await self.db.run_urgent(self._store, [e for e, _ in batch])
                except Exception as exc:
                    log.exception("storing %d inbound requests failed", len(batch))
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), new in zip(batch, fresh, strict=True):
                    if not future.done():
                        future.set_result(new)
                self.backlog += sum(fresh)
                if any(fresh):
                    for wake in self.on_stored:
                        wake()
        finally:
            self._writing = False

    def _store(self, events: list[NewEvent]) -> list[bool]:
        with self.db.session(urgent=True) as session:
            return add_events(session, events, now=self.clock.now())

    def counted(self, pending: int) -> None:
        """The workers counted the backlog in the database."""
        self.backlog = pending
        if pending < self.limit:
            self._room.set()

    def close(self) -> None:
        """Take nothing more (a deploy is stopping this process)."""
        self._closed = True
        self._room.set()


class InboxWorkers:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        size: int,
        work: dict[str, Work],
        intake: Intake | None = None,
        poll: float = 0.5,
    ) -> None:
        self.db = db
        self.clock = clock
        self.size = size
        self.work = work  # platform -> how its adapter works one request
        self.intake = intake
        self.poll = poll
        self.worker = worker_name()
        self._wake = asyncio.Event()
        self._running: dict[asyncio.Task[None], int] = {}
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()  # set while nothing is claimed or waiting here
        self._batch = max(1, size // 4)
        self._counted_at: datetime | None = None

    def wake(self) -> None:
        self.idle.clear()
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        next_reclaim = self.clock.now()
        while not self._stopping:
            self._wake.clear()
            claimed: list[ClaimedEvent] = []
            try:
                now = self.clock.now()
                if now >= next_reclaim:
                    await self.db.run(self._take_back)
                    next_reclaim = now + timedelta(seconds=30)
                free = self.size - len(self._running)
                # Claim in batches: a pass per finished unit would cost a query per event.
                if free >= self._batch or (free > 0 and not self._running):
                    claimed, pending = await self.db.run(self._claim, free)
                    if self.intake is not None and pending is not None:
                        self.intake.counted(pending)
                    if not claimed and not self._running:
                        self.idle.set()
            except Exception:
                log.exception("claiming inbound work failed; retrying shortly")
            for event in claimed:
                task = asyncio.get_running_loop().create_task(self._one(event))
                self._running[task] = event.id
                task.add_done_callback(self._done)
            if claimed and len(claimed) == free:
                continue  # more may be waiting: claim again as soon as slots free
            waiters: list[asyncio.Future[object]] = [
                asyncio.ensure_future(self._wake.wait()),
                *self._running,  # type: ignore[list-item]
            ]
            await asyncio.wait(waiters, timeout=self.poll, return_when=asyncio.FIRST_COMPLETED)
            waiters[0].cancel()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._wake.set()

    def _claim(self, limit: int) -> tuple[list[ClaimedEvent], int | None]:
        """Claim work; the backlog is counted too, four times a second at most."""
        now = self.clock.now()
        with self.db.session() as session:
            claimed = claim_events(session, worker=self.worker, now=now, limit=limit)
            if self._counted_at is not None and now - self._counted_at < COUNT_EVERY:
                return claimed, None
            self._counted_at = now
            return claimed, backlog(session)

    def _take_back(self) -> None:
        with self.db.session() as session:
            dead = take_back(
                session, INBOX, now=self.clock.now(), stale=STALE_CLAIM, worker=self.worker
            )
        if dead:
            log.warning("took back inbound requests claimed by exited processes %s", dead)

    async def _one(self, event: ClaimedEvent) -> None:
        claim = Claim(event=event, worker=self.worker, clock=self.clock)
        work = self.work.get(event.platform)
        try:
            if work is None:
                raise LookupError(f"no adapter here works {event.platform} requests")
            await work(claim)
            if not claim.finished:
                await self.db.run(self._finish, event.id, "done", "")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("inbound %s request %s failed", event.platform, event.id)
            with contextlib.suppress(Exception):
                await self.db.run(self._finish, event.id, "failed", repr(exc))

    def _finish(self, event_id: int, status: str, error: str) -> None:
        """Handled requests whose adapter marked nothing (no unit of work ran) or failed."""
        with self.db.session() as session:
            finish_event(
                session,
                event_id=event_id,
                worker=self.worker,
                now=self.clock.now(),
                status=status,
                error=error,
            )

    async def drain(self, grace: float) -> None:
        """Stop: take no new requests, work what is stored for up to `grace` seconds, then
        let the units in flight end and give back what never started."""
        if self.intake is not None:
            self.intake.close()
        deadline = asyncio.get_running_loop().time() + grace
        self.wake()
        while asyncio.get_running_loop().time() < deadline:
            if self.idle.is_set() and not self._running:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle.wait(), timeout=0.1)
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        remaining = max(0.5, deadline - asyncio.get_running_loop().time())
        if self._running:
            _, late = await asyncio.wait(list(self._running), timeout=remaining)
            for task in late:
                task.cancel()
            if late:
                ids = [self._running.get(task) for task in late]
                log.warning("stopping with %d requests unfinished; they stay stored", len(ids))
                await asyncio.gather(*late, return_exceptions=True)
                await self.db.run(self._release, [i for i in ids if i is not None])

    def _release(self, event_ids: list[int]) -> None:
        with self.db.session() as session:
            release_events(session, worker=self.worker, event_ids=event_ids)
