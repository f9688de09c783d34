"""Reflection prompts posted to communities, and the reflections people write in reply.

Replies in the prompt's thread are visible to the channel and stored as shared reflections;
replies in a DM ("Reflect privately") stay private to their author.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.core.clock import iso_week
from bot.core.context import Context, UsageError
from bot.core.events import ActionEvent, ConversationRef
from bot.core.kinds import Delivery, Due
from bot.core.messages import Button, Card, Link, Message
from bot.core.router import Router
from bot.scoring.bands import band
from bot.scoring.ranking import current_week
from bot.services.prompts import PromptLibrary
from bot.services.prompts import ReflectionPrompt as Template
from storage.columns import saved_id
from storage.models import (
    CheckIn,
    Community,
    Goal,
    Member,
    OutboxMessage,
    Reflection,
    ReflectionPrompt,
)
from storage.queries import add_membership, community_members, enqueue, find_posted

MAX_REFLECTION = 4000


def pick_prompt(
    session: Session, prompts: PromptLibrary, *, community_id: int, element: str | None = None
) -> Template:
    """The least recently used template (of `element`, if given) in this community."""
    candidates = [p for p in prompts.reflection_prompts if element is None or p.element == element]
    last_used = dict(
        session.exec(
            select(ReflectionPrompt.prompt_key, sa.func.max(ReflectionPrompt.posted_at))
            .where(ReflectionPrompt.community_id == community_id)
            .group_by(ReflectionPrompt.prompt_key)
        ).all()
    )
    never = [p for p in candidates if p.id not in last_used]
    if never:
        return never[0]
    return min(candidates, key=lambda p: last_used[p.id])


def prompt_message(
    record: ReflectionPrompt, element_name: str, conversation: ConversationRef
) -> Message:
    assert record.id is not None
    title = f"Reflection prompt · {element_name}" if element_name else "Reflection prompt"
    return Message(
        text=f"{title}\n{record.text}\nReply in the thread to share, or reflect privately.",
        card=Card(
            title=title,
            body=record.text,
            footer="Reply in this thread to share your thinking with the community.",
            buttons=(
                Button(
                    label="Reflect privately", action_id="reflect_private", value=str(record.id)
                ),
            ),
        ),
        link=Link(kind="prompt", object_id=record.id),
        conversation=conversation,
    )


def create_prompt(
    session: Session,
    prompts: PromptLibrary,
    *,
    community: Community,
    now: Any,
    element: str | None = None,
    topic: str | None = None,
) -> ReflectionPrompt:
    if topic:
        record = ReflectionPrompt(
            community_id=saved_id(community),
            prompt_key="topic",
            text=prompts.topic_text(topic),
            posted_at=now,
        )
    else:
        assert community.id is not None
        template = pick_prompt(session, prompts, community_id=community.id, element=element)
        record = ReflectionPrompt(
            community_id=community.id,
            prompt_key=template.id,
            element=template.element,
            text=template.text,
            posted_at=now,
        )
    session.add(record)
    session.flush()
    return record


def _profile_for_model(session: Session, member: Member) -> dict[str, str]:
    """What the model may see: role, SNIC, goal and how the last check-in went — never a
    name or an id. A check-in's words go only when the member shared them with their
    community; a private answer contributes its rating and band, not its text."""
    goal = session.exec(
        select(Goal)
        .where(Goal.member_id == member.id, Goal.status == "active")
        .order_by(Goal.number.desc())  # type: ignore[attr-defined]
    ).first()
    last = session.exec(
        select(CheckIn)
        .where(
            CheckIn.member_id == member.id,
            CheckIn.status == "answered",
            CheckIn.rating.is_not(None),  # type: ignore[union-attr]
        )
        .order_by(CheckIn.answered_at.desc(), CheckIn.id.desc())  # type: ignore[union-attr]
    ).first()
    answer = ""
    if last is not None and last.rating is not None:
        answer = f"{last.rating}/10 ({band(last.rating)})"
        if last.shared and last.reflection:
            answer += f": {last.reflection[:300]}"
    return {
        "role": (member.role or "educator").replace("_", " "),
        "strengths": member.strengths[:300],
        "needs": member.needs[:300],
        "interests": member.interests[:300],
        "constraints": member.constraints[:300],
        "goal": goal.text[:300] if goal else "",
        "last check-in": answer,
    }


def _names_to_scrub(session: Session, member: Member, community_id: int | None) -> list[str]:
    """Everyone the profile text could name: the member and their community's members."""
    people = [member]
    if community_id is not None:
        people += community_members(session, community_id=community_id)
    return [p.display_name for p in people] + [p.user_id for p in people]


async def prompt_now(ctx: Context, args: str) -> None:
    """`prompt [element or topic]`: post a reflection prompt in this community now."""
    community = ctx.community
    if community is None:
        raise UsageError("Run `prompt` in a community channel (a coach sets one up with `setup`).")
    element = ctx.prompts.element_for(args) if args else None
    topic = args[:200] if args and element is None else None
    record = create_prompt(
        ctx.session,
        ctx.prompts,
        community=community,
        now=ctx.now,
        element=element.key if element else None,
        topic=topic,
    )
    ctx.send(prompt_message(record, ctx.prompts.element_name(record.element), ctx.conversation))


async def keep_thread_reply(ctx: Context) -> None:
    """A reply in a prompt's thread is a shared reflection: keep it."""
    event = ctx.event
    thread = event.conversation.thread_id
    assert thread is not None and ctx.workspace.id is not None
    posted = find_posted(
        ctx.session,
        workspace_id=ctx.workspace.id,
        channel_id=event.conversation.channel_id,
        message_ts=thread,
    )
    if posted is None or posted.kind != "prompt":
        return
    prompt = ctx.session.get(ReflectionPrompt, posted.object_id)
    if prompt is None:
        return
    text = getattr(event, "text", "").strip()
    if not text:
        return
    ctx.session.add(
        Reflection(
            member_id=saved_id(ctx.member),
            prompt_id=prompt.id,
            community_id=prompt.community_id,
            text=text[: MAX_REFLECTION * 4],
            is_private=False,
            created_at=ctx.now,
        )
    )
    assert ctx.member.id is not None
    add_membership(
        ctx.session, community_id=prompt.community_id, member_id=ctx.member.id, now=ctx.now
    )


async def reflect_private(ctx: Context) -> None:
    """*Reflect privately*: the prompt, worded for this member, in their DM."""
    event = ctx.event
    assert isinstance(event, ActionEvent)
    prompt = ctx.owned(ReflectionPrompt, event.value)
    if prompt is None:
        raise UsageError("That prompt is no longer available.")
    template = next((p for p in ctx.prompts.reflection_prompts if p.id == prompt.prompt_key), None)
    wording = template.for_role(ctx.member.role) if template else prompt.text
    community = ctx.session.get(Community, prompt.community_id)
    assert ctx.member.id is not None
    wording = await ctx.llm.personalise_prompt(
        ctx.session,
        wording,
        profile=_profile_for_model(ctx.session, ctx.member),
        member_id=ctx.member.id,
        community_id=prompt.community_id,
        week=current_week(community, ctx.now) if community else iso_week(ctx.now.date()),
        names=_names_to_scrub(ctx.session, ctx.member, prompt.community_id),
        asker=ctx.ask,
    )
    ctx.set_flow("reflection", "text", {"prompt": prompt.id})
    ctx.dm(f"{wording}\nReply here; only you will see it. (`cancel` to stop)")
    if not ctx.conversation.is_dm:
        ctx.reply("I've sent you the prompt as a direct message.")


async def save_private_reflection(ctx: Context, step: str, text: str, data: dict[str, Any]) -> None:
    """The private reflection typed in the DM: saved, seen by its author only."""
    if len(text) > MAX_REFLECTION:
        raise UsageError(
            f"That's {len(text):,} characters; please keep a reflection under {MAX_REFLECTION:,}. "
            "Nothing was saved."
        )
    prompt = ctx.owned(ReflectionPrompt, data.get("prompt", ""))
    ctx.session.add(
        Reflection(
            member_id=saved_id(ctx.member),
            prompt_id=prompt.id if prompt else None,
            community_id=prompt.community_id if prompt else None,
            text=text,
            is_private=True,
            created_at=ctx.now,
        )
    )
    ctx.clear_flow()
    ctx.reply(
        "Saved your reflection. It's private to you; `export` shows everything you've written."
    )


def draw_prompt(due: Due) -> Delivery | None:
    """A scheduled reflection prompt, posted to its community's channel."""
    record = due.session.get(ReflectionPrompt, due.row.object_id)
    community = due.session.get(Community, record.community_id) if record else None
    if record is None or community is None:
        return None
    channel = due.channel
    return Delivery(
        message=prompt_message(record, due.prompts.element_name(record.element), channel),
        conversation=channel,
    )


def queue_prompt(
    session: Session, prompts: PromptLibrary, community: Community, *, now: datetime, key: str
) -> bool:
    if session.exec(select(OutboxMessage.id).where(OutboxMessage.key == key)).first() is not None:
        return False
    record = create_prompt(session, prompts, community=community, now=now)
    return enqueue(
        session,
        key=key,
        workspace_id=community.workspace_id,
        kind="prompt",
        object_id=record.id,
        channel_id=community.channel_id,
        now=now,
    )


def register(router: Router) -> None:
    router.command(
        "prompt",
        prompt_now,
        usage="prompt [element or topic]",
        summary="post a reflection prompt here now",
        coach=True,
    )
    router.on("thread_reply", keep_thread_reply)
    router.action("reflect_private", reflect_private)
    router.flow("reflection", save_private_reflection, waiting="your reflection")
    router.outbox.add("prompt", draw_prompt)
