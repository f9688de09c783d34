"""What the control-character guard (storage/text.py) costs: statements per second with and
without it, in process, on the same database.

Three statements, each run --count times in one transaction per round, the engine with the
guard and the one without taking turns (--rounds rounds; the best round of each is printed):
  insert     a one-row INSERT with eight string parameters (an artifact-sized row)
  select     a one-parameter SELECT by key (the commonest statement)
  batch      an executemany INSERT of 100 rows (the sender's and intake's batches)
  unit       a small committed unit of work: a SELECT, an INSERT, an UPDATE, COMMIT (what a
             request costs is several of these statements and much more Python)
and the guard's own time per statement (clean_parameters on the insert's parameters), clean
and with one NUL.

SQLite runs in a temporary file; PostgreSQL only with --postgres URL (a scratch table
`text_guard_bench` is made and dropped there).

    .venv/bin/python bench/text_guard.py [--count 2000] [--rounds 15] [--postgres URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.db import _dialect_engine  # noqa: E402  (the engine without the guard)
from storage.text import clean_parameters, install_text_guard  # noqa: E402

TABLE = sa.Table(
    "text_guard_bench",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    *(sa.Column(f"s{n}", sa.String(200)) for n in range(8)),
)
ROW = {f"s{n}": f"Exit tickets, week {n}: what the students wrote" for n in range(8)}


def engines(url: str) -> dict[str, sa.Engine]:
    bare = _dialect_engine(url)
    guarded = _dialect_engine(url)
    install_text_guard(guarded)
    return {"without": bare, "with": guarded}


def workloads(count: int) -> dict[str, tuple[int, Callable[[sa.Connection], None]]]:
    insert = TABLE.insert()
    select = sa.select(TABLE.c.id).where(TABLE.c.s0 == sa.bindparam("key"))

    def inserts(conn: sa.Connection) -> None:
        for _ in range(count):
            conn.execute(insert, ROW)

    def selects(conn: sa.Connection) -> None:
        for n in range(count):
            conn.execute(select, {"key": f"key {n}"}).first()

    batches = max(1, count // 100)

    def batch(conn: sa.Connection) -> None:
        for _ in range(batches):
            conn.execute(insert, [ROW] * 100)

    update = TABLE.update().where(TABLE.c.id == sa.bindparam("row")).values(s1=sa.bindparam("v"))
    units = max(1, count // 10)

    def unit(conn: sa.Connection) -> None:
        for n in range(units):
            conn.execute(select, {"key": f"key {n}"}).first()
            row = conn.execute(insert.returning(TABLE.c.id), ROW).scalar_one()
            conn.execute(update, {"row": row, "v": "Endorsed twice"})
            conn.commit()

    return {
        "insert": (count, inserts),
        "select": (count, selects),
        "batch": (batches, batch),
        "unit": (units, unit),
    }


def per_second(engine: sa.Engine, statements: int, work: Callable[[sa.Connection], None]) -> float:
    with engine.connect() as conn:
        started = time.perf_counter()
        work(conn)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute(TABLE.delete())  # the table stays small: every round measures the same
        conn.commit()
    return statements / elapsed


def run(url: str, count: int, rounds: int) -> None:
    found = engines(url)
    TABLE.drop(found["without"], checkfirst=True)
    TABLE.create(found["without"])
    try:
        print(f"{found['without'].dialect.name}: {count} statements a round, {rounds} rounds")
        print(f"{'':8} {'without /s':>12} {'with /s':>12} {'cost':>8} {'µs more each':>14}")
        for name, (statements, work) in workloads(count).items():
            rates: dict[str, list[float]] = {"without": [], "with": []}
            per_second(found["with"], statements, work)  # warm both engines' caches
            per_second(found["without"], statements, work)
            for _ in range(rounds):
                for which in ("without", "with"):
                    rates[which].append(per_second(found[which], statements, work))
            # The best round of each: on a shared machine the others measure the neighbours.
            bare, guarded = (max(rates[w]) for w in ("without", "with"))
            added = (1 / guarded - 1 / bare) * 1e6
            print(
                f"{name:8} {bare:12,.0f} {guarded:12,.0f} {(bare / guarded - 1):8.1%} {added:14.1f}"
            )
    finally:
        TABLE.drop(found["without"], checkfirst=True)
        for engine in found.values():
            engine.dispose()


def guard_alone() -> None:
    positional: Any = tuple(ROW.values())
    dirty: Any = (*positional[:-1], "Exit\x00 tickets")
    for name, parameters in (("clean", positional), ("one NUL", dirty)):
        loops = 200_000
        seconds = timeit.timeit(lambda p=parameters: clean_parameters(p, False), number=loops)
        print(
            f"the guard alone, eight strings, {name}: {seconds / loops * 1e9:,.0f} ns a statement"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--postgres", help="a scratch PostgreSQL database's SQLAlchemy URL")
    args = parser.parse_args()
    guard_alone()
    with tempfile.TemporaryDirectory() as folder:
        run(f"sqlite:///{Path(folder) / 'bench.db'}", args.count, args.rounds)
    if args.postgres:
        run(args.postgres, args.count, args.rounds)


if __name__ == "__main__":
    main()
