"""The outbox sender: claims due rows, sends them through the platform, marks them sent.

A row is claimed with a conditional update (and `FOR UPDATE SKIP LOCKED` on PostgreSQL), so
two workers never send the same row. Rows are claimed a few at a time and sent one by one.
A worker that dies leaves its claimed rows behind: a worker on the same host sees the dead
process id and takes them back at once; otherwise they return after `STALE_CLAIM`. The one
message that was in flight when the worker died may then be sent a second time — the one
documented case of a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Mapping
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import select

from bot.clock import Clock
from bot.delivery import prepare_row, render_row
from bot.llm import ModelClient
from bot.port import DeliveryError, Platform
from bot.prompts import PromptLibrary
from storage.db import Database
from storage.models import OutboxMessage, Workspace
from storage.queries import link_message

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=2)
CLAIM_BATCH = 10
MAX_ATTEMPTS = 5


class OutboxSender:
    def __init__(
        self,
        *,
        db: Database,
        platforms: Mapping[str, Platform],
        prompts: PromptLibrary,
        clock: Clock,
        default_tz: str,
        worker_id: str | None = None,
        llm: ModelClient | None = None,
    ) -> None:
        self.db = db
        self.llm = llm  # the optional model, for digest introductions
        self.platforms = platforms
        self.prompts = prompts
        self.clock = clock
        self.default_tz = default_tz
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"

    def reclaim_abandoned(self, now: datetime) -> None:
        """Rows left claimed by a crashed worker go back to the queue."""
        with self.db.session() as session:
            session.exec(
                sa.update(OutboxMessage)
                .where(
                    OutboxMessage.status == "claimed",
                    OutboxMessage.claimed_at < now - STALE_CLAIM,  # type: ignore[operator]
                )
                .values(status="pending")
            )
            host = socket.gethostname()
            holders = session.exec(
                select(OutboxMessage.claimed_by)
                .where(
                    OutboxMessage.status == "claimed",
                    OutboxMessage.claimed_by.like(f"{host}:%"),  # type: ignore[union-attr]
                )
                .distinct()
            ).all()
            dead = [h for h in holders if h and h != self.worker_id and not _alive(h)]
            if dead:
                log.warning("taking back rows claimed by exited workers %s", dead)
                session.exec(
                    sa.update(OutboxMessage)
                    .where(OutboxMessage.status == "claimed", OutboxMessage.claimed_by.in_(dead))  # type: ignore[union-attr]
                    .values(status="pending")
                )

    def claim(self, limit: int = CLAIM_BATCH) -> list[int]:
        now = self.clock.now()
        with self.db.session() as session:
            query = (
                select(OutboxMessage.id)
                .where(OutboxMessage.status == "pending", OutboxMessage.not_before <= now)  # type: ignore[operator]
                .order_by(OutboxMessage.not_before, OutboxMessage.id)  # type: ignore[arg-type]
                .limit(limit)
            )
            if not self.db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            candidates = list(session.exec(query).all())
            claimed = []
            for row_id in candidates:
                result = session.exec(
                    sa.update(OutboxMessage)
                    .where(OutboxMessage.id == row_id, OutboxMessage.status == "pending")
                    .values(
                        status="claimed",
                        claimed_by=self.worker_id,
                        claimed_at=now,
                        attempts=OutboxMessage.attempts + 1,
                    )
                )
                if result.rowcount == 1:
                    claimed.append(row_id)
        return [row_id for row_id in claimed if row_id is not None]

    async def deliver_due(self, limit: int = CLAIM_BATCH) -> int:
        """Send every due row (in batches); returns how many rows were processed."""
        self.reclaim_abandoned(self.clock.now())
        done = 0
        while True:
            batch = self.claim(limit)
            if not batch:
                return done
            for row_id in batch:
                await self.deliver(row_id)
            done += len(batch)

    async def deliver(self, row_id: int) -> None:
        if self.llm is not None:
            await prepare_row(self.db, self.prompts, self.llm, row_id)  # never raises
        now = self.clock.now()
        with self.db.session() as session:
            row = session.get(OutboxMessage, row_id)
            if row is None or row.status != "claimed":
                return
            workspace = session.get(Workspace, row.workspace_id)
            platform = self.platforms.get(workspace.platform) if workspace else None
            if row.expires_at is not None and row.expires_at < now:
                row.status, row.error = "skipped", "expired before it could be sent"
                session.add(row)
                return
            if platform is None:
                self._retry_or_fail(row, "platform not configured", now, None)
                session.add(row)
                return
            try:
                delivery = render_row(
                    session, self.prompts, row, now=now, default_tz=self.default_tz
                )
            except Exception as exc:
                log.exception("rendering outbox row %s failed", row.key)
                row.status, row.error = "failed", f"render: {exc.__class__.__name__}"
                session.add(row)
                return
            if delivery is None:
                row.status, row.error = "skipped", "no longer applies"
                session.add(row)
                return
        try:
            if delivery.to is not None:
                conversation = await platform.open_dm(delivery.to)
            else:
                assert delivery.conversation is not None
                conversation = delivery.conversation
            ref = await platform.send(conversation, delivery.message)
        except Exception as exc:
            retry_after = exc.retry_after if isinstance(exc, DeliveryError) else None
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            log.warning("sending %s failed: %s", row.key, exc)
            with self.db.session() as session:
                row = session.get(OutboxMessage, row_id)
                assert row is not None
                if permanent:
                    row.status, row.error = "failed", str(exc)[:500]
                else:
                    self._retry_or_fail(row, str(exc)[:500], now, retry_after)
                session.add(row)
            return
        with self.db.session() as session:
            row = session.get(OutboxMessage, row_id)
            assert row is not None
            row.status, row.sent_at, row.platform_message_id = (
                "sent",
                self.clock.now(),
                ref.message_id,
            )
            session.add(row)
            link = delivery.message.link
            if link is not None and ref.message_id:
                link_message(
                    session,
                    workspace_id=row.workspace_id,
                    channel_id=ref.conversation.channel_id,
                    message_ts=ref.message_id,
                    kind=link.kind,
                    object_id=link.object_id,
                )

    @staticmethod
    def _retry_or_fail(row: OutboxMessage, reason: str, now, retry_after: float | None) -> None:  # type: ignore[no-untyped-def]
        if row.attempts >= MAX_ATTEMPTS:
            row.status, row.error = "failed", reason
            return
        if retry_after is not None:
            delay = retry_after  # the platform said when
        else:
            delay = min(300.0, 2.0**row.attempts) * (1 + random.random() * 0.2)  # jittered
        row.status = "pending"
        row.error = reason
        row.not_before = now + timedelta(seconds=delay)

    async def run_forever(self, wakeup: asyncio.Event, *, interval: float = 2.0) -> None:
        """Deliver due rows whenever woken, and at least every `interval` seconds."""
        while True:
            try:
                await self.deliver_due()
            except Exception:
                log.exception("outbox pass failed; retrying shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=interval)
            wakeup.clear()


def _alive(worker_id: str) -> bool:
    """Whether a worker id (`host:pid`) on this host names a running process."""
    try:
        pid = int(worker_id.rsplit(":", 1)[1])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
