"""Coaching cycles (issue #16): `cycle start @member <goal n>`, `feedback @member <text>`,
`cycle close @member <hours>`.

A coach offers a cycle on one of a member's goals; the member accepts or declines (their
choice, and only theirs: the buttons resolve the cycle through `Context.owned`, which finds
only the member's own rows). Within an accepted cycle the coach's feedback goes to the member
by DM, private to the pair; the member may answer it and decides whether it goes in their
portfolio. Closing acknowledges the hours of professional learning the cycle represents with a
signed code anyone can check at `GET /verify/<code>` (bot/services/verification.py).

A coach sees only their own cycles' members: every look-up is by the acting coach's id.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from bot.core.context import Context, UsageError
from bot.core.events import ActionEvent
from bot.core.messages import Button, Card, Field
from bot.core.router import Router
from bot.features.coaches import MENTION, _called, _target
from bot.services.verification import code_for, signing_key
from storage.columns import saved_id
from storage.models import CoachingCycle, CycleNote, Goal, Member
from storage.queries import numbered_goal

log = logging.getLogger(__name__)

OPEN = ("offered", "active")  # one open cycle per member and coach (uq_coachingcycle_open)
MAX_FEEDBACK = 3000
MAX_ANSWER = 3000
MIN_HOURS, MAX_HOURS = 0.5, 200.0
START_USAGE = "cycle start @member <goal n>"
FEEDBACK_USAGE = "feedback @member <text>"
CLOSE_USAGE = "cycle close @member <hours>"


def _split(args: str, usage: str) -> tuple[str, str]:
    """`@member rest` -> (the member's part, the rest); a mention may hold spaces."""
    text = args.strip()
    match = MENTION.match(text)
    if match:
        who, rest = match.group(0), text[match.end() :]
    else:
        parts = text.split(None, 1)
        who, rest = (parts[0], parts[1]) if len(parts) == 2 else (text, "")
    if not who or not rest.strip():
        raise UsageError(f"Usage: `{usage}` — mention the person.")
    return who, rest.strip()


async def _member_named(ctx: Context, who: str) -> Member:
    member = await _target(ctx, who)
    if member.id == ctx.member.id:
        raise UsageError("Coaching cycles are with someone else: mention the member you coach.")
    return member


def _coach_name(ctx: Context) -> str:
    return (ctx.member.display_name or ctx.user.name or ctx.user.user_id)[:200]


def _name(member: Member) -> str:
    return member.display_name or member.user_id


def _open_cycle(ctx: Context, member: Member) -> CoachingCycle | None:
    """The acting coach's open cycle with `member` (never another coach's)."""
    return ctx.session.exec(
        select(CoachingCycle).where(
            CoachingCycle.member_id == member.id,
            CoachingCycle.coach_id == ctx.member.id,
            CoachingCycle.status.in_(OPEN),  # type: ignore[attr-defined]
        )
    ).first()


def _refuse_a_second(ctx: Context, member: Member, called: str) -> None:
    """The coach already has an open cycle with `member`: say so, offer nothing."""
    existing = _open_cycle(ctx, member)
    if existing is not None:
        state = "waiting for their answer" if existing.status == "offered" else "active"
        raise UsageError(
            f"You already have a coaching cycle with {called} ({state}). Close it with "
            f"`cycle close @member <hours>` before offering another."
        )


def _goal_of(ctx: Context, cycle: CoachingCycle) -> Goal | None:
    return ctx.session.get(Goal, cycle.goal_id) if cycle.goal_id is not None else None


def _goal_words(ctx: Context, cycle: CoachingCycle) -> str:
    goal = _goal_of(ctx, cycle)
    text = goal.text if goal is not None else cycle.goal_text
    number = f"goal {goal.number}" if goal is not None else "your goal"
    return f"{number} (“{text[:300]}”)"


def _coach_of(ctx: Context, cycle: CoachingCycle) -> Member | None:
    return ctx.session.get(Member, cycle.coach_id) if cycle.coach_id is not None else None


def _tell_coach(ctx: Context, cycle: CoachingCycle, text: str) -> None:
    coach = _coach_of(ctx, cycle)
    if coach is not None:
        ctx.dm(text, to=ctx.user_ref(coach))


async def start_cycle(ctx: Context, args: str) -> None:
    """Offer a coaching cycle on the member's goal n; the member accepts or declines."""
    who, rest = _split(args, START_USAGE)
    number = rest.removeprefix("goal").strip() if rest.lower().startswith("goal") else rest
    if not number.isdigit() or len(number) > 6:
        raise UsageError(f"Usage: `{START_USAGE}` — the goal's number, e.g. `1`.")
    member = await _member_named(ctx, who)
    called = await _called(ctx, member)
    goal = numbered_goal(ctx.session, member.id, int(number))
    if goal is None:
        raise UsageError(
            f"{called} has no goal {number}. Ask them which goal (they see the numbers in "
            "`goal list`)."
        )
    _refuse_a_second(ctx, member, called)
    cycle = CoachingCycle(
        workspace_id=saved_id(ctx.workspace),
        member_id=saved_id(member),
        coach_id=saved_id(ctx.member),
        coach_name=_coach_name(ctx),
        goal_id=saved_id(goal),
        goal_text=goal.text,
        status="offered",
        offered_at=ctx.now,
    )
    try:
        # The database keeps one open cycle per coach and member (uq_coachingcycle_open):
        # a `cycle start` sent twice at once finds the other's offer here, not two offers.
        with ctx.session.begin_nested():
            ctx.session.add(cycle)
            ctx.session.flush()
    except sa.exc.IntegrityError:
        log.info("cycle start for member %s raced another; one offer kept", member.id)
        _refuse_a_second(ctx, member, called)
        raise  # not the open-cycle index after all: a real error
    coach = f"*{cycle.coach_name}*"
    text = (
        f"{coach} offers you a coaching cycle on your goal {goal.number}: “{goal.text[:300]}”. "
        "It's your choice: accept, or decline (nothing else changes). If you accept, "
        f"{coach} sees this goal's ratings and indicator values in their `report` until the "
        "cycle closes — nothing else of yours."
    )
    value = str(saved_id(cycle))
    ctx.dm(
        text,
        Card(
            title="A coaching cycle offer",
            body=text,
            fields=(
                Field(label="Coach", value=cycle.coach_name),
                Field(label="Goal", value=goal.text),
            ),
            buttons=(
                Button(label="Accept", action_id="cycle_accept", value=value, style="primary"),
                Button(label="Decline", action_id="cycle_decline", value=value),
            ),
        ),
        to=ctx.user_ref(member),
    )
    # The goal's words stay between the member and the bot until they accept.
    ctx.reply(
        f"I've offered {called} a coaching cycle on their goal {goal.number}. "
        "I'll tell you when they answer."
    )


def _offer_of(ctx: Context) -> CoachingCycle:
    """The cycle a member's Accept / Decline names: only the member's own."""
    event = ctx.event
    assert isinstance(event, ActionEvent)
    cycle = ctx.owned(CoachingCycle, event.value)
    if cycle is None:
        raise UsageError(
            "That coaching-cycle offer isn't yours to answer: only the person it was offered "
            "to can accept or decline it."
        )
    return cycle


def _answered_already(ctx: Context, cycle: CoachingCycle) -> bool:
    if cycle.status == "offered":
        return False
    said = {"active": "accepted", "declined": "declined", "closed": "finished"}
    ctx.reply(f"You already {said.get(cycle.status, 'answered')} this coaching cycle.")
    return True


def _settle_offer(ctx: Context, cycle: CoachingCycle, answer: str) -> None:
    """The offer's card loses its buttons and says what the member chose."""
    text = (
        f"*{cycle.coach_name}* offered you a coaching cycle on your {_goal_words(ctx, cycle)}. "
        f"You {answer} it."
    )
    ctx.redraw(text, Card(title="A coaching cycle offer", body=text))


async def accept_cycle(ctx: Context) -> None:
    """*Accept*: the cycle is active; the coach is told."""
    cycle = _offer_of(ctx)
    if _answered_already(ctx, cycle):
        return
    cycle.status = "active"
    cycle.answered_at = ctx.now
    ctx.session.add(cycle)
    _settle_offer(ctx, cycle, "accepted")
    ctx.reply(
        f"You've accepted the coaching cycle with *{cycle.coach_name}* on "
        f"{_goal_words(ctx, cycle)}. Their feedback will come here, private to you two."
    )
    _tell_coach(
        ctx,
        cycle,
        f"*{_name(ctx.member)}* accepted your coaching cycle on their {_goal_words(ctx, cycle)}. "
        f"Send feedback with `feedback @member <text>`.",
    )


async def decline_cycle(ctx: Context) -> None:
    """*Decline*: the cycle is declined; the coach is told, kindly."""
    cycle = _offer_of(ctx)
    if _answered_already(ctx, cycle):
        return
    cycle.status = "declined"
    cycle.answered_at = ctx.now
    ctx.session.add(cycle)
    _settle_offer(ctx, cycle, "declined")
    ctx.reply("You've declined the coaching cycle; nothing else changes. Thanks for saying.")
    _tell_coach(
        ctx,
        cycle,
        f"*{_name(ctx.member)}* has declined the coaching cycle for now. That's their choice, "
        "and nothing else changes; you're welcome to offer one again later.",
    )


async def _active_cycle(ctx: Context, who: str, usage: str) -> tuple[CoachingCycle, Member, str]:
    member = await _member_named(ctx, who)
    called = await _called(ctx, member)
    cycle = _open_cycle(ctx, member)
    if cycle is None:
        raise UsageError(
            f"You have no active coaching cycle with {called}. Offer one with "
            f"`{START_USAGE}`; `{usage.split()[0]}` works within a cycle they've accepted."
        )
    if cycle.status != "active":
        raise UsageError(
            f"{called} hasn't accepted your coaching cycle yet; `{usage.split()[0]}` works "
            "once they have."
        )
    return cycle, member, called


def _note_buttons(note: CycleNote) -> tuple[Button, ...]:
    value = str(saved_id(note))
    portfolio = "Remove from my portfolio" if note.in_portfolio else "Add to my portfolio"
    return (
        Button(label=portfolio, action_id="cycle_note_portfolio", value=value),
        Button(label="Answer", action_id="cycle_note_answer", value=value),
    )


def _note_message(ctx: Context, cycle: CoachingCycle, note: CycleNote) -> tuple[str, Card]:
    """The member's DM holding a feedback note, its buttons saying what a press does now."""
    intro = f"Feedback from *{cycle.coach_name}* on your {_goal_words(ctx, cycle)}:"
    kept = (
        "It is in your portfolio."
        if note.in_portfolio
        else "You decide whether it goes in your portfolio."
    )
    return f"{intro}\n{note.text}", Card(
        title=f"Feedback from {cycle.coach_name}",
        body=f"{intro}\n{note.text}",
        buttons=_note_buttons(note),
        footer=f"Private to you two. {kept}",
    )


async def give_feedback(ctx: Context, args: str) -> None:
    """A note to the member within the coach's active cycle with them, by DM."""
    who, text = _split(args, FEEDBACK_USAGE)
    if len(text) > MAX_FEEDBACK:
        raise UsageError(
            f"That feedback is {len(text):,} characters; please keep it under {MAX_FEEDBACK:,}. "
            "Nothing was sent."
        )
    cycle, member, called = await _active_cycle(ctx, who, FEEDBACK_USAGE)
    note = CycleNote(cycle_id=saved_id(cycle), text=text, created_at=ctx.now)
    ctx.session.add(note)
    ctx.session.flush()
    ctx.dm(*_note_message(ctx, cycle, note), to=ctx.user_ref(member))
    ctx.reply(f"Sent your feedback to {called}, privately. They may answer it.")


def _note_of(ctx: Context) -> tuple[CycleNote, CoachingCycle]:
    """The note a button names, only through the member's own cycle."""
    event = ctx.event
    assert isinstance(event, ActionEvent)
    return _note_from(ctx, event.value)


def _note_from(ctx: Context, value: object) -> tuple[CycleNote, CoachingCycle]:
    text = str(value).strip()
    note = ctx.session.get(CycleNote, int(text)) if text.isdigit() and len(text) <= 18 else None
    cycle = ctx.owned(CoachingCycle, note.cycle_id) if note is not None else None
    if note is None or cycle is None:
        raise UsageError(
            "I can't find that feedback: only the person it was written to can use it."
        )
    return note, cycle


async def toggle_portfolio(ctx: Context) -> None:
    """*Add to my portfolio* (a second press takes it out again)."""
    note, cycle = _note_of(ctx)
    note.in_portfolio = not note.in_portfolio
    ctx.session.add(note)
    ctx.redraw(*_note_message(ctx, cycle, note))
    if note.in_portfolio:
        ctx.reply("Added this feedback to your portfolio. Press again to take it out.")
    else:
        ctx.reply("Took this feedback out of your portfolio; it stays private to you two.")


async def start_answer(ctx: Context) -> None:
    """*Answer*: the member's next message in the DM becomes their answer."""
    note, cycle = _note_of(ctx)
    ctx.set_flow("cycle_answer", "text", {"note": saved_id(note)})
    text = (
        f"Type your answer to *{cycle.coach_name}*'s feedback here; only you two will see it. "
        "(`cancel` to stop)"
    )
    if ctx.conversation.is_dm:
        ctx.reply(text)
    else:
        ctx.dm(text)
        ctx.reply("I've sent you a direct message to answer in.")


async def save_answer(ctx: Context, step: str, text: str, data: dict[str, Any]) -> None:
    """The member's typed answer: kept on the note, and sent to the coach."""
    if len(text) > MAX_ANSWER:
        raise UsageError(
            f"That's {len(text):,} characters; please keep an answer under {MAX_ANSWER:,}. "
            "Nothing was saved."
        )
    try:
        note, cycle = _note_from(ctx, data.get("note", ""))
    except UsageError:
        ctx.clear_flow()
        raise
    note.answer = text
    ctx.session.add(note)
    ctx.clear_flow()
    ctx.reply(f"Sent your answer to *{cycle.coach_name}*; it stays private to you two.")
    _tell_coach(ctx, cycle, f"*{_name(ctx.member)}* answered your feedback:\n{text}")


def _hours(text: str) -> float:
    try:
        hours = float(text.strip().removesuffix("h").replace(",", "."))
    except ValueError:
        hours = math.nan
    if not math.isfinite(hours) or not MIN_HOURS <= hours <= MAX_HOURS:
        raise UsageError(
            f"Usage: `{CLOSE_USAGE}` — the hours of professional learning, a number from "
            f"{MIN_HOURS:g} to {MAX_HOURS:g} (e.g. `6` or `7.5`)."
        )
    return round(hours, 2)


async def close_cycle(ctx: Context, args: str) -> None:
    """Acknowledge the active cycle with its hours: signed, verifiable at /verify/<code>."""
    who, rest = _split(args, CLOSE_USAGE)
    hours = _hours(rest)
    cycle, member, called = await _active_cycle(ctx, who, CLOSE_USAGE)
    goal = _goal_of(ctx, cycle)
    if goal is not None:
        cycle.goal_text = goal.text  # as worded when acknowledged
    cycle.coach_name = _coach_name(ctx)
    cycle.hours = hours
    cycle.status = "closed"
    cycle.closed_at = ctx.now
    cycle.code = code_for(signing_key(ctx.session, ctx.settings), cycle, member)
    ctx.session.add(cycle)
    where = (
        f" Anyone you show it to can check it at {ctx.links.base_url}/verify/{cycle.code}"
        if ctx.links is not None
        else ""
    )
    ctx.dm(
        f"Your coaching cycle with *{cycle.coach_name}* on “{cycle.goal_text[:300]}” is "
        f"acknowledged: {hours:g} hours of professional learning. "
        f"Your verification code is {cycle.code}.{where}",
        to=ctx.user_ref(member),
    )
    ctx.reply(
        f"Closed your coaching cycle with {called}: {hours:g} hours acknowledged, "
        f"verification code {cycle.code}. I've told them."
    )


def register(router: Router) -> None:
    router.command(
        "cycle start",
        start_cycle,
        usage=START_USAGE,
        summary="offer a coaching cycle on one of a member's goals (their choice)",
        coach=True,
        needs_args=True,
    )
    router.command(
        "feedback",
        give_feedback,
        usage=FEEDBACK_USAGE,
        summary="a private note to the member within your cycle",
        coach=True,
        needs_args=True,
    )
    router.command(
        "cycle close",
        close_cycle,
        usage=CLOSE_USAGE,
        summary="acknowledge the cycle's hours (signed, verifiable)",
        coach=True,
        needs_args=True,
    )
    router.action("cycle_accept", accept_cycle)
    router.action("cycle_decline", decline_cycle)
    router.action("cycle_note_portfolio", toggle_portfolio)
    router.action("cycle_note_answer", start_answer)
    router.flow("cycle_answer", save_answer, waiting="your answer to the feedback")
