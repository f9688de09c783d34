"""Where PLN Bot can reach people and conversations in Microsoft Teams.

Teams only lets a bot message a conversation it has seen (or a person it can open a 1:1 chat
with), so every conversation reference and every member the bot meets is kept here: the
proactive check-ins, prompts and digests are sent with these rows. Plain SQLModel tables with
no platform SDK imported; the adapter in adapters/teams/ reads and writes them.

Rows about a person cascade from `member`, so `forget` removes them too.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.columns import UTCDateTime, utcnow


class TeamsConversation(SQLModel, table=True):
    """A Teams conversation the bot is in: a channel, a group chat or a 1:1 chat.

    `conversation_key` is the id the core knows the conversation by (the channel id without a
    `;messageid=` thread suffix, shortened when longer than 64 characters); `conversation_id`
    is Teams' own id. `reference` is the Bot Framework ConversationReference as JSON.
    """

    __tablename__ = "teams_conversations"
    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "conversation_key"),
        sa.Index("ix_teams_conversations_personal", "workspace_id", "member_id"),
        sa.Index("ix_teams_conversations_team", "workspace_id", "team_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE")
    conversation_key: str = Field(max_length=64)
    conversation_id: str = Field(max_length=500)
    conversation_type: str = Field(default="", max_length=16)  # personal | channel | groupChat
    team_id: str | None = Field(default=None, max_length=500)
    member_id: int | None = Field(default=None, foreign_key="member.id", ondelete="CASCADE")
    name: str = Field(default="", max_length=200)
    service_url: str = Field(max_length=500)
    reference: str = Field(sa_type=sa.Text)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class TeamsMember(SQLModel, table=True):
    """A person the bot has met in Teams, with what it takes to open a 1:1 chat with them."""

    __tablename__ = "teams_members"
    __table_args__ = (sa.UniqueConstraint("member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", ondelete="CASCADE")
    teams_id: str = Field(max_length=500)  # the `29:…` id Teams gives this bot for the person
    aad_object_id: str | None = Field(default=None, max_length=64)
    name: str = Field(default="", max_length=200)
    service_url: str = Field(max_length=500)
    bot_id: str = Field(max_length=500)  # the bot's `28:…` id in that tenant
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class TeamsPendingFile(SQLModel, table=True):
    """A file (an export, a portfolio) waiting for its owner to accept it in Teams.

    Teams sends a consent card first; the file is uploaded once they accept, by whichever
    replica gets the answer. Kept an hour at most, and gone with the member on `forget`.
    """

    __tablename__ = "teams_pending_files"
    key: str = Field(primary_key=True, max_length=64)  # random; signed in the consent card
    member_id: int = Field(foreign_key="member.id", ondelete="CASCADE", index=True)
    filename: str = Field(max_length=200)
    mime_type: str = Field(max_length=100)
    content: bytes = Field(sa_type=sa.LargeBinary)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
