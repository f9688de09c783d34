"""Who is a coach (`is_coach`), and `coach add` / `coach remove`."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlmodel import select

from bot.core.context import Context, UsageError
from bot.core.router import Router
from storage.models import Member
from storage.queries import get_or_create_member

MENTION = re.compile(r"<@([A-Za-z0-9_:.\-]+)(?:\|([^>]*))?>")


async def is_coach(ctx: Context) -> bool:
    """Coaches: granted ones, PLNBOT_COACHES, the installer, and platform admins/owners."""
    if ctx.member.is_coach or ctx.user.user_id in ctx.settings.coach_ids:
        return True
    if ctx.workspace.installed_by and ctx.workspace.installed_by == ctx.user.user_id:
        return True
    return (await ctx.user_info()).is_admin


async def _called(ctx: Context, member: Member) -> str:
    """A member by name (asked of the platform when not known yet): the core writes no
    platform mentions, so the renderers can escape everything (README "Security")."""
    if not member.display_name:
        try:
            info = await ctx.ask(
                ("user_info", member.user_id),
                lambda: ctx.platform.user_info(ctx.user_ref(member)),
            )
        except Exception:  # the platform can't say: the id will do
            info = None
        if info is not None and info.name:
            member.display_name = info.name[:80]
    return f"*{member.display_name or member.user_id}*"


async def _target(ctx: Context, args: str) -> Member:
    """The member `coach add/remove` names: a mention, an id or a known display name."""
    match = MENTION.search(args)
    user_id = match.group(1) if match else args.strip().lstrip("@")
    if not user_id or " " in user_id:
        raise UsageError("Usage: `coach add @member` — mention the person.")
    existing = ctx.session.exec(
        select(Member).where(
            Member.workspace_id == ctx.workspace.id,
            sa.or_(
                Member.user_id == user_id,  # type: ignore[arg-type]
                sa.func.lower(Member.display_name) == user_id.lower(),
            ),
        )
    ).first()
    if existing is not None:
        return existing
    if not match:
        raise UsageError(
            f"I don't know “@{user_id[:40]}” yet. Mention them so I can tell who they are."
        )
    return get_or_create_member(
        ctx.session,
        workspace_id=ctx.workspace.id or 0,
        user_id=user_id,
        name=(match.group(2) or "")[:80],
        now=ctx.now,
    )


async def add_coach(ctx: Context, args: str) -> None:
    """Grant the coach role to the member named in `args`."""
    member = await _target(ctx, args)
    member.is_coach = True
    ctx.session.add(member)
    ctx.reply(f"{await _called(ctx, member)} is now a coach.")


async def remove_coach(ctx: Context, args: str) -> None:
    """Take the granted coach role away (PLNBOT_COACHES still counts)."""
    member = await _target(ctx, args)
    member.is_coach = False
    ctx.session.add(member)
    note = (
        " (they stay a coach through PLNBOT_COACHES)"
        if member.user_id in ctx.settings.coach_ids
        else ""
    )
    ctx.reply(f"{await _called(ctx, member)} is no longer a coach{note}.")


def register(router: Router) -> None:
    router.command(
        "coach add",
        add_coach,
        usage="coach add @member",
        summary="make someone a coach",
        coach=True,
        needs_args=True,
    )
    router.command(
        "coach remove",
        remove_coach,
        usage="coach remove @member",
        summary="take away someone's coach role",
        coach=True,
        needs_args=True,
    )
