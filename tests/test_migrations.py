"""The schema the migrations build is the schema the models describe: an operator's
`plnbot db upgrade` gives the tables, columns, indexes and keys the code expects, on SQLite
and PostgreSQL, and the newest migrations go down and up again cleanly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (every table registered on SQLModel.metadata)
from storage.columns import saved_id
from storage.db import Database
from storage.models import CoachingCycle, CycleNote, Member, Workspace
from tests.steps import rows


def differences(db: Database) -> list[object]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        found = compare_metadata(context, SQLModel.metadata)
    # SQLite cannot name or alter foreign keys after the fact the way models declare them;
    # what counts is that every table, column and index is there.
    return [d for d in found if not (isinstance(d, tuple) and d[0] in ("add_fk", "remove_fk"))]


def test_the_migrations_build_what_the_models_describe(db: Database) -> None:
    assert differences(db) == []


def test_the_newest_migration_goes_down_and_up_again(db: Database) -> None:
    config = db.alembic_config()
    command.downgrade(config, "-1")
    command.upgrade(config, "head")
    assert differences(db) == []


def test_the_participative_evaluation_migrations_go_down_and_up_again(db: Database) -> None:
    """0009 (one open cycle per pair) and 0008 (the tables it indexes) together."""
    config = db.alembic_config()
    command.downgrade(config, "0008")
    assert "uq_coachingcycle_open" not in index_names(db)
    command.downgrade(config, "0007")
    command.upgrade(config, "head")
    assert differences(db) == []
    assert "uq_coachingcycle_open" in index_names(db)


def index_names(db: Database) -> set[str]:
    return {str(i["name"]) for i in sa.inspect(db.engine).get_indexes("coachingcycle")}


def cycle(workspace: int, member: int, coach: int, status: str) -> CoachingCycle:
    return CoachingCycle(
        workspace_id=workspace,
        member_id=member,
        coach_id=coach,
        coach_name="Coach",
        goal_text="Exit tickets",
        status=status,
        offered_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def test_0009_folds_open_cycles_stored_twice_then_refuses_a_second(db: Database) -> None:
    """A database that already holds two open cycles for a pair (the race 0009 closes)
    upgrades: the accepted one is kept with every note, the duplicate offer goes; after it,
    a second open cycle for the pair is refused, while closed and declined ones, and another
    coach's, are not open cycles of that pair."""
    command.downgrade(db.alembic_config(), "0008")
    with db.session() as session:
        workspace = Workspace(platform="slack", external_id="T1")
        session.add(workspace)
        session.flush()
        assert workspace.id is not None
        people = [Member(workspace_id=workspace.id, user_id=u) for u in ("U_T", "U_C", "U_O")]
        session.add_all(people)
        session.flush()
        teacher, coach, other = (p.id for p in people)
        assert teacher is not None and coach is not None and other is not None
        offered = cycle(workspace.id, teacher, coach, "offered")
        active = cycle(workspace.id, teacher, coach, "active")
        closed = cycle(workspace.id, teacher, coach, "closed")
        others = cycle(workspace.id, teacher, other, "offered")
        session.add_all([offered, active, closed, others])
        session.flush()
        session.add(CycleNote(cycle_id=saved_id(offered), text="on the duplicate"))
        session.add(CycleNote(cycle_id=saved_id(active), text="on the accepted one"))
        kept = [saved_id(c) for c in (active, closed, others)]
    command.upgrade(db.alembic_config(), "head")
    assert differences(db) == []
    assert [c.id for c in rows(db, CoachingCycle)] == kept
    notes = rows(db, CycleNote)
    assert {n.text for n in notes} == {"on the duplicate", "on the accepted one"}
    assert {n.cycle_id for n in notes} == {kept[0]}
    for status in ("offered", "active"):
        with pytest.raises(sa.exc.IntegrityError), db.session() as session:
            session.add(cycle(workspace.id, teacher, coach, status))
    with db.session() as session:
        session.add(cycle(workspace.id, teacher, coach, "declined"))
        session.add(cycle(workspace.id, teacher, coach, "closed"))
        session.add(cycle(workspace.id, other, coach, "offered"))  # another member
