"""Goals: `goal add <text>`, `goal list`, `goal done <n>`; a goal's indicators of progress:
`goal indicator <n> [kind] <words>` and `goal log <n> [indicator] <value> [note]`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.core.context import Context, UsageError
from bot.core.messages import Card, Field
from bot.core.router import Router
from bot.scoring.bands import band
from storage.columns import saved_id
from storage.models import CheckIn, Goal, Indicator, IndicatorValue, Member
from storage.queries import numbered_goal

MAX_GOAL = 1000
PAGE = 20  # goals per `goal list` page (fits one Slack message, 50 blocks)
MAX_INDICATORS = 3
MAX_INDICATOR = 200  # Indicator.text
MAX_NOTE = 500
KIND_NAMES = {
    "achievement": "student achievement",
    "engagement": "student engagement",
    "practice": "evidence of practice",
    "skills": "21st-century skills",
}
# The words a teacher may start an indicator with to say its kind (longest first wins).
_KIND_WORDS = {
    "student achievement": "achievement",
    "achievement": "achievement",
    "learning": "achievement",
    "student engagement": "engagement",
    "engagement": "engagement",
    "evidence of practice": "practice",
    "practice": "practice",
    "21st-century skills": "skills",
    "21st century skills": "skills",
    "21st-century": "skills",
    "21st century": "skills",
    "21c": "skills",
    "skills": "skills",
}
_VALUE = re.compile(r"[+-]?(?:\d+(?:[.,]\d+)?|[.,]\d+)%?")
_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+%?")  # "1,250" is 1250; "7,5" is 7.5


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


def goal_indicators(session: Session, goal: Goal) -> list[Indicator]:
    return list(
        session.exec(
            select(Indicator).where(Indicator.goal_id == goal.id).order_by(Indicator.number)  # type: ignore[arg-type]
        ).all()
    )


def indicator_values(session: Session, indicator: Indicator) -> list[IndicatorValue]:
    """An indicator's values, the newest first."""
    return list(
        session.exec(
            select(IndicatorValue)
            .where(IndicatorValue.indicator_id == indicator.id)
            .order_by(IndicatorValue.logged_at.desc(), IndicatorValue.id.desc())  # type: ignore[attr-defined, union-attr]
        ).all()
    )


def parse_value(word: str) -> float | None:
    """A logged value as people type it: "72", "72%", "7.5", "7,5"; None if it isn't one."""
    word = word.strip()
    if _THOUSANDS.fullmatch(word):
        word = word.replace(",", "")
    if len(word) > 16 or not _VALUE.fullmatch(word):
        return None
    value = float(word.rstrip("%").replace(",", "."))
    return value if math.isfinite(value) else None


def value_text(value: float) -> str:
    """72.0 -> "72", 7.5 -> "7.5"."""
    return format(value, ".10g")


def day_text(when: datetime, zone: tzinfo, now: datetime) -> str:
    """ "30 Nov" in the member's timezone ("30 Nov 2025" in another year)."""
    local = when.astimezone(zone)
    year = "" if local.year == now.astimezone(zone).year else f" {local.year}"
    return f"{local.day} {local:%b}{year}"


@dataclass(frozen=True, kw_only=True)
class Logged:
    """A value just recorded, with the one before it (for "72 (was 64 on 30 Nov)")."""

    indicator: Indicator
    value: IndicatorValue
    previous: IndicatorValue | None

    def line(self, zone: tzinfo, now: datetime) -> str:
        text = f"{self.indicator.text}: {value_text(self.value.value)}"
        if self.previous is not None:
            was = value_text(self.previous.value)
            text += f" (was {was} on {day_text(self.previous.logged_at, zone, now)})"
        return text


def log_value(
    session: Session,
    indicator: Indicator,
    value: float,
    *,
    now: datetime,
    note: str = "",
    checkin_id: int | None = None,
) -> Logged:
    """Record `value` for `indicator` (from `goal log` or a check-in's question)."""
    earlier = indicator_values(session, indicator)
    row = IndicatorValue(
        indicator_id=saved_id(indicator),
        value=value,
        note=note,
        checkin_id=checkin_id,
        logged_at=now,
    )
    session.add(row)
    return Logged(indicator=indicator, value=row, previous=earlier[0] if earlier else None)


def indicator_line(session: Session, indicator: Indicator, zone: tzinfo, now: datetime) -> str:
    """ "Exit-ticket mastery %: 72 on 7 Dec · 3 values", or that none is logged yet."""
    values = indicator_values(session, indicator)
    if not values:
        return f"{indicator.text}: no values yet"
    latest = values[0]
    count = f"{len(values)} value{'s' if len(values) != 1 else ''}"
    return (
        f"{indicator.text}: {value_text(latest.value)} on "
        f"{day_text(latest.logged_at, zone, now)} · {count}"
    )


def goal_lines(session: Session, goal: Goal, zone: tzinfo, now: datetime) -> list[str]:
    """A goal's line, then one indented line per indicator with its latest value."""
    return [goal_line(session, goal)] + [
        f"    ◦ {indicator_line(session, indicator, zone, now)}"
        for indicator in goal_indicators(session, goal)
    ]


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
    goal = numbered_goal(ctx.session, ctx.member.id, int(args))
    if goal is None:
        raise UsageError(f"You have no goal {args}. `goal list` shows their numbers.")
    if goal.status == "done":
        ctx.reply(f"Goal {goal.number} is already marked done. Well done again!")
        return
    goal.status = "done"
    goal.done_at = ctx.now
    ctx.session.add(goal)
    ctx.reply(f"Goal {goal.number} marked done: {goal.text}. Congratulations!")


def _own_goal(ctx: Context, number: str) -> Goal:
    goal = numbered_goal(ctx.session, ctx.member.id, int(number))
    if goal is None:
        raise UsageError(f"You have no goal {number}. `goal list` shows their numbers.")
    return goal


def parse_kind(words: str) -> tuple[str, str]:
    """The indicator's kind from its first words, and the words left: "engagement: students
    talking" -> ("engagement", "students talking"); no kind word -> ("practice", words)."""
    lowered = words.lower()
    for phrase in sorted(_KIND_WORDS, key=len, reverse=True):
        if lowered.startswith(phrase):
            rest = words[len(phrase) :]
            if rest and not (rest[0].isspace() or rest[0] in ":–—-"):
                continue  # "skillset ..." is not the kind "skills"
            rest = rest.lstrip(" \t:–—-").strip()
            if rest:
                return _KIND_WORDS[phrase], rest
    return "practice", words.strip()


async def add_indicator(ctx: Context, args: str) -> None:
    """`goal indicator <n> [kind] <words>`: how the member will see progress on goal n."""
    usage = (
        "Usage: `goal indicator <n> [kind] <what you will look at>`, e.g. "
        "`goal indicator 1 achievement exit-ticket mastery %`. Kinds: achievement, "
        "engagement, practice (the default), skills."
    )
    number, _, rest = args.strip().partition(" ")
    if not number.isdigit() or not rest.strip():
        raise UsageError(usage)
    goal = _own_goal(ctx, number)
    if goal.status != "active":
        raise UsageError(
            f"Goal {goal.number} is marked done, so it takes no new indicators. "
            "`goal list` shows the goals you're working on."
        )
    kind, text = parse_kind(rest)
    if len(text) > MAX_INDICATOR:
        raise UsageError(
            f"That indicator is {len(text):,} characters; please keep it under "
            f"{MAX_INDICATOR} (a few words, like “exit-ticket mastery %”). Nothing was saved."
        )
    existing = goal_indicators(ctx.session, goal)
    if len(existing) >= MAX_INDICATORS:
        listed = "; ".join(f"{i.number}. {i.text}" for i in existing)
        raise UsageError(
            f"Goal {goal.number} already has {MAX_INDICATORS} indicators, the most a goal "
            f"takes ({listed}). Log a value with `goal log {goal.number} <indicator> <value>`."
        )
    indicator = Indicator(
        goal_id=saved_id(goal),
        number=max((i.number for i in existing), default=0) + 1,
        kind=kind,
        text=text,
        created_at=ctx.now,
    )
    ctx.session.add(indicator)
    which = f" {indicator.number}" if existing else ""
    ctx.reply(
        f"Indicator {indicator.number} on goal {goal.number} ({KIND_NAMES[kind]}): {text}\n"
        f"Log a value with `goal log {goal.number}{which} <value> [note]`; "
        "check-ins on this goal will ask for it too."
    )


async def log_indicator(ctx: Context, args: str) -> None:
    """`goal log <n> [indicator] <value> [note]`: record a value of one of goal n's
    indicators (the indicator's number may be left out when the goal has one)."""
    usage = (
        "Usage: `goal log <n> [indicator] <value> [note]`, e.g. `goal log 1 72` or "
        "`goal log 1 2 7.5 after the seminar`."
    )
    words = args.split()
    if len(words) < 2 or not words[0].isdigit():
        raise UsageError(usage)
    goal = _own_goal(ctx, words[0])
    indicators = goal_indicators(ctx.session, goal)
    if not indicators:
        raise UsageError(
            f"Goal {goal.number} has no indicators yet. Add one with "
            f"`goal indicator {goal.number} <what you will look at>`."
        )
    by_number = {str(i.number): i for i in indicators}
    rest = words[1:]
    if len(rest) >= 2 and rest[0] in by_number and parse_value(rest[1]) is not None:
        indicator, rest = by_number[rest[0]], rest[1:]
    elif len(indicators) == 1:
        indicator = indicators[0]
    else:
        listed = "; ".join(f"{i.number}. {i.text}" for i in indicators)
        raise UsageError(
            f"Goal {goal.number} has {len(indicators)} indicators ({listed}). Say which: "
            f"`goal log {goal.number} <indicator> <value>`, e.g. `goal log {goal.number} 1 72`."
        )
    value = parse_value(rest[0])
    if value is None:
        raise UsageError(
            f"I couldn't read “{rest[0][:20]}” as a number. " + usage.replace("Usage:", "Try", 1)
        )
    note = " ".join(rest[1:])
    if len(note) > MAX_NOTE:
        raise UsageError(
            f"That note is {len(note):,} characters; please keep it under {MAX_NOTE}. "
            "Nothing was saved."
        )
    logged = log_value(ctx.session, indicator, value, now=ctx.now, note=note)
    ctx.reply(f"{logged.line(ctx.member_zone(), ctx.now)} — logged for goal {goal.number}.")


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


def register_indicators(router: Router) -> None:
    """`goal indicator` and `goal log`. Registered by the check-ins feature (which asks for
    the same values), right after `goal add/list/done`, so `help` lists them together."""
    router.command(
        "goal indicator",
        add_indicator,
        usage="goal indicator <n> [kind] <what you will look at>",
        summary="how you'll see progress on goal n (up to 3 indicators)",
        needs_args=True,
    )
    router.command(
        "goal log",
        log_indicator,
        usage="goal log <n> [indicator] <value> [note]",
        summary="record a value of one of goal n's indicators",
        needs_args=True,
    )
