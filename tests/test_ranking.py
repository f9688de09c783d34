"""Ranking properties on crafted data: distinct peers, other schools and roles, real notes,
ring damping, one place per contributor, a spotlight for first shares, withdrawals and ties.

Rows are written straight into a real database (no dialogue), so each property is shown with
the fewest shares that exhibit it. Week 2026-W48 runs Monday 23 to Sunday 29 November (UTC).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from bot.features.digests import rank_artifacts, render_digest
from bot.scoring.ranking import (
    Scored,
    endorsement_weight,
    score_shares,
    select_digest,
    week_window,
)
from bot.services.prompts import PromptLibrary
from storage.db import Database
from storage.models import Artifact, Community, Enactment, Endorsement, Member, Workspace

WEEK = "2026-W48"
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
NOTE = "I'd borrow the three-question format for my Year 8s"  # long enough to count


@dataclass
class Crafted:
    """A community and helpers that write members, shares and endorsements directly."""

    db: Database
    community_id: int = 0
    workspace_id: int = 0
    members: dict[str, int] = field(default_factory=dict)
    shares: dict[str, int] = field(default_factory=dict)
    _minutes: itertools.count = field(default_factory=lambda: itertools.count())

    def setup(self, digest_size: int = 5) -> Crafted:
        with self.db.session() as session:
            workspace = Workspace(platform="test", external_id="W1")
            session.add(workspace)
            session.flush()
            community = Community(
                workspace_id=workspace.id,
                channel_id="C_PLN",
                name="Math PLN",
                digest_size=digest_size,
            )
            session.add(community)
            session.flush()
            self.workspace_id, self.community_id = workspace.id or 0, community.id or 0
        return self

    def member(
        self, name: str, school: str | None = "Hill School", role: str | None = "teacher"
    ) -> None:
        with self.db.session() as session:
            member = Member(
                workspace_id=self.workspace_id,
                user_id=f"U_{name.upper()}",
                display_name=name,
                school=school,
                role=role,
            )
            session.add(member)
            session.flush()
            self.members[name] = member.id or 0

    def share(self, author: str, title: str, at: datetime | None = None) -> None:
        """A share by `author`; by default each new share is a minute newer than the last."""
        at = at or MONDAY + timedelta(minutes=next(self._minutes))
        with self.db.session() as session:
            artifact = Artifact(
                community_id=self.community_id,
                author_id=self.members[author],
                title=title,
                url=f"https://example.org/{len(self.shares)}",
                created_at=at,
            )
            session.add(artifact)
            session.flush()
            self.shares[title] = artifact.id or 0

    def endorse(
        self, endorser: str, title: str, note: str = "", at: datetime | None = None
    ) -> None:
        with self.db.session() as session:
            session.add(
                Endorsement(
                    artifact_id=self.shares[title],
                    endorser_id=self.members[endorser],
                    note=note,
                    created_at=at or MONDAY + timedelta(days=2),
                )
            )

    def tried(self, peer: str, title: str, answer: str = "") -> None:
        """`peer` pressed "I'll try this"; with an `answer` they later said what students did."""
        with self.db.session() as session:
            session.add(
                Enactment(
                    artifact_id=self.shares[title],
                    member_id=self.members[peer],
                    due_on=(MONDAY + timedelta(days=4)).date(),
                    status="answered" if answer else "planned",
                    answer=answer,
                    answered_at=MONDAY + timedelta(days=4) if answer else None,
                )
            )

    def withdraw(self, endorser: str, title: str) -> None:
        with self.db.session() as session:
            row = session.exec(
                select(Endorsement).where(
                    Endorsement.artifact_id == self.shares[title],
                    Endorsement.endorser_id == self.members[endorser],
                )
            ).one()
            session.delete(row)

    def titles(self, week: str = WEEK) -> list[str]:
        with self.db.session() as session:
            community = session.get(Community, self.community_id)
            assert community is not None
            return [r.artifact.title for r in rank_artifacts(session, community, week)]

    def scores(self) -> dict[str, float]:
        with self.db.session() as session:
            community = session.get(Community, self.community_id)
            assert community is not None
            start, end = week_window(community, WEEK)
            by_id = {v: k for k, v in self.shares.items()}
            return {
                by_id[s.artifact_id]: s.score
                for s in score_shares(session, community_id=self.community_id, start=start, end=end)
            }


@pytest.fixture
def crafted(db: Database) -> Crafted:
    made = Crafted(db).setup()
    for name in ("Ana", "Ben", "Cara", "Dan", "Eve", "Fay", "Gus", "Hal"):
        made.member(name)
    return made


def test_distinct_peers_count_and_the_authors_own_endorsement_never_does(
    crafted: Crafted,
) -> None:
    crafted.share("Ana", "Exit tickets")
    crafted.share("Ben", "Gallery walk")
    for peer in ("Cara", "Dan"):
        crafted.endorse(peer, "Exit tickets")
    crafted.endorse("Cara", "Gallery walk")
    crafted.endorse("Ben", "Gallery walk")  # written around the bot's refusal: still ignored
    assert crafted.titles() == ["Exit tickets", "Gallery walk"]
    assert crafted.scores() == {"Exit tickets": 2.0, "Gallery walk": 1.0}


def test_a_withdrawn_endorsement_no_longer_counts(crafted: Crafted) -> None:
    crafted.share("Ana", "Exit tickets")
    crafted.share("Ben", "Gallery walk")
    crafted.endorse("Cara", "Exit tickets")
    for peer in ("Cara", "Dan", "Eve"):
        crafted.endorse(peer, "Gallery walk")
    assert crafted.titles() == ["Gallery walk", "Exit tickets"]
    crafted.withdraw("Dan", "Gallery walk")
    crafted.withdraw("Eve", "Gallery walk")
    # One each now: the tie goes to the newer share, Gallery walk.
    assert crafted.titles() == ["Gallery walk", "Exit tickets"]
    crafted.withdraw("Cara", "Gallery walk")
    assert crafted.titles() == ["Exit tickets"]  # no endorsement left: not in the digest


def test_ties_go_to_the_newer_share(crafted: Crafted) -> None:
    crafted.share("Ana", "Older")
    crafted.share("Ben", "Newer")
    crafted.share("Cara", "Newest")
    # Equal weights summed in different orders still tie exactly.
    for title, peers in (("Older", "Dan Eve"), ("Newer", "Eve Dan"), ("Newest", "Fay Gus")):
        for peer in peers.split():
            crafted.endorse(peer, title)
    assert crafted.titles() == ["Newest", "Newer", "Older"]


def test_endorsements_from_another_school_or_role_count_more(crafted: Crafted) -> None:
    crafted.member("Olu", school="River Academy")  # another school
    crafted.member("Pia", role="principal")  # the same school, another role
    crafted.member("Quin", school=None)  # unknown school: counts as the same circle
    crafted.share("Ana", "Seen from afar")  # oldest
    crafted.share("Ben", "Seen by the principal")
    crafted.share("Cara", "Seen by the unknown")
    crafted.share("Dan", "Seen next door")  # newest
    crafted.endorse("Olu", "Seen from afar")
    crafted.endorse("Pia", "Seen by the principal")
    crafted.endorse("Quin", "Seen by the unknown")
    crafted.endorse("Eve", "Seen next door")
    assert crafted.scores() == {
        "Seen from afar": 1.5,
        "Seen by the principal": 1.25,
        "Seen next door": 1.0,
        "Seen by the unknown": 1.0,
    }
    assert crafted.titles() == [
        "Seen from afar",
        "Seen by the principal",
        "Seen next door",  # ties with the unknown school's, and is newer
        "Seen by the unknown",
    ]
    # Two peers from one's own school still outweigh one from afar: people count first.
    crafted.share("Eve", "Two at home")
    crafted.endorse("Fay", "Two at home")
    crafted.endorse("Gus", "Two at home")
    assert crafted.titles()[:2] == ["Two at home", "Seen from afar"]


def test_a_note_that_says_why_counts_more_than_a_bare_click(crafted: Crafted) -> None:
    crafted.share("Ana", "With a reason")  # older
    crafted.share("Ben", "With a nicety")
    crafted.share("Cara", "Bare click")  # newest
    crafted.endorse("Dan", "With a reason", note=NOTE)
    crafted.endorse("Dan", "With a nicety", note="nice!")  # too short to be a reason
    crafted.endorse("Eve", "Bare click")
    assert crafted.scores()["With a reason"] == 1.5
    assert crafted.titles() == ["With a reason", "Bare click", "With a nicety"]


def test_a_ring_of_two_who_only_endorse_each_other_is_damped(crafted: Crafted) -> None:
    # Ana and Ben endorse only each other, over the weeks; Cara's share gets one endorsement
    # from Dan, who endorses widely. The ring's shares are newer, yet rank below.
    earlier = MONDAY - timedelta(days=10)
    crafted.share("Ana", "Ana before", at=earlier)
    crafted.share("Ben", "Ben before", at=earlier)
    crafted.endorse("Ben", "Ana before", at=earlier + timedelta(hours=1))
    crafted.endorse("Ana", "Ben before", at=earlier + timedelta(hours=1))
    crafted.share("Cara", "Honest work")
    crafted.share("Eve", "Other work")
    crafted.share("Ana", "Ring work A")
    crafted.share("Ben", "Ring work B")
    crafted.endorse("Dan", "Honest work")
    crafted.endorse("Dan", "Other work")
    crafted.endorse("Ben", "Ring work A")
    crafted.endorse("Ana", "Ring work B")
    scores = crafted.scores()
    assert scores["Ring work A"] == scores["Ring work B"] == 0.25  # 1 × (1 − 0.75 × 1)
    assert crafted.titles() == ["Other work", "Honest work", "Ring work B", "Ring work A"]


def test_friends_who_also_endorse_others_are_barely_damped(crafted: Crafted) -> None:
    # Ana and Ben endorse each other once, and each endorses three other people's work too:
    # a quarter of their endorsing is each other, so weight × (1 − 0.75 × 0.25).
    crafted.share("Ana", "Ana's")
    crafted.share("Ben", "Ben's")
    for other in ("Cara", "Dan", "Eve"):
        crafted.share(other, f"{other}'s")
        crafted.endorse("Ana", f"{other}'s")
        crafted.endorse("Ben", f"{other}'s")
    crafted.endorse("Ben", "Ana's")
    crafted.endorse("Ana", "Ben's")
    assert crafted.scores()["Ana's"] == pytest.approx(0.8125)
    # A fan who endorses only Ana, never endorsed back, is not a ring.
    crafted.endorse("Fay", "Ana's")
    assert crafted.scores()["Ana's"] == pytest.approx(1.8125)


def test_a_contributor_appears_at_most_once(crafted: Crafted) -> None:
    for title in ("Ana 1", "Ana 2", "Ana 3"):
        crafted.share("Ana", title)
        for peer in ("Ben", "Cara", "Dan"):
            crafted.endorse(peer, title)
    crafted.share("Ben", "Ben's one")
    crafted.endorse("Eve", "Ben's one")
    crafted.share("Cara", "Cara's one")
    crafted.endorse("Eve", "Cara's one")
    crafted.endorse("Fay", "Ana 1", note=NOTE)  # Ana's best of the three
    assert crafted.titles() == ["Ana 1", "Cara's one", "Ben's one"]


def test_a_first_share_gets_the_spotlight_when_merit_alone_would_leave_it_out(
    db: Database,
) -> None:
    crafted = Crafted(db).setup(digest_size=3)
    for name in ("Ana", "Ben", "Cara", "Dan", "Nia", "Eve", "Fay", "Gus"):
        crafted.member(name)
    before = MONDAY - timedelta(days=30)
    for veteran in ("Ana", "Ben", "Cara", "Dan"):
        crafted.share(veteran, f"{veteran} last month", at=before)
    for veteran, peers in (("Ana", 3), ("Ben", 3), ("Cara", 2), ("Dan", 2)):
        crafted.share(veteran, f"{veteran} this week")
        for peer in ("Eve", "Fay", "Gus")[:peers]:
            crafted.endorse(peer, f"{veteran} this week")
    crafted.share("Nia", "Nia's first share")  # newest, one endorsement
    crafted.endorse("Eve", "Nia's first share")
    # Ana and Ben tie (Ben's is newer); Cara and Dan would be third on merit.
    assert crafted.titles() == ["Ben this week", "Ana this week", "Nia's first share"]
    with db.session() as session:
        community = session.get(Community, crafted.community_id)
        assert community is not None
        ranked = rank_artifacts(session, community, WEEK)
        assert [r.spotlight for r in ranked] == [False, False, True]
        text, card = render_digest(
            session, PromptLibrary.load(), community, WEEK, ranked, min_group=5
        )
    assert "First share in this community — welcome!" in card.fields[2].value
    assert "3. Nia's first share" in text

    # An unendorsed first share gets no place: the digest is peer-judged.
    crafted.withdraw("Eve", "Nia's first share")
    assert crafted.titles() == ["Ben this week", "Ana this week", "Dan this week"]


def test_no_spotlight_is_needed_when_a_first_share_made_it_on_merit(db: Database) -> None:
    crafted = Crafted(db).setup(digest_size=2)
    for name in ("Ana", "Ben", "Nia", "Eve", "Fay", "Gus"):
        crafted.member(name)
    crafted.share("Ana", "Ana last month", at=MONDAY - timedelta(days=30))
    crafted.share("Nia", "Nia's first share")
    crafted.share("Ana", "Ana this week")
    crafted.share("Ben", "Ben's first share")
    for peer in ("Eve", "Fay", "Gus"):
        crafted.endorse(peer, "Nia's first share")
    crafted.endorse("Eve", "Ana this week")
    crafted.endorse("Fay", "Ana this week")
    crafted.endorse("Gus", "Ben's first share")
    # Nia's first share is chosen on merit; Ben's first share doesn't push Ana out.
    assert crafted.titles() == ["Nia's first share", "Ana this week"]


def test_only_the_weeks_shares_are_ranked_in_the_communitys_timezone(crafted: Crafted) -> None:
    crafted.share("Ana", "Last Sunday night", at=MONDAY - timedelta(hours=10))
    crafted.share("Ben", "This Monday")
    crafted.endorse("Cara", "Last Sunday night")
    crafted.endorse("Cara", "This Monday")
    assert crafted.titles() == ["This Monday"]
    assert crafted.titles("2026-W47") == ["Last Sunday night"]


def test_a_share_peers_tried_in_class_outweighs_one_they_only_liked(crafted: Crafted) -> None:
    crafted.share("Ana", "Exit tickets")
    crafted.share("Ben", "Gallery walk")
    for peer in ("Cara", "Dan", "Eve"):
        crafted.endorse(peer, "Exit tickets")
    for peer in ("Fay", "Gus"):
        crafted.endorse(peer, "Gallery walk")
    assert crafted.titles() == ["Exit tickets", "Gallery walk"]
    crafted.tried("Fay", "Gallery walk")  # planned, not yet answered: no weight yet
    assert crafted.scores()["Gallery walk"] == 2.0
    crafted.tried("Gus", "Gallery walk", "They compared strategies and fixed each other's work")
    assert crafted.scores() == {"Exit tickets": 3.0, "Gallery walk": 3.0}
    crafted.tried("Hal", "Gallery walk", "Mine argued about it for twenty minutes")
    assert crafted.scores()["Gallery walk"] == 3.0  # Hal never endorsed it: not a vote
    crafted.withdraw("Gus", "Gallery walk")  # the answer was part of Gus's vote
    assert crafted.scores()["Gallery walk"] == 1.0


def test_trying_each_others_work_is_ring_damped_like_the_rest(crafted: Crafted) -> None:
    crafted.share("Ana", "Exit tickets")
    crafted.share("Ben", "Gallery walk")
    crafted.endorse("Ben", "Exit tickets")
    crafted.endorse("Ana", "Gallery walk")
    crafted.tried("Ben", "Exit tickets", "Every student wrote a question for the next class")
    assert crafted.scores() == {"Exit tickets": 0.5, "Gallery walk": 0.25}


def test_the_weight_formula() -> None:
    same = {"endorser_school": "Hill", "author_school": "hill ", "endorser_role": "teacher"}
    assert endorsement_weight(**same, author_role="teacher", note_chars=0, ring=0) == 1.0
    assert endorsement_weight(**same, author_role="principal", note_chars=0, ring=0) == 1.25
    assert endorsement_weight(**same, author_role="teacher", note_chars=20, ring=0) == 1.5
    assert endorsement_weight(**same, author_role="teacher", note_chars=19, ring=0) == 1.0
    best = endorsement_weight(
        endorser_school="Hill",
        author_school="River",
        endorser_role="coach",
        author_role="teacher",
        note_chars=200,
        ring=0,
    )
    assert best == 2.25
    assert endorsement_weight(**same, author_role="teacher", note_chars=0, ring=1) == 0.25
    tried = endorsement_weight(**same, author_role="teacher", note_chars=0, ring=0, tried=True)
    assert tried == 2.0
    assert (
        endorsement_weight(
            endorser_school=None,
            author_school="River",
            endorser_role=None,
            author_role="teacher",
            note_chars=0,
            ring=0,
        )
        == 1.0
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_digest_choice_equals_scoring_every_share_exactly(db: Database, seed: int) -> None:
    """The digest scores shares exactly only while they can still reach it (their undamped
    sum bounds their score); on random data, with rings, notes and two schools, it must
    choose exactly what scoring every share would."""
    rng = random.Random(seed)
    crafted = Crafted(db).setup()
    people = [f"P{i}" for i in range(24)]
    for i, name in enumerate(people):
        crafted.member(
            name, school=("Hill", "River", None)[i % 3], role=("teacher", "principal")[i % 5 == 0]
        )
    for pair in range(4):  # rings: they endorse only each other, before and during the week
        a, b = people[2 * pair], people[2 * pair + 1]
        for author, peer in ((a, b), (b, a)):
            crafted.share(author, f"{author} earlier", at=MONDAY - timedelta(days=9))
            crafted.endorse(peer, f"{author} earlier", at=MONDAY - timedelta(days=8))
    for veteran in people[8:20]:  # only P20-P23 are new this week: the spotlight has work to do
        crafted.share(veteran, f"{veteran} earlier", at=MONDAY - timedelta(days=9))
    for n in range(70):
        author = rng.choice(people)
        title = f"{author} #{n}"
        crafted.share(author, title)
        index = people.index(author)
        if index < 8:
            peers = [people[index ^ 1]]  # the ring partner
        else:
            peers = rng.sample([p for p in people[8:] if p != author], rng.randint(0, 7))
        for peer in peers:
            crafted.endorse(peer, title, note=NOTE if rng.random() < 0.3 else "")
    with db.session() as session:
        community = session.get(Community, crafted.community_id)
        assert community is not None
        start, end = week_window(community, WEEK)
        everything = score_shares(session, community_id=crafted.community_id, start=start, end=end)
        firsts = _first_shares_by_hand(session, crafted.community_id, start, end)
        for size in (1, 2, 3, 5, 8):
            chosen = _digest_by_hand(everything, firsts, size)
            fast = select_digest(
                session, community_id=crafted.community_id, start=start, end=end, size=size
            )
            assert [(s.artifact_id, s.score, spot) for s, spot in fast] == [
                (s.artifact_id, s.score, spot) for s, spot in chosen
            ], size


def _digest_by_hand(
    everything: list[Scored], firsts: set[int], size: int
) -> list[tuple[Scored, bool]]:
    """The README's rule written out plainly: the best shares, one per author; when two or
    more are chosen and none is its author's first share, the last place goes to the best
    first share by someone not yet chosen (the spotlight)."""
    chosen: list[tuple[Scored, bool]] = []
    for share in everything:
        if len(chosen) == size:
            break
        if all(share.author_id != s.author_id for s, _ in chosen):
            chosen.append((share, False))
    if len(chosen) == size >= 2 and not any(s.artifact_id in firsts for s, _ in chosen):
        authors = {s.author_id for s, _ in chosen}
        for share in everything:
            if share.artifact_id in firsts and share.author_id not in authors:
                chosen[-1] = (share, True)
                break
    return chosen


def _first_shares_by_hand(
    session: Session, community_id: int, start: datetime, end: datetime
) -> set[int]:
    """Shares created in [start, end) that are their author's earliest in the community."""
    rows = session.exec(select(Artifact).where(Artifact.community_id == community_id)).all()
    earliest: dict[int, Artifact] = {}
    for row in sorted(rows, key=lambda a: (a.created_at, a.id or 0)):
        earliest.setdefault(row.author_id, row)
    return {a.id for a in earliest.values() if a.id is not None and start <= a.created_at < end}
