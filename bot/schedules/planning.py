"""Planning what is due: members' check-ins at their own local time, one gentle nudge, and
community prompts and digests missed while the bot was down.

Everything here only inserts outbox rows with idempotency keys, so running it every minute,
in every replica, or again after a restart never sends anything twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.core.clock import iso_week
from bot.delivery.rows import enqueue_checkin, member_today, on_break
from bot.features.digests import schedule_digest
from bot.features.reflections import queue_prompt
from storage.models import (
    CheckIn,
    Community,
    Member,
    Membership,
    OutboxMessage,
    Schedule,
    ScheduleBreak,
)
from storage.queries import enqueue

log = logging.getLogger(__name__)

LOOKAHEAD = timedelta(minutes=10)  # rows are queued this long before they are due
CHECKIN_GRACE = timedelta(hours=12)  # after downtime, a check-in this late is still sent
PROMPT_GRACE = timedelta(hours=6)
NUDGE_MAX_AGE = timedelta(days=3)


@dataclass(frozen=True)
class PlanOptions:
    default_tz: str = "UTC"
    nudge_after: timedelta = timedelta(hours=24)
    holiday_country: str | None = None  # e.g. "US", "GB", "NZ" (needs the `holidays` package)


@dataclass
class PlanResult:
    checkins: int = 0
    nudges: int = 0
    prompts: int = 0
    digests: int = 0
    skipped: int = 0


def local_instant(day: date, at: str, zone: ZoneInfo) -> datetime:
    """`at` (HH:MM) on `day` in `zone`, as an aware instant. A time in the spring-forward gap
    lands after it (02:30 becomes 03:30), and a repeated autumn time means its first pass."""
    hour, minute = (int(part) for part in at.split(":"))
    return datetime.combine(day, time(hour, minute), zone)


@lru_cache(maxsize=32)
def _holiday_calendar(country: str, year: int) -> Any:
    try:
        import holidays
    except ImportError:
        log.warning("PLNBOT_HOLIDAYS is set but the `holidays` package is not installed")
        return {}
    code, _, subdivision = country.partition("-")
    return holidays.country_holidays(code, subdiv=subdivision or None, years=year)


def is_holiday(day: date, country: str | None) -> bool:
    return bool(country) and day in _holiday_calendar(country or "", day.year)


def cadence_matches(member: Member, day: date, weekday: int) -> bool:
    if member.cadence == "off" or day.weekday() != weekday:
        return False
    if member.cadence == "biweekly":
        return day.isocalendar()[1] % 2 == (member.id or 0) % 2
    if member.cadence == "monthly":
        return day.day <= 7  # the first such weekday of the month
    return True


@dataclass
class _Directory:
    """Communities, their check-in schedules and breaks, loaded once per planning pass."""

    communities: dict[int, Community]
    schedules: dict[int, Schedule]
    breaks: dict[int, list[tuple[date, date]]]
    memberships: dict[int, list[int]]

    @classmethod
    def load(cls, session: Session) -> _Directory:
        communities = {c.id or 0: c for c in session.exec(select(Community))}
        schedules = {
            s.community_id: s
            for s in session.exec(select(Schedule).where(Schedule.kind == "checkin"))
        }
        breaks: dict[int, list[tuple[date, date]]] = {}
        for row in session.exec(select(ScheduleBreak)):
            breaks.setdefault(row.community_id, []).append((row.starts_on, row.ends_on))
        memberships: dict[int, list[int]] = {}
        for community_id, member_id in session.exec(
            select(Membership.community_id, Membership.member_id)
        ):
            memberships.setdefault(member_id, []).append(community_id)
        return cls(communities, schedules, breaks, memberships)

    def slot(self, member: Member) -> tuple[list[Community], int, str]:
        """The member's communities with check-ins on, and their check-in weekday and time:
        their own once they have set up their profile, else their community's schedule."""
        communities = []
        slot: tuple[int, str] | None = None
        for community_id in sorted(self.memberships.get(member.id or 0, [])):
            schedule = self.schedules.get(community_id)
            if schedule is not None and not schedule.enabled:
                continue
            communities.append(self.communities[community_id])
            if slot is None and schedule is not None:
                slot = (schedule.weekday, schedule.time)
        if member.onboarded or slot is None:
            slot = (member.checkin_weekday, member.checkin_time)
        return communities, slot[0], slot[1]

    def on_break(self, community: Community, day: date) -> bool:
        return any(start <= day <= end for start, end in self.breaks.get(community.id or 0, []))


def plan_checkins(session: Session, now: datetime, options: PlanOptions) -> int:
    """Queue each member's check-in for their local day and time (due within LOOKAHEAD)."""
    queued = 0
    directory = _Directory.load(session)
    members = session.exec(
        select(Member).where(Member.cadence != "off").order_by(Member.id)  # type: ignore[arg-type]
    ).all()
    for member in members:
        communities, weekday, at = directory.slot(member)
        if not communities:
            continue
        zone = ZoneInfo(member.timezone or options.default_tz)
        local_now = now.astimezone(zone)
        for day in (local_now.date() - timedelta(days=1), local_now.date()):
            if not cadence_matches(member, day, weekday):
                continue
            due = local_instant(day, at, zone)
            if not (now - CHECKIN_GRACE <= due <= now + LOOKAHEAD):
                continue
            if str(day.weekday()) in member.quiet_days.split(","):
                continue
            if member.paused_until and member.paused_until >= day:
                continue
            if is_holiday(day, options.holiday_country):
                continue
            open_communities = [c for c in communities if not directory.on_break(c, day)]
            if not open_communities:
                continue  # every community of theirs is on a break
            if enqueue_checkin(
                session,
                member,
                day=day,
                community_id=open_communities[0].id,
                now=now,
                not_before=due,
                expires_at=due + CHECKIN_GRACE,
            ):
                queued += 1
    return queued


def plan_nudges(session: Session, now: datetime, options: PlanOptions) -> int:
    """One gentle reminder for a check-in still unanswered `nudge_after` its sending."""
    queued = 0
    rows = session.exec(
        select(CheckIn, Member)
        .join(Member, Member.id == CheckIn.member_id)  # type: ignore[arg-type]
        .where(
            CheckIn.status == "open",
            CheckIn.key.is_not(None),  # type: ignore[union-attr]
            CheckIn.nudged_at.is_(None),  # type: ignore[union-attr]
            CheckIn.created_at <= now - options.nudge_after,  # type: ignore[operator]
            CheckIn.created_at >= now - NUDGE_MAX_AGE,  # type: ignore[operator]
        )
    ).all()
    for checkin, member in rows:
        today = member_today(member, options.default_tz, now)
        if member.paused_until and member.paused_until >= today:
            continue
        checkin.nudged_at = now  # never more than one nudge
        session.add(checkin)
        if enqueue(
            session,
            key=f"nudge:{checkin.id}",
            workspace_id=member.workspace_id,
            kind="nudge",
            member_id=member.id,
            object_id=checkin.id,
            now=now,
            expires_at=now + timedelta(hours=12),
        ):
            queued += 1
    return queued


def last_occurrence(schedule: Schedule, zone: ZoneInfo, now: datetime) -> datetime:
    """The most recent instant (<= now) this weekly schedule fired, in its local time."""
    local_today = now.astimezone(zone).date()
    back = (local_today.weekday() - schedule.weekday) % 7
    instant = local_instant(local_today - timedelta(days=back), schedule.time, zone)
    if instant > now:
        instant = local_instant(local_today - timedelta(days=back + 7), schedule.time, zone)
    return instant


def catch_up(session: Session, prompts: Any, now: datetime) -> PlanResult:
    """Prompts and digests whose time passed while no scheduler ran: still useful ones are
    sent once; stale ones (last week's digest) are recorded as skipped."""
    result = PlanResult()
    rows = session.exec(
        select(Schedule, Community)
        .join(Community, Community.id == Schedule.community_id)  # type: ignore[arg-type]
        .where(Schedule.enabled, Schedule.kind.in_(("prompt", "digest")))  # type: ignore[attr-defined]
    ).all()
    for schedule, community in rows:
        zone = ZoneInfo(community.timezone)
        fired = last_occurrence(schedule, zone, now)
        if fired < community.created_at:
            continue
        day = fired.astimezone(zone).date()
        if on_break(session, community, day):
            continue
        if schedule.kind == "prompt":
            key = f"prompt:{community.id}:{day}"
            if now - fired <= PROMPT_GRACE:
                result.prompts += queue_prompt(session, prompts, community, now=now, key=key)
            else:
                result.skipped += _mark_skipped(session, community, key, "prompt", now)
        else:
            week = iso_week(day)
            key = f"digest:{community.id}:{week}"
            if iso_week(now.astimezone(zone).date()) == week:
                result.digests += schedule_digest(session, community, week, now)
            else:
                result.skipped += _mark_skipped(session, community, key, "digest", now)
    return result


def _mark_skipped(
    session: Session, community: Community, key: str, kind: str, now: datetime
) -> int:
    if session.exec(select(OutboxMessage.id).where(OutboxMessage.key == key)).first() is not None:
        return 0
    inserted = enqueue(
        session,
        key=key,
        workspace_id=community.workspace_id,
        kind=kind,
        channel_id=community.channel_id,
        now=now,
    )
    if inserted:
        session.exec(
            sa.update(OutboxMessage)  # type: ignore[call-overload]
            .where(col(OutboxMessage.key) == key)
            .values(status="skipped", error="missed while the bot was not running")
        )
    return int(inserted)


def plan(session: Session, prompts: Any, now: datetime, options: PlanOptions) -> PlanResult:
    result = catch_up(session, prompts, now)
    result.checkins = plan_checkins(session, now, options)
    result.nudges = plan_nudges(session, now, options)
    return result
