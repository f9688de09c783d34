"""SQLModel tables for the whole domain (DESIGN §2).

Constraints protect the data, not the code: one endorsement per (artifact, endorser), one
outbox row per idempotency key, one digest per (community, ISO week), one member per
(workspace, platform user). Times are stored as naive UTC and read back as aware UTC.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# Importing this module registers every table of the schema (Alembic, create_all).
import storage.model_tables  # the optional model's usage and cache
import storage.slack_tables  # Slack OAuth tables live in our schema too
import storage.standard_tables  # the living standard per element and tag
import storage.teams_tables  # noqa: F401  (where the bot can reach people in Teams)
from storage.columns import UTCDateTime as UTCDateTime  # the migrations name it here
from storage.columns import text_column, timestamp


class Workspace(SQLModel, table=True):
    """A Slack team or a Teams tenant."""

    __table_args__ = (sa.UniqueConstraint("platform", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    external_id: str = Field(max_length=64)
    name: str = Field(default="", max_length=200)
    installed_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = timestamp()


class Member(SQLModel, table=True):
    """A person on a platform, with their profile."""

    __table_args__ = (sa.UniqueConstraint("workspace_id", "user_id"),)
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    user_id: str = Field(max_length=64)
    display_name: str = Field(default="", max_length=200)
    role: str | None = Field(default=None, max_length=32)
    school: str | None = Field(default=None, max_length=200)
    strengths: str = text_column()
    needs: str = text_column()
    interests: str = text_column()
    constraints: str = text_column()
    timezone: str | None = Field(default=None, max_length=64)
    cadence: str = Field(default="weekly", max_length=16)
    checkin_weekday: int = Field(default=2)  # Monday = 0
    checkin_time: str = Field(default="15:30", max_length=5)
    quiet_days: str = Field(default="5,6", max_length=32)  # weekday numbers, weekend by default
    paused_until: date | None = None
    is_coach: bool = False
    onboarded: bool = False
    created_at: datetime = timestamp()


class Community(SQLModel, table=True):
    """A channel registered as a PLN community."""

    __table_args__ = (sa.UniqueConstraint("workspace_id", "channel_id"),)
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    channel_id: str = Field(max_length=64)
    name: str = Field(max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    digest_size: int = 5
    created_by: int | None = Field(default=None, foreign_key="member.id", ondelete="SET NULL")
    created_at: datetime = timestamp()


class Membership(SQLModel, table=True):
    """A member seen in a community channel (joined, shared, replied)."""

    community_id: int = Field(foreign_key="community.id", primary_key=True, ondelete="CASCADE")
    member_id: int = Field(
        foreign_key="member.id", primary_key=True, index=True, ondelete="CASCADE"
    )
    joined_at: datetime = timestamp()


class Schedule(SQLModel, table=True):
    """When a community's prompt, check-ins or digest go out (community-local time)."""

    __table_args__ = (sa.UniqueConstraint("community_id", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE")
    kind: str = Field(max_length=16)  # prompt | checkin | digest
    weekday: int  # Monday = 0
    time: str = Field(max_length=5)  # HH:MM
    enabled: bool = True


class ScheduleBreak(SQLModel, table=True):
    """A school break: nothing scheduled is sent between the two dates (inclusive)."""

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True, ondelete="CASCADE")
    starts_on: date
    ends_on: date


class Goal(SQLModel, table=True):
    """A member's professional goal; `number` is what they type in `goal done <n>`."""

    __table_args__ = (sa.UniqueConstraint("member_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True, ondelete="CASCADE")
    number: int
    text: str = Field(sa_type=sa.Text)
    element: str | None = Field(default=None, max_length=40)
    target_date: date | None = None
    status: str = Field(default="active", max_length=16)  # active | done
    created_at: datetime = timestamp()
    done_at: datetime | None = timestamp(nullable=True)


class CheckIn(SQLModel, table=True):
    """An answer to a check-in; private to its author unless `shared`."""

    __table_args__ = (sa.Index("ix_checkin_member_created", "member_id", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", ondelete="CASCADE")
    goal_id: int | None = Field(default=None, foreign_key="goal.id", ondelete="SET NULL")
    community_id: int | None = Field(
        default=None, foreign_key="community.id", index=True, ondelete="SET NULL"
    )
    key: str | None = Field(default=None, max_length=120, unique=True)
    status: str = Field(default="open", max_length=16)  # open | answered | expired
    rating: int | None = None
    reflection: str = text_column()
    shared: bool = False
    created_at: datetime = timestamp()
    answered_at: datetime | None = timestamp(nullable=True)
    nudged_at: datetime | None = timestamp(nullable=True)


class ReflectionPrompt(SQLModel, table=True):
    """A reflection prompt posted to a community."""

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True, ondelete="CASCADE")
    prompt_key: str = Field(max_length=40)
    element: str | None = Field(default=None, max_length=40)
    text: str = Field(sa_type=sa.Text)
    posted_at: datetime = timestamp()


class Reflection(SQLModel, table=True):
    """A reply to a prompt: in the channel thread (shared) or in a DM (private)."""

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True, ondelete="CASCADE")
    prompt_id: int | None = Field(
        default=None, foreign_key="reflectionprompt.id", index=True, ondelete="SET NULL"
    )
    community_id: int | None = Field(
        default=None, foreign_key="community.id", index=True, ondelete="SET NULL"
    )
    text: str = Field(sa_type=sa.Text)
    is_private: bool = True
    created_at: datetime = timestamp()


class Artifact(SQLModel, table=True):
    """Evidence of practice shared in a community."""

    __table_args__ = (
        sa.Index("ix_artifact_community_created", "community_id", "created_at"),
        # Is this a member's first share here? (the digest's spotlight)
        sa.Index("ix_artifact_author_community_created", "author_id", "community_id", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE")
    author_id: int = Field(foreign_key="member.id", index=True, ondelete="CASCADE")
    url: str | None = Field(default=None, max_length=2000)
    file_ref: str | None = Field(default=None, max_length=500)
    title: str = Field(max_length=300)
    description: str = text_column()
    element: str | None = Field(default=None, max_length=40)
    tags: str = Field(default="", max_length=500)
    created_at: datetime = timestamp()
    # The author's goal this is evidence for (`goal:<n>`, or the form's goal choice).
    goal_id: int | None = Field(default=None, foreign_key="goal.id", ondelete="SET NULL")
    # What students did, in the author's words, students' names and ids removed before storage.
    student_evidence: str = text_column()


class Endorsement(SQLModel, table=True):
    """A peer's endorsement of an artifact; withdrawing deletes the row."""

    __table_args__ = (
        sa.UniqueConstraint("artifact_id", "endorser_id"),
        # Whose work did a member endorse lately? Ring damping in the digest ranking reads
        # this index alone, never the artifacts.
        sa.Index("ix_endorsement_endorser_created", "endorser_id", "created_at", "author_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    artifact_id: int = Field(foreign_key="artifact.id", index=True, ondelete="CASCADE")
    endorser_id: int = Field(foreign_key="member.id", index=True, ondelete="CASCADE")
    # A copy of the artifact's author, filled in on insert (below). No foreign key of its own:
    # the row goes with its artifact.
    author_id: int | None = Field(default=None)
    note: str = text_column()
    created_at: datetime = timestamp()


@sa.event.listens_for(Endorsement, "before_insert")
def _copy_author(_mapper: Any, connection: Any, target: Endorsement) -> None:
    if target.author_id is None:
        target.author_id = connection.scalar(
            sa.select(Artifact.author_id).where(Artifact.id == target.artifact_id)  # type: ignore[call-overload]
        )


class Digest(SQLModel, table=True):
    """A community's digest for one ISO week (`2026-W48`)."""

    __table_args__ = (sa.UniqueConstraint("community_id", "iso_week"),)
    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE")
    iso_week: str = Field(max_length=8)
    artifact_ids: str = Field(default="", max_length=2000)  # ranked, comma-separated
    rendered: str = text_column()
    message_channel: str | None = Field(default=None, max_length=64)
    message_ts: str | None = Field(default=None, max_length=64)
    created_at: datetime = timestamp()
    posted_at: datetime | None = timestamp(nullable=True)


class PostedMessage(SQLModel, table=True):
    """What a message we posted stands for (an artifact card, a prompt), for reactions/threads."""

    __table_args__ = (sa.UniqueConstraint("workspace_id", "channel_id", "message_ts"),)
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE")
    channel_id: str = Field(max_length=64)
    message_ts: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # artifact | prompt | checkin | digest
    object_id: int = Field(index=True)


class OutboxMessage(SQLModel, table=True):
    """A durable outgoing message: inserted before sending, claimed, then marked sent.

    Scheduled rows name what to send (kind + object id) and are rendered at send time, so
    nothing personal sits in them. A `reply` row (what a handler answered) holds its message
    in `payload` only until it is sent or given up, then the payload is cleared. Rows with the
    same `lane` (a person, or one posted message being updated) go out one at a time, in order.
    """

    __table_args__ = (
        sa.Index("ix_outbox_due", "status", "not_before"),
        sa.Index("ix_outbox_lane", "lane", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=160, unique=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE")
    kind: str = Field(max_length=16)
    object_id: int | None = None
    member_id: int | None = Field(
        default=None, foreign_key="member.id", index=True, ondelete="CASCADE"
    )
    channel_id: str | None = Field(default=None, max_length=64)
    lane: str | None = Field(default=None, max_length=200)
    payload: str | None = Field(default=None, sa_type=sa.Text)
    status: str = Field(default="pending", max_length=16)  # pending|claimed|sent|failed|skipped
    attempts: int = 0
    not_before: datetime = timestamp()
    expires_at: datetime | None = timestamp(nullable=True)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = timestamp(nullable=True)
    sent_at: datetime | None = timestamp(nullable=True)
    platform_message_id: str | None = Field(default=None, max_length=64)
    error: str = text_column()
    created_at: datetime = timestamp()


class FlowState(SQLModel, table=True):
    """Where a member is in a multi-step conversation (profile, check-in, forget)."""

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", unique=True, ondelete="CASCADE")
    flow: str = Field(max_length=32)
    step: str = Field(max_length=32)
    data: str = Field(default="{}", sa_type=sa.Text)
    updated_at: datetime = timestamp()


class InboxEvent(SQLModel, table=True):
    """An inbound platform request, stored before it is acknowledged and worked from here.

    `key` is the platform's id for the request scoped by platform, workspace and conversation
    (a retry finds it and is acknowledged without a second row); `lane` is the person, whose
    events are worked one at a time in arrival order. `payload` is the platform's own body,
    translated by its adapter when the row is worked.
    """

    __tablename__ = "inbox"
    __table_args__ = (
        sa.Index("ix_inbox_status_id", "status", "id"),
        sa.Index("ix_inbox_lane_id", "lane", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, unique=True)
    platform: str = Field(max_length=16)
    lane: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    payload: str = Field(sa_type=sa.Text)
    status: str = Field(default="pending", max_length=16)  # pending|claimed|done|failed
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = timestamp(nullable=True)
    received_at: datetime = timestamp()
    handled_at: datetime | None = timestamp(nullable=True, index=True)
    error: str = text_column()


class InboundReceipt(SQLModel, table=True):
    """Keys of inbound events already handled: a retry or replay finds its key and stops."""

    key: str = Field(primary_key=True, max_length=200)
    received_at: datetime = timestamp(index=True)


class KeyValue(SQLModel, table=True):
    """Small operator state, such as the generated dashboard signing key."""

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_type=sa.Text)


# Participative evaluation (DESIGN §3): indicators of progress, coaching cycles, enactments.


class Indicator(SQLModel, table=True):
    """An indicator of progress on a goal, worded by the teacher; up to three per goal."""

    __table_args__ = (sa.UniqueConstraint("goal_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    goal_id: int = Field(foreign_key="goal.id", index=True, ondelete="CASCADE")
    number: int  # 1..3, what `goal log <n> <indicator>` names
    # achievement | engagement | practice | skills (student achievement, student engagement,
    # evidence of practice, 21st-century skills)
    kind: str = Field(default="practice", max_length=16)
    text: str = Field(max_length=200)
    created_at: datetime = timestamp()


class IndicatorValue(SQLModel, table=True):
    """One value logged for an indicator (`goal log`, or asked in a check-in on its goal)."""

    __table_args__ = (sa.Index("ix_indicatorvalue_indicator_logged", "indicator_id", "logged_at"),)
    id: int | None = Field(default=None, primary_key=True)
    indicator_id: int = Field(foreign_key="indicator.id", ondelete="CASCADE")
    value: float
    note: str = text_column()
    checkin_id: int | None = Field(default=None, foreign_key="checkin.id", ondelete="SET NULL")
    logged_at: datetime = timestamp()


class CoachingCycle(SQLModel, table=True):
    """A coaching cycle a coach offers on one of a member's goals; the member accepts or
    declines. Closed with the hours it represents: the acknowledgement is signed (`code`)."""

    __table_args__ = (
        sa.Index("ix_coachingcycle_member_status", "member_id", "status"),
        # One open cycle (offered or active) per coach and member: two `cycle start`s at the
        # same moment (a double send, two replicas) cannot both offer one.
        sa.Index(
            "uq_coachingcycle_open",
            "workspace_id",
            "coach_id",
            "member_id",
            unique=True,
            sqlite_where=sa.text("status IN ('offered', 'active')"),
            postgresql_where=sa.text("status IN ('offered', 'active')"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE")
    member_id: int = Field(foreign_key="member.id", ondelete="CASCADE")
    coach_id: int | None = Field(
        default=None, foreign_key="member.id", index=True, ondelete="SET NULL"
    )
    coach_name: str = Field(default="", max_length=200)  # kept for the acknowledgement
    goal_id: int | None = Field(default=None, foreign_key="goal.id", ondelete="SET NULL")
    goal_text: str = text_column()  # as it was when the cycle was acknowledged
    status: str = Field(default="offered", max_length=16)  # offered|active|declined|closed
    hours: float | None = None
    code: str | None = Field(default=None, max_length=80, unique=True)  # verification code
    offered_at: datetime = timestamp()
    answered_at: datetime | None = timestamp(nullable=True)
    closed_at: datetime | None = timestamp(nullable=True)


class CycleNote(SQLModel, table=True):
    """Feedback within a cycle, private to the pair; the member decides whether it goes in
    their portfolio, and may answer it."""

    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(foreign_key="coachingcycle.id", index=True, ondelete="CASCADE")
    text: str = text_column()
    answer: str = text_column()
    in_portfolio: bool = False
    created_at: datetime = timestamp()


class Enactment(SQLModel, table=True):
    """ "I'll try this": a peer plans to try a share in their own class; at `due_on` the bot
    asks them what students did, and the answer attaches to the share."""

    __table_args__ = (sa.UniqueConstraint("artifact_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    artifact_id: int = Field(foreign_key="artifact.id", index=True, ondelete="CASCADE")
    member_id: int = Field(foreign_key="member.id", index=True, ondelete="CASCADE")
    due_on: date
    status: str = Field(default="planned", max_length=16)  # planned | asked | answered
    answer: str = text_column()  # what students did (names and ids removed)
    created_at: datetime = timestamp()
    answered_at: datetime | None = timestamp(nullable=True)
