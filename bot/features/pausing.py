"""`pause <days>` and `resume`: no check-ins or nudges for a while.

A member is paused while `paused_until` is their local today or later. Check-ins and nudges
due then are not sent; the question about a share they planned to try waits and is asked
after the pause (bot/features/enactments.py), since its author is owed the answer.
"""

from __future__ import annotations

from datetime import timedelta

from bot.core.context import Context, UsageError
from bot.core.router import Router
from bot.features.enactments import ask_after_resume, plans_by

MAX_PAUSE_DAYS = 365


async def pause(ctx: Context, args: str) -> None:
    """No check-ins or nudges for `args` days, counted in the member's own timezone."""
    if not args.isdigit() or not 1 <= int(args) <= MAX_PAUSE_DAYS:
        raise UsageError(f"Usage: `pause <days>` with 1 to {MAX_PAUSE_DAYS} days, e.g. `pause 14`.")
    today = ctx.now.astimezone(ctx.member_zone()).date()
    ctx.member.paused_until = today + timedelta(days=int(args) - 1)
    ctx.session.add(ctx.member)
    held = (
        " My question about what you planned to try with your class waits until then."
        if plans_by(ctx.session, ctx.member, ctx.member.paused_until)
        else ""
    )
    ctx.reply(
        f"Paused: no check-ins or nudges until {ctx.member.paused_until + timedelta(days=1):%A %d %b}. "
        "`resume` any time." + held
    )


async def resume(ctx: Context, args: str) -> None:
    """End a pause early."""
    ctx.member.paused_until = None
    ctx.session.add(ctx.member)
    held = ask_after_resume(ctx.session, ctx.member, ctx.member_zone(), ctx.now)
    later = (
        f" On {held:%A %d %B} at 15:00 I'll ask you what students did with what you planned to try."
        if held is not None
        else ""
    )
    ctx.reply("Welcome back — check-ins are on again." + later)


def register(router: Router) -> None:
    router.command(
        "pause",
        pause,
        usage="pause <days>",
        summary="no check-ins or nudges for a while",
        needs_args=True,
    )
    router.command("resume", resume, summary="start check-ins again after a pause")
