"""Slack token columns hold sealed tokens: Text instead of VARCHAR(200)

Encrypted (Fernet) a token is about three times as long as it was; a rotating token
(`xoxe.`) or a webhook URL sealed no longer fits 200 characters.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SECRETS = {
    "slack_installations": (
        "bot_token",
        "bot_refresh_token",
        "user_token",
        "user_refresh_token",
        "incoming_webhook_url",
    ),
    "slack_bots": ("bot_token", "bot_refresh_token"),
}


def upgrade() -> None:
    for table, columns in SECRETS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(
                    column, existing_type=sa.String(200), type_=sa.Text(), existing_nullable=True
                )


def downgrade() -> None:
    for table, columns in SECRETS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(
                    column, existing_type=sa.Text(), type_=sa.String(200), existing_nullable=True
                )
