"""The outbox sender: claims due rows, sends them through the platform, marks them sent.

A row is claimed with a conditional update (and `FOR UPDATE SKIP LOCKED` on PostgreSQL), so
two senders never send the same row, and only when no earlier row of its lane (one posted
message's updates, one channel's posts, one person's private answers) is waiting or in
flight, so each destination hears things in order. Up to `concurrency` rows are in flight at
once: a channel held back by the platform's pacing holds one slot, not the queue.

A sender that dies leaves its claimed rows behind: a sender on the same host sees the dead
process id and takes them back at once; otherwise they return after `STALE_CLAIM`. The one
message that was in flight when it died may then be sent a second time — the one documented
case of a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from bot.core.clock import Clock
from bot.core.codec import message_from_json
from bot.core.events import MessageRef
from bot.core.kinds import Delivery, OutboxKinds
from bot.core.messages import Message
from bot.core.port import DeliveryError, Platform, send_message
from bot.delivery.rows import (
    REPLY_KINDS,
    card_states,
    new_cards,
    prepare_row,
    render_reply,
    render_row,
)
from bot.scoring.small_groups import DEFAULT_MIN_GROUP
from bot.services.llm import ModelClient
from bot.services.prompts import PromptLibrary
from storage.db import Database
from storage.inbox import OUTBOX, claim_ids, prune, take_back, worker_name
from storage.models import OutboxMessage, PostedMessage, Workspace
from storage.queries import insert_many_new

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=2)
CLAIM_BATCH = 10
MAX_ATTEMPTS = 5
PRUNE_EVERY = timedelta(hours=1)
NEEDS_MODEL = "model"  # a digest whose introduction the optional model writes first
Prepared = tuple[Platform, Delivery] | str | None


class OutboxSender:
    def __init__(
        self,
        *,
        db: Database,
        platforms: Mapping[str, Platform],
        prompts: PromptLibrary,
        kinds: OutboxKinds,
        clock: Clock,
        default_tz: str,
        worker_id: str | None = None,
        llm: ModelClient | None = None,
        concurrency: int = 32,
        retention_days: int = 30,
        min_group: int = DEFAULT_MIN_GROUP,
    ) -> None:
        self.db = db
        self.llm = llm  # the optional model, for digest introductions
        self.platforms = platforms
        self.prompts = prompts
        self.kinds = kinds  # what each row kind says, declared by the features
        self.clock = clock
        self.default_tz = default_tz
        self.worker_id = worker_id or worker_name()
        self.concurrency = concurrency
        self.min_group = min_group  # PLNBOT_MIN_GROUP, for the digests it renders
        self.retention = timedelta(days=retention_days)
        self._pruned_at: datetime | None = None
        self._stopping = False
        self._done: list[tuple[int, Delivery, MessageRef | None]] = []
        self._workspace_of: dict[int, int] = {}  # claimed rows' workspaces, until marked sent
        self._writer: asyncio.Task[None] | None = None

    def reclaim_abandoned(self, now: datetime) -> None:
        """Rows left claimed by a crashed sender go back to the queue."""
        with self.db.session() as session:
            dead = take_back(session, OUTBOX, now=now, stale=STALE_CLAIM, worker=self.worker_id)
        if dead:
            log.warning("took back outbox rows claimed by exited workers %s", dead)

    def claim(self, limit: int = CLAIM_BATCH) -> list[int]:
        now = self.clock.now()
        with self.db.session() as session:
            return claim_ids(session, OUTBOX, worker=self.worker_id, now=now, limit=limit)

    async def deliver_due(self, limit: int = CLAIM_BATCH) -> int:
        """Send every due row, one at a time in claim order; returns how many rows were
        processed (tests and one-off runs; `run_forever` keeps many in flight)."""
        await self.db.run(self.reclaim_abandoned, self.clock.now())
        done = 0
        while True:
            batch = await self.db.run(self.claim, limit)
            if not batch:
                return done
            for row_id in batch:
                await self.deliver(row_id)
            done += len(batch)

    async def deliver(self, row_id: int) -> None:
        if self.llm is not None:
            await prepare_row(self.db, self.prompts, self.llm, self.kinds, row_id)  # never raises
        now = self.clock.now()
        prepared = await self.db.run(self._prepare, row_id, now)
        if not isinstance(prepared, tuple):
            return
        await self._send(row_id, *prepared, now=now)

    async def _send(
        self,
        row_id: int,
        platform: Platform,
        delivery: Delivery,
        *,
        now: datetime,
        later: bool = False,
    ) -> None:
        """Send a prepared row; mark it sent now, or (`later`) with others in one commit."""
        try:
            ref = await send_message(platform, delivery.message, delivery.conversation)
        except Exception as exc:
            retry_after = exc.retry_after if isinstance(exc, DeliveryError) else None
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            log.warning("sending outbox row %s failed: %s", row_id, exc)
            await self.db.run(self._failed, row_id, str(exc)[:500], now, retry_after, permanent)
            return
        if later:
            self._completed(row_id, delivery, ref)
        else:
            await self.db.run(self._sent, [(row_id, delivery, ref)])

    def _completed(self, row_id: int, delivery: Delivery, ref: MessageRef | None) -> None:
        """Sends that finished while others were being written are written together."""
        self._done.append((row_id, delivery, ref))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_done())

    async def _write_done(self) -> None:
        while self._done:
            batch, self._done = self._done, []
            try:
                await self.db.run(self._sent, batch)
            except Exception:  # left claimed: taken back and sent again (a duplicate)
                log.exception("marking %d sent outbox rows failed", len(batch))

    def _prepare(self, row_id: int, now: datetime) -> Prepared:
        with self.db.session() as session:
            return self._prepare_in(session, row_id, now, model=False)

    def claim_prepared(self, limit: int) -> list[tuple[int, Prepared]]:
        """Claim rows and draw their messages in one transaction (the sender's hot path)."""
        now = self.clock.now()
        with self.db.session() as session:
            ids = claim_ids(session, OUTBOX, worker=self.worker_id, now=now, limit=limit)
            if not ids:
                return []
            rows = {
                row.id: row
                for row in session.connection().execute(_TO_SEND.where(OUTBOX.c.id.in_(ids)))
            }
            # The batch's replies decoded once, and the state of its new cards in one query.
            messages = {
                i: message_from_json(row.payload)
                for i, row in rows.items()
                if row.kind in REPLY_KINDS and row.payload is not None
            }
            cards = [a for a in map(new_cards, messages.values()) if a is not None]
            states = card_states(session, cards)
            prepared = [
                (
                    i,
                    self._prepare_in(
                        session, i, now, found=rows.get(i), message=messages.get(i), states=states
                    ),
                )
                for i in ids
            ]
            self._workspace_of.update(
                (i, rows[i].workspace_id) for i, ready in prepared if isinstance(ready, tuple)
            )
            return prepared

    def _prepare_in(
        self,
        session: Session,
        row_id: int,
        now: datetime,
        *,
        model: bool = True,
        found: sa.Row[Any] | None = None,
        message: Message | None = None,
        states: Mapping[int, bool] | None = None,
    ) -> Prepared:
        """The claimed row's platform and message; None when it is not to be sent (the row
        is then marked why); NEEDS_MODEL when the optional model is to be asked first."""
        if found is None:
            found = session.connection().execute(_TO_SEND.where(OUTBOX.c.id == row_id)).first()
        if found is None or found.status != "claimed":
            return None
        if model and found.kind == "digest" and self.llm is not None and self.llm.enabled:
            return NEEDS_MODEL
        platform = self.platforms.get(found.platform)
        if found.expires_at is not None and found.expires_at < now:
            _finish(session, row_id, "skipped", "expired before it could be sent")
            return None
        if platform is None:
            row = session.get(OutboxMessage, row_id)
            assert row is not None
            self._retry_or_fail(row, "platform not configured", now, None)
            session.add(row)
            return None
        try:
            if found.kind in REPLY_KINDS:  # most rows: no ORM row needed
                delivery = render_reply(
                    session, self.prompts, self.kinds, message or found.payload, states
                )
            else:
                row = session.get(OutboxMessage, row_id)
                assert row is not None
                delivery = render_row(
                    session,
                    self.prompts,
                    self.kinds,
                    row,
                    now=now,
                    default_tz=self.default_tz,
                    min_group=self.min_group,
                )
        except Exception as exc:
            log.exception("rendering outbox row %s failed", row_id)
            _finish(session, row_id, "failed", f"render: {exc.__class__.__name__}")
            return None
        if delivery is None:
            _finish(session, row_id, "skipped", "no longer applies")
            return None
        return platform, delivery

    def _failed(
        self,
        row_id: int,
        reason: str,
        now: datetime,
        retry_after: float | None,
        permanent: bool,
    ) -> None:
        self._workspace_of.pop(row_id, None)
        with self.db.session() as session:
            row = session.get(OutboxMessage, row_id)
            assert row is not None
            if permanent:
                _finish(session, row_id, "failed", reason)
                return
            self._retry_or_fail(row, reason, now, retry_after)
            session.add(row)

    def _sent(self, done: list[tuple[int, Delivery, MessageRef | None]]) -> None:
        """Mark rows sent (one statement for the batch) and link what the cards stand for."""
        now = self.clock.now()
        with self.db.session() as session:
            session.connection().execute(
                _MARK_SENT,
                [
                    {"row": row_id, "at": now, "message_id": ref.message_id if ref else None}
                    for row_id, _, ref in done
                ],
            )
            links = [  # an update has no ref: only new posts are linked
                (row_id, d.message.link, ref)
                for row_id, d, ref in done
                if d.message.link is not None and ref is not None and ref.message_id
            ]
            unknown = [row_id for row_id, _, _ in links if row_id not in self._workspace_of]
            if unknown:
                found = session.connection().execute(
                    sa.select(OUTBOX.c.id, OUTBOX.c.workspace_id).where(OUTBOX.c.id.in_(unknown))
                )
                self._workspace_of.update((row_id, ws) for row_id, ws in found)
            insert_many_new(
                session,
                PostedMessage,
                [
                    {
                        "workspace_id": self._workspace_of[row_id],
                        "channel_id": ref.conversation.channel_id,
                        "message_ts": ref.message_id,
                        "kind": link.kind,
                        "object_id": link.object_id,
                    }
                    for row_id, link, ref in links
                    if link is not None and ref is not None
                ],
            )
        for row_id, _, _ in done:
            self._workspace_of.pop(row_id, None)

    @staticmethod
    def _retry_or_fail(
        row: OutboxMessage, reason: str, now: datetime, retry_after: float | None
    ) -> None:
        if row.attempts >= MAX_ATTEMPTS:
            row.status, row.error = "failed", reason[:500]
            if row.kind in REPLY_KINDS:
                row.payload = None  # a reply's words are not kept once given up
            return
        if retry_after is not None:
            delay = retry_after  # the platform said when
        else:
            delay = min(300.0, 2.0**row.attempts) * (1 + random.random() * 0.2)  # jittered
        row.status = "pending"
        row.error = reason
        row.not_before = now + timedelta(seconds=delay)

    async def run_forever(self, wakeup: asyncio.Event, *, interval: float = 2.0) -> None:
        """Keep up to `concurrency` rows in flight; claim more whenever woken (something was
        queued), whenever a send finishes, and at least every `interval` seconds."""
        in_flight: set[asyncio.Task[None]] = set()
        next_reclaim = self.clock.now()
        try:
            while not self._stopping:
                wakeup.clear()
                now = self.clock.now()
                try:
                    if now >= next_reclaim:
                        await self.db.run(self.reclaim_abandoned, now)
                        next_reclaim = now + timedelta(seconds=30)
                        await self._prune(now)
                    free = self.concurrency - len(in_flight)
                    # In batches: a pass per finished send would cost a query per message.
                    batch = free >= max(1, self.concurrency // 4) or not in_flight
                    claimed = await self.db.run(self.claim_prepared, free) if free and batch else []
                except Exception:
                    log.exception("outbox pass failed; retrying shortly")
                    claimed = []
                for row_id, prepared in claimed:
                    if prepared is None:
                        continue  # not to be sent; marked why
                    if isinstance(prepared, tuple):
                        send = self._send(row_id, *prepared, now=now, later=True)
                    else:
                        send = self.deliver(row_id)  # the model is asked first
                    task = asyncio.get_running_loop().create_task(self._logged(row_id, send))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                if claimed and len(claimed) == free:
                    await asyncio.sleep(0)  # more may be due: claim again once a slot frees
                waiters: list[asyncio.Future[object]] = [
                    asyncio.ensure_future(wakeup.wait()),
                    *in_flight,  # type: ignore[list-item]
                ]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait(
                        waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED
                    )
                waiters[0].cancel()
        finally:
            if in_flight:  # what is in flight finishes: its message is already on its way
                await asyncio.gather(*in_flight, return_exceptions=True)
            while self._writer is not None and not self._writer.done():
                await self._writer

    def stop(self) -> None:
        """Claim nothing more; `run_forever` returns once what is in flight is sent."""
        self._stopping = True

    @staticmethod
    async def _logged(row_id: int, send: Awaitable[None]) -> None:
        try:
            await send
        except Exception:
            log.exception("delivering outbox row %s failed", row_id)

    async def _prune(self, now: datetime) -> None:
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        counts = await self.db.run(self._prune_now, now - self.retention)
        if any(counts.values()):
            log.info("retention: removed %s older than %s", counts, self.retention)

    def _prune_now(self, before: datetime) -> dict[str, int]:
        with self.db.session() as session:
            return prune(session, before=before)


_MARK_SENT = (
    OUTBOX.update()
    .where(OUTBOX.c.id == sa.bindparam("row"))
    .values(
        status="sent",
        error="",
        sent_at=sa.bindparam("at"),
        platform_message_id=sa.bindparam("message_id"),
        payload=sa.case(
            *((OUTBOX.c.kind == kind, sa.null()) for kind in REPLY_KINDS),
            else_=OUTBOX.c.payload,
        ),
    )
)


_TO_SEND = (
    sa.select(
        OUTBOX.c.id,
        OUTBOX.c.workspace_id,
        OUTBOX.c.status,
        OUTBOX.c.kind,
        OUTBOX.c.payload,
        OUTBOX.c.expires_at,
        col(Workspace.platform),
    ).join(Workspace, Workspace.id == OUTBOX.c.workspace_id)  # type: ignore[arg-type]
)


def _finish(
    session: Session,
    row_id: int,
    status: str,
    error: str,
    *,
    sent: tuple[datetime, str | None] | None = None,
) -> tuple[str, int] | None:
    """A row's last state; a reply's words are not kept once it is sent or given up.
    Returns the row's kind and workspace id."""
    values: dict[str, object] = {"status": status, "error": error[:500]}
    if sent is not None:
        values["sent_at"], values["platform_message_id"] = sent
    payload = sa.case((OUTBOX.c.kind.in_(REPLY_KINDS), sa.null()), else_=OUTBOX.c.payload)
    found = (
        session.connection()
        .execute(
            OUTBOX.update()
            .where(OUTBOX.c.id == row_id)
            .values(**values, payload=payload)
            .returning(OUTBOX.c.kind, OUTBOX.c.workspace_id)
        )
        .first()
    )
    return (found[0], found[1]) if found is not None else None
