"""`help`: what the bot does and every command."""

from __future__ import annotations

from functools import partial

from bot.core.context import Context
from bot.core.messages import Card
from bot.core.router import Router

INTRO = (
    "I help your Professional Learning Network learn from each other's real work: "
    "set goals and check in on them, share evidence of your practice, endorse peers' work, "
    "and see the community's best work in a weekly digest."
)


async def show_help(router: Router, ctx: Context, args: str) -> None:
    """Every command in `router`, in the order the features registered them."""
    everyone = [c for c in router.commands.values() if not c.coach]
    coaches = [c for c in router.commands.values() if c.coach]
    lines = [INTRO, "", "*Everyone*"]
    lines += [f"• `{c.usage}` — {c.summary}" for c in everyone]
    lines += ["", "*Coaches*"]
    lines += [f"• `{c.usage}` — {c.summary}" for c in coaches]
    lines += ["", "Endorse a share with its Endorse button (press again to withdraw)."]
    text = "\n".join(lines)
    ctx.reply(text, Card(title="PLN Bot", body=text))


def register(router: Router) -> None:
    # The router is bound now and read when help is asked for, so commands the features
    # register after this one are listed too.
    router.command("help", partial(show_help, router), summary="what I do and every command")
