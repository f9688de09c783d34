"""`pause <days>` and `resume`: no check-ins or nudges for a while."""

from __future__ import annotations

from datetime import timedelta

from bot.core.context import Context, UsageError
from bot.core.router import Router

MAX_PAUSE_DAYS = 365


async def pause(ctx: Context, args: str) -> None:
    """No check-ins or nudges for `args` days, counted in the member's own timezone."""
    if not args.isdigit() or not 1 <= int(args) <= MAX_PAUSE_DAYS:
        raise UsageError(f"Usage: `pause <days>` with 1 to {MAX_PAUSE_DAYS} days, e.g. `pause 14`.")
    today = ctx.now.astimezone(ctx.member_zone()).date()
    ctx.member.paused_until = today + timedelta(days=int(args) - 1)
    ctx.session.add(ctx.member)
    ctx.reply(
        f"Paused: no check-ins or nudges until {ctx.member.paused_until + timedelta(days=1):%A %d %b}. "
        "`resume` any time."
    )


async def resume(ctx: Context, args: str) -> None:
    """End a pause early."""
    ctx.member.paused_until = None
    ctx.session.add(ctx.member)
    ctx.reply("Welcome back — check-ins are on again.")


def register(router: Router) -> None:
    router.command(
        "pause",
        pause,
        usage="pause <days>",
        summary="no check-ins or nudges for a while",
        needs_args=True,
    )
    router.command("resume", resume, summary="start check-ins again after a pause")
