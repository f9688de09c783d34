"""How peer judgement becomes a score: the formula behind the digest and the standard.

Every endorsement of a share counts once per person (the database keeps one per artifact and
endorser; withdrawing deletes it; the author's own never counts) and weighs

    weight = (1 + OTHER_SCHOOL·[other school] + OTHER_ROLE·[other role] + NOTE·[a real note]
              + TRIED·[tried in class])
             × (1 − RING_DAMPING·ring)

- other school / other role: the endorser and the author both named a school (or a role) and
  they differ — judgement from outside one's own circle counts more. Unknown counts as the
  same circle, so leaving a profile blank never earns a bonus.
- a real note: at least NOTE_MIN_CHARS characters saying why (a bare click, or "nice!",
  earns no bonus).
- tried in class: the endorser also pressed "I'll try this" and later said what students did
  (an answered `Enactment`, bot/features/enactments.py). Using a peer's work in one's own class
  and reporting what students did is the strongest judgement there is, so it weighs as much as
  the endorsement itself; it is part of the endorser's one vote, so it is ring-damped like the
  rest and one person never adds it twice.
- ring: for the endorser E and the author X, over the endorsements given in the RING_WEEKS
  weeks up to the end of the share's week, the smaller of "the share of E's endorsements that
  went to X's work" and "the share of X's endorsements that went to E's work". Two people who only endorse each
  other have ring 1 and weigh a quarter; a fan who endorses one person they are never
  endorsed back by, or friends who also endorse many others, are barely touched.

A share's score is the sum of its endorsements' weights. The digest (`select_digest`) orders
by score, then by the newer share, then the higher id, and picks: a contributor at most once
(their best share), and — when none of the chosen is anyone's first share in the community —
the best endorsed first share takes the last place as a spotlight.

Cost: one query reads the week's endorsements (`ix_artifact_community_created`, then
`ix_endorsement_artifact_id`) and one its answered enactments (`ix_enactment_artifact_id`). Damping can only lower a weight, so the undamped sum bounds a
share's score from above: ring statistics (`ix_endorsement_endorser_created`, a RING_WEEKS
window) are loaded only for the endorsers of the shares that can still reach the digest, in
bound order, until no unscored share's bound can reach the last place. First shares are
checked with `ix_artifact_author_community_created`. So the time follows one week's
activity, never the length of the community's history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from bot.core.clock import iso_week, week_bounds
from storage.models import Artifact, Community, Enactment, Endorsement, Member

OTHER_SCHOOL = 0.5
OTHER_ROLE = 0.25
NOTE = 0.5
NOTE_MIN_CHARS = 20
TRIED = 1.0
RING_DAMPING = 0.75
RING_WEEKS = 4
_IN_CHUNK = 900  # ids per IN (…) list: well under every driver's parameter limit


def week_window(community: Community, week: str) -> tuple[datetime, datetime]:
    """The ISO week as UTC instants, in the community's own timezone."""
    monday, next_monday = week_bounds(week)
    zone = ZoneInfo(community.timezone)
    start = datetime.combine(monday, time(), zone).astimezone(UTC)
    end = datetime.combine(next_monday, time(), zone).astimezone(UTC)
    return start, end


def current_week(community: Community, now: datetime) -> str:
    """The ISO week `now` falls in, in the community's timezone."""
    return iso_week(now.astimezone(ZoneInfo(community.timezone)).date())


@dataclass(frozen=True)
class Vote:
    """One endorsement as the formula sees it."""

    endorser_id: int
    endorsement_id: int
    weight: float
    has_note: bool


@dataclass(frozen=True)
class Scored:
    artifact_id: int
    author_id: int
    created_at: datetime
    score: float
    votes: tuple[Vote, ...]  # in the order they were given

    @property
    def endorsers(self) -> int:
        return len(self.votes)


Circle = tuple[str, str]  # (school, role) as compared: stripped and casefolded


def circle(school: str | None, role: str | None) -> Circle:
    """A person's school and role as the formula compares them; unknown is ""."""
    return _circle(school), _circle(role)


def _circle(value: str | None) -> str:
    return (value or "").strip().casefold()


def undamped_weight(
    *, endorser: Circle, author: Circle, note_chars: int, tried: bool = False
) -> float:
    """An endorsement's weight before ring damping: 1, plus OTHER_SCHOOL and OTHER_ROLE when
    both named one and they differ, plus NOTE for a real note, plus TRIED when the endorser
    tried the share in class and said what students did."""
    weight = 1.0 + (TRIED if tried else 0.0)
    if endorser[0] and author[0] and endorser[0] != author[0]:
        weight += OTHER_SCHOOL
    if endorser[1] and author[1] and endorser[1] != author[1]:
        weight += OTHER_ROLE
    if note_chars >= NOTE_MIN_CHARS:
        weight += NOTE
    return weight


def ring_factor(ring: float) -> float:
    """What ring damping leaves of a weight: 1 for no ring, 1 - RING_DAMPING for a pair who
    only endorse each other."""
    return 1.0 - RING_DAMPING * min(max(ring, 0.0), 1.0)


def endorsement_weight(
    *,
    endorser_school: str | None,
    endorser_role: str | None,
    author_school: str | None,
    author_role: str | None,
    note_chars: int,
    ring: float,
    tried: bool = False,
) -> float:
    """The weight of one endorsement (see the module docstring): the digest computes it in
    two steps, `undamped_weight` for every endorsement, `ring_factor` for the shares that
    can still reach it."""
    weight = undamped_weight(
        endorser=circle(endorser_school, endorser_role),
        author=circle(author_school, author_role),
        note_chars=note_chars,
        tried=tried,
    )
    return weight * ring_factor(ring)


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _IN_CHUNK):
        yield list(ids[start : start + _IN_CHUNK])


class RingStats:
    """Who endorsed whose work in a window of weeks, for the pairs being scored (in every
    community: two people who only endorse each other are a ring wherever they do it).

    Read from `ix_endorsement_endorser_created` alone (each row carries its artifact's
    author), in three small steps: the authors' endorsements back to their endorsers first;
    only for the pairs that endorse each other, how much each of them endorsed in all."""

    def __init__(
        self,
        pairs: dict[tuple[int, int], int] | None = None,
        given: dict[int, int] | None = None,
    ) -> None:
        self.pairs = pairs or {}  # (endorser, author) -> endorsements in the window
        self.given = given or {}  # endorser -> endorsements in the window

    @classmethod
    def load(
        cls,
        session: Session,
        *,
        pairs: Iterable[tuple[int, int]],
        start: datetime,
        end: datetime,
    ) -> RingStats:
        """What `ring` needs for these (endorser, author) pairs, in [start, end)."""
        wanted = set(pairs)
        endorsers = {e for e, _ in wanted}
        authors = {x for _, x in wanted}
        back = _pair_counts(session, endorsers=authors, authors=endorsers, start=start, end=end)
        mutual = {(e, x) for e, x in wanted if back.get((x, e))}
        if not mutual:
            return cls()
        forward = _pair_counts(
            session,
            endorsers={e for e, _ in mutual},
            authors={x for _, x in mutual},
            start=start,
            end=end,
        )
        members = sorted({e for e, _ in mutual} | {x for _, x in mutual})
        given: dict[int, int] = {}
        for chunk in _chunks(members):
            rows = session.connection().execute(
                sa.select(Endorsement.endorser_id, sa.func.count())  # type: ignore[call-overload]
                .where(
                    Endorsement.endorser_id.in_(chunk),  # type: ignore[attr-defined]
                    *_in_window(start, end),
                )
                .group_by(Endorsement.endorser_id)
            )
            given.update((endorser, int(count)) for endorser, count in rows.all())
        return cls({**back, **forward}, given)

    def ring(self, endorser: int, author: int) -> float:
        """How much of E's and X's endorsing is just each other (0..1, the smaller side)."""
        to_author = self.pairs.get((endorser, author), 0)
        back = self.pairs.get((author, endorser), 0)
        if not to_author or not back:
            return 0.0
        return min(to_author / self.given[endorser], back / self.given[author])


def _in_window(start: datetime, end: datetime) -> list[Any]:
    return [
        Endorsement.created_at >= start,  # type: ignore[operator]
        Endorsement.created_at < end,  # type: ignore[operator]
        Endorsement.author_id.is_not(None),  # type: ignore[union-attr]
        Endorsement.author_id != Endorsement.endorser_id,
    ]


def _pair_counts(
    session: Session, *, endorsers: set[int], authors: set[int], start: datetime, end: datetime
) -> dict[tuple[int, int], int]:
    """Endorsements in [start, end) by each of `endorsers` of work by each of `authors`."""
    counts: dict[tuple[int, int], int] = {}
    for chunk in _chunks(sorted(endorsers)):
        for of in _chunks(sorted(authors)):
            rows = session.connection().execute(
                sa.select(Endorsement.endorser_id, Endorsement.author_id, sa.func.count())  # type: ignore[call-overload]
                .where(
                    Endorsement.endorser_id.in_(chunk),  # type: ignore[attr-defined]
                    Endorsement.author_id.in_(of),  # type: ignore[union-attr]
                    *_in_window(start, end),
                )
                .group_by(Endorsement.endorser_id, Endorsement.author_id)
            )
            counts.update(((e, x), int(n)) for e, x, n in rows.all())
    return counts


@dataclass
class _Share:
    """A share of the window with its undamped votes: (endorser, endorsement id, weight
    before damping, note characters). `bound` is their sum, the most its score can be."""

    artifact_id: int
    author_id: int
    created_at: datetime
    votes: list[tuple[int, int, float, int]]
    bound: float = 0.0

    @property
    def order(self) -> tuple[float, datetime, int]:
        return (round(self.bound, 6), self.created_at, self.artifact_id)


def _key(item: Scored) -> tuple[float, datetime, int]:
    return (item.score, item.created_at, item.artifact_id)


class Board:
    """One window's endorsed shares: bounds for all, exact scores computed on demand."""

    def __init__(
        self,
        session: Session,
        *,
        community_id: int,
        start: datetime,
        end: datetime,
        artifact_ids: Sequence[int] | None = None,
        ring_end: datetime | None = None,
    ) -> None:
        self.session = session
        self.community_id = community_id
        self.start, self.end = start, end
        self.ring_end = ring_end or end
        self.shares = self._load(start, end, artifact_ids)
        self.by_bound = sorted(self.shares.values(), key=lambda s: s.order, reverse=True)
        self.exact: dict[int, Scored] = {}

    def _load(
        self, start: datetime, end: datetime, artifact_ids: Sequence[int] | None
    ) -> dict[int, _Share]:
        if artifact_ids is not None and not artifact_ids:
            return {}
        in_window = [
            Artifact.community_id == self.community_id,
            Artifact.created_at >= start,  # type: ignore[operator]
            Artifact.created_at < end,  # type: ignore[operator]
        ]
        if artifact_ids is not None:
            in_window.append(Artifact.id.in_(list(artifact_ids)))  # type: ignore[union-attr]
        connection = self.session.connection()
        note_chars = sa.func.length(sa.func.trim(Endorsement.note))
        votes = connection.execute(
            sa.select(  # type: ignore[call-overload]
                Endorsement.artifact_id,
                Endorsement.endorser_id,
                Endorsement.id,
                note_chars,
                Member.school,
                Member.role,
            )
            .join(Artifact, Artifact.id == Endorsement.artifact_id)  # type: ignore[arg-type]
            .join(Member, Member.id == Endorsement.endorser_id)  # type: ignore[arg-type]
            .where(*in_window, Endorsement.endorser_id != Artifact.author_id)
        ).all()
        if not votes:
            return {}
        tried = set(
            connection.execute(
                sa.select(Enactment.artifact_id, Enactment.member_id)  # type: ignore[call-overload]
                .join(Artifact, Artifact.id == Enactment.artifact_id)  # type: ignore[arg-type]
                .where(*in_window, Enactment.status == "answered")
            ).all()
        )
        endorsed = {row[0] for row in votes}
        circles: dict[tuple[str | None, str | None], Circle] = {}

        def circle_of(school: str | None, role: str | None) -> Circle:
            found = circles.get((school, role))
            if found is None:
                found = circles[(school, role)] = circle(school, role)
            return found

        shares: dict[int, _Share] = {}
        authors: dict[int, Circle] = {}
        for artifact_id, author_id, created_at, school, role in connection.execute(
            sa.select(  # type: ignore[call-overload]
                Artifact.id, Artifact.author_id, Artifact.created_at, Member.school, Member.role
            )
            .join(Member, Member.id == Artifact.author_id)  # type: ignore[arg-type]
            .where(*in_window)
        ):
            if artifact_id in endorsed:
                shares[artifact_id] = _Share(artifact_id, author_id, created_at, [])
                authors[author_id] = circle_of(school, role)
        # Each endorsement's weight before damping (`endorsement_weight`, first step); the
        # circles are read once per distinct school and role: this loop runs once per
        # endorsement of the week.
        for artifact_id, endorser, endorsement, chars, school, role in votes:
            share = shares.get(artifact_id)
            if share is None:
                continue  # removed between the two reads (`forget`)
            chars = chars or 0
            weight = undamped_weight(
                endorser=circle_of(school, role),
                author=authors.get(share.author_id, ("", "")),
                note_chars=chars,
                tried=(artifact_id, endorser) in tried,
            )
            share.votes.append((endorser, endorsement, weight, chars))
            share.bound += weight
        return shares

    def score(self, shares: Iterable[_Share]) -> None:
        """Exact (ring-damped) scores for `shares`, with one query for their ring stats."""
        todo = [s for s in shares if s.artifact_id not in self.exact]
        if not todo:
            return
        stats = RingStats.load(
            self.session,
            pairs={(v[0], s.author_id) for s in todo for v in s.votes},
            start=self.ring_end - timedelta(weeks=RING_WEEKS),
            end=self.ring_end,
        )
        for share in todo:
            votes = []
            for endorser, endorsement, weight, chars in share.votes:
                # `endorsement_weight`, second step.
                damped = weight * ring_factor(stats.ring(endorser, share.author_id))
                votes.append(Vote(endorser, endorsement, damped, chars > 0))
            votes.sort(key=lambda v: v.endorsement_id)
            self.exact[share.artifact_id] = Scored(
                artifact_id=share.artifact_id,
                author_id=share.author_id,
                created_at=share.created_at,
                # Rounded so the same endorsements always tie, whatever order they were added.
                score=round(sum(v.weight for v in votes), 6),
                votes=tuple(votes),
            )

    def all_exact(self) -> list[Scored]:
        self.score(self.by_bound)
        return sorted(self.exact.values(), key=_key, reverse=True)

    def _merit(self, size: int) -> tuple[list[Scored], int]:
        """The best share of each author, best first, until `size` are chosen — exact once
        no unscored share's bound could reach the last place. (chosen, shares scored)"""
        scored = 0
        batch = max(4 * size, 20)
        while True:
            self.score(self.by_bound[scored : scored + batch])
            scored = min(len(self.by_bound), scored + batch)
            chosen = _each_author_once(sorted(self.exact.values(), key=_key, reverse=True), size)
            if scored >= len(self.by_bound):
                return chosen, scored
            nxt = self.by_bound[scored].order
            if len(chosen) == size and nxt < _key(chosen[-1]):
                return chosen, scored
            batch *= 2

    def select(self, size: int) -> list[tuple[Scored, bool]]:
        """The digest: (share, spotlight) pairs, best first."""
        if not self.shares:
            return []
        chosen, _ = self._merit(size)
        picked = [(item, False) for item in chosen]
        if len(chosen) < size or size < 2:
            return picked
        firsts = first_shares(
            self.session, community_id=self.community_id, start=self.start, end=self.end
        )
        if any(item.artifact_id in firsts for item in chosen):
            return picked
        authors = {item.author_id for item in chosen}
        newcomers = [
            s for s in self.by_bound if s.artifact_id in firsts and s.author_id not in authors
        ]
        if newcomers:
            self.score(newcomers)
            best = max((self.exact[s.artifact_id] for s in newcomers), key=_key)
            picked[-1] = (best, True)
        return picked


def _each_author_once(ranked: list[Scored], size: int) -> list[Scored]:
    chosen: list[Scored] = []
    authors: set[int] = set()
    for item in ranked:
        if item.author_id not in authors:
            authors.add(item.author_id)
            chosen.append(item)
            if len(chosen) == size:
                break
    return chosen


def select_digest(
    session: Session, *, community_id: int, start: datetime, end: datetime, size: int
) -> list[tuple[Scored, bool]]:
    """The week's digest choice: (share, spotlight) pairs, best first (module docstring)."""
    board = Board(session, community_id=community_id, start=start, end=end)
    return board.select(size)


def score_shares(
    session: Session,
    *,
    community_id: int,
    start: datetime,
    end: datetime,
    artifact_ids: Sequence[int] | None = None,
    ring_end: datetime | None = None,
) -> list[Scored]:
    """Exact scores of the community's endorsed shares created in [start, end) (or only
    `artifact_ids` among them), best first: score, then newer, then higher id."""
    board = Board(
        session,
        community_id=community_id,
        start=start,
        end=end,
        artifact_ids=artifact_ids,
        ring_end=ring_end,
    )
    return board.all_exact()


def first_shares(
    session: Session, *, community_id: int, start: datetime, end: datetime
) -> set[int]:
    """The shares created in [start, end) that are their author's first in this community:
    one probe of `ix_artifact_author_community_created` per share (the author's earliest)."""
    earliest = aliased(Artifact)
    first = (
        sa.select(earliest.id)  # type: ignore[call-overload]
        .where(earliest.author_id == Artifact.author_id, earliest.community_id == community_id)
        .order_by(earliest.created_at, earliest.id)
        .limit(1)
        .correlate(Artifact)
        .scalar_subquery()
    )
    rows = session.connection().execute(
        sa.select(Artifact.id, first).where(  # type: ignore[call-overload]
            Artifact.community_id == community_id,
            Artifact.created_at >= start,  # type: ignore[operator]
            Artifact.created_at < end,  # type: ignore[operator]
        )
    )
    return {artifact_id for artifact_id, earliest_id in rows if artifact_id == earliest_id}


def best_note(session: Session, scored: Scored) -> str:
    """The note of the weightiest endorsement that has one (then the longest, then the first)."""
    noted = [v for v in scored.votes if v.has_note]
    if not noted:
        return ""
    notes = dict(
        session.exec(
            select(Endorsement.id, Endorsement.note).where(
                Endorsement.id.in_([v.endorsement_id for v in noted])  # type: ignore[union-attr]
            )
        ).all()
    )
    best = max(
        noted,
        key=lambda v: (
            round(v.weight, 6),
            len(notes.get(v.endorsement_id, "").strip()),
            -v.endorsement_id,
        ),
    )
    return notes.get(best.endorsement_id, "").strip()
