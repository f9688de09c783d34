"""What the dashboards and the portfolio show, read from storage as plain data.

`member_progress` is one person's own record (their ratings, shares, endorsements) and is
only ever shown to that person. `community_overview` is what a coach sees: counts per week,
bands, shared work and activity dates — never the text of a check-in or a reflection.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.bands import BANDS, band
from bot.clock import iso_week, week_bounds
from bot.prompts import PromptLibrary
from storage.models import (
    Artifact,
    CheckIn,
    Community,
    Endorsement,
    Goal,
    Member,
    Reflection,
)
from storage.queries import community_members

NEEDS_A_HAND_AFTER = timedelta(days=21)  # the same threshold `report` uses


@dataclass(frozen=True, kw_only=True)
class RatingPoint:
    checkin_id: int
    at: datetime
    rating: int

    @property
    def band(self) -> str:
        return band(self.rating)


@dataclass(frozen=True, kw_only=True)
class GoalProgress:
    """A goal and its ratings in time order; `goal` None is "check-ins on your practice"."""

    goal: Goal | None
    ratings: tuple[RatingPoint, ...]

    @property
    def title(self) -> str:
        if self.goal is None:
            return "Your practice (check-ins without a goal)"
        return f"Goal {self.goal.number}: {self.goal.text}"


@dataclass(frozen=True, kw_only=True)
class ReceivedEndorsement:
    endorser: str
    note: str
    at: datetime


@dataclass(frozen=True, kw_only=True)
class Share:
    artifact: Artifact
    community: str
    endorsements: tuple[ReceivedEndorsement, ...]


@dataclass(frozen=True, kw_only=True)
class GivenEndorsement:
    title: str
    author: str
    note: str
    at: datetime


@dataclass(frozen=True, kw_only=True)
class MemberProgress:
    member: Member
    goals: tuple[GoalProgress, ...]
    shares: tuple[Share, ...]
    given: tuple[GivenEndorsement, ...]
    checkins_answered: int

    @property
    def endorsements_received(self) -> int:
        return sum(len(s.endorsements) for s in self.shares)


def _name(member: Member | None) -> str:
    return (member.display_name if member else "") or "a member"


def member_progress(session: Session, member: Member) -> MemberProgress:
    """A member's goals with every rating in time order, their shares with the endorsements
    they received, and the endorsements they gave."""
    goals = list(
        session.exec(
            select(Goal).where(Goal.member_id == member.id).order_by(Goal.number)  # type: ignore[arg-type]
        ).all()
    )
    answered = session.exec(
        select(CheckIn)
        .where(CheckIn.member_id == member.id, CheckIn.rating.is_not(None))  # type: ignore[union-attr]
        .order_by(CheckIn.answered_at, CheckIn.created_at, CheckIn.id)  # type: ignore[arg-type]
    ).all()
    by_goal: dict[int | None, list[RatingPoint]] = {}
    known_goals = {g.id for g in goals}
    for checkin in answered:
        assert checkin.rating is not None and checkin.id is not None
        key = checkin.goal_id if checkin.goal_id in known_goals else None
        by_goal.setdefault(key, []).append(
            RatingPoint(
                checkin_id=checkin.id,
                at=checkin.answered_at or checkin.created_at,
                rating=checkin.rating,
            )
        )
    progress = [GoalProgress(goal=g, ratings=tuple(by_goal.get(g.id, []))) for g in goals]
    if by_goal.get(None):
        progress.append(GoalProgress(goal=None, ratings=tuple(by_goal[None])))

    artifacts = session.exec(
        select(Artifact, Community.name)
        .join(Community, Community.id == Artifact.community_id)  # type: ignore[arg-type]
        .where(Artifact.author_id == member.id)
        .order_by(Artifact.created_at.desc(), Artifact.id.desc())  # type: ignore[attr-defined]
    ).all()
    shares = []
    for artifact, community_name in artifacts:
        rows = session.exec(
            select(Endorsement, Member)
            .join(Member, Member.id == Endorsement.endorser_id)  # type: ignore[arg-type]
            .where(Endorsement.artifact_id == artifact.id)
            .order_by(Endorsement.created_at, Endorsement.id)  # type: ignore[arg-type]
        ).all()
        shares.append(
            Share(
                artifact=artifact,
                community=community_name,
                endorsements=tuple(
                    ReceivedEndorsement(endorser=_name(m), note=e.note, at=e.created_at)
                    for e, m in rows
                ),
            )
        )
    given_rows = session.exec(
        select(Endorsement, Artifact)
        .join(Artifact, Artifact.id == Endorsement.artifact_id)  # type: ignore[arg-type]
        .where(Endorsement.endorser_id == member.id)
        .order_by(Endorsement.created_at.desc())  # type: ignore[attr-defined]
    ).all()
    given = tuple(
        GivenEndorsement(
            title=artifact.title,
            author=_name(session.get(Member, artifact.author_id)),
            note=endorsement.note,
            at=endorsement.created_at,
        )
        for endorsement, artifact in given_rows
    )
    return MemberProgress(
        member=member,
        goals=tuple(progress),
        shares=tuple(shares),
        given=given,
        checkins_answered=len(answered),
    )


# --- the coach's community view: aggregates only ---------------------------------------


@dataclass(frozen=True, kw_only=True)
class WeekStats:
    week: str
    shares: int = 0
    endorsements: int = 0
    reflections: int = 0
    checkins_sent: int = 0
    checkins_answered: int = 0


@dataclass(frozen=True, kw_only=True)
class TopArtifact:
    artifact: Artifact
    author: str
    endorsers: int


@dataclass(frozen=True, kw_only=True)
class QuietMember:
    name: str
    last_checkin: datetime | None
    shares: int


@dataclass(frozen=True, kw_only=True)
class CommunityOverview:
    community: Community
    members: int
    weeks: tuple[WeekStats, ...]
    bands: dict[str, int]
    top: tuple[TopArtifact, ...]
    by_element: tuple[tuple[str, TopArtifact | None], ...]  # (element name, best artifact)
    needs_a_hand: tuple[QuietMember, ...]
    totals: dict[str, int] = field(default_factory=dict)


def recent_weeks(today: date, count: int) -> list[str]:
    """The last `count` ISO weeks, oldest first, ending with this one."""
    return [iso_week(today - timedelta(weeks=back)) for back in range(count - 1, -1, -1)]


def _week_of(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return iso_week(moment.astimezone(zone).date()) if moment is not None else None


def _ranked(
    session: Session, community: Community, *, limit: int | None, element: str | None = None
) -> list[TopArtifact]:
    """Shares ranked by distinct peer endorsers (never the author's own), newer first on ties."""
    endorsers = sa.func.count(sa.distinct(Endorsement.endorser_id)).label("endorsers")
    query = (
        select(Artifact, endorsers)
        .join(Endorsement, Endorsement.artifact_id == Artifact.id)  # type: ignore[arg-type]
        .where(Artifact.community_id == community.id, Endorsement.endorser_id != Artifact.author_id)
        .group_by(Artifact.id)  # type: ignore[arg-type]
        .order_by(endorsers.desc(), Artifact.created_at.desc(), Artifact.id.desc())  # type: ignore[attr-defined]
    )
    if element is not None:
        query = query.where(Artifact.element == element)
    if limit is not None:
        query = query.limit(limit)
    return [
        TopArtifact(
            artifact=artifact,
            author=_name(session.get(Member, artifact.author_id)),
            endorsers=int(count),
        )
        for artifact, count in session.exec(query).all()
    ]


def community_overview(
    session: Session,
    prompts: PromptLibrary,
    community: Community,
    *,
    now: datetime,
    weeks: int = 8,
    top: int = 5,
    viewer_id: int | None = None,
) -> CommunityOverview:
    """Participation by week, check-ins answered vs sent, bands (counts), top shares, the best
    share per Future Ready element, and members without a recent check-in (other than the
    coach who is looking)."""
    zone = ZoneInfo(community.timezone)
    labels = recent_weeks(now.astimezone(zone).date(), weeks)
    start_monday = week_bounds(labels[0])[0]
    since = datetime.combine(start_monday, datetime.min.time(), zone)
    counts: dict[str, Counter[str]] = {week: Counter() for week in labels}

    def tally(kind: str, moments: list[datetime | None]) -> None:
        for moment in moments:
            week = _week_of(moment, zone)
            if week in counts:
                counts[week][kind] += 1

    tally(
        "shares",
        list(
            session.exec(
                select(Artifact.created_at).where(
                    Artifact.community_id == community.id,
                    Artifact.created_at >= since,  # type: ignore[operator]
                )
            ).all()
        ),
    )
    tally(
        "endorsements",
        list(
            session.exec(
                select(Endorsement.created_at)
                .join(Artifact, Artifact.id == Endorsement.artifact_id)  # type: ignore[arg-type]
                .where(
                    Artifact.community_id == community.id,
                    Endorsement.endorser_id != Artifact.author_id,
                    Endorsement.created_at >= since,  # type: ignore[operator]
                )
            ).all()
        ),
    )
    tally(
        "reflections",
        list(
            session.exec(
                select(Reflection.created_at).where(
                    Reflection.community_id == community.id,
                    Reflection.created_at >= since,  # type: ignore[operator]
                )
            ).all()
        ),
    )
    # Sent: check-ins the bot sent (scheduled or `checkins send`, which carry a key);
    # answered: those of them that were answered, in the week they were sent.
    sent_rows = session.exec(
        select(CheckIn.created_at, CheckIn.status).where(
            CheckIn.community_id == community.id,
            CheckIn.key.is_not(None),  # type: ignore[union-attr]
            CheckIn.created_at >= since,  # type: ignore[operator]
        )
    ).all()
    tally("checkins_sent", [created for created, _ in sent_rows])
    tally("checkins_answered", [created for created, status in sent_rows if status == "answered"])
    week_stats = tuple(
        WeekStats(
            week=week,
            shares=counts[week]["shares"],
            endorsements=counts[week]["endorsements"],
            reflections=counts[week]["reflections"],
            checkins_sent=counts[week]["checkins_sent"],
            checkins_answered=counts[week]["checkins_answered"],
        )
        for week in labels
    )

    members = community_members(session, community_id=community.id or 0)
    bands: dict[str, int] = {name: 0 for _, _, name in BANDS}
    quiet: list[QuietMember] = []
    for member in members:
        latest = session.exec(
            select(CheckIn.rating, CheckIn.answered_at)
            .where(CheckIn.member_id == member.id, CheckIn.status == "answered")
            .order_by(CheckIn.answered_at.desc())  # type: ignore[union-attr]
        ).first()
        if latest is not None and latest[0] is not None:
            bands[band(latest[0])] += 1
        last = latest[1] if latest is not None else None
        if member.id != viewer_id and (last is None or last < now - NEEDS_A_HAND_AFTER):
            shares = session.exec(
                select(sa.func.count())
                .select_from(Artifact)
                .where(Artifact.author_id == member.id, Artifact.community_id == community.id)
            ).one()
            quiet.append(QuietMember(name=_name(member), last_checkin=last, shares=int(shares)))
    quiet.sort(key=lambda q: (q.last_checkin is not None, q.last_checkin or now, q.name))

    by_element = []
    for key, element in prompts.elements.items():
        best = _ranked(session, community, limit=1, element=key)
        by_element.append((element.name, best[0] if best else None))

    return CommunityOverview(
        community=community,
        members=len(members),
        weeks=week_stats,
        bands=bands,
        top=tuple(_ranked(session, community, limit=top)),
        by_element=tuple(by_element),
        needs_a_hand=tuple(quiet),
        totals={
            "shares": sum(w.shares for w in week_stats),
            "endorsements": sum(w.endorsements for w in week_stats),
            "reflections": sum(w.reflections for w in week_stats),
            "checkins_sent": sum(w.checkins_sent for w in week_stats),
            "checkins_answered": sum(w.checkins_answered for w in week_stats),
        },
    )
