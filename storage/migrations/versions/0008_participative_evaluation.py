"""Participative evaluation: indicators of progress and their values, coaching cycles and
their notes, enactments ("I'll try this"), and a share's goal and student evidence

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 19:12:01
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.columns


revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coachingcycle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("coach_id", sa.Integer(), nullable=True),
        sa.Column("coach_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("goal_id", sa.Integer(), nullable=True),
        sa.Column("goal_text", sa.Text(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("hours", sa.Float(), nullable=True),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("offered_at", storage.columns.UTCDateTime(), nullable=False),
        sa.Column("answered_at", storage.columns.UTCDateTime(), nullable=True),
        sa.Column("closed_at", storage.columns.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["coach_id"], ["member.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["goal_id"], ["goal.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    with op.batch_alter_table("coachingcycle", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coachingcycle_coach_id"), ["coach_id"], unique=False)
        batch_op.create_index(
            "ix_coachingcycle_member_status", ["member_id", "status"], unique=False
        )

    op.create_table(
        "indicator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("goal_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", storage.columns.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["goal_id"], ["goal.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("goal_id", "number"),
    )
    with op.batch_alter_table("indicator", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_indicator_goal_id"), ["goal_id"], unique=False)

    op.create_table(
        "cyclenote",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("in_portfolio", sa.Boolean(), nullable=False),
        sa.Column("created_at", storage.columns.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["cycle_id"], ["coachingcycle.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cyclenote", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cyclenote_cycle_id"), ["cycle_id"], unique=False)

    op.create_table(
        "enactment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_at", storage.columns.UTCDateTime(), nullable=False),
        sa.Column("answered_at", storage.columns.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifact.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("artifact_id", "member_id"),
    )
    with op.batch_alter_table("enactment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enactment_artifact_id"), ["artifact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_enactment_member_id"), ["member_id"], unique=False)

    op.create_table(
        "indicatorvalue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("indicator_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=True),
        sa.Column("logged_at", storage.columns.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["checkin_id"], ["checkin.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["indicator_id"], ["indicator.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("indicatorvalue", schema=None) as batch_op:
        batch_op.create_index(
            "ix_indicatorvalue_indicator_logged", ["indicator_id", "logged_at"], unique=False
        )

    with op.batch_alter_table("artifact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("goal_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("student_evidence", sa.Text(), nullable=False, server_default="")
        )
        batch_op.create_foreign_key(
            "fk_artifact_goal_id", "goal", ["goal_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("artifact", schema=None) as batch_op:
        batch_op.drop_constraint("fk_artifact_goal_id", type_="foreignkey")
        batch_op.drop_column("student_evidence")
        batch_op.drop_column("goal_id")

    with op.batch_alter_table("indicatorvalue", schema=None) as batch_op:
        batch_op.drop_index("ix_indicatorvalue_indicator_logged")

    op.drop_table("indicatorvalue")
    with op.batch_alter_table("enactment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enactment_member_id"))
        batch_op.drop_index(batch_op.f("ix_enactment_artifact_id"))

    op.drop_table("enactment")
    with op.batch_alter_table("cyclenote", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cyclenote_cycle_id"))

    op.drop_table("cyclenote")
    with op.batch_alter_table("indicator", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_indicator_goal_id"))

    op.drop_table("indicator")
    with op.batch_alter_table("coachingcycle", schema=None) as batch_op:
        batch_op.drop_index("ix_coachingcycle_member_status")
        batch_op.drop_index(batch_op.f("ix_coachingcycle_coach_id"))

    op.drop_table("coachingcycle")
