"""A member's home: goals with their latest rating, recent shares, endorsements received.

Slack shows it as the App Home tab; other platforms can show the same card.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.core.context import Context, UsageError
from bot.core.messages import Button, Card, Field
from bot.core.router import Router
from bot.features.checkins import checkin_now
from bot.features.evidence import member_share_form
from bot.features.goals import goal_lines, member_goals
from storage.models import Artifact, Community, Endorsement, Member, Membership


def home_card(session: Session, member: Member, now: datetime) -> Card:
    """The home card at `now` (the bot's clock: a test's fake clock too); each goal's
    indicators show their latest value (days in the member's timezone, UTC until they set
    one)."""
    goals = member_goals(session, member)
    zone = ZoneInfo(member.timezone) if member.timezone else ZoneInfo("UTC")
    goal_text = (
        "\n".join(line for g in goals for line in goal_lines(session, g, zone, now))
        or "No goals yet — add one with `/pln goal add <text>`."
    )
    shares = session.exec(
        select(Artifact.title, sa.func.count(Endorsement.id))  # type: ignore[arg-type]
        .join(Endorsement, Endorsement.artifact_id == Artifact.id, isouter=True)  # type: ignore[arg-type]
        .where(Artifact.author_id == member.id)
        .group_by(Artifact.id)  # type: ignore[arg-type]
        .order_by(Artifact.created_at.desc())  # type: ignore[attr-defined]
        .limit(5)
    ).all()
    share_text = "\n".join(
        f"• {title} — {count} endorsement{'s' if count != 1 else ''}" for title, count in shares
    )
    received = session.exec(
        select(Member.display_name, Artifact.title, Endorsement.note)
        .join(Artifact, Artifact.id == Endorsement.artifact_id)  # type: ignore[arg-type]
        .join(Member, Member.id == Endorsement.endorser_id)  # type: ignore[arg-type]
        .where(Artifact.author_id == member.id)
        .order_by(Endorsement.created_at.desc())  # type: ignore[attr-defined]
        .limit(5)
    ).all()
    received_text = "\n".join(
        f"• {name or 'A peer'} endorsed “{title}”" + (f": “{note[:200]}”" if note else "")
        for name, title, note in received
    )
    return Card(
        title="Your professional learning",
        body=goal_text,
        fields=(
            Field(label="Recent shares", value=share_text or "Nothing shared yet."),
            Field(label="Endorsements received", value=received_text or "None yet."),
        ),
        buttons=(
            Button(label="Check in now", action_id="checkin_start", style="primary"),
            Button(label="Share evidence", action_id="share_open"),
            Button(label="Edit profile", action_id="profile_open"),
        ),
    )


async def start_checkin(ctx: Context) -> None:
    """The home card's *Check in now* button: the same as typing `checkin`."""
    await checkin_now(ctx, "")


async def open_share_form(ctx: Context) -> None:
    """The share form for this channel's community, else the member's first (the home tab)."""
    community = (
        ctx.community
        or ctx.session.exec(
            select(Community)
            .join(Membership, Membership.community_id == Community.id)  # type: ignore[arg-type]
            .where(Membership.member_id == ctx.member.id)
            .order_by(Community.id)  # type: ignore[arg-type]
        ).first()
    )
    if community is None:
        raise UsageError("Join a PLN community channel first; then you can share evidence there.")
    ctx.reply(
        f"Share evidence with {community.name}.",
        member_share_form(ctx.session, ctx.member, channel_id=community.channel_id),
    )


def register(router: Router) -> None:
    router.action("checkin_start", start_checkin)
    router.action("share_open", open_share_form)
