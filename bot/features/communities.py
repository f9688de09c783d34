"""A coach's community: `setup` (this channel becomes one), `checkins send` (to its members
now) and `schedule` (when prompts, check-ins and digests go out, breaks, its timezone)."""

from __future__ import annotations

import logging
import re
from datetime import date

from sqlmodel import select

from bot.config import check_timezone
from bot.core.context import Context, UsageError
from bot.core.port import ReachCheck
from bot.core.router import Router
from bot.delivery.rows import queue_checkins
from bot.features.profiles import WEEKDAYS
from storage.models import (
    Community,
    Member,
    Schedule,
    ScheduleBreak,
)
from storage.queries import add_membership, community_members, get_or_create_member

log = logging.getLogger(__name__)

KINDS = ("prompt", "checkin", "digest")
DEFAULT_SCHEDULES = {"prompt": (0, "09:00"), "checkin": (2, "15:30"), "digest": (4, "14:00")}


async def channel_member_ids(ctx: Context) -> list[str]:
    """The people in this channel, as the platform lists them (asked with no transaction
    open; see `Context.ask`)."""
    try:
        return await ctx.ask(
            ("channel_members", ctx.conversation.channel_id),
            lambda: ctx.platform.channel_members(ctx.conversation),
        )
    except Exception:
        log.warning("could not list the members of %s", ctx.conversation.channel_id)
        return []


def add_members(ctx: Context, community: Community, user_ids: list[str]) -> None:
    """Everyone in a community's channel is a member: they get its check-ins."""
    for user_id in user_ids:
        member = get_or_create_member(
            ctx.session,
            workspace_id=ctx.workspace.id or 0,
            user_id=user_id,
            name="",
            now=ctx.now,
        )
        add_membership(
            ctx.session, community_id=community.id or 0, member_id=member.id or 0, now=ctx.now
        )


def need_community(ctx: Context) -> Community:
    if ctx.community is None:
        raise UsageError(
            "Run this in a community channel. A coach registers one with `setup` there."
        )
    return ctx.community


def _parse_time(text: str) -> str:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text)
    if match is None:
        raise UsageError(f"“{text[:20]}” isn't a time. Use 24-hour HH:MM, like `09:30`.")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def _parse_weekday(text: str) -> int:
    word = text.lower()
    matches = [i for i, day in enumerate(WEEKDAYS) if len(word) >= 2 and day.startswith(word)]
    if not matches:
        raise UsageError(f"“{text[:20]}” isn't a weekday. Use monday … sunday (or mon, tue …).")
    return matches[0]


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"“{text[:20]}” isn't a date. Use YYYY-MM-DD, like `2026-12-21`.") from exc


def _zone_name(community: Community) -> str:
    """Whose time a community's schedule is in, as people read it: "America/Chicago time"."""
    return f"{community.timezone} time"


async def _coach_zone(ctx: Context) -> str:
    """A new community starts from its coach's timezone (their own setting, else what the
    platform says), then PLNBOT_TIMEZONE."""
    if ctx.member.timezone:
        return ctx.member.timezone
    info = await ctx.user_info()
    try:
        return check_timezone(info.timezone) if info.timezone else ctx.settings.timezone
    except ValueError:
        return ctx.settings.timezone


def schedule_lines(ctx: Context, community: Community) -> list[str]:
    rows = {
        s.kind: s
        for s in ctx.session.exec(select(Schedule).where(Schedule.community_id == community.id))
    }
    lines = []
    for kind in KINDS:
        row = rows.get(kind)
        when = f"{WEEKDAYS[row.weekday].title()} {row.time}" if row and row.enabled else "off"
        lines.append(f"{kind}: {when}")
    breaks = ctx.session.exec(
        select(ScheduleBreak)
        .where(ScheduleBreak.community_id == community.id, ScheduleBreak.ends_on >= ctx.now.date())
        .order_by(ScheduleBreak.starts_on)  # type: ignore[arg-type]
    ).all()
    lines += [f"break: {b.starts_on.isoformat()} to {b.ends_on.isoformat()}" for b in breaks]
    return lines


async def _unreachable(ctx: Context, community: Community) -> list[Member]:
    """Community members the platform can't message directly yet (none on most platforms)."""
    if not isinstance(ctx.platform, ReachCheck):
        return []
    members = community_members(ctx.session, community_id=community.id or 0)
    users = [ctx.user_ref(m) for m in members]
    platform = ctx.platform
    try:
        missing = {
            u.user_id
            for u in await ctx.ask(
                ("unreachable", *(u.user_id for u in users)), lambda: platform.unreachable(users)
            )
        }
    except Exception:  # a failed look-up must not hide that the check-ins were queued
        return []
    return [m for m in members if m.user_id in missing]


async def set_up_community(ctx: Context, args: str) -> None:
    """Make this channel a community (or rename it): default schedule, its people members."""
    if ctx.conversation.is_dm:
        raise UsageError("Run `setup` in the channel you want to become a community, not in a DM.")
    name = args.strip()[:200]
    if ctx.community is not None:
        if name and name != ctx.community.name:
            ctx.community.name = name
            ctx.session.add(ctx.community)
            ctx.reply(f"Renamed this community to {name}.")
        else:
            ctx.reply(
                f"This channel is already the community “{ctx.community.name}”. `schedule` shows its schedule."
            )
        return
    people = await channel_member_ids(ctx)
    community = Community(
        workspace_id=ctx.workspace.id or 0,
        channel_id=ctx.conversation.channel_id,
        name=name or ctx.conversation.name or "PLN community",
        timezone=await _coach_zone(ctx),
        created_by=ctx.member.id,
        created_at=ctx.now,
    )
    ctx.session.add(community)
    ctx.session.flush()
    assert community.id is not None and ctx.member.id is not None
    for kind, (weekday, at) in DEFAULT_SCHEDULES.items():
        ctx.session.add(Schedule(community_id=community.id, kind=kind, weekday=weekday, time=at))
    add_membership(ctx.session, community_id=community.id, member_id=ctx.member.id, now=ctx.now)
    add_members(ctx, community, people)  # people already in the channel get its check-ins
    ctx.schedules_changed = True
    ctx.post(
        f"This channel is now the PLN community “{community.name}”. Share evidence of your "
        "practice with `share <url>`, endorse what you'd borrow, and look out for weekly "
        "reflection prompts and digests. `help` shows everything."
    )
    ctx.reply(
        f"Default schedule, in {_zone_name(community)}: "
        + "; ".join(schedule_lines(ctx, community))
        + ". Change it with `schedule`; `schedule timezone <zone>` if your community "
        "keeps another time."
    )


async def send_checkins(ctx: Context, args: str) -> None:
    """Queue check-ins for the community's members now, saying who can't be reached."""
    community = need_community(ctx)
    assert community.id is not None
    add_members(ctx, community, await channel_member_ids(ctx))
    result = queue_checkins(ctx.session, community, now=ctx.now, default_tz=ctx.settings.timezone)
    ctx.wake_outbox = True
    parts = [
        f"Check-ins are on their way to {result.queued} member{'s' if result.queued != 1 else ''}."
    ]
    if result.already:
        parts.append(f"{result.already} already had today's check-in.")
    if result.paused:
        parts.append(f"{result.paused} paused.")
    unreachable = await _unreachable(ctx, community)
    if unreachable:
        names = ", ".join(m.display_name or "a member" for m in unreachable[:5])
        more = f" and {len(unreachable) - 5} more" if len(unreachable) > 5 else ""
        parts.append(
            f"{len(unreachable)} can't be reached yet ({names}{more}): they need to message "
            "me or be in a team or chat with me first. `report` counts undelivered messages."
        )
    ctx.reply(" ".join(parts))


async def show_or_change_schedule(ctx: Context, args: str) -> None:
    """Show the schedule, or change a kind's time, turn it off, add a break or set the zone."""
    community = need_community(ctx)
    assert community.id is not None
    words = args.split()
    if not words:
        ctx.reply(
            f"Schedule for {community.name}, in {_zone_name(community)}:\n"
            + "\n".join(schedule_lines(ctx, community))
        )
        return
    kind = words[0].lower()
    if kind in ("timezone", "tz"):
        if len(words) != 2:
            raise UsageError(
                "Usage: `schedule timezone <zone>`, with an IANA name like America/Chicago."
            )
        try:
            community.timezone = check_timezone(words[1])
        except ValueError as problem:
            raise UsageError(f"{problem}. Nothing was changed.") from problem
        ctx.session.add(community)
        ctx.schedules_changed = True
        ctx.reply(
            f"{community.name} now keeps {_zone_name(community)}: "
            + "; ".join(schedule_lines(ctx, community))
            + "."
        )
        return
    if kind == "break":
        if len(words) != 3:
            raise UsageError("Usage: `schedule break <YYYY-MM-DD> <YYYY-MM-DD>`")
        start, end = _parse_date(words[1]), _parse_date(words[2])
        if end < start:
            raise UsageError("The break ends before it starts — put the earlier date first.")
        ctx.session.add(ScheduleBreak(community_id=community.id, starts_on=start, ends_on=end))
        ctx.reply(f"Break saved: nothing scheduled goes out from {start:%d %b} to {end:%d %b %Y}.")
        return
    if kind not in KINDS:
        raise UsageError(
            "Usage: `schedule prompt|checkin|digest <weekday> <HH:MM>`, `schedule <kind> off`, "
            "or `schedule break <from> <to>`."
        )
    row = ctx.session.exec(
        select(Schedule).where(Schedule.community_id == community.id, Schedule.kind == kind)
    ).first() or Schedule(
        community_id=community.id, kind=kind, weekday=0, time="09:00", enabled=False
    )
    if len(words) == 2 and words[1].lower() == "off":
        row.enabled = False
        message = f"The {kind} schedule is off."
    elif len(words) == 3:
        row.weekday, row.time, row.enabled = (
            _parse_weekday(words[1]),
            _parse_time(words[2]),
            True,
        )
        message = f"The {kind} now goes out {WEEKDAYS[row.weekday].title()}s at {row.time}, {_zone_name(community)}."
    else:
        raise UsageError(f"Usage: `schedule {kind} <weekday> <HH:MM>` or `schedule {kind} off`.")
    ctx.session.add(row)
    ctx.schedules_changed = True
    ctx.reply(message)


def register(router: Router) -> None:
    router.command(
        "setup",
        set_up_community,
        usage="setup [name]",
        summary="register this channel as a PLN community",
        coach=True,
    )
    router.command(
        "checkins send",
        send_checkins,
        summary="send check-ins to this community's members now",
        coach=True,
    )
    router.command(
        "schedule",
        show_or_change_schedule,
        usage="schedule [prompt|checkin|digest <weekday> <HH:MM> | <kind> off | break <from> <to> | timezone <zone>]",
        summary="show or change when prompts, check-ins and digests go out",
        coach=True,
    )
