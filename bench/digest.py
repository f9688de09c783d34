"""Digest benchmark: rank one week's digest in a community with a long history.

A community of 2,000 members in 20 schools shares about 960 artifacts a week and endorses
each about 10 times (a note on a third of them, a few pairs who only endorse each other).
The history grows — 10k, 100k and 1M endorsements, i.e. about one week, ten weeks and two
years (100,000 artifacts) — while the week ranked stays alike, so the time should not grow.

For each size it prints the median (and the range) over --repeat runs of:
  rank      rank_artifacts(): the week's scored, one-per-contributor, spotlighted top 5
  digest    rank + render_digest(): the whole message (standards, participation line)
  endorse   the standard check one endorsement triggers (bot/scoring/standards.py: reconsider)
and the query plans of the ranking queries with --explain.

Data is written with SQLAlchemy Core bulk inserts. SQLite runs in a temporary file;
PostgreSQL only with --postgres URL (its public schema is dropped and recreated: use a
scratch database).

    python bench/digest.py [--sizes 10000,100000,1000000] [--repeat 7] [--postgres URL] [--explain]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.features.digests import rank_artifacts, render_digest  # noqa: E402
from bot.scoring.ranking import week_window  # noqa: E402
from bot.scoring.small_groups import DEFAULT_MIN_GROUP  # noqa: E402
from bot.scoring.standards import reconsider  # noqa: E402
from bot.services.prompts import PromptLibrary  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Artifact, Community, Endorsement, Member, Workspace  # noqa: E402

MEMBERS = 2000
SCHOOLS = 20
PER_WEEK = 962  # artifacts: 100,000 over two years
PER_ARTIFACT = 10  # endorsements, on average
RING_PAIRS = 20
WEEK = "2026-W48"  # ranked; the history ends with it
END = datetime(2026, 11, 30, tzinfo=UTC)  # Monday after WEEK
ELEMENTS = (
    "shared_ownership",
    "21st_century_skills",
    "diverse_opportunities",
    "participative_evaluation",
    None,
)
ROLES = ("teacher",) * 8 + ("instructional_coach", "principal")
NOTES = (
    "I'd borrow the three-question format for my Year 8s",
    "Clear, quick to run, and the students loved it",
    "Using this with my team on Monday",
    "nice!",
)


def fresh(url: str) -> Database:
    db = Database(url)
    if not db.is_sqlite:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    db.upgrade()
    return db


def chunks(rows: Iterator[dict[str, Any]], size: int = 20_000) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def load(db: Database, endorsements: int, seed: int = 7) -> dict[str, int]:
    """Members, artifacts and endorsements with explicit ids, bulk-inserted."""
    rng = random.Random(seed)
    artifacts = max(1, endorsements // PER_ARTIFACT)
    span = timedelta(weeks=artifacts / PER_WEEK)
    start = END - span
    with db.session() as session:
        workspace = Workspace(platform="slack", external_id="TBENCH", created_at=start)
        session.add(workspace)
        session.flush()
        community = Community(
            workspace_id=workspace.id, channel_id="C_BENCH", name="Bench PLN", created_at=start
        )
        session.add(community)
        session.flush()
        workspace_id, community_id = workspace.id, community.id
    member_rows = [
        {
            "id": i,
            "workspace_id": workspace_id,
            "user_id": f"U{i:06d}",
            "display_name": f"Teacher {i}",
            "school": f"School {i % SCHOOLS}",
            "role": ROLES[i % len(ROLES)],
            "created_at": start,
        }
        for i in range(1, MEMBERS + 1)
    ]
    ring = {}  # the first RING_PAIRS pairs endorse only each other
    for pair in range(RING_PAIRS):
        a, b = 2 * pair + 1, 2 * pair + 2
        ring[a], ring[b] = b, a

    def artifact_rows() -> Iterator[dict[str, Any]]:
        step = span / artifacts
        for i in range(1, artifacts + 1):
            element = rng.choice(ELEMENTS)
            yield {
                "id": i,
                "community_id": community_id,
                "author_id": rng.randint(1, MEMBERS),
                "url": f"https://example.org/a/{i}",
                "title": f"Artifact {i}",
                "description": "",
                "element": element,
                "tags": rng.choice(("", "", "exit-tickets", "year8", "feedback-loops")),
                "created_at": start + step * i,
            }

    def endorsement_rows() -> Iterator[dict[str, Any]]:
        step = span / artifacts
        ident = 0
        for i in range(1, artifacts + 1):
            author = authors[i - 1]
            made = start + step * i
            if author in ring:
                chosen = {ring[author]}
            else:
                chosen = set()
                wanted = min(40, int(rng.expovariate(1 / PER_ARTIFACT)))
                while len(chosen) < wanted:
                    peer = rng.randint(2 * RING_PAIRS + 1, MEMBERS)
                    if peer != author:
                        chosen.add(peer)
            for peer in chosen:
                ident += 1
                yield {
                    "id": ident,
                    "artifact_id": i,
                    "endorser_id": peer,
                    "author_id": author,  # Core inserts skip the ORM hook that copies it
                    "note": rng.choice(NOTES) if rng.random() < 0.33 else "",
                    "created_at": made + timedelta(minutes=rng.randint(1, 4000)),
                }

    with db.session() as session:
        session.execute(sa.insert(Member), member_rows)
        authors = []
        for batch in chunks(artifact_rows()):
            authors += [row["author_id"] for row in batch]
            session.execute(sa.insert(Artifact), batch)
    made = 0
    for batch in chunks(endorsement_rows(), 50_000):
        with db.session() as session:
            session.execute(sa.insert(Endorsement), batch)
        made += len(batch)
    with db.engine.begin() as conn:
        if db.is_sqlite:
            conn.exec_driver_sql("PRAGMA optimize")
        else:
            for table in ("member", "artifact", "endorsement"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            conn.exec_driver_sql("ANALYZE")
    return {"community": community_id or 0, "artifacts": artifacts, "endorsements": made}


def timed(run: Callable[[], Any], repeat: int) -> tuple[float, float, float]:
    run()  # warm the caches, as a running bot's are
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), min(times), max(times)


def explain(db: Database, community_id: int) -> None:
    """The plan of every SELECT that ranking runs."""
    statements: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, params))

    sa.event.listen(db.engine, "before_cursor_execute", keep)
    with db.session() as session:
        community = session.get(Community, community_id)
        assert community is not None
        rank_artifacts(session, community, WEEK)
    sa.event.remove(db.engine, "before_cursor_execute", keep)
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
    with db.engine.connect() as conn:
        for statement, params in statements:
            print("   ", " ".join(statement.split())[:160])
            for row in conn.exec_driver_sql(prefix + statement, params):
                print("      ", row[-1])


def measure(
    db: Database, prompts: PromptLibrary, community_id: int, artifact_id: int, repeat: int
) -> list[tuple[float, float, float]]:
    """Timings of rank, the whole digest, and one endorsement's standard check."""

    def rank() -> None:
        with db.session() as session:
            community = session.get(Community, community_id)
            assert community is not None
            assert rank_artifacts(session, community, WEEK)

    def digest() -> None:
        with db.session() as session:
            community = session.get(Community, community_id)
            assert community is not None
            ranked = rank_artifacts(session, community, WEEK)
            render_digest(session, prompts, community, WEEK, ranked, min_group=DEFAULT_MIN_GROUP)

    def endorse() -> None:
        with db.session() as session:
            artifact = session.get(Artifact, artifact_id)
            assert artifact is not None
            reconsider(session, prompts, artifact, now=END - timedelta(hours=1))

    return [timed(run, repeat) for run in (rank, digest, endorse)]


def bench(url: str, label: str, sizes: list[int], repeat: int, show_plans: bool) -> None:
    prompts = PromptLibrary.load()
    print(f"\n{label}")
    print(
        f"{'endorsements':>13} {'artifacts':>9} {'load s':>7} {'rank ms':>16} {'digest ms':>16} {'endorse ms':>16}"
    )
    for size in sizes:
        db = fresh(url.replace("{size}", str(size)))
        started = time.perf_counter()
        counts = load(db, size)
        loaded = time.perf_counter() - started
        community_id = counts["community"]
        with db.session() as session:
            community = session.get(Community, community_id)
            assert community is not None
            start, end = week_window(community, WEEK)
            week_artifact = (
                session.exec(  # type: ignore[call-overload]
                    sa.select(Artifact).where(
                        Artifact.community_id == community_id,
                        Artifact.created_at >= start,
                        Artifact.created_at < end,
                        Artifact.element.is_not(None),  # type: ignore[union-attr]
                    )
                )
                .scalars()
                .first()
            )
        assert week_artifact is not None

        results = measure(db, prompts, community_id, week_artifact.id or 0, repeat)
        cells = " ".join(f"{m:7.1f} ({lo:.0f}–{hi:.0f})".rjust(16) for m, lo, hi in results)
        print(f"{counts['endorsements']:>13,} {counts['artifacts']:>9,} {loaded:>7.1f} {cells}")
        if show_plans:
            explain(db, community_id)
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--postgres", help="a scratch PostgreSQL database URL")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        bench(f"sqlite:///{folder}/bench-{{size}}.db", "SQLite", sizes, args.repeat, args.explain)
    if args.postgres:
        bench(args.postgres, "PostgreSQL", sizes, args.repeat, args.explain)
    print(f"\nmedian (min–max) of {args.repeat} runs after a warm-up; target: rank < 250 ms")


if __name__ == "__main__":
    main()
