"""The Teams side of the adapter port: post, update, open a 1:1 chat, list a team's people.

Out of a turn (the outbox: check-ins, prompts, digests) messages go through the SDK's
`continue_conversation` with a stored reference, and a 1:1 chat with someone the bot has only
met in a team is opened with `create_conversation` at their stored serviceUrl. Inside a turn
the turn's own connector is used. Either way the connector is the pooled one
(adapters/teams/connector.py), so pacing and retries apply to every call.

Teams has no messages that only one person in a channel sees: a private answer to something
said in a channel goes to the person's 1:1 chat with the bot (or, for a card button, into the
invoke response only the clicker sees). Teams lets a bot open a 1:1 chat only with people of
the tenant it is installed in, so someone from another organisation in a shared channel gets,
in the channel, a note saying the bot can't answer them privately — never the answer itself.

A message too big for one Teams message is sent as several (adapters/teams/render.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import (
    ChannelAccount,
    ConversationAccount,
    ConversationParameters,
    ConversationReference,
)
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import ConnectorFactory
from msrest.exceptions import ClientRequestError, HttpOperationError

from adapters.teams import render
from adapters.teams.connector import TENANT_KWARG
from adapters.teams.inbound import PLATFORM, short_id
from adapters.teams.references import References, Target
from bot.core.events import ConversationRef, MessageRef, UserRef
from bot.core.messages import Message, Visibility
from bot.core.port import DeliveryError, UserInfo

log = logging.getLogger(__name__)

T = TypeVar("T")
_MENTION = re.compile(r"<@([A-Za-z0-9_:.\-]+)(?:\|[^>]*)?>")
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 413})
NOT_PRIVATELY = (
    "<@{user}>, I can't answer you privately from here: Teams lets me start a private chat "
    "only with people in the organisation that added me to this channel. What you share "
    "here still counts."
)


class Unreachable(DeliveryError):
    """Nobody can be messaged here yet: a permanent failure with the reason for the coach."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, permanent=True)


def _delivery_error(action: str, exc: Exception) -> DeliveryError:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    if isinstance(exc, HttpOperationError) and status:
        retry_after = (response.headers or {}).get("Retry-After") if response is not None else None
        error = getattr(getattr(exc, "error", None), "error", None)  # the body's {"error": {...}}
        detail = f" {error.code}: {error.message}" if error is not None and error.code else ""
        return DeliveryError(
            f"Teams {action}: HTTP {status}{detail}"[:480],
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            permanent=status in PERMANENT_STATUSES,
        )
    return DeliveryError(f"Teams {action}: {exc.__class__.__name__}: {exc}"[:480])


class TeamsPlatform:
    """Implements `bot.port.Platform` (and `unreachable`) for Microsoft Teams."""

    name = PLATFORM

    def __init__(
        self,
        *,
        adapter: CloudAdapter,
        app_id: str,
        references: References,
        signer: render.Signer,
        turn: TurnContext | None = None,
        connectors: ConnectorFactory | None = None,
    ) -> None:
        self.adapter = adapter
        self.app_id = app_id
        self.references = references
        self.signer = signer
        self.turn = turn
        self.connectors = connectors  # the pooled connector clients, for sends out of a turn

    def for_turn(self, turn: TurnContext) -> TeamsPlatform:
        return TeamsPlatform(
            adapter=self.adapter,
            app_id=self.app_id,
            references=self.references,
            signer=self.signer,
            turn=turn,
            connectors=self.connectors,
        )

    # -- where things go -------------------------------------------------------------------
    def target(self, conversation: ConversationRef) -> Target:
        found = Target.from_blob(dict(conversation.raw)) if conversation.raw else None
        if found is None:
            found = self.references.conversation(
                tenant=conversation.workspace_id, key=conversation.channel_id
            )
        if found is None:
            raise Unreachable(
                f"PLN Bot isn't in the Teams conversation {conversation.channel_id} "
                "(add the app there first)"
            )
        return found

    async def _with_connector(
        self, target: Target, call: Callable[[ConnectorClient], Awaitable[T]]
    ) -> T:
        """Run `call` with a connector for `target`: the turn's, or a proactive turn's."""
        turn = self.turn
        if turn is not None and turn.activity.service_url == target.service_url:
            connector = turn.turn_state.get(self.adapter.BOT_CONNECTOR_CLIENT_KEY)
            if connector is not None:
                return await call(connector)
        if turn is None and self.connectors is not None:
            # Out of a turn (the outbox): the pooled client for the stored serviceUrl, as
            # continue_conversation would hand it over, without building a proactive turn.
            return await call(await self.connectors.create(target.service_url))
        reference = ConversationReference(
            channel_id="msteams",
            service_url=target.service_url,
            conversation=ConversationAccount(
                id=target.conversation_id,
                conversation_type=target.conversation_type,
                tenant_id=target.tenant,
            ),
            bot=ChannelAccount(id=target.bot_id, name=target.bot_name),
        )
        outcome: dict[str, Any] = {}

        async def logic(context: TurnContext) -> None:
            try:
                connector = context.turn_state[self.adapter.BOT_CONNECTOR_CLIENT_KEY]
                outcome["value"] = await call(connector)
            except Exception as exc:  # raised below, outside the SDK's turn-error handler
                outcome["error"] = exc

        await self.adapter.continue_conversation(reference, logic, self.app_id)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def _names(self, tenant: str, *texts: str) -> dict[str, str]:
        ids = {m for text in texts for m in _MENTION.findall(text or "")}
        if not ids:
            return {}
        return {
            uid: p.name for uid, p in self.references.people(tenant=tenant, user_ids=ids).items()
        }

    # -- the port ----------------------------------------------------------------------------
    async def send(self, conversation: ConversationRef, message: Message) -> MessageRef:
        origin = ""
        if message.visibility is Visibility.EPHEMERAL and not conversation.is_dm:
            assert message.to is not None
            origin = conversation.channel_id  # the card's buttons still act there
            try:
                conversation = await self.open_dm(message.to)
            except Unreachable as why:  # e.g. someone of another tenant in a shared channel
                log.info("a private answer became a note in the channel: %s", why.reason)
                note = NOT_PRIVATELY.format(user=message.to.user_id)
                return await self.send(conversation, Message(text=note))
        target = self.target(conversation)
        tenant = target.tenant or conversation.workspace_id
        if message.attachment is not None:
            if target.conversation_type != "personal":
                conversation = await self.open_dm(message.to) if message.to else conversation
                target = self.target(conversation)
            owner = message.to.user_id if message.to else ""
            key = self.references.keep_file(
                tenant=tenant, user_id=owner, attachment=message.attachment
            )
            context = {"pln": "file", "k": key, "s": self.signer.sign(tenant, "file", key)}
            activities = [render.file_consent_activity(message, context=context)]
        else:
            names = self._names(tenant, message.text, message.card.body if message.card else "")
            # Too big for one Teams message: several, unless the bot may update it later
            # (then it is shortened to one, so an update reaches all of it).
            activities = render.message_activities(
                message,
                signer=self.signer,
                tenant=tenant,
                names=names,
                origin=origin,
                split=message.link is None,
            )
        conversation_id = target.conversation_id
        if message.thread_id and target.conversation_type == "channel":
            conversation_id = f"{conversation_id};messageid={message.thread_id}"

        def post(activity: dict[str, Any]) -> Callable[[ConnectorClient], Awaitable[Any]]:
            async def call(connector: ConnectorClient) -> Any:
                return await connector.conversations.send_to_conversation(
                    conversation_id, activity, **{TENANT_KWARG: tenant}
                )

            return call

        try:
            response = await self._with_connector(target, post(activities[0]))
        except (HttpOperationError, ClientRequestError, OSError) as exc:
            raise _delivery_error("send", exc) from exc
        for number, more in enumerate(activities[1:], start=2):
            try:
                await self._with_connector(target, post(more))
            except (HttpOperationError, ClientRequestError, OSError) as exc:
                # The first part is posted: failing the row would post it again on retry.
                log.error(
                    "part %d of %d of a Teams message was not sent: %s",
                    number,
                    len(activities),
                    _delivery_error("send", exc),
                )
        posted = ConversationRef(
            platform=PLATFORM,
            workspace_id=conversation.workspace_id,
            channel_id=short_id(target.conversation_id),
            is_dm=target.conversation_type == "personal",
            raw=target.blob(),
        )
        return MessageRef(conversation=posted, message_id=str(getattr(response, "id", "") or ""))

    async def update(self, ref: MessageRef, message: Message) -> None:
        target = self.target(ref.conversation)
        tenant = target.tenant or ref.conversation.workspace_id
        activity = render.message_activity(
            message,
            signer=self.signer,
            tenant=tenant,
            names=self._names(tenant, message.text, message.card.body if message.card else ""),
        )
        activity["id"] = ref.message_id

        async def put(connector: ConnectorClient) -> Any:
            return await connector.conversations.update_activity(
                target.conversation_id, ref.message_id, activity, **{TENANT_KWARG: tenant}
            )

        try:
            await self._with_connector(target, put)
        except (HttpOperationError, ClientRequestError, OSError) as exc:
            raise _delivery_error("update", exc) from exc

    async def open_dm(self, user: UserRef) -> ConversationRef:
        tenant = user.workspace_id
        target = self.references.personal(tenant=tenant, user_id=user.user_id)
        if target is None:
            target = await self._create_personal(user)
        return ConversationRef(
            platform=PLATFORM,
            workspace_id=tenant,
            channel_id=short_id(target.conversation_id),
            is_dm=True,
            raw=target.blob(),
        )

    async def _create_personal(self, user: UserRef) -> Target:
        tenant = user.workspace_id
        person = self.references.people(tenant=tenant, user_ids=[user.user_id]).get(user.user_id)
        who = (person.name if person else "") or user.name or "This member"
        if person is None:
            raise Unreachable(
                f"{who} can't be reached in Teams yet: they haven't talked to PLN Bot and "
                "aren't in a team or chat with it"
            )
        parameters = ConversationParameters(
            is_group=False,
            bot=ChannelAccount(id=person.bot_id),
            members=[ChannelAccount(id=person.teams_id)],
            tenant_id=tenant,
            channel_data={"tenant": {"id": tenant}},
        )
        created: dict[str, str] = {}

        async def remember(context: TurnContext) -> None:
            created["id"] = context.activity.conversation.id

        try:
            await self.adapter.create_conversation(
                self.app_id,
                remember,
                parameters,
                channel_id="msteams",
                service_url=person.service_url,
            )
        except HttpOperationError as exc:
            error = _delivery_error("opening a 1:1 chat", exc)
            if error.permanent:
                raise Unreachable(
                    f"{who} can't be reached in Teams: {error.reason} (is the app installed "
                    "for them, or are they still in a team with it?)"
                ) from exc
            raise error from exc
        except (ClientRequestError, OSError) as exc:
            raise _delivery_error("opening a 1:1 chat", exc) from exc
        if not created.get("id"):
            raise DeliveryError("Teams did not return the new 1:1 chat's id")
        target = Target(
            service_url=person.service_url,
            conversation_id=created["id"],
            conversation_type="personal",
            tenant=tenant,
            bot_id=person.bot_id,
        )
        self.references.save_personal(user_id=user.user_id, target=target)
        return target

    async def user_info(self, user: UserRef) -> UserInfo:
        # Teams tells a bot no timezone (clientInfo on each message does) and no admin flag:
        # coaches come from PLNBOT_COACHES, the installer and `coach add`.
        person = self.references.people(tenant=user.workspace_id, user_ids=[user.user_id])
        found = person.get(user.user_id)
        return UserInfo(name=found.name if found else user.name)

    async def channel_members(self, conversation: ConversationRef) -> list[str]:
        """The team's (or group chat's) people, from the paged roster; each is remembered so
        the bot can open a 1:1 chat with them."""
        target = self.target(conversation)
        if target.conversation_type == "personal":
            return []
        roster_id = target.team_id or target.conversation_id
        accounts: list[Any] = []

        async def page_through(connector: ConnectorClient) -> None:
            token = None
            for _ in range(100):  # 500 a page; a team has at most 25,000 people
                page = await connector.conversations.get_teams_conversation_paged_members(
                    roster_id, 500, token
                )
                accounts.extend(page.members or [])
                token = page.continuation_token
                if not token:
                    return

        try:
            await self._with_connector(target, page_through)
        except (HttpOperationError, ClientRequestError, OSError) as exc:
            raise _delivery_error("roster", exc) from exc
        return self.references.remember_people(
            tenant=target.tenant or conversation.workspace_id,
            accounts=accounts,
            service_url=target.service_url,
            bot_id=target.bot_id,
            resolve=self.references.resolver(target.tenant or conversation.workspace_id),
        )

    async def unreachable(self, users: list[UserRef]) -> list[UserRef]:
        """Who can't get a direct message yet: no 1:1 chat with the bot and never met in a
        team or chat (so there is nothing to open one with)."""
        by_tenant: dict[str, list[UserRef]] = {}
        for user in users:
            by_tenant.setdefault(user.workspace_id, []).append(user)
        missing = []
        for tenant, group in by_tenant.items():
            ids = [u.user_id for u in group]
            known = self.references.personal_chats(tenant=tenant, user_ids=ids)
            known |= set(self.references.people(tenant=tenant, user_ids=ids))
            missing += [u for u in group if u.user_id not in known]
        return missing
