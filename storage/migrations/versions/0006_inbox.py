"""The durable inbox (requests stored before they are acknowledged) and reply rows in the outbox

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("lane", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("claimed_at", storage.models.UTCDateTime(), nullable=True),
        sa.Column("received_at", storage.models.UTCDateTime(), nullable=False),
        sa.Column("handled_at", storage.models.UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_inbox_status_id", "inbox", ["status", "id"])
    op.create_index("ix_inbox_lane_id", "inbox", ["lane", "id"])
    op.create_index("ix_inbox_handled_at", "inbox", ["handled_at"])
    with op.batch_alter_table("outboxmessage") as batch:
        batch.add_column(
            sa.Column("lane", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch.add_column(sa.Column("payload", sa.Text(), nullable=True))
    op.create_index("ix_outbox_lane", "outboxmessage", ["lane", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_lane", table_name="outboxmessage")
    with op.batch_alter_table("outboxmessage") as batch:
        batch.drop_column("payload")
        batch.drop_column("lane")
    op.drop_index("ix_inbox_handled_at", table_name="inbox")
    op.drop_index("ix_inbox_lane_id", table_name="inbox")
    op.drop_index("ix_inbox_status_id", table_name="inbox")
    op.drop_table("inbox")
