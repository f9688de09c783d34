"""Teams files waiting for consent get their own table (gone with the member on forget)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "teams_pending_files",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("mime_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", storage.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_teams_pending_files_member_id", "teams_pending_files", ["member_id"])
    op.create_index("ix_teams_pending_files_expires_at", "teams_pending_files", ["expires_at"])
    # Files kept the old way (at most an hour old) are dropped: their owner asks again.
    op.execute("DELETE FROM keyvalue WHERE key LIKE 'teams-file:%'")


def downgrade() -> None:
    op.drop_index("ix_teams_pending_files_expires_at", table_name="teams_pending_files")
    op.drop_index("ix_teams_pending_files_member_id", table_name="teams_pending_files")
    op.drop_table("teams_pending_files")
