"""What goes into the outbox, and how each kind of row becomes a message at send time.

Rows name what to send (a digest id, a member's check-in); the wording is rendered when the
row is sent, so the outbox never holds personal text.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.core.codec import message_from_json, message_to_json
from bot.core.events import ConversationRef, UserRef
from bot.core.messages import Card, Link, Message, Visibility
from bot.features.checkins import open_checkin, question_card
from bot.features.digests import prepare_intro, rank_artifacts, render_digest
from bot.features.evidence import artifact_card
from bot.features.reflections import create_prompt, prompt_message
from bot.scoring.small_groups import DEFAULT_MIN_GROUP
from bot.scoring.standards import announcement
from bot.services.llm import ModelClient
from bot.services.prompts import PromptLibrary
from storage.db import Database
from storage.models import (
    Artifact,
    CheckIn,
    Community,
    Digest,
    Endorsement,
    Goal,
    Member,
    OutboxMessage,
    ReflectionPrompt,
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


@dataclass(frozen=True)
class Delivery:
    """What a row sends; where it goes is the message's own (`send_message`), with
    `conversation` for a message that names none."""

    message: Message
    conversation: ConversationRef | None = None


def redraw(
    session: Session,
    prompts: PromptLibrary,
    message: Message,
    states: Mapping[int, bool] | None = None,
) -> Message | None:
    """A live message drawn from what its link names now; None once that is gone. `states`:
    `card_states` of the new cards in a batch, already looked up."""
    link = message.link
    if link is None or link.kind != "artifact":
        return message
    if message.replace is None and message.card is not None:
        if states is None:
            states = card_states(session, [link.object_id])
        if link.object_id not in states:
            return None  # deleted in the meantime (its author asked to be forgotten)
        if not states[link.object_id]:
            return message  # a new card nobody has endorsed yet is drawn as it was queued
    artifact = session.get(Artifact, link.object_id)
    if artifact is None:
        return None
    text, card = artifact_card(session, prompts, artifact)
    return replace(message, text=text, card=card)


REPLY_KINDS = ("reply", "refresh")  # rows that carry their message (`queue_replies`)


def render_reply(
    session: Session,
    prompts: PromptLibrary,
    payload: str | Message | None,
    states: Mapping[int, bool] | None = None,
) -> Delivery | None:
    """A queued reply as it is to be sent now (a live card drawn afresh)."""
    if payload is None:
        return None
    message = message_from_json(payload) if isinstance(payload, str) else payload
    drawn = redraw(session, prompts, message, states) if message.live else message
    return Delivery(message=drawn, conversation=drawn.conversation) if drawn else None


_CARD_STATE = sa.select(
    Artifact.id,
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
        return render_reply(session, prompts, row.payload)
    if row.kind == "checkin":
        member = session.get(Member, row.member_id) if row.member_id else None
        if member is None:
            return None
        if member.paused_until and member.paused_until >= member_today(member, default_tz, now):
            return None
        checkin = session.exec(select(CheckIn).where(CheckIn.key == row.key)).first()
        if checkin is None:
            checkin = open_checkin(
                session, member=member, now=now, community_id=row.object_id, key=row.key
            )
        goal = session.get(Goal, checkin.goal_id) if checkin.goal_id else None
        text, card = question_card(prompts, checkin, goal)
        to = UserRef(
            platform=workspace.platform,
            workspace_id=workspace.external_id,
            user_id=member.user_id,
            name=member.display_name,
        )
        return Delivery(message=Message(text=text, card=card, visibility=Visibility.DM, to=to))
    if row.kind == "nudge":
        checkin = session.get(CheckIn, row.object_id) if row.object_id else None
        member = session.get(Member, checkin.member_id) if checkin else None
        if checkin is None or member is None or checkin.status != "open":
            return None  # answered in the meantime: no reminder needed
        goal = session.get(Goal, checkin.goal_id) if checkin.goal_id else None
        text = prompts.checkin_text("nudge", goal=goal.text if goal else "your practice")
        _, card = question_card(prompts, checkin, goal)
        to = UserRef(
            platform=workspace.platform,
            workspace_id=workspace.external_id,
            user_id=member.user_id,
            name=member.display_name,
        )
        return Delivery(
            message=Message(
                text=text,
                card=Card(title=card.title, body=text, buttons=card.buttons),
                visibility=Visibility.DM,
                to=to,
            ),
        )
    channel = ConversationRef(
        platform=workspace.platform,
        workspace_id=workspace.external_id,
        channel_id=row.channel_id or "",
    )
    if row.kind == "digest":
        digest = session.get(Digest, row.object_id)
        community = session.get(Community, digest.community_id) if digest else None
        if digest is None or community is None:
            return None
        ranked = rank_artifacts(session, community, digest.iso_week)
        text, card = render_digest(
            session, prompts, community, digest.iso_week, ranked, min_group=min_group
        )
        digest.artifact_ids = ",".join(str(r.artifact.id) for r in ranked)
        digest.rendered = text
        session.add(digest)
        return Delivery(
            message=Message(
                text=text,
                card=card,
                conversation=channel,
                link=Link(kind="digest", object_id=digest.id or 0),
            ),
            conversation=channel,
        )
    if row.kind == "standard":
        message = announcement(session, prompts, row.object_id or 0, channel)
        return Delivery(message=message, conversation=channel) if message else None
    if row.kind == "prompt":
        record = session.get(ReflectionPrompt, row.object_id)
        community = session.get(Community, record.community_id) if record else None
        if record is None or community is None:
            return None
        return Delivery(
            message=prompt_message(record, prompts.element_name(record.element), channel),
            conversation=channel,
        )
    raise ValueError(f"unknown outbox kind {row.kind!r}")


async def prepare_row(db: Database, prompts: PromptLibrary, llm: ModelClient, row_id: int) -> None:
    """Slow, optional work before a row is rendered: the model's digest introduction (cached,
    so `render_row` finds it). Never raises: without it the template wording is used."""
    if not llm.enabled:
        return
    try:
        with db.session() as session:
            row = session.get(OutboxMessage, row_id)
            digest = session.get(Digest, row.object_id) if row and row.kind == "digest" else None
            community = session.get(Community, digest.community_id) if digest else None
            if digest is None or community is None:
                return
            ranked = rank_artifacts(session, community, digest.iso_week)

            async def commit_then_ask(key: Hashable, ask: Callable[[], Awaitable[Any]]) -> Any:
                # This unit's reads are done: commit them, so the database holds no lock while
                # the model answers; what is recorded after goes in the session's next one.
                session.commit()
                return await ask()

            await prepare_intro(
                session,
                prompts,
                llm,
                community,
                digest.iso_week,
                ranked,
                asker=commit_then_ask,
            )
    except Exception:
        log.exception("preparing outbox row %s failed; sending it without", row_id)


def queue_prompt(
    session: Session, prompts: PromptLibrary, community: Community, *, now: datetime, key: str
) -> bool:
    if session.exec(select(OutboxMessage.id).where(OutboxMessage.key == key)).first() is not None:
        return False
    record = create_prompt(session, prompts, community=community, now=now)
    return enqueue(
        session,
        key=key,
        workspace_id=community.workspace_id,
        kind="prompt",
        object_id=record.id,
        channel_id=community.channel_id,
        now=now,
    )


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
