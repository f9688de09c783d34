"""The enactment loop: a peer tries a share in their own class and says what students did.

*I'll try this* on a share card asks when (this week, next week, in two weeks); the plan is
an Enactment, and an outbox row of kind "enactment" waits until about 15:00 the member's
local time on the Friday of that week. Then the bot asks them in a DM "You planned to try
<title> — what did students do?"; their next DM text is the answer (students' names and ids
removed, bot/services/students.py). The author is told in a DM that their work was tried
and what happened, and the share card lists who tried it.

One plan per person per share, never on one's own share.

A pause (`pause <days>`, bot/features/pausing.py) holds the question as it holds check-ins:
nothing is sent while `paused_until` is today or later in the member's timezone. Unlike a
check-in, the question is not dropped: the member still owes the author an answer, so it is
asked again at 15:00 on the first weekday after the pause (or after `resume`, which ends it
early). However many rows come to ask it, it is asked once (`_take_plan`).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.core.context import Context, UsageError
from bot.core.events import ActionEvent
from bot.core.kinds import Delivery, Due
from bot.core.messages import Button, Card, Message, Visibility
from bot.core.router import Router
from bot.delivery.rows import member_today
from bot.features.endorsements import peers_share, refresh_card, rescore
from bot.features.evidence import shorten
from bot.services.students import without_students
from storage.columns import saved_id
from storage.models import Artifact, Enactment, Member
from storage.queries import enqueue, save_flow

log = logging.getLogger(__name__)

ASK_AT = time(15, 0)  # after the school day, the member's local time
ASK_EXPIRY = timedelta(days=7)  # an ask not sent within a week of its day is not sent late
MAX_ANSWER = 3000
WHEN = {"0": "this week", "1": "next week", "2": "in two weeks"}


def due_day(today: date, weeks: int) -> date:
    """The Friday of the week `weeks` from this one; "this week" on a Friday or at the
    weekend is the next Friday (asking the same day would be too soon)."""
    friday = today + timedelta(days=4 - today.weekday() + 7 * weeks)
    return friday + timedelta(days=7) if friday <= today else friday


def ask_time(due_on: date, zone: ZoneInfo) -> datetime:
    """About 15:00 on `due_on` where the member is."""
    return datetime.combine(due_on, ASK_AT, tzinfo=zone)


def next_ask(day: date, zone: ZoneInfo, now: datetime) -> datetime:
    """About 15:00 on the first weekday from `day` on that is still to come."""
    while day.weekday() >= 5 or ask_time(day, zone) <= now:
        day += timedelta(days=1)
    return ask_time(day, zone)


def queue_ask(
    session: Session, member: Member, enactment: Enactment, *, key: str, at: datetime, now: datetime
) -> bool:
    """An outbox row that asks `member` what students did, at `at`; False when `key` was
    queued before."""
    return enqueue(
        session,
        key=key,
        workspace_id=member.workspace_id,
        kind="enactment",
        member_id=member.id,
        object_id=enactment.id,
        now=now,
        not_before=at,
        expires_at=at + ASK_EXPIRY,
    )


def owed(session: Session, member: Member, zone: ZoneInfo, now: datetime) -> list[Enactment]:
    """The member's plans whose day has come and whose question has not been asked yet (a
    pause held it)."""
    plans = session.exec(
        select(Enactment).where(Enactment.member_id == member.id, Enactment.status == "planned")
    ).all()
    return [e for e in plans if ask_time(e.due_on, zone) <= now]


def plans_by(session: Session, member: Member, day: date) -> int:
    """How many of the member's plans are still to be asked about by `day` (a pause's end)."""
    return len(
        session.exec(
            select(Enactment.id).where(
                Enactment.member_id == member.id,
                Enactment.status == "planned",
                Enactment.due_on <= day,
            )
        ).all()
    )


def ask_after_resume(
    session: Session, member: Member, zone: ZoneInfo, now: datetime
) -> datetime | None:
    """`resume`: each question a pause held is asked at the next 15:00 on a weekday (a row
    queued for the pause's planned end then finds it asked). When that is; None when no
    question was held."""
    held = owed(session, member, zone, now)
    if not held:
        return None
    at = next_ask(now.astimezone(zone).date(), zone, now)
    for enactment in held:
        key = f"enactment:{enactment.id}:resumed:{at.date().isoformat()}"
        queue_ask(session, member, enactment, key=key, at=at, now=now)
    return at


def _try_target(ctx: Context, value: str) -> Artifact:
    return peers_share(
        ctx,
        value,
        own="That's your own share — “I'll try this” is for peers trying it in their class.",
    )


def _planned(ctx: Context, artifact: Artifact) -> Enactment | None:
    return ctx.session.exec(
        select(Enactment).where(
            Enactment.artifact_id == artifact.id, Enactment.member_id == ctx.member.id
        )
    ).first()


def _already(enactment: Enactment, artifact: Artifact) -> str:
    if enactment.status == "answered":
        return f"You already tried “{artifact.title}” and told us what students did. Thank you!"
    return (
        f"You already plan to try “{artifact.title}”; I'll ask you what students did on "
        f"{enactment.due_on:%A %d %B}."
    )


async def try_this(ctx: Context) -> None:
    """*I'll try this* on a share card: when will you try it?"""
    event = ctx.event
    assert isinstance(event, ActionEvent)
    artifact = _try_target(ctx, event.value)
    existing = _planned(ctx, artifact)
    if existing is not None:
        ctx.reply(_already(existing, artifact))
        return
    text = f"Great — when will you try “{shorten(artifact.title, 150)}” with your class?"
    ctx.reply(
        text,
        Card(
            body=text,
            buttons=tuple(
                Button(label=label.capitalize(), action_id="try_when", value=f"{artifact.id}:{n}")
                for n, label in WHEN.items()
            ),
        ),
    )


async def try_when(ctx: Context) -> None:
    """This week / next week / in two weeks: plan it, and ask what students did then."""
    event = ctx.event
    assert isinstance(event, ActionEvent)
    artifact_id, _, weeks = event.value.partition(":")
    if weeks not in WHEN:
        raise UsageError("Please press one of the buttons: this week, next week or in two weeks.")
    artifact = _try_target(ctx, artifact_id)
    existing = _planned(ctx, artifact)
    if existing is not None:
        ctx.reply(_already(existing, artifact))
        return
    zone = ctx.member_zone()
    due_on = due_day(ctx.now.astimezone(zone).date(), int(weeks))
    enactment = Enactment(
        artifact_id=saved_id(artifact),
        member_id=saved_id(ctx.member),
        due_on=due_on,
        created_at=ctx.now,
    )
    try:
        with ctx.session.begin_nested():
            ctx.session.add(enactment)
            ctx.session.flush()
    except sa.exc.IntegrityError:
        return  # the same press arrived twice at once: one plan is enough
    at = ask_time(due_on, zone)
    queue_ask(
        ctx.session, ctx.member, enactment, key=f"enactment:{enactment.id}", at=at, now=ctx.now
    )
    ctx.wake_outbox = True
    ctx.reply(
        f"Planned: you'll try “{artifact.title}” {WHEN[weeks]}. On {due_on:%A %d %B} I'll ask "
        "you what students did — your answer goes to the author (no students' names, please)."
    )


def question(artifact: Artifact, enactment: Enactment) -> tuple[str, Card]:
    text = f"You planned to try “{shorten(artifact.title, 200)}” — what did students do?"
    body = (
        f"{text}\nReply here in a sentence or two: what students made, said or did. "
        "No names, please (I take out any I spot). Type `cancel` if you didn't get to it."
    )
    return text, Card(
        title="How did it go?",
        body=body,
        buttons=(Button(label="Answer", action_id="enactment_answer", value=str(enactment.id)),),
    )


def _take_plan(session: Session, enactment: Enactment) -> bool:
    """Mark the plan asked; False when another row asked it first (a row queued for the
    pause's end and one queued by `resume` may both come due, even at once)."""
    taken = session.connection().execute(
        sa.update(Enactment)
        .where(col(Enactment.id) == enactment.id, col(Enactment.status) == "planned")
        .values(status="asked")
    )
    if taken.rowcount != 1:
        return False
    session.refresh(enactment)
    return True


def draw_enactment(due: Due) -> Delivery | None:
    """The day a member planned to try a share: ask them what students did (once); while
    they are paused, ask again after the pause instead."""
    session = due.session
    enactment = session.get(Enactment, due.row.object_id) if due.row.object_id else None
    if enactment is None or enactment.status != "planned":
        return None  # answered already, or the share (or the member) is gone
    artifact = session.get(Artifact, enactment.artifact_id)
    member = session.get(Member, enactment.member_id)
    if artifact is None or member is None:
        return None
    paused_until = member.paused_until
    if paused_until and paused_until >= member_today(member, due.default_tz, due.now):
        # Check-ins' rule (bot/features/checkins.py draw_checkin): nothing during a pause.
        # But the author is still owed the answer: the question waits for the pause's end.
        queue_ask(
            session,
            member,
            enactment,
            key=f"enactment:{enactment.id}:after:{paused_until.isoformat()}",
            at=next_ask(
                paused_until + timedelta(days=1),
                ZoneInfo(member.timezone or due.default_tz),
                due.now,
            ),
            now=due.now,
        )
        return None
    if not _take_plan(session, enactment):
        return None
    save_flow(
        session,
        member_id=saved_id(member),
        flow="enactment",
        step="answer",
        data={"enactment": enactment.id},
        now=due.now,
    )
    text, card = question(artifact, enactment)
    return Delivery(
        message=Message(text=text, card=card, visibility=Visibility.DM, to=due.person(member))
    )


async def open_answer(ctx: Context) -> None:
    """*Answer* on the question: the next DM text is the answer (again, if it was dropped)."""
    event = ctx.event
    assert isinstance(event, ActionEvent)
    enactment = ctx.owned(Enactment, event.value)
    if enactment is None:
        raise UsageError("That plan isn't here any more, so there is nothing to answer.")
    artifact = ctx.session.get(Artifact, enactment.artifact_id)
    if artifact is None:
        raise UsageError("That share has been removed, so there is nothing to answer.")
    if enactment.status == "answered":
        ctx.reply(_already(enactment, artifact))
        return
    ctx.set_flow("enactment", "answer", {"enactment": enactment.id})
    ctx.reply(
        f"What did students do when you tried “{shorten(artifact.title, 200)}”? "
        "Reply in your next message (no names, please)."
    )


async def answer_step(ctx: Context, step: str, text: str, data: dict[str, Any]) -> None:
    """The member's answer: what students did, names removed, told to the author."""
    enactment = ctx.owned(Enactment, data.get("enactment", ""))
    artifact = ctx.session.get(Artifact, enactment.artifact_id) if enactment else None
    if enactment is None or artifact is None or enactment.status == "answered":
        ctx.clear_flow()
        ctx.reply("That question has closed. Thank you all the same!")
        return
    if len(text) > MAX_ANSWER:
        raise UsageError(
            f"Please keep it under {MAX_ANSWER:,} characters. Nothing was saved — "
            "try a shorter version."
        )
    answer = without_students(text.strip())
    enactment.answer = answer
    enactment.status = "answered"
    enactment.answered_at = ctx.now
    ctx.session.add(enactment)
    ctx.clear_flow()
    rescore(ctx, artifact)  # tried in class weighs more for the standard (bot/scoring/ranking.py)
    author = ctx.session.get(Member, artifact.author_id)
    if author is not None:
        ctx.dm(
            f"{ctx.member.display_name or 'A peer'} tried your “{artifact.title}” in class. "
            f"What students did: {answer}",
            to=ctx.user_ref(author),
        )
    ctx.reply(
        f"Thank you! I've told {author.display_name if author and author.display_name else 'the author'} "
        f"what students did with “{artifact.title}”."
        + ("" if answer == text.strip() else " (I took out what looked like students' names.)")
    )
    refresh_card(ctx, artifact)


def register(router: Router) -> None:
    router.action("try_this", try_this)
    router.action("try_when", try_when)
    router.action("enactment_answer", open_answer)
    router.flow("enactment", answer_step, waiting="what students did with the share you tried")
    router.outbox.add("enactment", draw_enactment)
