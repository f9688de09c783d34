"""Peer endorsements: one per person per artifact, never one's own, optionally with a note.

The Endorse button toggles (a second press withdraws); a press within a few seconds of the
first is a double click and changes nothing. A configured reaction also endorses.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.config import Settings
from bot.core.context import Context, UsageError
from bot.core.events import ActionEvent, Event, MessageRef, ReactionEvent
from bot.core.kinds import Delivery, Due
from bot.core.messages import Button, Card, Input, Link, Message
from bot.core.router import Router
from bot.features.evidence import artifact_card
from bot.scoring.standards import announcement, reconsider
from storage.columns import saved_id
from storage.models import Artifact, Endorsement, PostedMessage, Workspace
from storage.queries import find_posted, posted_for

DOUBLE_CLICK = timedelta(seconds=3)
MAX_NOTE = 1000


def peers_share(ctx: Context, value: str, *, own: str) -> Artifact:
    """The share a button names, when it is in the actor's workspace and not their own
    (`own`: what to tell its author)."""
    artifact = ctx.owned(Artifact, value)
    if artifact is None:
        raise UsageError("I can't find that share any more; it may have been removed.")
    if artifact.author_id == ctx.member.id:
        raise UsageError(own)
    return artifact


def _artifact(ctx: Context, value: str) -> Artifact:
    return peers_share(
        ctx,
        value,
        own="That's your own share — endorsements come from peers. Thanks for sharing it!",
    )


def _reacted_share(session: Session, settings: Settings, event: Event) -> PostedMessage | None:
    """The posted share an endorsing reaction is on, if it is one."""
    if not isinstance(event, ReactionEvent):
        return None
    if event.reaction.split("::")[0] != settings.slack_endorse_reaction:
        return None
    workspace = session.exec(
        select(Workspace).where(
            Workspace.platform == event.user.platform,
            Workspace.external_id == event.user.workspace_id,
        )
    ).first()
    if workspace is None or workspace.id is None:
        return None
    posted = find_posted(
        session,
        workspace_id=workspace.id,
        channel_id=event.message.conversation.channel_id,
        message_ts=event.message.message_id,
    )
    return posted if posted is not None and posted.kind == "artifact" else None


def endorsable(session: Session, settings: Settings, event: Event) -> bool:
    """Whether a reaction endorses a posted share: asked before the reacting person is
    stored or looked up, so reactions to anything else leave no trace."""
    return _reacted_share(session, settings, event) is not None


def _existing(ctx: Context, artifact: Artifact) -> Endorsement | None:
    return ctx.session.exec(
        select(Endorsement).where(
            Endorsement.artifact_id == artifact.id, Endorsement.endorser_id == ctx.member.id
        )
    ).first()


def rescore(ctx: Context, artifact: Artifact) -> None:
    """The share's score changed (an endorsement, or an endorser's answer about trying it): is it
    the community's new best for its element or tags?"""
    ctx.session.flush()
    if reconsider(ctx.session, ctx.prompts, artifact, now=ctx.now):
        ctx.wake_outbox = True  # "a new best for …" goes out through the outbox


def endorse(ctx: Context, artifact: Artifact, note: str = "") -> bool:
    """Add (or re-note) this member's endorsement; False when it already existed unchanged."""
    existing = _existing(ctx, artifact)
    if existing is not None:
        if note and note != existing.note:
            existing.note = note
            ctx.session.add(existing)
            rescore(ctx, artifact)
            return True
        return False
    try:
        with ctx.session.begin_nested():
            ctx.session.add(
                Endorsement(
                    artifact_id=saved_id(artifact),
                    endorser_id=saved_id(ctx.member),
                    note=note,
                    created_at=ctx.now,
                )
            )
            ctx.session.flush()
    except sa.exc.IntegrityError:
        return False  # the same person endorsed concurrently: one row is enough
    rescore(ctx, artifact)
    return True


def withdraw(ctx: Context, artifact: Artifact) -> bool:
    existing = _existing(ctx, artifact)
    if existing is None:
        return False
    ctx.session.delete(existing)
    ctx.session.flush()
    rescore(ctx, artifact)
    return True


def refresh_card(ctx: Context, artifact: Artifact) -> None:
    """Update the artifact's posted card so its count and endorsers are current."""
    assert artifact.id is not None
    posted = posted_for(ctx.session, kind="artifact", object_id=artifact.id)
    if posted is None:
        return
    text, card = artifact_card(ctx.session, ctx.prompts, artifact)
    ctx.send(
        Message(
            text=text,
            card=card,
            replace=MessageRef(
                conversation=ctx.channel(posted.channel_id), message_id=posted.message_ts
            ),
            link=Link(kind="artifact", object_id=artifact.id),
            live=True,  # drawn when sent: a later count is never overwritten by an earlier one
        )
    )


async def press_endorse(ctx: Context) -> None:
    """The Endorse button toggles: a second press withdraws; a double click counts once."""
    event = ctx.event
    assert isinstance(event, ActionEvent)
    artifact = _artifact(ctx, event.value)
    existing = _existing(ctx, artifact)
    if existing is not None and ctx.now - existing.created_at < DOUBLE_CLICK:
        return  # a double click: the first press already counted
    if existing is not None:
        withdraw(ctx, artifact)
        ctx.reply(f"Endorsement withdrawn from “{artifact.title}”.")
    else:
        endorse(ctx, artifact)
        ctx.reply(f"You endorsed “{artifact.title}”. Press again to withdraw.")
    refresh_card(ctx, artifact)


async def open_endorse_note(ctx: Context) -> None:
    """*Endorse with a note*: the form that asks what they would borrow."""
    event = ctx.event
    assert isinstance(event, ActionEvent)
    artifact = _artifact(ctx, event.value)
    ctx.reply(
        f"Why endorse “{artifact.title}”? What would you borrow?",
        Card(
            title="Endorse with a note",
            body=artifact.title,
            inputs=(
                Input(
                    id="note",
                    label="What would you borrow from it?",
                    kind="multiline",
                    optional=False,
                    max_length=MAX_NOTE,
                ),
            ),
            submit=Button(
                label="Endorse",
                action_id="endorse_note",
                value=str(artifact.id),
                style="primary",
            ),
        ),
    )


async def endorse_with_note(ctx: Context) -> None:
    """The note form's *Endorse*: endorse with the note (or change the note)."""
    event = ctx.event
    assert isinstance(event, ActionEvent)
    artifact = _artifact(ctx, event.value)
    note = (event.values.get("note") or "").strip()
    if len(note) > MAX_NOTE:
        raise UsageError(f"Please keep your note under {MAX_NOTE:,} characters. Nothing was saved.")
    endorse(ctx, artifact, note=note)
    ctx.reply(f"You endorsed “{artifact.title}” with a note. Thank you!")
    refresh_card(ctx, artifact)


async def endorse_by_reaction(ctx: Context) -> None:
    """The endorsing reaction added to a share endorses it; removed, withdraws."""
    event = ctx.event
    assert isinstance(event, ReactionEvent) and ctx.workspace.id is not None
    posted = _reacted_share(ctx.session, ctx.settings, event)
    if posted is None:
        return
    artifact = ctx.session.get(Artifact, posted.object_id)
    if artifact is None or artifact.author_id == ctx.member.id:
        return  # reacting to one's own share is not an endorsement
    changed = endorse(ctx, artifact) if event.added else withdraw(ctx, artifact)
    if changed:
        refresh_card(ctx, artifact)


def draw_standard(due: Due) -> Delivery | None:
    """The channel's announcement that a share became (or took over) a standard."""
    message = announcement(due.session, due.prompts, due.row.object_id or 0, due.channel)
    return Delivery(message=message, conversation=due.channel) if message else None


def register(router: Router) -> None:
    router.action("endorse", press_endorse)
    router.action("endorse_note_open", open_endorse_note)
    router.action("endorse_note", endorse_with_note)
    router.on("reaction", endorse_by_reaction, wanted=endorsable)
    router.outbox.add("standard", draw_standard)
