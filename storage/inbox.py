"""The inbox and the outbox as work queues: lane-ordered claims, completion, retention.

Both tables are worked the same way. A row is claimed only when no earlier row of its lane
is still waiting or being worked, so one person's events (or the updates of one posted
message) run one at a time and in order, whichever process claims them; a conditional update
(and `FOR UPDATE SKIP LOCKED` on PostgreSQL) makes each claim exclusive.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from storage.models import InboundReceipt, InboxEvent, OutboxMessage

INBOX: sa.Table = InboxEvent.__table__  # type: ignore[attr-defined]
OUTBOX: sa.Table = OutboxMessage.__table__  # type: ignore[attr-defined]
# Receipts that mean "once ever", not "this request was handled": never pruned.
LASTING_RECEIPTS = ("teams:welcomed:", "teams:hello:")


@dataclass(frozen=True)
class NewEvent:
    key: str
    platform: str
    lane: str
    kind: str
    payload: str


@dataclass(frozen=True)
class ClaimedEvent:
    id: int
    platform: str
    lane: str
    kind: str
    payload: str
    attempts: int


def worker_name() -> str:
    """`host:pid`: a claim's holder, so a dead process's claims can be told apart."""
    return f"{socket.gethostname()}:{os.getpid()}"


def add_events(session: Session, events: Sequence[NewEvent], *, now: datetime) -> list[bool]:
    """Store requests unless their key is stored already (one statement for the batch); for
    each, whether it is new."""
    if not events:
        return []
    dialect = session.get_bind().dialect.name
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    rows = [
        {
            "key": event.key,
            "platform": event.platform,
            "lane": event.lane,
            "kind": event.kind,
            "payload": event.payload,
            "status": "pending",
            "attempts": 0,
            "received_at": now,
            "error": "",
        }
        for event in events
    ]
    # executemany with RETURNING: SQLAlchemy sends it as one multi-row INSERT ("insertmanyvalues")
    # but compiles it once, whatever the batch's size (`.values(rows)` compiled every size anew).
    statement = insert(INBOX).on_conflict_do_nothing(index_elements=["key"]).returning(INBOX.c.key)
    stored = set(session.connection().execute(statement, rows).scalars())
    fresh = []
    for event in events:  # a retry in the same batch as its original is not new
        fresh.append(event.key in stored)
        stored.discard(event.key)
    return fresh


def _first_in_lane(table: sa.Table) -> sa.ColumnElement[bool]:
    earlier = table.alias("earlier")
    waiting = (
        sa.select(sa.literal(1))
        .where(
            earlier.c.lane == table.c.lane,
            earlier.c.id < table.c.id,
            earlier.c.status.in_(("pending", "claimed")),
        )
        .exists()
    )
    return sa.or_(table.c.lane.is_(None), ~waiting)


# Built once (building a statement costs more than running it on SQLite): the rows that
# may be claimed now, oldest first; the outbox's only once due.
_CLAIMABLE = {
    table.name: sa.select(table.c.id)
    .where(table.c.status == "pending", due, _first_in_lane(table))
    .order_by(table.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer(), literal_execute=True))
    for table, due in (
        (INBOX, sa.true()),
        (OUTBOX, OUTBOX.c.not_before <= sa.bindparam("now", type_=OUTBOX.c.not_before.type)),
    )
}
# PostgreSQL: rows another process is claiming right now are skipped, not waited for.
_CLAIMABLE_LOCKED = {
    name: query.with_for_update(skip_locked=True, of=INBOX if name == INBOX.name else OUTBOX)
    for name, query in _CLAIMABLE.items()
}


def _claim_update(table: sa.Table) -> sa.Update:
    return (
        table.update()
        .where(table.c.id.in_(sa.bindparam("ids", expanding=True)), table.c.status == "pending")
        .values(
            status="claimed",
            claimed_by=sa.bindparam("worker", type_=table.c.claimed_by.type),
            claimed_at=sa.bindparam("now", type_=table.c.claimed_at.type),
            attempts=table.c.attempts + 1,
        )
        .returning(table.c.id)
    )


_CLAIM = {table.name: _claim_update(table) for table in (INBOX, OUTBOX)}


def claim_ids(
    session: Session, table: sa.Table, *, worker: str, now: datetime, limit: int
) -> list[int]:
    """Claim up to `limit` claimable rows (due, first in their lane); returns their ids."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    query = (_CLAIMABLE if sqlite else _CLAIMABLE_LOCKED)[table.name]
    connection = session.connection()
    candidates = list(connection.execute(query, {"limit": limit, "now": now}).scalars())
    if not candidates:
        return []
    claimed = connection.execute(
        _CLAIM[table.name], {"ids": candidates, "worker": worker, "now": now}
    )
    return sorted(claimed.scalars())


_CLAIMED_EVENTS = (
    sa.select(
        INBOX.c.id, INBOX.c.platform, INBOX.c.lane, INBOX.c.kind, INBOX.c.payload, INBOX.c.attempts
    )
    .where(INBOX.c.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(INBOX.c.id)
)


def claim_events(session: Session, *, worker: str, now: datetime, limit: int) -> list[ClaimedEvent]:
    ids = claim_ids(session, INBOX, worker=worker, now=now, limit=limit)
    if not ids:
        return []
    rows = session.connection().execute(_CLAIMED_EVENTS, {"ids": ids}).all()
    return [ClaimedEvent(*row) for row in rows]


def _finish_update(*, forget_words: bool) -> sa.Update:
    done = {"payload": "", "lane": ""} if forget_words else {}
    return (
        INBOX.update()
        .where(
            INBOX.c.id == sa.bindparam("event_id", type_=sa.Integer()),
            INBOX.c.status == "claimed",
            INBOX.c.claimed_by == sa.bindparam("worker", type_=INBOX.c.claimed_by.type),
        )
        .values(
            status=sa.bindparam("status", type_=INBOX.c.status.type),
            handled_at=sa.bindparam("now", type_=INBOX.c.handled_at.type),
            error=sa.bindparam("error", type_=INBOX.c.error.type),
            **done,
        )
    )


_FINISH = {True: _finish_update(forget_words=True), False: _finish_update(forget_words=False)}


def finish_event(
    session: Session,
    *,
    event_id: int,
    worker: str,
    now: datetime,
    status: str = "done",
    error: str = "",
) -> bool:
    """Mark a claimed event handled (in the unit of work's own transaction, when there is
    one); False when this worker no longer holds it (it was taken back). A handled event
    keeps only its key (a late retry is still recognised): its body and its person go, so
    the inbox holds nobody's words once they are worked (a failed one keeps them, to be
    looked into, until retention prunes it)."""
    result = session.connection().execute(
        _FINISH[status == "done"],
        {
            "event_id": event_id,
            "worker": worker,
            "status": status,
            "now": now,
            "error": error[:500],
        },
    )
    return result.rowcount == 1


def release_events(session: Session, *, worker: str, event_ids: Sequence[int]) -> None:
    """Give claimed events back (a worker stopping before it started them)."""
    if event_ids:
        session.connection().execute(
            INBOX.update()
            .where(
                INBOX.c.id.in_(event_ids),
                INBOX.c.status == "claimed",
                INBOX.c.claimed_by == worker,
            )
            .values(status="pending", attempts=INBOX.c.attempts - 1)
        )


def take_back(
    session: Session, table: sa.Table, *, now: datetime, stale: timedelta, worker: str
) -> list[str]:
    """Rows a crashed worker left claimed go back to the queue: at once when the worker was
    a process on this host that is gone, else once the claim is `stale`. Returns the dead."""
    session.connection().execute(
        table.update()
        .where(table.c.status == "claimed", table.c.claimed_at < now - stale)
        .values(status="pending")
    )
    host = socket.gethostname()
    holders = (
        session.connection()
        .execute(
            sa.select(table.c.claimed_by)
            .where(table.c.status == "claimed", table.c.claimed_by.like(f"{host}:%"))
            .distinct()
        )
        .scalars()
    )
    dead = [h for h in holders if h and h != worker and not _alive(h)]
    if dead:
        session.connection().execute(
            table.update()
            .where(table.c.status == "claimed", table.c.claimed_by.in_(dead))
            .values(status="pending")
        )
    return dead


def backlog(session: Session) -> int:
    """Inbound events not yet handled (waiting or being worked)."""
    return int(
        session.connection()
        .execute(
            sa.select(sa.func.count())
            .select_from(INBOX)
            .where(INBOX.c.status.in_(("pending", "claimed")))
        )
        .scalar_one()
    )


def prune(session: Session, *, before: datetime) -> dict[str, int]:
    """Drop what only mattered for a while: handled inbox rows, finished outbox rows and
    request receipts older than `before` (so the tables stay flat over a school year)."""
    receipts: sa.Table = InboundReceipt.__table__  # type: ignore[attr-defined]
    lasting = [receipts.c.key.like(f"{prefix}%") for prefix in LASTING_RECEIPTS]
    counts = {
        "inbox": session.connection()
        .execute(
            INBOX.delete().where(
                INBOX.c.status.in_(("done", "failed")), INBOX.c.handled_at < before
            )
        )
        .rowcount,
        "outbox": session.connection()
        .execute(
            OUTBOX.delete().where(
                OUTBOX.c.status.in_(("sent", "failed", "skipped")), OUTBOX.c.created_at < before
            )
        )
        .rowcount,
        "receipts": session.connection()
        .execute(receipts.delete().where(receipts.c.received_at < before, ~sa.or_(*lasting)))
        .rowcount,
    }
    return counts


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


def unfinished_work(session: Session, *, now: datetime) -> bool:
    """Whether any request waits or is being worked, or any due message waits or is in flight."""
    waiting_in = sa.select(INBOX.c.id).where(INBOX.c.status.in_(("pending", "claimed"))).limit(1)
    waiting_out = (
        sa.select(OUTBOX.c.id)
        .where(
            sa.or_(
                OUTBOX.c.status == "claimed",
                sa.and_(OUTBOX.c.status == "pending", OUTBOX.c.not_before <= now),
            )
        )
        .limit(1)
    )
    return (
        session.connection().execute(waiting_in).first() is not None
        or session.connection().execute(waiting_out).first() is not None
    )
