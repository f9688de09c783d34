"""Weekly digests: the community's most peer-endorsed shares of one ISO week.

Ranking: distinct endorsers (withdrawn endorsements are deleted, so never counted), ties to
the newer share. Only shares with at least one endorsement appear.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.clock import iso_week, week_bounds
from bot.context import Context, UsageError
from bot.messages import Card, Field
from bot.prompts import PromptLibrary
from bot.router import Router
from storage.models import Artifact, CheckIn, Community, Digest, Endorsement, Member, Reflection
from storage.queries import enqueue


@dataclass(frozen=True)
class Ranked:
    artifact: Artifact
    endorsers: int
    note: str


def week_window(community: Community, week: str) -> tuple[datetime, datetime]:
    """The ISO week as UTC instants, in the community's own timezone."""
    monday, next_monday = week_bounds(week)
    zone = ZoneInfo(community.timezone)
    start = datetime.combine(monday, time(), zone).astimezone(UTC)
    end = datetime.combine(next_monday, time(), zone).astimezone(UTC)
    return start, end


def current_week(community: Community, now: datetime) -> str:
    return iso_week(now.astimezone(ZoneInfo(community.timezone)).date())


def rank_artifacts(
    session: Session, community: Community, week: str, *, limit: int | None = None
) -> list[Ranked]:
    start, end = week_window(community, week)
    count = sa.func.count(sa.distinct(Endorsement.endorser_id)).label("endorsers")
    rows = session.exec(
        select(Artifact, count)
        .join(Endorsement, Endorsement.artifact_id == Artifact.id)  # type: ignore[arg-type]
        .where(
            Artifact.community_id == community.id,
            Artifact.created_at >= start,  # type: ignore[operator]
            Artifact.created_at < end,  # type: ignore[operator]
            Endorsement.endorser_id != Artifact.author_id,
        )
        .group_by(Artifact.id)  # type: ignore[arg-type]
        .order_by(count.desc(), Artifact.created_at.desc(), Artifact.id.desc())  # type: ignore[attr-defined]
        .limit(limit or community.digest_size)
    ).all()
    ranked = []
    for artifact, endorsers in rows:
        note = session.exec(
            select(Endorsement.note)
            .where(Endorsement.artifact_id == artifact.id, Endorsement.note != "")
            .order_by(sa.func.length(Endorsement.note).desc(), Endorsement.id)
        ).first()
        ranked.append(Ranked(artifact=artifact, endorsers=int(endorsers), note=note or ""))
    return ranked


def participation(session: Session, community: Community, week: str) -> str:
    """Counts only: never anyone's reflection text."""
    start, end = week_window(community, week)
    checkins = session.exec(
        select(sa.func.count())
        .select_from(CheckIn)
        .where(
            CheckIn.community_id == community.id,
            CheckIn.status == "answered",
            CheckIn.answered_at >= start,  # type: ignore[operator]
            CheckIn.answered_at < end,  # type: ignore[operator]
        )
    ).one()
    reflections = session.exec(
        select(sa.func.count())
        .select_from(Reflection)
        .where(
            Reflection.community_id == community.id,
            Reflection.created_at >= start,  # type: ignore[operator]
            Reflection.created_at < end,  # type: ignore[operator]
        )
    ).one()
    shares = session.exec(
        select(sa.func.count())
        .select_from(Artifact)
        .where(
            Artifact.community_id == community.id,
            Artifact.created_at >= start,  # type: ignore[operator]
            Artifact.created_at < end,  # type: ignore[operator]
        )
    ).one()
    return f"This week: {shares} shares, {reflections} reflections, {checkins} check-ins answered."


def render_digest(
    session: Session, prompts: PromptLibrary, community: Community, week: str, ranked: list[Ranked]
) -> tuple[str, Card]:
    title = f"{community.name} — the week's best work ({week})"
    line = participation(session, community, week)
    if not ranked:
        body = (
            "No endorsed shares this week yet. Share your practice with `share <url>` and "
            f"endorse a peer's work with its Endorse button.\n{line}"
        )
        return f"{title}\n{body}", Card(title=title, body=body)
    fields = []
    lines = [title]
    for place, item in enumerate(ranked, 1):
        artifact = item.artifact
        author = session.get(Member, artifact.author_id)
        who = author.display_name if author and author.display_name else "a member"
        plural = "s" if item.endorsers != 1 else ""
        value = f"by {who} · {item.endorsers} endorsement{plural}"
        if artifact.url:
            value += f"\n{artifact.url}"
        if item.note:
            value += f"\n“{item.note[:300]}”"
        fields.append(Field(label=f"{place}. {artifact.title}", value=value))
        lines.append(f"{place}. {artifact.title} — {value}")
    lines.append(line)
    return "\n".join(lines), Card(title=title, fields=tuple(fields), footer=line)


def create_digest(
    session: Session, community: Community, week: str, now: datetime
) -> tuple[Digest, bool]:
    """The digest row for (community, week); True when this call created it."""
    existing = session.exec(
        select(Digest).where(Digest.community_id == community.id, Digest.iso_week == week)
    ).first()
    if existing is not None:
        return existing, False
    digest = Digest(community_id=community.id, iso_week=week, created_at=now)
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


def register(router: Router) -> None:
    @router.command(
        "digest preview",
        usage="digest preview [YYYY-Www]",
        summary="preview this week's digest (only you see it)",
        coach=True,
    )
    async def preview(ctx: Context, args: str) -> None:
        community = _need_community(ctx)
        week = _week_arg(args) or current_week(community, ctx.now)
        ranked = rank_artifacts(ctx.session, community, week)
        text, card = render_digest(ctx.session, ctx.prompts, community, week, ranked)
        ctx.reply(text, card)

    @router.command("digest post", summary="post this week's digest to the community", coach=True)
    async def post(ctx: Context, args: str) -> None:
        community = _need_community(ctx)
        week = current_week(community, ctx.now)
        if schedule_digest(ctx.session, community, week, ctx.now):
            ctx.wake_outbox = True
            ctx.reply(f"This week's digest ({week}) is on its way to the channel.")
        else:
            ctx.reply(
                f"The digest for {week} was already posted (or is on its way); I won't post it twice."
            )


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
