"""Goals: `goal add <text>`, `goal list`, `goal done <n>`."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.core.context import Context, UsageError
from bot.core.messages import Card, Field
from bot.core.router import Router
from bot.scoring.bands import band
from storage.columns import saved_id
from storage.models import CheckIn, Goal, Member

MAX_GOAL = 1000
PAGE = 20  # goals per `goal list` page (fits one Slack message, 50 blocks)


def member_goals(session: Session, member: Member, *, active_only: bool = False) -> list[Goal]:
    query = select(Goal).where(Goal.member_id == member.id)
    if active_only:
        query = query.where(Goal.status == "active")
    return list(session.exec(query.order_by(Goal.number)).all())  # type: ignore[arg-type]


def latest_rating(session: Session, goal: Goal) -> CheckIn | None:
    return session.exec(
        select(CheckIn)
        .where(CheckIn.goal_id == goal.id, CheckIn.rating.is_not(None))  # type: ignore[union-attr]
        .order_by(CheckIn.answered_at.desc(), CheckIn.id.desc())  # type: ignore[union-attr]
    ).first()


def goal_line(session: Session, goal: Goal) -> str:
    mark = "✓ " if goal.status == "done" else ""
    latest = latest_rating(session, goal)
    rated = (
        f" — {latest.rating}/10 {band(latest.rating)}"
        if latest and latest.rating is not None
        else ""
    )
    return f"{goal.number}. {mark}{goal.text}{rated}"


async def add_goal(ctx: Context, args: str) -> None:
    """Save `args` as the member's next numbered goal."""
    if len(args) > MAX_GOAL:
        raise UsageError(
            f"That goal is {len(args):,} characters; please keep it under {MAX_GOAL:,} "
            "(a sentence or two works best). Nothing was saved."
        )
    highest = ctx.session.exec(
        select(sa.func.max(Goal.number)).where(Goal.member_id == ctx.member.id)
    ).one()
    goal = Goal(
        member_id=saved_id(ctx.member), number=(highest or 0) + 1, text=args, created_at=ctx.now
    )
    ctx.session.add(goal)
    ctx.reply(
        f"Goal {goal.number} saved: {args}\nI'll ask how it's going at check-in time; "
        "`checkin` to reflect now."
    )


async def list_goals(ctx: Context, args: str) -> None:
    """One page of the member's goals with each one's latest rating."""
    goals = member_goals(ctx.session, ctx.member)
    if not goals:
        ctx.reply("You have no goals yet. Add one with `goal add <text>`.")
        return
    pages = (len(goals) + PAGE - 1) // PAGE
    if args and (not args.isdigit() or not 1 <= int(args) <= pages):
        raise UsageError(f"Usage: `goal list [page]` — you have {pages} page(s) of goals.")
    page = int(args) if args else 1
    shown = goals[(page - 1) * PAGE : page * PAGE]
    lines = [goal_line(ctx.session, goal) for goal in shown]
    more = f"\nPage {page} of {pages}: `goal list {page + 1}` for more." if page < pages else ""
    ctx.reply(
        "Your goals:\n" + "\n".join(lines) + more,
        Card(
            title="Your goals" if pages == 1 else f"Your goals ({page}/{pages})",
            fields=tuple(
                Field(label=str(g.number), value=line) for g, line in zip(shown, lines, strict=True)
            ),
            footer=more.strip(),
        ),
    )


async def mark_goal_done(ctx: Context, args: str) -> None:
    """Mark goal number `args` as achieved (once; a second time only congratulates)."""
    if not args.isdigit():
        raise UsageError("Usage: `goal done <n>` with the goal's number from `goal list`.")
    goal = ctx.session.exec(
        select(Goal).where(Goal.member_id == ctx.member.id, Goal.number == int(args))
    ).first()
    if goal is None:
        raise UsageError(f"You have no goal {args}. `goal list` shows their numbers.")
    if goal.status == "done":
        ctx.reply(f"Goal {goal.number} is already marked done. Well done again!")
        return
    goal.status = "done"
    goal.done_at = ctx.now
    ctx.session.add(goal)
    ctx.reply(f"Goal {goal.number} marked done: {goal.text}. Congratulations!")


def register(router: Router) -> None:
    router.command(
        "goal add",
        add_goal,
        usage="goal add <text>",
        summary="set a professional goal",
        needs_args=True,
    )
    router.command(
        "goal list", list_goals, usage="goal list [page]", summary="your goals and latest ratings"
    )
    router.command(
        "goal done",
        mark_goal_done,
        usage="goal done <n>",
        summary="mark goal n as achieved",
        needs_args=True,
    )
