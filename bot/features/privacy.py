"""A member's data is theirs: `export` (all of it as a file) and `forget` (delete it all,
posted messages included, after a confirmation)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from bot.core.context import Context
from bot.core.events import MessageRef
from bot.core.messages import Attachment, Button, Card, Message, Visibility
from bot.core.router import Router
from bot.features.digests import rank_artifacts, render_digest
from bot.features.endorsements import refresh_card
from bot.scoring.small_groups import DEFAULT_MIN_GROUP
from bot.services.prompts import PromptLibrary
from storage.model_tables import ModelCache
from storage.models import (
    Artifact,
    CheckIn,
    CoachingCycle,
    Community,
    CycleNote,
    Digest,
    Enactment,
    Endorsement,
    FlowState,
    Goal,
    InboundReceipt,
    InboxEvent,
    Indicator,
    IndicatorValue,
    Member,
    Membership,
    OutboxMessage,
    PostedMessage,
    Reflection,
    Workspace,
)
from storage.slack_tables import slack_installations


def _plain(row: SQLModel, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    data = row.model_dump()
    for key in drop:
        data.pop(key, None)
    return {k: (v.isoformat() if isinstance(v, datetime | date) else v) for k, v in data.items()}


def export_member(session: Session, member: Member, now: datetime | None = None) -> dict[str, Any]:
    """Everything stored about a member, as plain JSON-able data."""
    artifacts = session.exec(select(Artifact).where(Artifact.author_id == member.id)).all()
    artifact_ids = [a.id for a in artifacts]
    received = (
        session.exec(
            select(Endorsement, Member.display_name)
            .join(Member, Member.id == Endorsement.endorser_id)  # type: ignore[arg-type]
            .where(Endorsement.artifact_id.in_(artifact_ids))  # type: ignore[attr-defined]
        ).all()
        if artifact_ids
        else []
    )
    return {
        "exported_at": (now or datetime.now().astimezone()).isoformat(),
        "profile": _plain(member),
        "goals": [_plain(g) for g in session.exec(select(Goal).where(Goal.member_id == member.id))],
        "checkins": [
            _plain(c) for c in session.exec(select(CheckIn).where(CheckIn.member_id == member.id))
        ],
        "reflections": [
            _plain(r)
            for r in session.exec(select(Reflection).where(Reflection.member_id == member.id))
        ],
        "shares": [_plain(a) for a in artifacts],
        "endorsements_given": [
            _plain(e)
            for e in session.exec(select(Endorsement).where(Endorsement.endorser_id == member.id))
        ],
        "endorsements_received": [
            {**_plain(e, ("endorser_id",)), "endorser": name} for e, name in received
        ],
        "indicators": [
            {
                **_plain(indicator),
                "values": [
                    _plain(v)
                    for v in session.exec(
                        select(IndicatorValue)
                        .where(IndicatorValue.indicator_id == indicator.id)
                        .order_by(col(IndicatorValue.logged_at))
                    )
                ],
            }
            for indicator in session.exec(
                select(Indicator)
                .join(Goal, col(Goal.id) == Indicator.goal_id)
                .where(Goal.member_id == member.id)
            )
        ],
        "coaching_cycles": [
            {
                **_plain(cycle),
                "feedback": [
                    _plain(n)
                    for n in session.exec(select(CycleNote).where(CycleNote.cycle_id == cycle.id))
                ],
            }
            for cycle in session.exec(
                select(CoachingCycle).where(CoachingCycle.member_id == member.id)
            )
        ],
        "cycles_coached": [
            {
                **_plain(cycle, ("member_id",) if cycle.status in ACCEPTED else _UNANSWERED),
                "feedback_given": [
                    _plain(n, ("in_portfolio",))  # the member's choice, never told the coach
                    for n in session.exec(
                        select(CycleNote)
                        .where(CycleNote.cycle_id == cycle.id)
                        .order_by(col(CycleNote.created_at), col(CycleNote.id))
                    )
                ],
            }
            for cycle in session.exec(
                select(CoachingCycle)
                .where(CoachingCycle.coach_id == member.id)
                .order_by(col(CoachingCycle.offered_at), col(CoachingCycle.id))
            )
        ],
        "enactments": [
            _plain(e)
            for e in session.exec(select(Enactment).where(Enactment.member_id == member.id))
        ],
        "enactments_received": _enactments_received(session, artifact_ids),
        "communities": [
            _plain(c, ("created_by",))
            for c in session.exec(
                select(Community)
                .join(Membership, Membership.community_id == Community.id)  # type: ignore[arg-type]
                .where(Membership.member_id == member.id)
            )
        ],
    }


# A coach's export shows a cycle's goal as the coach saw it: its words only once the member
# accepted (an offer, or a declined one, told the coach the goal's number alone).
ACCEPTED = ("active", "closed")
_UNANSWERED = ("member_id", "goal_text")


def _enactments_received(session: Session, artifact_ids: list[int | None]) -> list[dict[str, Any]]:
    """Peers' "I'll try this" plans and answers on the member's own shares: about their work,
    and told to them already (the DM and the card)."""
    if not artifact_ids:
        return []
    found = session.exec(
        select(Enactment, Member.display_name, Artifact.title)
        .join(Member, col(Member.id) == Enactment.member_id)
        .join(Artifact, col(Artifact.id) == Enactment.artifact_id)
        .where(col(Enactment.artifact_id).in_(artifact_ids))
        .order_by(col(Enactment.created_at), col(Enactment.id))
    ).all()
    return [
        {
            "artifact_id": e.artifact_id,
            "share": title,
            "peer": name,
            "due_on": e.due_on.isoformat(),
            "status": e.status,
            "answer": e.answer,
            "answered_at": e.answered_at.isoformat() if e.answered_at else None,
        }
        for e, name, title in found
    ]


def workspace_external_id(session: Session, member: Member) -> str:
    workspace = session.get(Workspace, member.workspace_id)
    return workspace.external_id if workspace else ""


@dataclass
class Forgotten:
    """What `forget_member` deleted (rows per table) and the digests it rendered again."""

    counts: dict[str, int]
    digests: list[tuple[Digest, str, Card]]


def forget_member(
    session: Session, prompts: PromptLibrary, member: Member, *, min_group: int = DEFAULT_MIN_GROUP
) -> Forgotten:
    """Delete every row about a member, including endorsements they gave, and render again
    the digests that showed them; returns counts."""
    mid = member.id
    own_artifacts = [a for a in session.exec(select(Artifact.id).where(Artifact.author_id == mid))]
    counts: dict[str, int] = {}

    def delete(model: type[SQLModel], *where: Any) -> None:
        result = session.exec(sa.delete(model).where(*where))  # type: ignore[call-overload]
        counts[model.__tablename__] = counts.get(model.__tablename__, 0) + result.rowcount  # type: ignore[attr-defined, index, arg-type]

    endorsed = session.exec(
        select(Endorsement.artifact_id, Endorsement.note).where(Endorsement.endorser_id == mid)
    ).all()
    words = [member.display_name, *(note for _, note in endorsed if note and len(note) >= 4)]
    stale = _digests_showing(
        session, member, {*own_artifacts, *(a for a, _ in endorsed)}, [w for w in words if w]
    )
    own_checkins = list(session.exec(select(CheckIn.id).where(CheckIn.member_id == mid)))
    if own_checkins:
        delete(
            PostedMessage,
            PostedMessage.kind == "checkin",
            PostedMessage.workspace_id == member.workspace_id,
            PostedMessage.object_id.in_(own_checkins),  # type: ignore[attr-defined]
        )
    if own_artifacts:
        delete(Endorsement, Endorsement.artifact_id.in_(own_artifacts))  # type: ignore[attr-defined]
        # Peers' plans and answers on their shares go with the shares (the foreign key
        # cascades too; deleting them here counts them).
        delete(Enactment, col(Enactment.artifact_id).in_(own_artifacts))
        delete(
            PostedMessage,
            PostedMessage.kind == "artifact",
            PostedMessage.object_id.in_(own_artifacts),  # type: ignore[attr-defined]
        )
    delete(Endorsement, Endorsement.endorser_id == mid)
    delete(Enactment, Enactment.member_id == mid)
    # Their cycles go (feedback with them); cycles they coached keep the acknowledgement the
    # other member holds (its coach name is part of what was signed), without their id.
    own_cycles = select(CoachingCycle.id).where(CoachingCycle.member_id == mid)
    delete(CycleNote, col(CycleNote.cycle_id).in_(own_cycles))
    delete(CoachingCycle, CoachingCycle.member_id == mid)
    session.exec(
        sa.update(CoachingCycle)  # type: ignore[call-overload]
        .where(CoachingCycle.coach_id == mid)  # type: ignore[arg-type]
        .values(coach_id=None)
    )
    goals = select(Goal.id).where(Goal.member_id == mid)
    indicators = select(Indicator.id).where(col(Indicator.goal_id).in_(goals))
    delete(IndicatorValue, col(IndicatorValue.indicator_id).in_(indicators))
    delete(Indicator, col(Indicator.goal_id).in_(goals))
    delete(Artifact, Artifact.author_id == mid)
    delete(Reflection, Reflection.member_id == mid)
    delete(CheckIn, CheckIn.member_id == mid)
    delete(Goal, Goal.member_id == mid)
    delete(FlowState, FlowState.member_id == mid)
    delete(OutboxMessage, OutboxMessage.member_id == mid)
    delete(Membership, Membership.member_id == mid)
    session.exec(sa.update(Community).where(Community.created_by == mid).values(created_by=None))  # type: ignore[call-overload, arg-type]
    session.exec(
        sa.update(Workspace)  # type: ignore[call-overload]
        .where(Workspace.id == member.workspace_id, Workspace.installed_by == member.user_id)  # type: ignore[arg-type]
        .values(installed_by=None)
    )
    # An installer's id in the Slack installation rows (the install itself stays).
    session.exec(
        sa.update(slack_installations)  # type: ignore[call-overload]
        .where(
            slack_installations.c.user_id == member.user_id,
            slack_installations.c.team_id == workspace_external_id(session, member),
        )
        .values(user_id="", user_token=None, user_scopes=None, user_refresh_token=None)
    )
    # Requests of theirs kept for retries or diagnosis, and receipts naming them.
    platform = session.get(Workspace, member.workspace_id)
    session.exec(
        sa.update(InboxEvent)  # type: ignore[call-overload]
        .where(
            InboxEvent.platform == (platform.platform if platform else ""),  # type: ignore[arg-type]
            InboxEvent.lane.endswith(f":{member.user_id}", autoescape=True),  # type: ignore[attr-defined, call-arg, arg-type]
            InboxEvent.status.in_(("done", "failed")),  # type: ignore[attr-defined]
        )
        .values(payload="", lane="")
    )
    if len(member.user_id) >= 6:  # platform ids are long and unique: a key naming one is theirs
        delete(InboundReceipt, InboundReceipt.key.contains(member.user_id, autoescape=True))  # type: ignore[attr-defined]
    delete(Member, Member.id == mid)
    session.flush()
    # Digests already rendered may name them or carry their words: render them again, and
    # drop the model's cached introductions of those weeks (they quoted the same notes).
    redone = []
    for digest in stale:
        community = session.get(Community, digest.community_id)
        assert community is not None
        ranked = rank_artifacts(session, community, digest.iso_week)
        text, card = render_digest(
            session, prompts, community, digest.iso_week, ranked, min_group=min_group
        )
        digest.rendered = text
        digest.artifact_ids = ",".join(str(r.artifact.id) for r in ranked)
        session.add(digest)
        redone.append((digest, text, card))
        delete(
            ModelCache,
            ModelCache.purpose == "digest_intro",
            ModelCache.community_id == digest.community_id,
            ModelCache.iso_week == digest.iso_week,
        )
    return Forgotten(counts=counts, digests=redone)


def _digests_showing(
    session: Session, member: Member, artifact_ids: set[int | None], words: list[str]
) -> list[Digest]:
    """The workspace's digests that list one of `artifact_ids` (theirs, or ones they
    endorsed) or show their name or one of their notes — members or not of that community."""
    found = []
    for digest in session.exec(
        select(Digest)
        .join(Community, Community.id == Digest.community_id)  # type: ignore[arg-type]
        .where(Community.workspace_id == member.workspace_id)
    ):
        listed = {int(i) for i in digest.artifact_ids.split(",") if i.isdigit()}
        if listed & artifact_ids or any(w and w in (digest.rendered or "") for w in words):
            found.append(digest)
    return found


async def export_data(ctx: Context, args: str) -> None:
    """DM the member everything stored about them, as a JSON file."""
    data = export_member(ctx.session, ctx.member, ctx.now)
    content = json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")
    ctx.send(
        Message(
            text="Here is everything I store about you (JSON).",
            visibility=Visibility.DM,
            to=ctx.user,
            attachment=Attachment(
                filename="plnbot-export.json", content=content, mime_type="application/json"
            ),
        )
    )
    if not ctx.conversation.is_dm:
        ctx.reply("I've sent your data to you as a direct message.")


async def request_forget(ctx: Context, args: str) -> None:
    """Forget at once on `forget confirm`; otherwise ask first, with buttons."""
    if args.strip().lower() in ("confirm", "yes"):
        await _do_forget(ctx)
        return
    ctx.set_flow("forget", "confirm")
    ctx.reply(
        "This deletes your profile, goals, check-ins, reflections, shares and the endorsements "
        "you gave, for good. Type `forget confirm` (or press the button) to go ahead.",
        Card(
            title="Delete all your data?",
            body="This can't be undone. `export` first if you'd like a copy.",
            buttons=(
                Button(label="Delete everything", action_id="forget_confirm", style="danger"),
                Button(label="Keep my data", action_id="forget_cancel"),
            ),
        ),
    )


async def _do_forget(ctx: Context) -> None:
    """Delete the member's data and redraw what was posted showing them."""
    session, mid = ctx.session, ctx.member.id
    endorsed = list(
        session.exec(select(Endorsement.artifact_id).where(Endorsement.endorser_id == mid))
    )
    # What was posted showing them: their share cards and shared check-ins.
    own_posts = session.exec(
        select(PostedMessage.kind, PostedMessage.channel_id, PostedMessage.message_ts)
        .outerjoin(
            Artifact,
            sa.and_(PostedMessage.kind == "artifact", Artifact.id == PostedMessage.object_id),  # type: ignore[arg-type]
        )
        .outerjoin(
            CheckIn,
            sa.and_(PostedMessage.kind == "checkin", CheckIn.id == PostedMessage.object_id),  # type: ignore[arg-type]
        )
        .where(
            PostedMessage.workspace_id == ctx.workspace.id,
            sa.or_(Artifact.author_id == mid, CheckIn.member_id == mid),  # type: ignore[arg-type]
        )
    ).all()
    posted_digests = {
        p.object_id: p
        for p in session.exec(
            select(PostedMessage).where(
                PostedMessage.workspace_id == ctx.workspace.id, PostedMessage.kind == "digest"
            )
        )
    }
    forgotten = forget_member(session, ctx.prompts, ctx.member, min_group=ctx.settings.min_group)
    ctx.forgotten = True

    def where(channel_id: str, message_ts: str) -> MessageRef:
        return MessageRef(conversation=ctx.channel(channel_id), message_id=message_ts)

    # Messages already posted must not keep showing them: their shares and shared
    # check-ins are blanked (blocks and all), digests and the shares they endorsed are
    # drawn again without them.
    for kind, channel_id, message_ts in own_posts:
        what = "share" if kind == "artifact" else "check-in"
        ctx.send(
            Message(
                text=f"This {what} was removed at its author's request.",
                replace=where(channel_id, message_ts),
            )
        )
    for digest, text, card in forgotten.digests:
        posted = posted_digests.get(digest.id or 0)
        if posted is not None:
            ctx.send(
                Message(text=text, card=card, replace=where(posted.channel_id, posted.message_ts))
            )
    for artifact_id in endorsed:
        artifact = session.get(Artifact, artifact_id)
        if artifact is not None:
            refresh_card(ctx, artifact)
    ctx.reply("Done: everything I stored about you is deleted. You're welcome back any time.")


async def confirm_forget(ctx: Context) -> None:
    """The *Delete everything* button."""
    await _do_forget(ctx)


async def cancel_forget(ctx: Context) -> None:
    """The *Keep my data* button."""
    ctx.clear_flow()
    ctx.reply("Kept. Nothing was deleted.")


async def forget_step(ctx: Context, step: str, text: str, data: dict[str, Any]) -> None:
    """The typed answer to “delete all your data?”: only a yes deletes."""
    if text.strip().lower() in ("confirm", "yes", "forget confirm"):
        await _do_forget(ctx)
    else:
        ctx.clear_flow()
        ctx.reply("Kept. Nothing was deleted.")


def register(router: Router) -> None:
    router.command("export", export_data, summary="all your data as a file")
    router.command("forget", request_forget, summary="delete all your data (asks to confirm)")
    router.action("forget_confirm", confirm_forget)
    router.action("forget_cancel", cancel_forget)
    router.flow("forget", forget_step, waiting="whether to delete your data")
