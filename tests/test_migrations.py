"""The schema the migrations build is the schema the models describe: an operator's
`plnbot db upgrade` gives the tables, columns, indexes and keys the code expects, on SQLite
and PostgreSQL, and the newest migration goes down and up again cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (every table registered on SQLModel.metadata)
from storage.db import Database


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
