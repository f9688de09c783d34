"""What goes into the outbox, and how a row becomes a message at send time.

Rows name what to send (a digest id, a member's check-in); the wording is drawn when the row
is sent, by the feature that declared its kind (bot/delivery/kinds.py), so the outbox never
holds personal text and delivery knows no feature.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.core.codec import message_from_json, message_to_json
from bot.core.events import ConversationRef
from bot.core.kinds import Delivery, Due, OutboxKinds
from bot.core.messages import Message, Visibility
from bot.scoring.small_groups import DEFAULT_MIN_GROUP
from bot.services.llm import ModelClient
from bot.services.prompts import PromptLibrary
from storage.db import Database
from storage.models import (
    Artifact,
    Community,
    Endorsement,
    Member,
    OutboxMessage,
    ScheduleBreak,
    Workspace,
)
from storage.queries import community_members, enqueue, scoped_key

log = logging.getLogger(__name__)

CHECKIN_EXPIRY = timedelta(hours=20)


def member_today(member: Member, default_tz: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(member.timezone or default_tz)).date()


def on_break(session: Session, community: Community, day: date) -> bool:
    return (
        session.exec(
            select(ScheduleBreak.id).where(
                ScheduleBreak.community_id == community.id,
                ScheduleBreak.starts_on <= day,
                ScheduleBreak.ends_on >= day,
            )
        ).first()
        is not None
    )


@dataclass(frozen=True)
class FanOut:
    queued: int
    paused: int
    already: int


def enqueue_checkin(
    session: Session,
    member: Member,
    *,
    day: date,
    community_id: int | None,
    now: datetime,
    not_before: datetime | None = None,
    expires_at: datetime,
) -> bool:
    """A member's check-in for their local `day`; False when that day's is already queued
    (whoever queued it: the planner, or a coach's `checkins send`)."""
    return enqueue(
        session,
        key=f"checkin:{member.id}:{day.isoformat()}",
        workspace_id=member.workspace_id,
        kind="checkin",
        member_id=member.id,
        object_id=community_id,
        now=now,
        not_before=not_before,
        expires_at=expires_at,
    )


def queue_checkins(
    session: Session,
    community: Community,
    *,
    now: datetime,
    default_tz: str,
) -> FanOut:
    """One check-in per community member per (member-local) day; paused members skipped."""
    queued = paused = already = 0
    for member in community_members(session, community_id=community.id or 0):
        today = member_today(member, default_tz, now)
        if member.paused_until and member.paused_until >= today:
            paused += 1
            continue
        if enqueue_checkin(
            session,
            member,
            day=today,
            community_id=community.id,
            now=now,
            expires_at=now + CHECKIN_EXPIRY,
        ):
            queued += 1
        else:
            already += 1
    return FanOut(queued=queued, paused=paused, already=already)


def redraw(
    session: Session,
    prompts: PromptLibrary,
    kinds: OutboxKinds,
    message: Message,
    states: Mapping[int, bool] | None = None,
) -> Message | None:
    """A live message drawn from what its link names now; None once that is gone. `states`:
    `card_states` of the new cards in a batch, already looked up."""
    link = message.link
    draw = kinds.live_drawer(link.kind) if link is not None else None
    if link is None or draw is None:
        return message
    if message.replace is None and message.card is not None and link.kind == "artifact":
        if states is None:
            states = card_states(session, [link.object_id])
        if link.object_id not in states:
            return None  # deleted in the meantime (its author asked to be forgotten)
        if not states[link.object_id]:
            return message  # a new card nobody has endorsed yet is drawn as it was queued
    drawn = draw(session, prompts, link.object_id)
    if drawn is None:
        return None
    text, card = drawn
    return replace(message, text=text, card=card)


REPLY_KINDS = ("reply", "refresh")  # rows that carry their message (`queue_replies`)


def render_reply(
    session: Session,
    prompts: PromptLibrary,
    kinds: OutboxKinds,
    payload: str | Message | None,
    states: Mapping[int, bool] | None = None,
) -> Delivery | None:
    """A queued reply as it is to be sent now (a live card drawn afresh)."""
    if payload is None:
        return None
    message = message_from_json(payload) if isinstance(payload, str) else payload
    drawn = redraw(session, prompts, kinds, message, states) if message.live else message
    return Delivery(message=drawn, conversation=drawn.conversation) if drawn else None


_CARD_STATE = sa.select(
    col(Artifact.id),
    sa.exists()
    .where(Endorsement.artifact_id == Artifact.id)  # type: ignore[arg-type]
    .label("endorsed"),
)


def new_cards(message: Message) -> int | None:
    """The artifact a live new card stands for (whose state `redraw` needs), if any."""
    link = message.link
    if message.live and link and link.kind == "artifact" and not message.replace and message.card:
        return link.object_id
    return None


def card_states(session: Session, artifact_ids: list[int]) -> dict[int, bool]:
    """For each artifact that still exists: whether anyone endorsed it (one query)."""
    if not artifact_ids:
        return {}
    query = _CARD_STATE.where(Artifact.id.in_(artifact_ids))  # type: ignore[union-attr]
    return {row.id: bool(row.endorsed) for row in session.execute(query)}


def render_row(
    session: Session,
    prompts: PromptLibrary,
    kinds: OutboxKinds,
    row: OutboxMessage,
    *,
    now: datetime,
    default_tz: str,
    min_group: int = DEFAULT_MIN_GROUP,
) -> Delivery | None:
    """The message for an outbox row, or None when it should no longer be sent."""
    workspace = session.get(Workspace, row.workspace_id)
    if workspace is None:
        return None
    if row.kind in REPLY_KINDS:
        return render_reply(session, prompts, kinds, row.payload)
    due = Due(
        session=session,
        prompts=prompts,
        row=row,
        workspace=workspace,
        now=now,
        default_tz=default_tz,
        min_group=min_group,
    )
    return kinds.draw(due)


async def prepare_row(
    db: Database, prompts: PromptLibrary, llm: ModelClient, kinds: OutboxKinds, row_id: int
) -> None:
    """Slow, optional work its kind declares before a row is drawn (the model's digest
    introduction). Never raises: without it the template wording is used."""
    if not llm.enabled:
        return
    try:
        with db.session() as session:
            row = session.get(OutboxMessage, row_id)
        prepare = kinds.preparer(row.kind) if row is not None else None
        if row is not None and prepare is not None:
            await prepare(db, prompts, llm, row)
    except Exception:
        log.exception("preparing outbox row %s failed; sending it without", row_id)


def reply_lane(message: Message) -> str:
    """Messages to one destination go out one at a time, in order: the updates of one posted
    message, the posts in one channel, and what one person receives privately."""
    if message.replace is not None:
        ref = message.replace
        where = ref.conversation
        return scoped_key(
            "msg", where.platform, where.workspace_id, where.channel_id, ref.message_id
        )
    conversation = message.conversation
    person = message.to
    if person is None or (
        message.visibility is Visibility.CHANNEL and conversation and not conversation.is_dm
    ):
        assert conversation is not None
        return scoped_key(
            "chan", conversation.platform, conversation.workspace_id, conversation.channel_id
        )
    return scoped_key("dm", person.platform, person.workspace_id, person.user_id)


_PENDING_REFRESH = sa.select(sa.literal(1)).where(
    OutboxMessage.lane == sa.bindparam("lane"),  # type: ignore[arg-type]
    OutboxMessage.kind == "refresh",  # type: ignore[arg-type]
    OutboxMessage.status == "pending",  # type: ignore[arg-type]
)


_PENDING_REFRESH_LOCKED = _PENDING_REFRESH.with_for_update()


def queue_replies(
    session: Session,
    *,
    workspace_id: int,
    default: ConversationRef | None,
    messages: list[Message],
    now: datetime,
) -> int:
    """A handler's replies as outbox rows, in the handler's own transaction: what a person
    was told is sent even if the process dies right after the commit. A live update waiting
    unsent already will draw the newest state, so no second one is queued."""
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    rows: list[dict[str, object]] = []
    # The waiting update stays waiting until this commits (the sender skips locked rows), so
    # it is drawn with what this unit wrote. SQLite: transactions take turns already.
    sqlite = session.get_bind().dialect.name == "sqlite"
    pending_refresh = _PENDING_REFRESH if sqlite else _PENDING_REFRESH_LOCKED
    for message in messages:
        if message.conversation is None and message.visibility is not Visibility.DM and default:
            message = replace(message, conversation=default)
        lane = reply_lane(message)
        kind = "refresh" if message.live and message.replace is not None else "reply"
        if kind == "refresh" and session.execute(pending_refresh, {"lane": lane}).first():
            continue
        rows.append(
            {
                "key": f"reply:{uuid.uuid4().hex}",
                "workspace_id": workspace_id,
                "kind": kind,
                "lane": lane,
                "payload": message_to_json(message),
                "status": "pending",
                "attempts": 0,
                "not_before": now,
                "created_at": now,
                "error": "",
            }
        )
    if rows:
        session.flush()  # Core below: what the handler wrote goes first
        session.connection().execute(table.insert(), rows)
    return len(rows)
