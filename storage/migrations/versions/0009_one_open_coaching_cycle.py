"""One open coaching cycle per coach and member: a partial unique index over (workspace, coach,
member) where the cycle is offered or active

Two `cycle start`s at the same moment could each pass the application's check and offer two
cycles. Before the index is made, any such pair already stored is folded into one: the cycle
kept is an active one if there is one (the member accepted it), else the oldest; the others'
feedback moves to it and they are deleted (an unanswered duplicate offer is no loss).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('offered', 'active')"

cycle = sa.table(
    "coachingcycle",
    sa.column("id", sa.Integer),
    sa.column("workspace_id", sa.Integer),
    sa.column("coach_id", sa.Integer),
    sa.column("member_id", sa.Integer),
    sa.column("status", sa.String),
)
note = sa.table("cyclenote", sa.column("id", sa.Integer), sa.column("cycle_id", sa.Integer))


def fold_duplicate_open_cycles(connection: sa.Connection) -> int:
    """Keep one open cycle per (workspace, coach, member); returns how many were folded."""
    rows = connection.execute(
        sa.select(cycle.c.id, cycle.c.workspace_id, cycle.c.coach_id, cycle.c.member_id)
        .where(cycle.c.coach_id.is_not(None), cycle.c.status.in_(("offered", "active")))
        .order_by(
            cycle.c.workspace_id,
            cycle.c.coach_id,
            cycle.c.member_id,
            sa.case((cycle.c.status == "active", 0), else_=1),
            cycle.c.id,
        )
    ).all()
    kept: dict[tuple[int, int, int], int] = {}
    folded = 0
    for cycle_id, workspace_id, coach_id, member_id in rows:
        pair = (workspace_id, coach_id, member_id)
        if pair not in kept:
            kept[pair] = cycle_id
            continue
        connection.execute(
            note.update().where(note.c.cycle_id == cycle_id).values(cycle_id=kept[pair])
        )
        connection.execute(cycle.delete().where(cycle.c.id == cycle_id))
        folded += 1
    return folded


def upgrade() -> None:
    fold_duplicate_open_cycles(op.get_bind())
    with op.batch_alter_table("coachingcycle", schema=None) as batch_op:
        batch_op.create_index(
            "uq_coachingcycle_open",
            ["workspace_id", "coach_id", "member_id"],
            unique=True,
            sqlite_where=sa.text(OPEN),
            postgresql_where=sa.text(OPEN),
        )


def downgrade() -> None:
    with op.batch_alter_table("coachingcycle", schema=None) as batch_op:
        batch_op.drop_index("uq_coachingcycle_open")
