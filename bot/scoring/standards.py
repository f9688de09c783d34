"""The living standard: per community, the best share for each Future Ready element and each
tag, refreshed whenever someone's work surpasses it.

After every endorsement change, the share's score (bot/scoring/ranking.py) is compared with the
current holder's for each of its keys (its element, and its tags that don't name an element).
A share needs MIN_ENDORSERS distinct peers to hold a standard; it takes one over when its score
is strictly higher than the holder's (the holder keeps a tie). A holder that falls below
MIN_ENDORSERS (withdrawals, `forget`) leaves the standard empty until a share earns it.

Each change is a `StandardChange` row and one outbox row keyed
`standard:<community>:<key>:<artifact>`, so the channel hears "a new best for …" once, however
many endorsements arrive at the same time: the `Standard` row is locked (`FOR UPDATE` on
PostgreSQL; SQLite has one writer) while the decision is made, and the outbox key is unique.
When one endorsement makes a share the best for several keys, one message names them all.
The message is rendered when it is sent; if the share was surpassed in between, it is skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.core.events import ConversationRef
from bot.core.messages import Card, Field, Message
from bot.scoring.ranking import Scored, best_note, current_week, score_shares, week_window
from bot.services.prompts import PromptLibrary
from storage.models import Artifact, Community, Member
from storage.queries import enqueue
from storage.standard_tables import Standard, StandardChange

log = logging.getLogger(__name__)

MIN_ENDORSERS = 2
MAX_KEY = 48


def standard_keys(prompts: PromptLibrary, artifact: Artifact) -> list[str]:
    """The keys a share competes for: its element and its tags (`#tag`), in lock order."""
    keys = set()
    if artifact.element and artifact.element in prompts.elements:
        keys.add(artifact.element)
    for tag in (artifact.tags or "").split(","):
        tag = tag.strip().lower()
        if tag and prompts.element_for(tag) is None:  # `#assessment` is the element itself
            keys.add(f"#{tag}"[:MAX_KEY])
    return sorted(keys)  # always the same order, so two transactions never lock in a cycle


def key_label(prompts: PromptLibrary, key: str) -> str:
    return key if key.startswith("#") else prompts.element_name(key) or key


def standing(session: Session, community: Community, artifact: Artifact) -> Scored | None:
    """The share's score as the digest of its week computes it (None: not endorsed)."""
    assert community.id is not None and artifact.id is not None
    start, end = week_window(community, current_week(community, artifact.created_at))
    scored = score_shares(
        session, community_id=community.id, start=start, end=end, artifact_ids=[artifact.id]
    )
    return scored[0] if scored else None


def _locked_standard(session: Session, community_id: int, key: str, now: datetime) -> Standard:
    """The (community, key) row, created if needed, locked until this transaction ends."""
    query = select(Standard).where(Standard.community_id == community_id, Standard.key == key)
    if session.exec(query).first() is None:
        try:
            with session.begin_nested():
                session.add(Standard(community_id=community_id, key=key, updated_at=now))
                session.flush()
        except sa.exc.IntegrityError:
            pass  # created concurrently: lock theirs
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        query = query.with_for_update()
    standard = session.exec(query.execution_options(populate_existing=True)).one()
    return standard


@dataclass(frozen=True)
class Change:
    key: str
    change: StandardChange


def reconsider(
    session: Session, prompts: PromptLibrary, artifact: Artifact, *, now: datetime
) -> list[str]:
    """After an endorsement of `artifact` was added or withdrawn: update the standards it
    competes for, and queue one announcement when it became the best; returns the keys it
    took over."""
    keys = standard_keys(prompts, artifact)
    community = session.get(Community, artifact.community_id)
    if not keys or community is None or community.id is None or artifact.id is None:
        return []
    changes: list[Change] = []
    mine: Scored | None = None
    for index, key in enumerate(keys):
        standard = _locked_standard(session, community.id, key, now)
        if index == 0:
            # Scored after the first lock: every concurrent change to these keys is visible.
            mine = standing(session, community, artifact)
        endorsers = mine.endorsers if mine else 0
        score = mine.score if mine else 0.0
        if standard.artifact_id == artifact.id:
            if endorsers < MIN_ENDORSERS:
                standard.artifact_id, standard.since = None, None
                score, endorsers = 0.0, 0
            standard.score, standard.endorsers, standard.updated_at = score, endorsers, now
            session.add(standard)
            continue
        if endorsers < MIN_ENDORSERS:
            continue
        holder = session.get(Artifact, standard.artifact_id) if standard.artifact_id else None
        held = standing(session, community, holder) if holder is not None else None
        if held is not None and held.endorsers >= MIN_ENDORSERS and score <= held.score:
            standard.score, standard.endorsers, standard.updated_at = (
                held.score,
                held.endorsers,
                now,
            )
            session.add(standard)
            continue
        change = StandardChange(
            community_id=community.id,
            key=key,
            artifact_id=artifact.id,
            previous_id=holder.id if holder is not None else None,
            score=score,
            endorsers=endorsers,
            changed_at=now,
        )
        session.add(change)
        standard.artifact_id, standard.score, standard.endorsers = artifact.id, score, endorsers
        standard.since = standard.updated_at = now
        session.add(standard)
        changes.append(Change(key=key, change=change))
    if not changes:
        return []
    session.flush()
    # One message per change of hands: about the element when it changed, else the first tag.
    lead = next((c for c in changes if not c.key.startswith("#")), changes[0])
    assert lead.change.id is not None
    queued = enqueue(
        session,
        key=f"standard:{community.id}:{lead.key}:{artifact.id}",
        workspace_id=community.workspace_id,
        kind="standard",
        object_id=lead.change.id,
        channel_id=community.channel_id,
        now=now,
    )
    log.info(
        "share %s is the new best for %s in community %s%s",
        artifact.id,
        ", ".join(c.key for c in changes),
        community.id,
        "" if queued else " (announced before)",
    )
    return [c.key for c in changes]


def _name(session: Session, member_id: int | None) -> str:
    member = session.get(Member, member_id) if member_id else None
    return member.display_name if member and member.display_name else "a member"


def announcement(
    session: Session, prompts: PromptLibrary, change_id: int, conversation: ConversationRef
) -> Message | None:
    """The channel message for a change of hands, or None when it no longer holds (the share
    was surpassed, lost its endorsements or was removed before the message went out)."""
    change = session.get(StandardChange, change_id)
    if change is None:
        return None
    held = session.exec(
        select(Standard.key).where(
            Standard.community_id == change.community_id,
            Standard.artifact_id == change.artifact_id,
        )
    ).all()
    artifact = session.get(Artifact, change.artifact_id)
    community = session.get(Community, change.community_id)
    if change.key not in held or artifact is None or community is None:
        return None
    label = key_label(prompts, change.key)
    also = [key_label(prompts, k) for k in sorted(held) if k != change.key]
    author = _name(session, artifact.author_id)
    scored = standing(session, community, artifact)
    endorsers = scored.endorsers if scored else change.endorsers
    previous = session.get(Artifact, change.previous_id) if change.previous_id else None
    note = best_note(session, scored) if scored else ""
    text = (
        f"A new best for {label}: “{artifact.title}” by {author}, endorsed by "
        f"{endorsers} peers"
        + (f" — it surpasses “{previous.title}”." if previous else " — the first standard here.")
    )
    link = artifact.url or artifact.file_ref or ""
    if link:
        text += f" {link}"
    fields = [
        Field(label="Shared by", value=author),
        Field(label="Endorsements", value=str(endorsers)),
    ]
    if previous is not None:
        fields.append(
            Field(
                label="Surpasses",
                value=f"“{previous.title}” by {_name(session, previous.author_id)}",
            )
        )
    if also:
        fields.append(Field(label="Also the best for", value=", ".join(also)))
    if note:
        fields.append(Field(label="Why peers endorse it", value=f"“{note[:300]}”"))
    return Message(
        text=text,
        card=Card(
            title=f"A new best for {label}",
            body=(f"*{artifact.title}*\n{link}" if link else f"*{artifact.title}*"),
            fields=tuple(fields),
            footer="The standard is the community's most endorsed work — surpass it and "
            "everyone hears about it.",
        ),
        conversation=conversation,
    )


@dataclass(frozen=True)
class StandardLine:
    key: str
    label: str
    artifact: Artifact
    author: str
    endorsers: int
    new_this_week: bool


def standards_for_digest(
    session: Session, prompts: PromptLibrary, community: Community, week: str
) -> list[StandardLine]:
    """The standard per element as it stood at the end of `week` (in the framework's order),
    then the tags whose standard changed hands during the week: a digest of a past week
    never shows a standard won after it."""
    start, end = week_window(community, week)
    changed = {
        (key, artifact_id)
        for key, artifact_id in session.exec(
            select(StandardChange.key, StandardChange.artifact_id).where(
                StandardChange.community_id == community.id,
                StandardChange.changed_at >= start,  # type: ignore[operator]
                StandardChange.changed_at < end,  # type: ignore[operator]
            )
        )
    }
    history = session.exec(
        select(StandardChange.key, Artifact)
        .join(Artifact, Artifact.id == StandardChange.artifact_id)  # type: ignore[arg-type]
        .where(
            StandardChange.community_id == community.id,
            StandardChange.changed_at < end,  # type: ignore[operator]
        )
        .order_by(StandardChange.changed_at, StandardChange.id)  # type: ignore[arg-type]
    ).all()
    held = {key: (None, artifact) for key, artifact in history}  # the last change wins
    lines = []
    order = [k for k in prompts.elements if k in held]
    order += sorted(k for k in held if k.startswith("#") and (k, held[k][1].id) in changed)[:5]
    counted: dict[int, int] = {}
    for key in order:
        _standard, artifact = held[key]
        assert artifact.id is not None
        if artifact.id not in counted:  # as of now: `forget` may have removed endorsers
            scored = standing(session, community, artifact)
            counted[artifact.id] = scored.endorsers if scored else 0
        if counted[artifact.id] < MIN_ENDORSERS:
            continue  # no longer a standard; the next share that earns it takes it
        lines.append(
            StandardLine(
                key=key,
                label=key_label(prompts, key),
                artifact=artifact,
                author=_name(session, artifact.author_id),
                endorsers=counted[artifact.id],
                new_this_week=(key, artifact.id) in changed,
            )
        )
    return lines
