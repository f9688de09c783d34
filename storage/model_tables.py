"""What the optional model costs and what it already wrote.

`ModelUsage` counts tokens per community per ISO week, so the weekly cap holds across
restarts and replicas. `ModelCache` keeps a model answer per (member or community, week,
input): a personalised prompt is asked for at most once per member per week and base prompt.
Cached text is derived from a member's profile, so it cascades from `member` (and `forget`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.columns import UTCDateTime, utcnow


class ModelUsage(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("community_id", "iso_week"),)
    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE")
    iso_week: str = Field(max_length=8)
    tokens: int = 0
    requests: int = 0
    failures: int = 0


class ModelCache(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("purpose", "owner", "iso_week", "input_hash"),)
    id: int | None = Field(default=None, primary_key=True)
    purpose: str = Field(max_length=16)  # reflection | digest_intro
    owner: str = Field(max_length=32)  # member:<id> or community:<id>
    member_id: int | None = Field(
        default=None, foreign_key="member.id", index=True, ondelete="CASCADE"
    )
    community_id: int | None = Field(
        default=None, foreign_key="community.id", index=True, ondelete="CASCADE"
    )
    iso_week: str = Field(max_length=8)
    input_hash: str = Field(max_length=64)
    text: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
