"""`report`: participation and progress for a community, as its coach sees it (figures about
fewer than PLNBOT_MIN_GROUP people held back, as on the community dashboard)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import select

from bot.core.clock import week_of
from bot.core.context import Context
from bot.core.messages import Card, Field
from bot.core.router import Router
from bot.features.communities import need_community
from bot.features.goals import goal_lines
from bot.scoring.bands import Ratings
from bot.scoring.progress import (
    WeekTotals,
    community_weeks,
    last_week_ratings,
    needs_a_hand,
    week_totals,
)
from bot.scoring.small_groups import Figure, fewer_than, held_back, reason
from bot.services.links import community_dashboard_button
from storage.models import CoachingCycle, Goal, Member, OutboxMessage
from storage.queries import community_members


def _weeks(count: int) -> str:
    return f"{count} week{'' if count == 1 else 's'}"


def _answered_line(totals: WeekTotals, min_group: int) -> str:
    """Check-ins answered of sent, adding up only the weeks whose answers are shown."""
    answered = totals.checkins_answered
    if answered.value is None:
        return f"{totals.checkins_sent} sent · answered: " + held_back(
            min_group, once="answered in a week"
        )
    line = f"{answered.value} answered of {totals.checkins_sent_shown} sent"
    if answered.held:
        shown = answered.parts - answered.held
        line += (
            f" in the {_weeks(shown)} with {min_group} or more people answering; "
            f"the other {_weeks(answered.held)}: {fewer_than(min_group)}"
        )
    return line


def _reflections_line(totals: WeekTotals, min_group: int) -> str:
    reflections = totals.reflections
    if reflections.value is None:
        return held_back(min_group, once="reflected in a week")
    if not reflections.held:
        return str(reflections.value)
    shown = reflections.parts - reflections.held
    return (
        f"{reflections.value} in the {_weeks(shown)} with {min_group} or more people "
        f"reflecting; the other {_weeks(reflections.held)}: {fewer_than(min_group)}"
    )


def _ratings_line(ratings: Figure[Ratings]) -> str:
    if ratings.value is None:
        return held_back(ratings.min_group, once="checked in during a week")
    return f"{ratings.value.line()} ({ratings.value.people} people)"


MAX_CYCLES_SHOWN = 10


def cycle_lines(ctx: Context) -> list[str]:
    """The coach's own accepted cycles, one member each with the cycle's goal, its latest
    rating and indicator values: the only individual figures a coach sees, because the
    member accepted the cycle on that goal (everything else follows the group-size rule)."""
    cycles = ctx.session.exec(
        select(CoachingCycle)
        .where(
            CoachingCycle.workspace_id == ctx.member.workspace_id,
            CoachingCycle.coach_id == ctx.member.id,
            CoachingCycle.status == "active",
        )
        .order_by(CoachingCycle.answered_at, CoachingCycle.id)  # type: ignore[arg-type]
        .limit(MAX_CYCLES_SHOWN + 1)
    ).all()
    zone = ctx.member_zone()
    lines = []
    for cycle in cycles[:MAX_CYCLES_SHOWN]:
        member = ctx.session.get(Member, cycle.member_id)
        goal = ctx.session.get(Goal, cycle.goal_id) if cycle.goal_id is not None else None
        if member is None or goal is None:
            continue
        first, *indicators = goal_lines(ctx.session, goal, zone, ctx.now)
        lines.append(f"{member.display_name or 'A member'}: goal {first}")
        lines.extend(indicators)
    if len(cycles) > MAX_CYCLES_SHOWN:
        lines.append(f"… and more: the first {MAX_CYCLES_SHOWN} are shown.")
    return lines


async def show_report(ctx: Context, args: str) -> None:
    """A coach's view of the last four weeks in this community, small groups held back."""
    community = need_community(ctx)
    session = ctx.session
    min_group = ctx.settings.min_group
    members = community_members(session, community_id=community.id or 0)
    # The same weeks and ratings as the community dashboard, so the two never differ
    # by a held-back figure (bot/scoring/small_groups.py).
    weeks = community_weeks(
        session,
        community,
        now=ctx.now,
        weeks=4,
        min_group=min_group,
        viewer_id=ctx.member.id,
    )
    totals = week_totals(weeks, min_group=min_group)
    rated = last_week_ratings(
        session, community, now=ctx.now, min_group=min_group, viewer_id=ctx.member.id
    )
    this_week = weeks[-1]
    four_weeks = ctx.now - timedelta(days=28)
    failed = int(
        session.exec(
            select(sa.func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.workspace_id == community.workspace_id,
                OutboxMessage.status == "failed",
                OutboxMessage.created_at >= four_weeks,
            )
        ).one()
    )
    # Counted here, listed by name on the dashboard: one definition for both.
    quiet = len(needs_a_hand(session, community, now=ctx.now, viewer_id=ctx.member.id))
    fields: tuple[Field, ...] = (
        Field(label="Members", value=str(len(members))),
        Field(label="Check-ins (4 weeks)", value=_answered_line(totals, min_group)),
        Field(
            label=f"Self-ratings last week ({week_of(rated.week)})",
            value=_ratings_line(rated.ratings),
        ),
        Field(
            label=f"This week ({week_of(this_week.week)})",
            value=f"{this_week.shares} shares, {this_week.endorsements} endorsements",
        ),
        Field(label="Reflections (4 weeks)", value=_reflections_line(totals, min_group)),
        Field(label="May need a hand", value=f"{quiet} without a check-in in 3 weeks"),
        Field(label="Undelivered messages (4 weeks)", value=str(failed)),
    )
    coached = cycle_lines(ctx)
    if coached:
        fields += (
            Field(label="Your coaching cycles (each member accepted)", value="\n".join(coached)),
        )
    held = (
        not rated.ratings.shown or totals.checkins_answered.held > 0 or totals.reflections.held > 0
    )
    note = reason(min_group) if held else ""
    text = f"Report for {community.name}\n" + "\n".join(f"{f.label}: {f.value}" for f in fields)
    ctx.reply(
        text + (f"\n{note}" if note else ""),
        Card(
            title=f"Report · {community.name}",
            fields=fields,
            footer=note,
            buttons=community_dashboard_button(ctx.links, community, ctx.member),
        ),
    )


def register(router: Router) -> None:
    router.command(
        "report",
        show_report,
        summary="participation and progress for this community",
        coach=True,
    )
