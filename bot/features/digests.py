"""Weekly digests: the community's best peer-judged work of one ISO week, the standards,
and a participation line (counts only, never anyone's reflection, and no count of fewer
than PLNBOT_MIN_GROUP people: bot/scoring/small_groups.py).

The choice is bot/scoring/ranking.py's `select_digest` (the formula is documented there and in the
README): the week's endorsed shares by score, ties to the newer share, each contributor once,
and a spotlight for a member's first share. The introduction is the model's (prepared and
cached by `prepare_intro`) or the template in prompts/llm.yaml.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.core.clock import week_bounds, week_of
from bot.core.context import Context, UsageError
from bot.core.kinds import Delivery, Due
from bot.core.messages import Card, Field, Link, Message
from bot.core.router import Router
from bot.features.evidence import has_student_evidence
from bot.scoring.ranking import best_note, current_week, select_digest, week_window
from bot.scoring.small_groups import count_of, held_back
from bot.scoring.standards import standards_for_digest
from bot.services.llm import (
    Asker,
    IntroItem,
    ModelClient,
    Scrubber,
    cached_intro,
    intros_cached,
    template,
)
from bot.services.prompts import PromptLibrary
from storage.columns import saved_id
from storage.db import Database
from storage.models import (
    Artifact,
    CheckIn,
    Community,
    Digest,
    Endorsement,
    Member,
    Membership,
    OutboxMessage,
    Reflection,
)
from storage.queries import community_members, enqueue

MAX_NAMES = 5


@dataclass(frozen=True)
class Ranked:
    artifact: Artifact
    endorsers: int
    note: str
    score: float = 0.0
    spotlight: bool = False  # a member's first share, given the last place
    endorser_names: tuple[str, ...] = ()


def rank_artifacts(
    session: Session, community: Community, week: str, *, limit: int | None = None
) -> list[Ranked]:
    """The week's digest entries, best first (bot/scoring/ranking.py: `select_digest`)."""
    assert community.id is not None
    start, end = week_window(community, week)
    picked = select_digest(
        session,
        community_id=community.id,
        start=start,
        end=end,
        size=limit or community.digest_size,
    )
    if not picked:
        return []
    artifacts = {
        a.id: a
        for a in session.exec(
            select(Artifact).where(Artifact.id.in_([s.artifact_id for s, _ in picked]))  # type: ignore[union-attr]
        )
    }
    voters = {v.endorser_id for s, _ in picked for v in s.votes[:MAX_NAMES]}
    names = dict(
        session.exec(
            select(Member.id, Member.display_name).where(Member.id.in_(voters))  # type: ignore[union-attr]
        ).all()
    )
    return [
        Ranked(
            artifact=artifacts[item.artifact_id],
            endorsers=item.endorsers,
            note=best_note(session, item),
            score=item.score,
            spotlight=spotlight,
            endorser_names=tuple(
                names.get(v.endorser_id) or "a peer" for v in item.votes[:MAX_NAMES]
            ),
        )
        for item, spotlight in picked
    ]


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def participation(session: Session, community: Community, week: str, *, min_group: int) -> str:
    """Counts only: never anyone's reflection text (private ones are counted, not shown).

    Shares are posted in the channel by name and are counted as they are. Reflections and
    answered check-ins are figures about the people who wrote or answered them: shown only
    when those are at least `min_group` (PLNBOT_MIN_GROUP, bot/scoring/small_groups.py), so a quiet
    week in a small community never points at one person."""
    start, end = week_window(community, week)
    members = select(Membership.member_id).where(Membership.community_id == community.id)
    checkins = count_of(
        session.exec(
            select(CheckIn.member_id).where(
                # Sent to this community, or self-started (in a DM) by one of its members.
                sa.or_(
                    col(CheckIn.community_id) == community.id,
                    sa.and_(
                        CheckIn.community_id.is_(None),  # type: ignore[union-attr]
                        CheckIn.member_id.in_(members),  # type: ignore[attr-defined]
                    ),
                ),
                CheckIn.status == "answered",
                CheckIn.answered_at >= start,  # type: ignore[operator]
                CheckIn.answered_at < end,  # type: ignore[operator]
            )
        ).all(),
        min_group=min_group,
    )
    reflections = count_of(
        session.exec(
            select(Reflection.member_id).where(
                Reflection.community_id == community.id,
                Reflection.created_at >= start,  # type: ignore[operator]
                Reflection.created_at < end,  # type: ignore[operator]
            )
        ).all(),
        min_group=min_group,
    )
    shares = session.exec(
        select(sa.func.count())
        .select_from(Artifact)
        .where(
            Artifact.community_id == community.id,
            Artifact.created_at >= start,  # type: ignore[operator]
            Artifact.created_at < end,  # type: ignore[operator]
        )
    ).one()
    shown = [_count(shares, "share")]
    held = []
    if reflections.value is not None:
        shown.append(_count(reflections.value, "reflection"))
    else:
        held.append("reflections")
    if checkins.value is not None:
        shown.append(_count(checkins.value, "check-in") + " answered")
    else:
        held.append("check-ins")
    line = "This week: " + ", ".join(shown)
    if held:
        line += "; " + " and ".join(held) + ": " + held_back(min_group, once="taken part")
    return line + "."


def _names(names: tuple[str, ...], total: int) -> str:
    shown = list(names)
    if total > len(shown):
        shown.append(f"{total - len(shown)} more")
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _author(session: Session, artifact: Artifact) -> str:
    author = session.get(Member, artifact.author_id)
    return author.display_name if author and author.display_name else "a member"


def intro_items(
    session: Session, prompts: PromptLibrary, community: Community, ranked: list[Ranked]
) -> list[IntroItem]:
    """What the model may read for the introduction: titles, elements and endorsement notes,
    scrubbed of every community member's name and id."""
    assert community.id is not None
    people = community_members(session, community_id=community.id)
    people_ids = {p.id for p in people}
    extra = {r.artifact.author_id for r in ranked} - people_ids
    if extra:
        people += list(session.exec(select(Member).where(Member.id.in_(extra))))  # type: ignore[union-attr]
    scrub = Scrubber([p.display_name for p in people] + [p.user_id for p in people])
    items = []
    for item in ranked:
        assert item.artifact.id is not None
        notes = session.exec(
            select(Endorsement.note)
            .where(Endorsement.artifact_id == item.artifact.id, Endorsement.note != "")
            .order_by(Endorsement.id)  # type: ignore[arg-type]
            .limit(3)
        ).all()
        items.append(
            IntroItem(
                title=scrub(item.artifact.title, 200),
                element=prompts.element_name(item.artifact.element),
                endorsers=item.endorsers,
                notes=tuple(n for n in (scrub(note) for note in notes) if n),
            )
        )
    return items


async def prepare_intro(
    session: Session,
    prompts: PromptLibrary,
    llm: ModelClient,
    community: Community,
    week: str,
    ranked: list[Ranked],
    *,
    asker: Asker,
) -> str | None:
    """Ask the model for the week's introduction (cached per community, week and notes);
    None when the model is off or failing — the template is used then. `asker`: how the
    model is asked with the caller's transaction ended (bot/services/llm.py: `Asker`)."""
    if not llm.enabled or not ranked or community.id is None:
        return None
    items = intro_items(session, prompts, community, ranked)
    return await llm.digest_intro(
        session, community_id=community.id, week=week, items=items, asker=asker
    )


def render_digest(
    session: Session,
    prompts: PromptLibrary,
    community: Community,
    week: str,
    ranked: list[Ranked],
    *,
    intro: str | None = None,
    min_group: int,
) -> tuple[str, Card]:
    """The digest as text and as a neutral card: introduction, the ranked shares (author,
    endorsers, best note), the standards, and the participation line (`min_group`: see
    `participation`)."""
    title = f"{community.name} — the week's best work ({week_of(week)})"
    line = participation(session, community, week, min_group=min_group)
    standards = standards_for_digest(session, prompts, community, week)
    standard_fields = []
    for standard in standards:
        value = f"“{standard.artifact.title}” by {standard.author} · " + _count(
            standard.endorsers, "endorsement"
        )
        if standard.new_this_week:
            value += " — new this week"
        label = (
            "New best for " if standard.key.startswith("#") else "Standard · "
        ) + standard.label
        standard_fields.append(Field(label=label, value=value))
    if not ranked:
        body = (
            "No endorsed shares this week yet. Share your practice with `share <url>` and "
            f"endorse a peer's work with its Endorse button.\n{line}"
        )
        lines = [title, body] + [f"{f.label}: {f.value}" for f in standard_fields]
        return "\n".join(lines), Card(title=title, body=body, fields=tuple(standard_fields))
    if intro is None and community.id is not None and intros_cached(session, community.id, week):
        # The model's introduction when one was prepared for exactly these notes.
        items = intro_items(session, prompts, community, ranked)
        intro = cached_intro(session, community_id=community.id, week=week, items=items)
    if intro is None:
        notes = sum(1 for item in ranked if item.note)
        start, end = week_window(community, week)
        total = session.exec(
            select(sa.func.count())
            .select_from(Artifact)
            .where(
                Artifact.community_id == community.id,
                Artifact.created_at >= start,  # type: ignore[operator]
                Artifact.created_at < end,  # type: ignore[operator]
            )
        ).one()
        # "stood out" only when there was something to stand out from
        intro = template("digest_intro", shares=len(ranked), notes=notes, total=int(total))
    fields = []
    lines = [title, intro]
    for place, item in enumerate(ranked, 1):
        artifact = item.artifact
        value = f"by {_author(session, artifact)} · " + _count(item.endorsers, "endorsement")
        if item.endorser_names:
            value += f" from {_names(item.endorser_names, item.endorsers)}"
        if has_student_evidence(session, artifact):
            value += " · with student evidence"
        if item.spotlight:
            value += "\nFirst share in this community — welcome!"
        if artifact.url:
            value += f"\n{artifact.url}"
        if item.note:
            value += f"\n“{item.note[:300]}”"
        label = f"{place}. {artifact.title}"
        fields.append(Field(label=label, value=value))
        lines.append(f"{label} — {value}")
    lines += [f"{f.label}: {f.value}" for f in standard_fields]
    lines.append(line)
    card = Card(title=title, body=intro, fields=(*fields, *standard_fields), footer=line)
    return "\n".join(lines), card


def create_digest(
    session: Session, community: Community, week: str, now: datetime
) -> tuple[Digest, bool]:
    """The digest row for (community, week); True when this call created it."""
    existing = session.exec(
        select(Digest).where(Digest.community_id == community.id, Digest.iso_week == week)
    ).first()
    if existing is not None:
        return existing, False
    digest = Digest(community_id=saved_id(community), iso_week=week, created_at=now)
    try:
        with session.begin_nested():
            session.add(digest)
            session.flush()
    except sa.exc.IntegrityError:
        again = session.exec(
            select(Digest).where(Digest.community_id == community.id, Digest.iso_week == week)
        ).one()
        return again, False
    return digest, True


def schedule_digest(session: Session, community: Community, week: str, now: datetime) -> bool:
    """Queue the week's digest once; False when it was already queued or posted."""
    digest, created = create_digest(session, community, week, now)
    assert digest.id is not None
    queued = enqueue(
        session,
        key=f"digest:{community.id}:{week}",
        workspace_id=community.workspace_id,
        kind="digest",
        object_id=digest.id,
        channel_id=community.channel_id,
        now=now,
    )
    return created or queued


def _need_community(ctx: Context) -> Community:
    if ctx.community is None:
        raise UsageError("Run this in a community channel (set one up with `setup`).")
    return ctx.community


def _week_arg(args: str) -> str | None:
    if not args:
        return None
    try:
        week_bounds(args.strip())
    except ValueError as exc:
        raise UsageError(
            "Usage: `digest preview [YYYY-Www]`, e.g. `digest preview 2026-W48`."
        ) from exc
    return args.strip()


async def preview_digest(ctx: Context, args: str) -> None:
    """`digest preview [week]`: the digest as it would post, to the coach only."""
    community = _need_community(ctx)
    week = _week_arg(args) or current_week(community, ctx.now)
    ranked = rank_artifacts(ctx.session, community, week)
    intro = await prepare_intro(
        ctx.session, ctx.prompts, ctx.llm, community, week, ranked, asker=ctx.ask
    )
    text, card = render_digest(
        ctx.session,
        ctx.prompts,
        community,
        week,
        ranked,
        intro=intro,
        min_group=ctx.settings.min_group,
    )
    ctx.reply(text, card)


async def post_digest(ctx: Context, args: str) -> None:
    """`digest post`: queue this week's digest for the channel, once per week."""
    community = _need_community(ctx)
    week = current_week(community, ctx.now)
    if schedule_digest(ctx.session, community, week, ctx.now):
        ctx.wake_outbox = True
        ctx.reply(f"This week's digest ({week_of(week)}) is on its way to the channel.")
    else:
        ctx.reply(
            f"The digest for the {week_of(week)} was already posted (or is on its way); I won't post it twice."
        )


def draw_digest(due: Due) -> Delivery | None:
    """The week's digest, ranked when it is sent (so late endorsements count)."""
    session = due.session
    digest = session.get(Digest, due.row.object_id)
    community = session.get(Community, digest.community_id) if digest else None
    if digest is None or community is None:
        return None
    ranked = rank_artifacts(session, community, digest.iso_week)
    text, card = render_digest(
        session, due.prompts, community, digest.iso_week, ranked, min_group=due.min_group
    )
    digest.artifact_ids = ",".join(str(r.artifact.id) for r in ranked)
    digest.rendered = text
    session.add(digest)
    channel = due.channel
    return Delivery(
        message=Message(
            text=text,
            card=card,
            conversation=channel,
            link=Link(kind="digest", object_id=digest.id or 0),
        ),
        conversation=channel,
    )


async def prepare_digest(
    db: Database, prompts: PromptLibrary, llm: ModelClient, row: OutboxMessage
) -> None:
    """The model's introduction, asked before the digest is drawn (cached, so `draw_digest`
    finds it); the transaction is committed before the model is asked."""
    with db.session() as session:
        digest = session.get(Digest, row.object_id)
        community = session.get(Community, digest.community_id) if digest else None
        if digest is None or community is None:
            return
        ranked = rank_artifacts(session, community, digest.iso_week)

        async def commit_then_ask(key: Hashable, ask: Callable[[], Awaitable[Any]]) -> Any:
            # This unit's reads are done: commit them, so the database holds no lock while
            # the model answers; what is recorded after goes in the session's next one.
            session.commit()
            return await ask()

        await prepare_intro(
            session, prompts, llm, community, digest.iso_week, ranked, asker=commit_then_ask
        )


def register(router: Router) -> None:
    router.command(
        "digest preview",
        preview_digest,
        usage="digest preview [YYYY-Www]",
        summary="preview this week's digest (only you see it)",
        coach=True,
    )
    router.command(
        "digest post",
        post_digest,
        summary="post this week's digest to the community",
        coach=True,
    )
    router.outbox.add("digest", draw_digest, prepare=prepare_digest)
