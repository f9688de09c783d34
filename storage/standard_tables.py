"""The living standard: per community, the current best share for each Future Ready element
and each tag, and the history of who surpassed whom.

A `Standard` row is the lock that serialises "is this the new best?" decisions for one
(community, key): concurrent endorsements take it with `SELECT … FOR UPDATE` on PostgreSQL
(SQLite serialises writers anyway). Rows point at shares, never copy their text, so `forget`
needs nothing here: deleting a share empties its standard (SET NULL) and drops its history
(CASCADE).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.columns import UTCDateTime, utcnow


class Standard(SQLModel, table=True):
    """The current best share for a key: an element key (`participative_evaluation`) or a
    tag (`#exit-tickets`). `artifact_id` is None while nothing meets the bar."""

    __table_args__ = (sa.UniqueConstraint("community_id", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE")
    key: str = Field(max_length=48)
    artifact_id: int | None = Field(
        default=None, foreign_key="artifact.id", index=True, ondelete="SET NULL"
    )
    score: float = 0.0  # the holder's score when last looked at
    endorsers: int = 0
    since: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class StandardChange(SQLModel, table=True):
    """A share became the best for a key (what the channel is told, and the digest shows)."""

    __table_args__ = (
        sa.Index("ix_standardchange_community_changed", "community_id", "changed_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE")
    key: str = Field(max_length=48)
    artifact_id: int = Field(foreign_key="artifact.id", index=True, ondelete="CASCADE")
    previous_id: int | None = Field(
        default=None, foreign_key="artifact.id", index=True, ondelete="SET NULL"
    )
    score: float = 0.0
    endorsers: int = 0
    changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
