"""What the dashboards and the portfolio show, read from storage as plain data.

`member_progress` is one person's own record (their ratings, shares, endorsements) and is
only ever shown to that person. `community_overview` is what a coach sees: counts per week,
bands, shared work and activity dates — never the text of a check-in or a reflection, and no
figure about fewer than PLNBOT_MIN_GROUP people (bot/scoring/small_groups.py). `report` reads the
same weeks and ratings (`community_weeks`, `last_week_ratings`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.core.clock import iso_week, week_bounds
from bot.scoring.bands import Ratings, band
from bot.scoring.small_groups import Figure, Total, count_of, ratings_of, shown_sum
from bot.services.prompts import PromptLibrary
from storage.models import (
    Artifact,
    CheckIn,
    Community,
    Endorsement,
    Goal,
    Member,
    Membership,
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
        .order_by(col(Artifact.created_at).desc(), col(Artifact.id).desc())
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
#
# Shares and endorsements are posted in the channel by name, and check-ins sent are the
# bot's own doing: they are counted as they are. Reflections (private ones too), answered
# check-ins and self-ratings are about what people keep to themselves, so they are figures
# about a group (bot/scoring/small_groups.py): the group is the people behind the figure, and a
# figure shows only when they are at least PLNBOT_MIN_GROUP without the coach looking.
# Self-ratings are shown for a *finished* week only: a figure that changes while people
# answer would show, between two looks, the band of whoever answered in between.


@dataclass(frozen=True, kw_only=True)
class WeekStats:
    """One ISO week of a community as a coach sees it."""

    week: str
    shares: int = 0
    endorsements: int = 0
    checkins_sent: int = 0
    reflections: Figure[int]  # the group: the people who wrote them
    checkins_answered: Figure[int]  # of those sent that week; the group: who answered them


@dataclass(frozen=True, kw_only=True)
class WeekTotals:
    """The weeks added up. Held-back weeks are left out of the sums of held figures (a total
    minus the weeks shown would give them away); `checkins_sent_shown` is what was sent in
    the weeks whose answers are shown, the base of an "answered of sent" ratio."""

    shares: int
    endorsements: int
    checkins_sent: int
    reflections: Total
    checkins_answered: Total
    checkins_sent_shown: int


@dataclass(frozen=True, kw_only=True)
class WeekRatings:
    """The self-ratings of one finished week: each person's latest rating that week, among
    the people who checked in (the group)."""

    week: str
    ratings: Figure[Ratings]


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
    totals: WeekTotals
    ratings: WeekRatings  # the last finished week's
    top: tuple[TopArtifact, ...]
    by_element: tuple[tuple[str, TopArtifact | None], ...]  # (element name, best artifact)
    needs_a_hand: tuple[QuietMember, ...]
    min_group: int


def recent_weeks(today: date, count: int) -> list[str]:
    """The last `count` ISO weeks, oldest first, ending with this one."""
    return [iso_week(today - timedelta(weeks=back)) for back in range(count - 1, -1, -1)]


def _week_of(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return iso_week(moment.astimezone(zone).date()) if moment is not None else None


def _ranked(
    session: Session, community: Community, *, limit: int | None, element: str | None = None
) -> list[TopArtifact]:
    """Shares ranked by distinct peer endorsers (never the author's own), newer first on ties."""
    endorsers = sa.func.count(sa.distinct(col(Endorsement.endorser_id))).label("endorsers")
    query = (
        select(Artifact, endorsers)
        .join(Endorsement, Endorsement.artifact_id == Artifact.id)  # type: ignore[arg-type]
        .where(Artifact.community_id == community.id, Endorsement.endorser_id != Artifact.author_id)
        .group_by(Artifact.id)  # type: ignore[arg-type]
        .order_by(endorsers.desc(), col(Artifact.created_at).desc(), col(Artifact.id).desc())
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


def community_weeks(
    session: Session,
    community: Community,
    *,
    now: datetime,
    weeks: int,
    min_group: int,
    viewer_id: int | None = None,
) -> tuple[WeekStats, ...]:
    """The last `weeks` ISO weeks (the community's timezone), oldest first, ending with this
    one: shares, peer endorsements, reflections, and check-ins the bot sent with how many of
    them were answered (counted in the week they were sent)."""
    zone = ZoneInfo(community.timezone)
    labels = recent_weeks(now.astimezone(zone).date(), weeks)
    since = datetime.combine(week_bounds(labels[0])[0], datetime.min.time(), zone)
    counts: dict[str, Counter[str]] = {week: Counter() for week in labels}
    people: dict[str, dict[str, list[int]]] = {
        week: {"reflections": [], "checkins_answered": []} for week in labels
    }

    def tally(kind: str, moments: list[datetime]) -> None:
        for moment in moments:
            week = _week_of(moment, zone)
            if week in counts:
                counts[week][kind] += 1

    def by_person(kind: str, rows: list[tuple[datetime, int]]) -> None:
        for moment, member_id in rows:
            week = _week_of(moment, zone)
            if week in people:
                people[week][kind].append(member_id)

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
    by_person(
        "reflections",
        list(
            session.exec(
                select(Reflection.created_at, Reflection.member_id).where(
                    Reflection.community_id == community.id,
                    Reflection.created_at >= since,  # type: ignore[operator]
                )
            ).all()
        ),
    )
    # Sent: check-ins the bot sent (scheduled or `checkins send`, which carry a key);
    # answered: those of them that were answered, in the week they were sent.
    sent_rows = session.exec(
        select(CheckIn.created_at, CheckIn.status, CheckIn.member_id).where(
            CheckIn.community_id == community.id,
            CheckIn.key.is_not(None),  # type: ignore[union-attr]
            CheckIn.created_at >= since,  # type: ignore[operator]
        )
    ).all()
    tally("checkins_sent", [created for created, _, _ in sent_rows])
    by_person(
        "checkins_answered",
        [(created, member) for created, status, member in sent_rows if status == "answered"],
    )
    return tuple(
        WeekStats(
            week=week,
            shares=counts[week]["shares"],
            endorsements=counts[week]["endorsements"],
            checkins_sent=counts[week]["checkins_sent"],
            reflections=count_of(
                people[week]["reflections"], min_group=min_group, viewer=viewer_id
            ),
            checkins_answered=count_of(
                people[week]["checkins_answered"],
                min_group=min_group,
                viewer=viewer_id,
                asked=counts[week]["checkins_sent"],
            ),
        )
        for week in labels
    )


def week_totals(weeks: tuple[WeekStats, ...], *, min_group: int) -> WeekTotals:
    """The weeks added up (see `WeekTotals`: held-back weeks stay out of held figures)."""
    return WeekTotals(
        shares=sum(w.shares for w in weeks),
        endorsements=sum(w.endorsements for w in weeks),
        checkins_sent=sum(w.checkins_sent for w in weeks),
        reflections=shown_sum((w.reflections for w in weeks), min_group=min_group),
        checkins_answered=shown_sum((w.checkins_answered for w in weeks), min_group=min_group),
        checkins_sent_shown=sum(w.checkins_sent for w in weeks if w.checkins_answered.shown),
    )


def last_week_ratings(
    session: Session,
    community: Community,
    *,
    now: datetime,
    min_group: int,
    viewer_id: int | None = None,
) -> WeekRatings:
    """Bands and the average of last week's self-ratings: each person's latest rating that
    week, from check-ins sent to this community or started by one of its members. A finished
    week, so the figure no longer moves as people answer (see the note above)."""
    zone = ZoneInfo(community.timezone)
    week = iso_week(now.astimezone(zone).date() - timedelta(weeks=1))
    monday, next_monday = week_bounds(week)
    start = datetime.combine(monday, datetime.min.time(), zone)
    end = datetime.combine(next_monday, datetime.min.time(), zone)
    members = select(Membership.member_id).where(Membership.community_id == community.id)
    rows = session.exec(
        select(CheckIn.member_id, CheckIn.rating)
        .where(
            sa.or_(
                col(CheckIn.community_id) == community.id,
                sa.and_(
                    CheckIn.community_id.is_(None),  # type: ignore[union-attr]
                    CheckIn.member_id.in_(members),  # type: ignore[attr-defined]
                ),
            ),
            CheckIn.status == "answered",
            CheckIn.rating.is_not(None),  # type: ignore[union-attr]
            CheckIn.answered_at >= start,  # type: ignore[operator]
            CheckIn.answered_at < end,  # type: ignore[operator]
        )
        .order_by(CheckIn.answered_at, CheckIn.id)  # type: ignore[arg-type]
    ).all()
    latest = {member_id: rating for member_id, rating in rows if rating is not None}
    return WeekRatings(week=week, ratings=ratings_of(latest, min_group=min_group, viewer=viewer_id))


def needs_a_hand(
    session: Session, community: Community, *, now: datetime, viewer_id: int | None = None
) -> list[QuietMember]:
    """Members without an answered check-in for three weeks (the coach looking excepted),
    longest quiet first: the one definition `report` counts and the dashboard lists."""
    members = community_members(session, community_id=community.id or 0)
    quiet: list[QuietMember] = []
    for member in members:
        if member.id == viewer_id:
            continue
        last = session.exec(
            select(CheckIn.answered_at)
            .where(CheckIn.member_id == member.id, CheckIn.status == "answered")
            .order_by(CheckIn.answered_at.desc())  # type: ignore[union-attr]
        ).first()
        if last is None or last < now - NEEDS_A_HAND_AFTER:
            shares = session.exec(
                select(sa.func.count())
                .select_from(Artifact)
                .where(Artifact.author_id == member.id, Artifact.community_id == community.id)
            ).one()
            quiet.append(QuietMember(name=_name(member), last_checkin=last, shares=int(shares)))
    quiet.sort(key=lambda q: (q.last_checkin is not None, q.last_checkin or now, q.name))
    return quiet


def community_overview(
    session: Session,
    prompts: PromptLibrary,
    community: Community,
    *,
    now: datetime,
    min_group: int,
    weeks: int = 8,
    top: int = 5,
    viewer_id: int | None = None,
) -> CommunityOverview:
    """Participation by week, check-ins answered vs sent, last week's bands, top shares, the
    best share per Future Ready element, and members without a recent check-in (other than
    the coach who is looking, `viewer_id`). Figures about people follow bot/scoring/small_groups.py."""
    week_stats = community_weeks(
        session, community, now=now, weeks=weeks, min_group=min_group, viewer_id=viewer_id
    )
    quiet = needs_a_hand(session, community, now=now, viewer_id=viewer_id)

    by_element = []
    for key, element in prompts.elements.items():
        best = _ranked(session, community, limit=1, element=key)
        by_element.append((element.name, best[0] if best else None))

    return CommunityOverview(
        community=community,
        members=len(community_members(session, community_id=community.id or 0)),
        weeks=week_stats,
        totals=week_totals(week_stats, min_group=min_group),
        ratings=last_week_ratings(
            session, community, now=now, min_group=min_group, viewer_id=viewer_id
        ),
        top=tuple(_ranked(session, community, limit=top)),
        by_element=tuple(by_element),
        needs_a_hand=tuple(quiet),
        min_group=min_group,
    )
