"""Data-access functions shared by several features (keyword-only, one session passed in)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, col, select

from storage.columns import saved_id
from storage.models import (
    Community,
    FlowState,
    Goal,
    InboundReceipt,
    Member,
    Membership,
    OutboxMessage,
    PostedMessage,
    Workspace,
)

T = TypeVar("T", bound=SQLModel)


def _get_or_insert(session: Session, find: Callable[[], T | None], make: Callable[[], T]) -> T:
    """Find a row or insert it; a concurrent insert of the same row is read back, not doubled."""
    found = find()
    if found is not None:
        return found
    try:
        with session.begin_nested():
            row = make()
            session.add(row)
            session.flush()
        return row
    except sa.exc.IntegrityError:
        again = find()
        if again is None:
            raise
        return again


# The statements every event runs are built once, with bound parameters: building a
# SQLAlchemy expression costs more than running it on SQLite.
# The person an event comes from: their platform, workspace and user id (bound parameters).
_PERSON = (
    Workspace.platform == sa.bindparam("platform"),
    Workspace.external_id == sa.bindparam("external_id"),
    Member.user_id == sa.bindparam("user_id"),
)
_WORKSPACE_AND_MEMBER = (
    select(Workspace, Member)
    .join(Member, Member.workspace_id == Workspace.id)  # type: ignore[arg-type]
    .where(*_PERSON)
)
# The person, and the community of the channel they wrote in with whether they belong to it:
# what every event in a channel needs first, in one query once all of it exists.
_WHO_AND_WHERE = (
    select(Workspace, Member, Community, Membership.member_id)
    .join(Member, Member.workspace_id == Workspace.id)  # type: ignore[arg-type]
    .outerjoin(
        Community,
        sa.and_(
            col(Community.workspace_id) == col(Workspace.id),
            col(Community.channel_id) == sa.bindparam("channel_id"),
        ),
    )
    .outerjoin(
        Membership,
        sa.and_(
            col(Membership.community_id) == col(Community.id),
            col(Membership.member_id) == col(Member.id),
        ),
    )
    .where(*_PERSON)
)
_COMMUNITY_FOR_CHANNEL = select(Community).where(
    Community.workspace_id == sa.bindparam("workspace_id"),
    Community.channel_id == sa.bindparam("channel_id"),
)
_INSERTS: dict[tuple[str, str], sa.Insert] = {}
_RECEIPT_CLAIMS: dict[str, sa.Insert] = {}


def insert_new(session: Session, model: type[SQLModel], **values: Any) -> None:
    """INSERT a row unless one with the same unique key exists: one statement, no savepoint
    (for rows whose existence is all that matters, like a membership or a posted card)."""
    insert_many_new(session, model, [values])


def insert_many_new(session: Session, model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    """`insert_new` for several rows, executed as one batch."""
    if not rows:
        return
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    statement = _INSERTS.get((dialect, table.name))
    if statement is None:
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        statement = _INSERTS[(dialect, table.name)] = insert(table).on_conflict_do_nothing()
    # Core on the session's connection: the ORM's statement machinery is most of the cost
    # of a one-line INSERT (the session flushed what it holds before, where it matters).
    session.connection().execute(statement, rows if len(rows) > 1 else rows[0])


def workspace_and_member(
    session: Session, *, platform: str, external_id: str, user_id: str, name: str, now: datetime
) -> tuple[Workspace, Member]:
    """The workspace and the person in it, made on first sight; one query once both exist."""
    found = session.exec(
        _WORKSPACE_AND_MEMBER,
        params={"platform": platform, "external_id": external_id, "user_id": user_id},
    ).first()
    if found is not None:
        workspace, member = found
        _keep_name(session, member, name)
        return workspace, member
    workspace = get_or_create_workspace(
        session, platform=platform, external_id=external_id, now=now
    )
    assert workspace.id is not None
    member = get_or_create_member(
        session, workspace_id=workspace.id, user_id=user_id, name=name, now=now
    )
    return workspace, member


def member_and_community(
    session: Session,
    *,
    platform: str,
    external_id: str,
    user_id: str,
    name: str,
    channel_id: str | None,
    now: datetime,
) -> tuple[Workspace, Member, Community | None]:
    """`workspace_and_member`, and the community of `channel_id` (None: a DM, or not a
    community): one query once they exist. A membership found here is remembered in the
    session, so `add_membership` for it costs no statement."""
    found = session.exec(
        _WHO_AND_WHERE,
        params={
            "platform": platform,
            "external_id": external_id,
            "user_id": user_id,
            "channel_id": channel_id,
        },
    ).first()
    if found is None:
        workspace, member = workspace_and_member(
            session, platform=platform, external_id=external_id, user_id=user_id, name=name, now=now
        )
        community = None
        if channel_id is not None:
            community = community_for_channel(
                session, workspace_id=saved_id(workspace), channel_id=channel_id
            )
        return workspace, member, community
    workspace, member, community, joined = found
    _keep_name(session, member, name)
    if joined is not None and community is not None:
        _memberships(session).add((community.id, member.id))
    return workspace, member, community


def _memberships(session: Session) -> set[tuple[int | None, int | None]]:
    """(community, member) pairs this session knows exist."""
    known: set[tuple[int | None, int | None]] = session.info.setdefault("memberships", set())
    return known


def get_or_create_workspace(
    session: Session, *, platform: str, external_id: str, now: datetime
) -> Workspace:
    return _get_or_insert(
        session,
        lambda: session.exec(
            select(Workspace).where(
                Workspace.platform == platform, Workspace.external_id == external_id
            )
        ).first(),
        lambda: Workspace(platform=platform, external_id=external_id, created_at=now),
    )


def get_or_create_member(
    session: Session, *, workspace_id: int, user_id: str, name: str, now: datetime
) -> Member:
    member = _get_or_insert(
        session,
        lambda: find_member(session, workspace_id=workspace_id, user_id=user_id),
        lambda: Member(
            workspace_id=workspace_id,
            user_id=user_id,
            display_name=name[:MAX_NAME],
            created_at=now,
        ),
    )
    _keep_name(session, member, name)
    return member


MAX_NAME = 200  # Member.display_name's column


def _keep_name(session: Session, member: Member, name: str) -> None:
    """The platform's current display name wins (people rename themselves), cut to fit."""
    name = name[:MAX_NAME]
    if name and member.display_name != name:
        member.display_name = name
        session.add(member)


def find_member(session: Session, *, workspace_id: int, user_id: str) -> Member | None:
    return session.exec(
        select(Member).where(Member.workspace_id == workspace_id, Member.user_id == user_id)
    ).first()


def community_for_channel(
    session: Session, *, workspace_id: int, channel_id: str
) -> Community | None:
    return session.exec(
        _COMMUNITY_FOR_CHANNEL, params={"workspace_id": workspace_id, "channel_id": channel_id}
    ).first()


def add_membership(session: Session, *, community_id: int, member_id: int, now: datetime) -> None:
    """The member belongs to the community from now on (once: a second call is free)."""
    known = _memberships(session)
    if (community_id, member_id) in known:
        return
    insert_new(session, Membership, community_id=community_id, member_id=member_id, joined_at=now)
    known.add((community_id, member_id))


def community_members(session: Session, *, community_id: int) -> list[Member]:
    return list(
        session.exec(
            select(Member)
            .join(Membership, Membership.member_id == Member.id)  # type: ignore[arg-type]
            .where(Membership.community_id == community_id)
            .order_by(Member.id)  # type: ignore[arg-type]
        ).all()
    )


def claim_receipt(session: Session, *, key: str, now: datetime) -> bool:
    """Record an inbound event key in the current transaction (one statement); False when it
    is recorded already. A concurrent claim of the same key waits for this transaction on
    PostgreSQL, and is then refused if this one committed."""
    table: sa.Table = InboundReceipt.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    statement = _RECEIPT_CLAIMS.get(dialect)
    if statement is None:
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        statement = _RECEIPT_CLAIMS[dialect] = (
            insert(table).on_conflict_do_nothing().returning(table.c.key)
        )
    found = session.connection().execute(statement, {"key": key, "received_at": now})
    return found.first() is not None


def scoped_key(*parts: str, limit: int = 200) -> str:
    """A dedupe key from its scope (platform, workspace, conversation, the platform's id),
    readable when it fits in `limit` characters, else the first two parts and a digest."""
    key = ":".join(parts)
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:48]
    return f"{':'.join(parts[:2])}:h:{digest}"[:limit]


class DuplicateEvent(Exception):
    """Another worker handled the same inbound event first."""


def link_message(
    session: Session,
    *,
    workspace_id: int,
    channel_id: str,
    message_ts: str,
    kind: str,
    object_id: int,
) -> None:
    insert_new(
        session,
        PostedMessage,
        workspace_id=workspace_id,
        channel_id=channel_id,
        message_ts=message_ts,
        kind=kind,
        object_id=object_id,
    )


def find_posted(
    session: Session, *, workspace_id: int, channel_id: str, message_ts: str
) -> PostedMessage | None:
    return session.exec(
        select(PostedMessage).where(
            PostedMessage.workspace_id == workspace_id,
            PostedMessage.channel_id == channel_id,
            PostedMessage.message_ts == message_ts,
        )
    ).first()


def posted_for(session: Session, *, kind: str, object_id: int) -> PostedMessage | None:
    return session.exec(
        select(PostedMessage)
        .where(PostedMessage.kind == kind, PostedMessage.object_id == object_id)
        .order_by(PostedMessage.id)  # type: ignore[arg-type]
    ).first()


def save_flow(
    session: Session,
    *,
    member_id: int,
    flow: str,
    step: str,
    data: dict[str, Any],
    now: datetime,
) -> None:
    """Point a member's conversation at a named step (one flow per member at a time)."""
    state = session.exec(select(FlowState).where(FlowState.member_id == member_id)).first()
    if state is None:
        state = FlowState(member_id=member_id, flow=flow, step=step)
    state.flow, state.step, state.data, state.updated_at = flow, step, json.dumps(data), now
    session.add(state)


def enqueue(
    session: Session,
    *,
    key: str,
    workspace_id: int,
    kind: str,
    now: datetime,
    object_id: int | None = None,
    member_id: int | None = None,
    channel_id: str | None = None,
    not_before: datetime | None = None,
    expires_at: datetime | None = None,
) -> bool:
    """Insert an outbox row unless its idempotency key exists; True when inserted."""
    if session.exec(select(OutboxMessage.id).where(OutboxMessage.key == key)).first() is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                OutboxMessage(
                    key=key,
                    workspace_id=workspace_id,
                    kind=kind,
                    object_id=object_id,
                    member_id=member_id,
                    channel_id=channel_id,
                    not_before=not_before or now,
                    expires_at=expires_at,
                    created_at=now,
                )
            )
            session.flush()
    except sa.exc.IntegrityError:
        return False
    return True


def numbered_goal(session: Session, member_id: int | None, number: int) -> Goal | None:
    """A member's goal by the number they type (`goal done 2`, `goal:2`, `checkin 2`)."""
    return session.exec(
        select(Goal).where(Goal.member_id == member_id, Goal.number == number)
    ).first()
