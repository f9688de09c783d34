"""Conversation references and people met in Teams, kept in the database.

Teams lets a bot post only where it has been (a channel, a group chat, a 1:1 chat), and
open a 1:1 chat only with someone it knows the Teams id of. Every activity that passed
authentication is remembered here: its conversation (with the SDK's ConversationReference,
as JSON) and its sender; `membersAdded` and roster look-ups add people too. A repeat of what
is already stored within a few minutes is not written again.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ChannelAccount
from sqlmodel import Session, select

from adapters.teams import inbound
from adapters.teams.inbound import PLATFORM, Resolver, short_id
from bot.core.clock import Clock
from storage.db import Database
from storage.models import Member, Workspace
from storage.queries import find_member, get_or_create_member, get_or_create_workspace
from storage.teams_tables import TeamsConversation, TeamsMember, TeamsPendingFile

log = logging.getLogger(__name__)

REFRESH_SECONDS = 600.0
FILE_SECONDS = 3600


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where to post: what the connector needs, from an inbound activity or a stored row."""

    service_url: str
    conversation_id: str
    conversation_type: str
    tenant: str
    bot_id: str
    bot_name: str = ""
    team_id: str | None = None

    @classmethod
    def from_blob(cls, blob: dict[str, Any]) -> Target | None:
        if not blob.get("service_url") or not blob.get("conversation_id"):
            return None
        return cls(
            service_url=str(blob["service_url"]),
            conversation_id=str(blob["conversation_id"]),
            conversation_type=str(blob.get("conversation_type") or ""),
            tenant=str(blob.get("tenant") or ""),
            bot_id=str(blob.get("bot_id") or ""),
            bot_name=str(blob.get("bot_name") or ""),
            team_id=blob.get("team_id"),
        )

    def blob(self) -> dict[str, Any]:
        return {
            "service_url": self.service_url,
            "conversation_id": self.conversation_id,
            "conversation_type": self.conversation_type,
            "tenant": self.tenant,
            "bot_id": self.bot_id,
            "bot_name": self.bot_name,
            "team_id": self.team_id,
        }


@dataclass(frozen=True, kw_only=True)
class Person:
    """Someone the bot can open a 1:1 chat with."""

    user_id: str
    teams_id: str
    name: str
    service_url: str
    bot_id: str


def _target_of(row: TeamsConversation, tenant: str) -> Target:
    reference = json.loads(row.reference or "{}")
    bot = reference.get("bot") or {}
    return Target(
        service_url=row.service_url,
        conversation_id=row.conversation_id,
        conversation_type=row.conversation_type,
        tenant=tenant,
        bot_id=str(bot.get("id") or ""),
        bot_name=str(bot.get("name") or ""),
        team_id=row.team_id,
    )


@dataclass(frozen=True)
class Sighting:
    """An activity's conversation and sender as `References` would store them."""

    tenant: str
    blob: dict[str, Any]
    sender: Any
    user_id: str | None
    personal: bool
    conversation: tuple[tuple[str, ...], tuple[Any, ...]]  # (key, fingerprint)
    person: tuple[tuple[str, ...], tuple[Any, ...]]
    save_conversation: bool
    save_person: bool


class References:
    """Reads and writes `teams_conversations` and `teams_members`."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._seen: dict[tuple[str, ...], tuple[tuple[Any, ...], float]] = {}

    # -- writing ---------------------------------------------------------------------------
    def _fresh(self, key: tuple[str, ...], fingerprint: tuple[Any, ...]) -> bool:
        seen = self._seen.get(key)
        return (
            seen is not None
            and seen[0] == fingerprint
            and time.monotonic() - seen[1] < REFRESH_SECONDS
        )

    def _mark(self, key: tuple[str, ...], fingerprint: tuple[Any, ...]) -> None:
        if len(self._seen) > 50_000:
            self._seen.clear()
        self._seen[key] = (fingerprint, time.monotonic())

    def forget_seen(self) -> None:
        """Someone asked to be forgotten: their rows are gone, so whatever was seen is stored
        again when next seen (forgetting is rare; one write per active conversation)."""
        self._seen.clear()

    def _seen_as(self, activity: Activity, resolve: Resolver) -> Sighting | None:
        """What `remember` would store of an activity, and whether each part is unchanged."""
        tenant = inbound.tenant_of(activity)
        if not tenant or not activity.service_url or not activity.conversation:
            return None
        blob = inbound.reference_blob(activity)
        sender = activity.from_property
        if sender is None or not sender.id or sender.id == blob["bot_id"]:
            sender = None
        user_id = resolve(sender.id or "", sender.aad_object_id) if sender else None
        personal = blob["conversation_type"] == "personal"
        conversation_key = ("conversation", tenant, short_id(blob["conversation_id"]))
        conversation_print = (
            blob["service_url"],
            blob["conversation_id"],
            blob["bot_id"],
            blob["team_id"],
            user_id if personal else None,
        )
        person_key = ("person", tenant, user_id or "")
        person_print = (
            (sender.id, sender.name, blob["service_url"], blob["bot_id"]) if sender else ()
        )
        return Sighting(
            tenant=tenant,
            blob=blob,
            sender=sender,
            user_id=user_id,
            personal=personal,
            conversation=(conversation_key, conversation_print),
            person=(person_key, person_print),
            save_conversation=not self._fresh(conversation_key, conversation_print),
            save_person=sender is not None and not self._fresh(person_key, person_print),
        )

    def unchanged(self, activity: Activity, resolve: Resolver) -> bool:
        """Whether `remember` would store nothing (checked on the event loop, so the usual
        activity costs no trip to a database thread)."""
        seen = self._seen_as(activity, resolve)
        return seen is not None and not (seen.save_conversation or seen.save_person)

    def remember(self, activity: Activity, resolve: Resolver) -> None:
        """Store the activity's conversation and its sender (each skipped when unchanged)."""
        seen = self._seen_as(activity, resolve)
        if seen is None or not (seen.save_conversation or seen.save_person):
            return
        tenant, blob, sender, user_id = seen.tenant, seen.blob, seen.sender, seen.user_id
        personal, save_person = seen.personal, seen.save_person
        save_conversation = seen.save_conversation
        key = short_id(blob["conversation_id"])
        with self.db.session() as session:
            workspace = self._workspace(session, tenant)
            member = None
            if sender is not None and user_id and (save_person or personal):
                member = get_or_create_member(
                    session,
                    workspace_id=workspace.id or 0,
                    user_id=user_id,
                    name=sender.name or "",
                    now=self.clock.now(),
                )
                if save_person:
                    self._save_person(session, member, sender, blob["service_url"], blob["bot_id"])
            if save_conversation:
                reference = TurnContext.get_conversation_reference(activity)
                reference.activity_id = None
                reference.conversation = copy_account(
                    reference.conversation, blob["conversation_id"]
                )
                self._save_conversation(
                    session,
                    workspace,
                    key=key,
                    blob=blob,
                    name=str(activity.conversation.name or ""),
                    member=member if personal else None,
                    reference=json.dumps(reference.serialize()),
                )
        if save_conversation:
            self._mark(*seen.conversation)
        if save_person:
            self._mark(*seen.person)

    def remember_people(
        self,
        *,
        tenant: str,
        accounts: Iterable[ChannelAccount],
        service_url: str,
        bot_id: str,
        resolve: Resolver,
    ) -> list[str]:
        """Store people from `membersAdded` or a roster; returns their user ids."""
        user_ids = []
        todo = []
        for account in accounts:
            if not account.id or account.id == bot_id:
                continue
            user_id = resolve(account.id, account.aad_object_id)
            user_ids.append(user_id)
            fingerprint = (account.id, account.name, service_url, bot_id)
            if not self._fresh(("person", tenant, user_id), fingerprint):
                todo.append((user_id, account, fingerprint))
        if todo:
            with self.db.session() as session:
                workspace = self._workspace(session, tenant)
                for user_id, account, _ in todo:
                    member = get_or_create_member(
                        session,
                        workspace_id=workspace.id or 0,
                        user_id=user_id,
                        name=account.name or "",
                        now=self.clock.now(),
                    )
                    self._save_person(session, member, account, service_url, bot_id)
            for user_id, _, fingerprint in todo:
                self._mark(("person", tenant, user_id), fingerprint)
        return user_ids

    def save_personal(self, *, user_id: str, target: Target) -> None:
        """Remember the 1:1 chat the bot just opened with someone."""
        reference = {
            "bot": {"id": target.bot_id, "name": target.bot_name},
            "conversation": {"id": target.conversation_id, "conversationType": "personal"},
            "channelId": "msteams",
            "serviceUrl": target.service_url,
        }
        with self.db.session() as session:
            workspace = self._workspace(session, target.tenant)
            member = find_member(session, workspace_id=workspace.id or 0, user_id=user_id)
            self._save_conversation(
                session,
                workspace,
                key=short_id(target.conversation_id),
                blob=target.blob(),
                name="",
                member=member,
                reference=json.dumps(reference),
            )

    def forget_conversation(self, *, tenant: str, conversation_id: str) -> None:
        """The bot was removed from a conversation: it can't post there any more."""
        with self.db.session() as session:
            workspace = self._workspace(session, tenant)
            session.exec(
                sa.delete(TeamsConversation).where(
                    TeamsConversation.workspace_id == workspace.id,  # type: ignore[arg-type]
                    TeamsConversation.conversation_key == short_id(conversation_id),  # type: ignore[arg-type]
                )
            )
        self._seen = {k: v for k, v in self._seen.items() if short_id(conversation_id) not in k}

    def set_installer(self, *, tenant: str, user_id: str) -> None:
        """The person who installed the app is a coach from the start (DESIGN §3)."""
        with self.db.session() as session:
            workspace = self._workspace(session, tenant)
            if not workspace.installed_by:
                workspace.installed_by = user_id
                session.add(workspace)

    def _workspace(self, session: Session, tenant: str) -> Workspace:
        return get_or_create_workspace(
            session, platform=PLATFORM, external_id=tenant, now=self.clock.now()
        )

    def _save_person(
        self,
        session: Session,
        member: Member,
        account: ChannelAccount,
        service_url: str,
        bot_id: str,
    ) -> None:
        row = session.exec(select(TeamsMember).where(TeamsMember.member_id == member.id)).first()
        if row is None:
            try:
                with session.begin_nested():
                    session.add(
                        TeamsMember(
                            member_id=member.id or 0,
                            teams_id=account.id or "",
                            aad_object_id=account.aad_object_id,
                            name=account.name or "",
                            service_url=service_url,
                            bot_id=bot_id,
                            updated_at=self.clock.now(),
                        )
                    )
                    session.flush()
                return
            except sa.exc.IntegrityError:  # met concurrently by another request
                row = session.exec(
                    select(TeamsMember).where(TeamsMember.member_id == member.id)
                ).one()
        row.teams_id = account.id or row.teams_id
        row.aad_object_id = account.aad_object_id or row.aad_object_id
        row.name = account.name or row.name
        row.service_url, row.bot_id, row.updated_at = service_url, bot_id, self.clock.now()
        session.add(row)

    def _save_conversation(
        self,
        session: Session,
        workspace: Workspace,
        *,
        key: str,
        blob: dict[str, Any],
        name: str,
        member: Member | None,
        reference: str,
    ) -> None:
        def find() -> TeamsConversation | None:
            return session.exec(
                select(TeamsConversation).where(
                    TeamsConversation.workspace_id == workspace.id,
                    TeamsConversation.conversation_key == key,
                )
            ).first()

        row = find()
        if row is None:
            try:
                with session.begin_nested():
                    row = TeamsConversation(
                        workspace_id=workspace.id or 0,
                        conversation_key=key,
                        conversation_id=blob["conversation_id"],
                        service_url=blob["service_url"],
                        reference=reference,
                    )
                    session.add(row)
                    session.flush()
            except sa.exc.IntegrityError:
                row = find()
                assert row is not None
        row.conversation_id = blob["conversation_id"]
        row.conversation_type = blob.get("conversation_type") or row.conversation_type
        row.team_id = blob.get("team_id") or row.team_id
        row.member_id = member.id if member is not None else row.member_id
        row.name = name[:200] or row.name
        row.service_url = blob["service_url"]
        row.reference = reference
        row.updated_at = self.clock.now()
        session.add(row)

    # -- files waiting for consent ----------------------------------------------------------
    def keep_file(self, *, tenant: str, user_id: str, attachment: Any) -> str:
        """Keep a file (an export, a portfolio) until its owner accepts it in Teams; returns
        its key. Kept in the database, so any replica can finish the upload; an hour at most."""
        now = self.clock.now()
        with self.db.session() as session:
            workspace = self._workspace(session, tenant)
            member = find_member(session, workspace_id=workspace.id or 0, user_id=user_id)
            if member is None or member.id is None:
                raise ValueError("a file for someone the bot doesn't know")
            session.exec(
                sa.delete(TeamsPendingFile).where(TeamsPendingFile.expires_at < now)  # type: ignore[arg-type]
            )
            key = secrets.token_hex(16)
            session.add(
                TeamsPendingFile(
                    key=key,
                    member_id=member.id,
                    filename=attachment.filename[:200],
                    mime_type=attachment.mime_type[:100],
                    content=attachment.content,
                    expires_at=now + timedelta(seconds=FILE_SECONDS),
                )
            )
        return key

    def take_file(self, *, key: str, tenant: str, user_id: str) -> dict[str, Any] | None:
        """The kept file, removed from the database, if it is this person's and still there."""
        now = self.clock.now()
        with self.db.session() as session:
            row = session.get(TeamsPendingFile, key)
            if row is None:
                return None
            workspace = self._workspace(session, tenant)
            member = find_member(session, workspace_id=workspace.id or 0, user_id=user_id)
            if member is None or member.id != row.member_id:
                return None
            session.delete(row)
            if row.expires_at < now:
                return None
            return {"filename": row.filename, "mime_type": row.mime_type, "content": row.content}

    # -- reading ---------------------------------------------------------------------------
    def conversation(self, *, tenant: str, key: str) -> Target | None:
        with self.db.session() as session:
            row = session.exec(
                select(TeamsConversation)
                .join(Workspace, Workspace.id == TeamsConversation.workspace_id)  # type: ignore[arg-type]
                .where(
                    Workspace.platform == PLATFORM,
                    Workspace.external_id == tenant,
                    TeamsConversation.conversation_key == key,
                )
            ).first()
            return _target_of(row, tenant) if row is not None else None

    def personal(self, *, tenant: str, user_id: str) -> Target | None:
        with self.db.session() as session:
            row = session.exec(
                select(TeamsConversation)
                .join(Member, Member.id == TeamsConversation.member_id)  # type: ignore[arg-type]
                .join(Workspace, Workspace.id == Member.workspace_id)  # type: ignore[arg-type]
                .where(
                    Workspace.platform == PLATFORM,
                    Workspace.external_id == tenant,
                    Member.user_id == user_id,
                    TeamsConversation.conversation_type == "personal",
                )
                .order_by(TeamsConversation.updated_at.desc())  # type: ignore[attr-defined]
            ).first()
            return _target_of(row, tenant) if row is not None else None

    def people(self, *, tenant: str, user_ids: Iterable[str]) -> dict[str, Person]:
        wanted = list(dict.fromkeys(user_ids))
        if not wanted:
            return {}
        with self.db.session() as session:
            rows = session.exec(
                select(Member.user_id, TeamsMember)
                .join(TeamsMember, TeamsMember.member_id == Member.id)  # type: ignore[arg-type]
                .join(Workspace, Workspace.id == Member.workspace_id)  # type: ignore[arg-type]
                .where(
                    Workspace.platform == PLATFORM,
                    Workspace.external_id == tenant,
                    Member.user_id.in_(wanted),  # type: ignore[attr-defined]
                )
            ).all()
            return {
                user_id: Person(
                    user_id=user_id,
                    teams_id=row.teams_id,
                    name=row.name,
                    service_url=row.service_url,
                    bot_id=row.bot_id,
                )
                for user_id, row in rows
            }

    def personal_chats(self, *, tenant: str, user_ids: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(user_ids))
        if not wanted:
            return set()
        with self.db.session() as session:
            return set(
                session.exec(
                    select(Member.user_id)
                    .join(TeamsConversation, TeamsConversation.member_id == Member.id)  # type: ignore[arg-type]
                    .join(Workspace, Workspace.id == Member.workspace_id)  # type: ignore[arg-type]
                    .where(
                        Workspace.platform == PLATFORM,
                        Workspace.external_id == tenant,
                        Member.user_id.in_(wanted),  # type: ignore[attr-defined]
                    )
                ).all()
            )

    def team_channels(self, *, tenant: str, team_id: str) -> list[str]:
        """Keys of the channels the bot has seen in a team (the team's own id included)."""
        with self.db.session() as session:
            keys = session.exec(
                select(TeamsConversation.conversation_key)
                .join(Workspace, Workspace.id == TeamsConversation.workspace_id)  # type: ignore[arg-type]
                .where(
                    Workspace.platform == PLATFORM,
                    Workspace.external_id == tenant,
                    TeamsConversation.team_id == team_id,
                    TeamsConversation.conversation_type == "channel",
                )
            ).all()
        return list(dict.fromkeys([short_id(team_id), *keys]))

    def resolver(self, tenant: str) -> Resolver:
        """Teams id -> user id, finding people met before when Teams sends no AAD id."""

        def resolve(teams_id: str, aad_object_id: str | None) -> str:
            if aad_object_id:
                return aad_object_id
            with self.db.session() as session:
                found = session.exec(
                    select(Member.user_id)
                    .join(TeamsMember, TeamsMember.member_id == Member.id)  # type: ignore[arg-type]
                    .join(Workspace, Workspace.id == Member.workspace_id)  # type: ignore[arg-type]
                    .where(
                        Workspace.platform == PLATFORM,
                        Workspace.external_id == tenant,
                        TeamsMember.teams_id == teams_id,
                    )
                ).first()
            return found or short_id(teams_id)

        return resolve


def copy_account(account: Any, conversation_id: str) -> Any:
    """The reference's conversation, pointing at the channel rather than a thread in it."""
    if account is None:
        return None
    clone = type(account).deserialize(account.serialize())
    clone.id = conversation_id
    return clone
