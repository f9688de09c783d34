"""Goal check-ins in DMs: a 0–10 self-rating on the Future Ready scale plus a reflection.

Answers are private to their author unless they press "Share with my community".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from bot.core.context import Context, UsageError
from bot.core.events import ActionEvent
from bot.core.kinds import Delivery, Due
from bot.core.messages import Button, Card, Input, Link, Message, Visibility
from bot.core.router import Router
from bot.delivery.rows import member_today
from bot.features.goals import (
    MAX_NOTE,
    goal_indicators,
    log_value,
    parse_value,
    register_indicators,
)
from bot.scoring.bands import STAGING, band, role_group
from bot.services.prompts import PromptLibrary
from storage.columns import saved_id
from storage.models import CheckIn, Community, Goal, Indicator, Member, Membership
from storage.queries import numbered_goal, save_flow

MAX_REFLECTION = 4000
MIN_WORDS_FIRST = 3  # words typed before a rating are kept as the reflection from this many
SKIP = ("skip", "-", "none", "n/a", "pass")
_ANSWER = re.compile(
    r"^\s*([+-]?\d+(?:[.,]\d+)?)\b\s*(?:/\s*10\b)?\s*(?:[-–—:;,.)]+\s*)?(.*)$", re.S
)


@dataclass(frozen=True)
class Answer:
    rating: int | None
    reflection: str
    bad_number: str | None = None


def parse_answer(text: str) -> Answer:
    """ "7", "7/10", "7 - tried exit tickets", or a bare reflection (rating None)."""
    match = _ANSWER.match(text)
    if match is None:
        return Answer(rating=None, reflection=text.strip())
    number, rest = match.group(1), match.group(2).strip()
    if not re.fullmatch(r"\d+", number) or not 0 <= int(number) <= 10:
        return Answer(rating=None, reflection=rest, bad_number=number)
    return Answer(rating=int(number), reflection=rest)


def rating_buttons(checkin_id: int) -> tuple[Button, ...]:
    return tuple(
        Button(label=str(n), action_id="checkin_rate", value=f"{checkin_id}:{n}") for n in range(11)
    )


def question_card(prompts: PromptLibrary, checkin: CheckIn, goal: Goal | None) -> tuple[str, Card]:
    assert checkin.id is not None
    if goal is not None:
        text = prompts.checkin_text("question", goal=goal.text)
        title = f"Check-in: {goal.text[:120]}"
    else:
        text = prompts.checkin_text("question_no_goal")
        title = "Check-in"
    # Platforms whose cards hold a text box next to the buttons (Teams) take the reflection
    # with the rating; elsewhere it is asked for in the next message.
    reflection = Input(
        id="reflection",
        label="Reflection",  # each platform marks a field optional its own way
        kind="multiline",
        placeholder="What did you try? What did you notice?",
        max_length=MAX_REFLECTION,
    )
    return text, Card(
        title=title, body=text, buttons=rating_buttons(checkin.id), inputs=(reflection,)
    )


def open_checkin(
    session: Session,
    *,
    member: Member,
    now: datetime,
    goal: Goal | None = None,
    community_id: int | None = None,
    key: str | None = None,
) -> CheckIn:
    """Create an open check-in and point the member's DM flow at it."""
    if goal is None:
        goal = session.exec(
            select(Goal)
            .where(Goal.member_id == member.id, Goal.status == "active")
            .order_by(Goal.number.desc())  # type: ignore[attr-defined]
        ).first()
    checkin = CheckIn(
        member_id=saved_id(member),
        goal_id=goal.id if goal else None,
        community_id=community_id,
        key=key,
        created_at=now,
    )
    session.add(checkin)
    session.flush()
    assert member.id is not None
    save_flow(
        session,
        member_id=member.id,
        flow="checkin",
        step="rating",
        data={"checkin": checkin.id},
        now=now,
    )
    return checkin


def _checkin_of(ctx: Context, checkin_id: Any) -> CheckIn:
    checkin = ctx.owned(CheckIn, checkin_id)
    if checkin is None:
        raise UsageError(
            "That check-in isn't yours or has expired. Type `checkin` to start a new one."
        )
    return checkin


def _goal_named(ctx: Context, checkin: CheckIn) -> str:
    """The goal as a sentence reads it: “Socratic seminars weekly”, or your practice."""
    goal = ctx.session.get(Goal, checkin.goal_id) if checkin.goal_id else None
    return f"“{goal.text}”" if goal else "your practice"


def _goal_text(ctx: Context, checkin: CheckIn) -> str:
    goal = ctx.session.get(Goal, checkin.goal_id) if checkin.goal_id else None
    return goal.text if goal else "your practice"


def _finish(ctx: Context, checkin: CheckIn) -> None:
    """The rating and reflection are in: save the check-in and say what its band means for
    the member's role; then ask for the goal's indicators, if it has any."""
    assert checkin.rating is not None and checkin.id is not None
    checkin.status = "answered"
    checkin.answered_at = ctx.now
    ctx.session.add(checkin)
    ctx.clear_flow()
    picked = band(checkin.rating)
    text = ctx.prompts.checkin_text(
        "saved", rating=checkin.rating, band=picked, goal=_goal_named(ctx, checkin)
    )
    text += "\n" + ctx.prompts.band_descriptor(picked, role_group(ctx.member.role))
    goal = ctx.session.get(Goal, checkin.goal_id) if checkin.goal_id else None
    if checkin.rating >= STAGING:
        command = f"share <url> goal:{goal.number}" if goal else "share <url>"
        text += "\n" + ctx.prompts.evidence_text(command)
    ctx.reply(
        text,
        Card(
            title=f"{checkin.rating}/10 — {picked}",
            body=text,
            buttons=(
                Button(
                    label="Share with my community",
                    action_id="checkin_share",
                    value=str(checkin.id),
                ),
            ),
        ),
    )
    indicators = goal_indicators(ctx.session, goal) if goal else []
    if indicators:
        _ask_indicator(ctx, checkin, indicators[0])


def _ask_indicator(ctx: Context, checkin: CheckIn, indicator: Indicator, before: str = "") -> None:
    ctx.set_flow("checkin", "indicator", {"checkin": checkin.id, "indicator": indicator.number})
    question = ctx.prompts.checkin_text("indicator_question", indicator=indicator.text)
    ctx.reply(f"{before}\n{question}" if before else question)


def take_indicator(ctx: Context, checkin: CheckIn, number: Any, text: str) -> None:
    """A typed value for one of the check-in's goal indicators (or `skip`); then the next."""
    goal = ctx.session.get(Goal, checkin.goal_id) if checkin.goal_id else None
    indicators = goal_indicators(ctx.session, goal) if goal else []
    current = next((i for i in indicators if i.number == number), None)
    if current is None:  # the indicator went away (`forget`, a deleted goal)
        ctx.clear_flow()
        ctx.reply("That check-in is complete. Thank you!")
        return
    words = text.split(None, 1)
    if words and words[0].lower() in SKIP:
        said = "Okay, skipped."
    else:
        value = parse_value(words[0]) if words else None
        if value is None:
            ctx.reply(ctx.prompts.checkin_text("indicator_again", indicator=current.text))
            return
        note = words[1].strip()[:MAX_NOTE] if len(words) > 1 else ""
        logged = log_value(
            ctx.session, current, value, now=ctx.now, note=note, checkin_id=checkin.id
        )
        said = logged.line(ctx.member_zone(), ctx.now)
    later = [i for i in indicators if i.number > current.number]
    if later:
        _ask_indicator(ctx, checkin, later[0], before=said)
        return
    ctx.clear_flow()
    ctx.reply(f"{said}\nThat's everything for this check-in. Thank you!")


def take_answer(ctx: Context, checkin: CheckIn, step: str, text: str) -> None:
    """Apply a typed answer to the check-in; ask for what is still missing."""
    if len(text) > MAX_REFLECTION:
        raise UsageError(
            f"That's {len(text):,} characters; please keep a check-in reflection under "
            f"{MAX_REFLECTION:,}. Nothing was saved — try a shorter version."
        )
    assert checkin.id is not None
    if step == "reflection":
        checkin.reflection = "" if text.strip().lower() == "skip" else text.strip()
        _finish(ctx, checkin)
        return
    answer = parse_answer(text)
    if answer.bad_number is not None:
        ctx.reply(ctx.prompts.checkin_text("out_of_range", value=answer.bad_number[:12]))
        return
    if answer.rating is None and len(answer.reflection.split()) < MIN_WORDS_FIRST:
        # "hi", "ok?": not an answer and not a reflection worth keeping.
        ctx.reply(ctx.prompts.checkin_text("ask_rating_again"))
        return
    if answer.reflection:
        checkin.reflection = answer.reflection
    ctx.session.add(checkin)
    if answer.rating is None:
        ctx.reply(ctx.prompts.checkin_text("ask_rating"))
        return
    checkin.rating = answer.rating
    if checkin.reflection:
        _finish(ctx, checkin)
        return
    ctx.set_flow("checkin", "reflection", {"checkin": checkin.id})
    ctx.reply(
        ctx.prompts.checkin_text("ask_reflection", rating=answer.rating, band=band(answer.rating))
    )


def community_of(session: Session, member: Member, checkin: CheckIn) -> Community | None:
    if checkin.community_id:
        return session.get(Community, checkin.community_id)
    return session.exec(
        select(Community)
        .join(Membership, Membership.community_id == Community.id)  # type: ignore[arg-type]
        .where(Membership.member_id == member.id)
        .order_by(Community.id)  # type: ignore[arg-type]
    ).first()


async def checkin_now(ctx: Context, args: str) -> None:
    """`checkin [n]`: open a check-in on a goal now, always in the DM (it is private)."""
    goal = None
    if args:
        if not args.isdigit():
            raise UsageError("Usage: `checkin` or `checkin <goal number>` (see `goal list`).")
        goal = numbered_goal(ctx.session, ctx.member.id, int(args))
        if goal is None:
            raise UsageError(f"You have no goal {args}. `goal list` shows their numbers.")
    checkin = open_checkin(
        ctx.session,
        member=ctx.member,
        now=ctx.now,
        goal=goal,
        community_id=ctx.community.id if ctx.community else None,
    )
    text, card = question_card(
        ctx.prompts, checkin, goal or ctx.session.get(Goal, checkin.goal_id or 0)
    )
    if ctx.conversation.is_dm:
        ctx.reply(text, card)
    else:
        ctx.reply("I've sent you a check-in as a direct message — it stays private.")
        ctx.dm(text, card)


async def checkin_step(ctx: Context, step: str, text: str, data: dict[str, Any]) -> None:
    """A typed answer to the open check-in: its rating, then its reflection, then the values
    of its goal's indicators (asked once the check-in itself is saved)."""
    checkin = ctx.owned(CheckIn, data.get("checkin", ""))
    if step == "indicator" and checkin is not None and checkin.status == "answered":
        take_indicator(ctx, checkin, data.get("indicator"), text)
        return
    if checkin is None or checkin.status != "open":
        ctx.clear_flow()
        ctx.reply("That check-in has closed. Type `checkin` to start a new one.")
        return
    take_answer(ctx, checkin, step, text)


async def rate_checkin(ctx: Context) -> None:
    """A rating button (0–10), with the reflection where the card holds a text box."""
    event = ctx.event
    assert isinstance(event, ActionEvent)
    checkin_id, _, rating = event.value.partition(":")
    checkin = _checkin_of(ctx, checkin_id)
    if not rating.isdigit() or not 0 <= int(rating) <= 10:
        raise UsageError("Ratings go from 0 to 10. Please press one of the buttons.")
    if checkin.status != "open":
        ctx.reply(
            f"You already answered this check-in ({checkin.rating}/10). `checkin` starts a new one."
        )
        return
    checkin.rating = int(rating)
    reflection = (event.values.get("reflection") or "").strip()
    if len(reflection) > MAX_REFLECTION:
        raise UsageError(
            f"That's {len(reflection):,} characters; please keep a check-in reflection under "
            f"{MAX_REFLECTION:,}. Nothing was saved — try a shorter version."
        )
    if reflection:
        checkin.reflection = reflection
    ctx.session.add(checkin)
    if checkin.reflection:
        _finish(ctx, checkin)
        return
    ctx.set_flow("checkin", "reflection", {"checkin": checkin.id})
    ctx.reply(
        ctx.prompts.checkin_text("ask_reflection", rating=checkin.rating, band=band(checkin.rating))
    )


async def share_checkin(ctx: Context) -> None:
    """*Share with my community*: post the answered check-in to its channel."""
    event = ctx.event
    assert isinstance(event, ActionEvent)
    checkin = _checkin_of(ctx, event.value)
    if checkin.rating is None:
        raise UsageError("Finish the check-in first, then you can share it.")
    community = community_of(ctx.session, ctx.member, checkin)
    if community is None:
        raise UsageError("You're not in a PLN community yet, so there's nowhere to share this.")
    if checkin.shared:
        ctx.reply("You already shared this check-in.")
        return
    checkin.shared = True
    ctx.session.add(checkin)
    goal = _goal_text(ctx, checkin)
    text = (
        f"{ctx.member.display_name or 'A member'} shared a check-in on “{goal[:200]}”: "
        f"{checkin.rating}/10 ({band(checkin.rating)})."
    )
    if checkin.reflection:
        text += f"\n> {checkin.reflection[:1500]}"
    ctx.post(
        text,
        link=Link(kind="checkin", object_id=checkin.id or 0),  # so `forget` finds it
        conversation=ctx.channel(community.channel_id),
    )
    ctx.reply(f"Shared with {community.name}. Thank you for opening up your practice!")


async def answer_unknown_dm(ctx: Context) -> None:
    """A DM that is no command and answers no question: say what I can do."""
    ctx.reply(
        "I didn't catch that. Type `help` to see what I can do, or `checkin` to reflect on a goal."
    )


def draw_checkin(due: Due) -> Delivery | None:
    """A member's check-in question, opened (once) when it is sent; skipped while paused."""
    session, row = due.session, due.row
    member = session.get(Member, row.member_id) if row.member_id else None
    if member is None:
        return None
    if member.paused_until and member.paused_until >= member_today(member, due.default_tz, due.now):
        return None
    checkin = session.exec(select(CheckIn).where(CheckIn.key == row.key)).first()
    if checkin is None:
        checkin = open_checkin(
            session, member=member, now=due.now, community_id=row.object_id, key=row.key
        )
    goal = session.get(Goal, checkin.goal_id) if checkin.goal_id else None
    text, card = question_card(due.prompts, checkin, goal)
    return Delivery(
        message=Message(text=text, card=card, visibility=Visibility.DM, to=due.person(member))
    )


def draw_nudge(due: Due) -> Delivery | None:
    """A reminder of a check-in still open; skipped once it is answered."""
    session = due.session
    checkin = session.get(CheckIn, due.row.object_id) if due.row.object_id else None
    member = session.get(Member, checkin.member_id) if checkin else None
    if checkin is None or member is None or checkin.status != "open":
        return None  # answered in the meantime: no reminder needed
    goal = session.get(Goal, checkin.goal_id) if checkin.goal_id else None
    text = due.prompts.checkin_text("nudge", goal=goal.text if goal else "your practice")
    _, card = question_card(due.prompts, checkin, goal)
    return Delivery(
        message=Message(
            text=text,
            card=Card(title=card.title, body=text, buttons=card.buttons),
            visibility=Visibility.DM,
            to=due.person(member),
        ),
    )


def register(router: Router) -> None:
    register_indicators(router)  # the values check-ins ask for: `goal indicator`, `goal log`
    router.command(
        "checkin",
        checkin_now,
        usage="checkin [goal number]",
        summary="check in on a goal now",
    )
    router.flow("checkin", checkin_step, waiting="your check-in")
    router.action("checkin_rate", rate_checkin)
    router.action("checkin_share", share_checkin)
    router.on("dm_text", answer_unknown_dm)
    router.outbox.add("checkin", draw_checkin)
    router.outbox.add("nudge", draw_nudge)
