"""`me`: a member's goals, progress and recent activity, as they see it."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import select

from bot.core.context import Context
from bot.core.messages import Card, Field
from bot.core.router import Router
from bot.features.goals import goal_lines, member_goals
from bot.services.links import member_dashboard_button
from storage.models import Artifact, CheckIn, Endorsement


async def show_me(ctx: Context, args: str) -> None:
    """A member's own goals, last 30 days' check-ins, shares and endorsements."""
    session, member = ctx.session, ctx.member
    goals = member_goals(session, member)
    since = ctx.now - timedelta(days=30)
    answered = session.exec(
        select(sa.func.count())
        .select_from(CheckIn)
        .where(
            CheckIn.member_id == member.id,
            CheckIn.status == "answered",
            CheckIn.answered_at >= since,  # type: ignore[operator]
        )
    ).one()
    shares = session.exec(
        select(sa.func.count()).select_from(Artifact).where(Artifact.author_id == member.id)
    ).one()
    received = session.exec(
        select(sa.func.count())
        .select_from(Endorsement)
        .join(Artifact, Artifact.id == Endorsement.artifact_id)  # type: ignore[arg-type]
        .where(Artifact.author_id == member.id)
    ).one()
    given = session.exec(
        select(sa.func.count()).select_from(Endorsement).where(Endorsement.endorser_id == member.id)
    ).one()
    zone = ctx.member_zone()
    lines = [line for g in goals for line in goal_lines(session, g, zone, ctx.now)] or [
        "No goals yet — `goal add <text>`."
    ]
    stats = (
        f"Check-ins answered (30 days): {answered} · Shares: {shares} · "
        f"Endorsements received: {received} · given: {given}"
    )
    paused = ""
    if member.paused_until and member.paused_until >= ctx.now.date():
        paused = f"\nCheck-ins paused until {member.paused_until:%d %b %Y} (`resume` to restart)."
    hint = "" if member.onboarded else "\nYou haven't set up your profile yet — type `profile`."
    text = "*Your goals*\n" + "\n".join(lines) + f"\n{stats}{paused}{hint}"
    ctx.reply(
        text,
        Card(
            title="Your professional learning",
            body="\n".join(lines),
            fields=(
                Field(label="Check-ins (30 days)", value=str(answered)),
                Field(label="Shares", value=str(shares)),
                Field(label="Endorsements received", value=str(received)),
                Field(label="Endorsements given", value=str(given)),
            ),
            footer=(paused + hint).strip(),
            buttons=member_dashboard_button(ctx.links, member),
        ),
    )


def register(router: Router) -> None:
    router.command("me", show_me, summary="your goals, progress and recent activity")
