"""The Teams bot: each authenticated activity becomes neutral events for the core.

- message: words to the bot (1:1, or an @mention in a channel or group chat), a reply in a
  channel thread, or a card's Action.Submit (a message with `value`);
- invoke `adaptiveCard/action`: a card's Action.Execute; answered with an invoke response
  that only the person who clicked sees;
- invoke `fileConsent/invoke`: the person accepted (or declined) a file (`export`, a portfolio);
- conversationUpdate / installationUpdate: people and the bot joining; every person met is
  remembered so the bot can reach them, and greeted once with the profile card;
- messageReaction: "like" on an artifact card endorses, removing it withdraws;
- any other invoke (a message extension, a task module, `signin/...`: nothing this bot
  offers) is answered with an empty 200, so Teams shows the person no error.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import aiohttp
from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.schema import Activity, ActivityTypes
from sqlmodel import select

from adapters.teams import inbound, render
from adapters.teams.platform import TeamsPlatform
from adapters.teams.references import References
from bot.config import Settings
from bot.core.dispatch import SOMETHING_WENT_WRONG, Bot, Finish
from bot.core.events import ConversationRef, Event, MemberJoinedEvent, UserRef
from bot.core.inbox import Claim
from bot.core.messages import Card, Message, Visibility
from bot.features.profiles import profile_form
from storage.models import Workspace
from storage.queries import community_for_channel, workspace_and_member

log = logging.getLogger(__name__)

WELCOME = (
    "Welcome{name}! I'm PLN Bot. I help your professional learning network learn from each "
    "other's real work: set goals and check in on them, share evidence of your practice, and "
    "endorse the peer work you'd borrow. Tell me a little about yourself below (you can change "
    "it any time with `profile`); `help` shows everything."
)
HELLO = (
    "Hi, I'm PLN Bot. I help this team learn from each other's practice: goals and short "
    "check-ins, shared evidence, peer endorsements and a weekly digest of the best work. "
    "A coach makes this channel a PLN community by mentioning me with `setup`; anyone can "
    "mention me with `help`."
)
CARD_GONE = "That card's button isn't one I can act on any more. Type `help` to see what I can do."
PICK_FIRST = "Please choose a number from 0 to 10 first, then press Save."
DONE = "Done."
IN_CHAT = "I've sent you the next step in our 1:1 chat."
FILE_GONE = "That file is no longer waiting for you; ask for it again (for example `export`)."


def _clicker_sees(message: Message) -> bool:
    """A private answer to a card click in a channel: the invoke response shows it to the
    person who clicked (Teams has no message only one person in a channel sees)."""
    return (
        message.visibility is Visibility.EPHEMERAL
        and not (message.conversation and message.conversation.is_dm)
        and message.card is None
        and message.attachment is None
    )


def _goes_to_chat(message: Message) -> bool:
    """A private answer to a channel click that the invoke response can't show (a card, a
    file): it goes to the clicker's 1:1 chat instead (TeamsPlatform.send)."""
    return (
        message.visibility is Visibility.EPHEMERAL
        and not (message.conversation and message.conversation.is_dm)
        and not _clicker_sees(message)
    )


def _keyed(session: Any) -> None:
    """Teams units of work are durable (replies in the outbox) and each is keyed by its
    activity, so the stored activity is marked handled once all its units have run."""


def _removed(activity: Activity) -> bool:
    return activity.type == "installationUpdate" and str(activity.action or "").lower().startswith(
        "remove"
    )


class TeamsBridge:
    """Runs the core for each activity the CloudAdapter hands over (after authentication)."""

    def __init__(
        self,
        *,
        bot: Bot,
        settings: Settings,
        platform: TeamsPlatform,
        references: References,
        signer: render.Signer,
        http: Any,
    ) -> None:
        self.bot = bot
        self.settings = settings
        self.platform = platform
        self.references = references
        self.signer = signer
        self.http = http  # () -> aiohttp.ClientSession, for file uploads

    async def on_turn(self, turn: TurnContext) -> None:
        """A card click (`adaptiveCard/action`), answered in the HTTP response itself; the
        other activities are stored and worked by `work`."""
        activity = turn.activity
        if activity.type == ActivityTypes.invoke and activity.name == "adaptiveCard/action":
            resolve = await self._remember(activity)
            await self._card_action(turn, self.platform, resolve, invoke=True)
        elif activity.type == ActivityTypes.invoke:
            # Without an invoke response the SDK answers 501, which Teams shows as an error.
            log.info("Teams invoke %r is nothing this bot offers: answered 200", activity.name)
            await self._invoke_response(turn, {})

    async def work(self, claim: Claim) -> None:
        """Work one stored activity. Each unit of work queues its replies in the outbox in
        its own transaction, and is keyed so a run after a crash skips what was done."""
        activity = Activity().deserialize(json.loads(claim.event.payload))
        await self.on_activity(activity, finish=claim.finish)

    async def on_activity(self, activity: Activity, *, finish: Finish = _keyed) -> None:
        """`finish` marks the stored activity handled; the one unit of work a message makes
        does it in its own transaction."""
        resolve = await self._remember(activity)
        platform = self.platform
        kind = activity.type
        if kind == ActivityTypes.message:
            if activity.value is not None and not (activity.text or "").strip():
                await self._card_action(
                    None, platform, resolve, invoke=False, activity=activity, finish=finish
                )
                return
            event = inbound.message_event(
                activity, is_command=self.bot.router.is_command, resolve=resolve
            )
            if event is not None:
                await self._handle(event, platform, finish=finish)
        elif kind == ActivityTypes.invoke and activity.name == "fileConsent/invoke":
            await self._file_consent(activity, platform, resolve)
        elif kind == ActivityTypes.conversation_update:
            await self._members_added(activity, platform, resolve)
        elif kind == ActivityTypes.installation_update:
            await self._installation(activity, platform, resolve)
        elif kind == ActivityTypes.message_reaction:
            for reaction in inbound.reaction_events(
                activity, endorse=self.settings.slack_endorse_reaction, resolve=resolve
            ):
                await self._handle(reaction, platform)

    async def _remember(self, activity: Activity) -> inbound.Resolver:
        """Keep where this activity came from, so the bot can reach these people later."""
        tenant = inbound.tenant_of(activity)
        resolve = self.references.resolver(tenant)
        if _removed(activity) or self.references.unchanged(activity, resolve):
            return resolve
        try:
            await self.bot.db.run(self.references.remember, activity, resolve)
        except Exception:  # remembering must never cost the person their answer
            log.exception("storing the Teams conversation reference failed")
        return resolve

    async def _handle(self, event: Event, platform: Any, *, finish: Finish = _keyed) -> None:
        if event.user.user_id and event.user.workspace_id:
            await self.bot.process(event, platform, finish=finish)

    # -- cards -------------------------------------------------------------------------------
    async def _card_action(
        self,
        turn: TurnContext | None,
        platform: TeamsPlatform,
        resolve: inbound.Resolver,
        *,
        invoke: bool,
        activity: Activity | None = None,
        finish: Finish = _keyed,
    ) -> None:
        if activity is None:
            assert turn is not None  # callers pass the turn or the activity it carries
            activity = turn.activity
        parsed = inbound.card_action(activity, signer=self.signer, resolve=resolve)
        if isinstance(parsed, inbound.CardRefused):
            log.warning(
                "card action refused (%s) from %s",
                parsed.reason,
                activity.from_property.id if activity.from_property else "?",
            )
            answer = PICK_FIRST if parsed.needs_choice else CARD_GONE
            if turn is not None:
                await self._invoke_response(turn, render.invoke_message(answer))
            else:
                user = inbound.user_ref(activity, resolve=resolve)
                conversation = inbound.conversation_ref(activity)
                visibility = Visibility.CHANNEL if conversation.is_dm else Visibility.EPHEMERAL
                await self.bot.send_later(
                    [
                        Message(
                            text=answer, visibility=visibility, to=user, conversation=conversation
                        )
                    ]
                )
            return
        if turn is None:
            await self._handle(parsed, platform, finish=finish)
            return
        # Inside the click's invoke: private answers become the invoke response, which only
        # the person who clicked sees; everything else goes out through the outbox.
        here: list[Message] = []
        to_chat: list[Message] = []

        def answer_here(message: Message) -> bool:
            if _goes_to_chat(message) and not any(m is message for m in to_chat):
                to_chat.append(message)
            return _clicker_sees(message)

        if parsed.user.user_id and parsed.user.workspace_id:
            try:
                here = await self.bot.process(
                    parsed, platform, finish=_keyed, answer_here=answer_here
                )
            except Exception:
                log.exception("Teams card action failed")
                here = [Message(text=SOMETHING_WENT_WRONG)]
        # "Done." alone would leave whoever clicked in a channel looking for the form or the
        # question the click opened: say where it went.
        note = "\n".join(message.text for message in here) or (IN_CHAT if to_chat else DONE)
        await self._invoke_response(turn, render.invoke_message(note))

    @staticmethod
    async def _invoke_response(turn: TurnContext, body: dict[str, Any], status: int = 200) -> None:
        await turn.send_activity(
            Activity(
                type=ActivityTypes.invoke_response, value=InvokeResponse(status=status, body=body)
            )
        )

    # -- people joining ----------------------------------------------------------------------
    async def _members_added(
        self, activity: Activity, platform: TeamsPlatform, resolve: inbound.Resolver
    ) -> None:
        blob = inbound.reference_blob(activity)
        tenant = blob["tenant"]
        if inbound.bot_removed(activity):  # e.g. no longer allowed in a shared channel
            await self.bot.db.run(
                functools.partial(
                    self.references.forget_conversation,
                    tenant=tenant,
                    conversation_id=blob["conversation_id"],
                )
            )
        people = inbound.added_people(activity)
        bot_added = inbound.bot_added(activity)
        personal = blob["conversation_type"] == "personal"
        if bot_added and personal and not people and activity.from_property:
            people = [activity.from_property]
        if people:
            await self.bot.db.run(
                functools.partial(
                    self.references.remember_people,
                    tenant=tenant,
                    accounts=people,
                    service_url=blob["service_url"],
                    bot_id=blob["bot_id"],
                    resolve=resolve,
                )
            )
        if bot_added and not personal:
            await self._hello(activity, platform)
        for account in people:
            await self._welcome(activity, inbound.user_ref(activity, account, resolve), platform)

    async def _installation(
        self, activity: Activity, platform: TeamsPlatform, resolve: inbound.Resolver
    ) -> None:
        tenant = inbound.tenant_of(activity)
        db = self.bot.db
        if _removed(activity):
            await db.run(
                functools.partial(
                    self.references.forget_conversation,
                    tenant=tenant,
                    conversation_id=inbound.teams_conversation_id(activity),
                )
            )
            return
        if not str(activity.action or "").lower().startswith("add") or not activity.from_property:
            return
        installer = inbound.user_ref(activity, resolve=resolve)
        await db.run(
            functools.partial(
                self.references.set_installer, tenant=tenant, user_id=installer.user_id
            )
        )
        if inbound.conversation_type(activity) == "personal":
            await self._welcome(activity, installer, platform)
        else:
            await self._hello(activity, platform)

    async def _hello(self, activity: Activity, platform: TeamsPlatform) -> None:
        conversation = inbound.conversation_ref(activity)
        await self.bot.send_later(
            [Message(text=HELLO, conversation=conversation)],
            once=f"teams:hello:{conversation.workspace_id}:{conversation.channel_id}",
        )

    async def _welcome(self, activity: Activity, user: UserRef, platform: TeamsPlatform) -> None:
        """The core welcomes people to the communities of the team they joined; someone it
        doesn't welcome (no community there, a group chat, a 1:1 install) gets the Teams
        greeting with the profile card. Either way, once per person."""
        conversation = inbound.conversation_ref(activity)
        db = self.bot.db
        welcomed = False
        once = f"teams:welcomed:{user.workspace_id}:{user.user_id}"
        if not conversation.is_dm:
            keys = [conversation.channel_id]
            team = inbound.team_id(activity) if inbound.team_wide(activity) else None
            if team:
                keys = await db.run(
                    functools.partial(
                        self.references.team_channels, tenant=user.workspace_id, team_id=team
                    )
                )
            for key in keys:
                channel = ConversationRef(
                    platform=inbound.PLATFORM, workspace_id=user.workspace_id, channel_id=key
                )
                await self._handle(
                    MemberJoinedEvent(
                        user=user,
                        conversation=channel,
                        dedupe_key=f"join:{activity.id}:{user.user_id}:{key}",
                        raw=activity,
                    ),
                    platform,
                )
            welcomed = await db.run(self._has_community, user.workspace_id, keys)
        if welcomed:
            await self.bot.send_later([], once=once)  # welcomed by the community: once is enough
            return
        form = await db.run(self._profile_form, user)
        first_name = (user.name or "").split(" ")[0]
        text = WELCOME.format(name=f", {first_name}" if first_name else "")
        card = Card(title="Welcome to PLN Bot", body=text, inputs=form.inputs, submit=form.submit)
        message = Message(text=text, card=card, visibility=Visibility.DM, to=user)
        if conversation.is_dm:
            message = Message(text=text, card=card, conversation=conversation)
        await self.bot.send_later([message], once=once)

    def _has_community(self, tenant: str, channels: list[str]) -> bool:
        with self.bot.db.session() as session:
            workspace = session.exec(
                select(Workspace).where(
                    Workspace.platform == inbound.PLATFORM, Workspace.external_id == tenant
                )
            ).first()
            return workspace is not None and any(
                community_for_channel(session, workspace_id=workspace.id or 0, channel_id=key)
                for key in channels
            )

    def _profile_form(self, user: UserRef) -> Card:
        with self.bot.db.session() as session:
            _, member = workspace_and_member(
                session,
                platform=inbound.PLATFORM,
                external_id=user.workspace_id,
                user_id=user.user_id,
                name=user.name,
                now=self.bot.clock.now(),
            )
            return profile_form(member)

    # -- export files ------------------------------------------------------------------------
    async def _file_consent(
        self, activity: Activity, platform: TeamsPlatform, resolve: inbound.Resolver
    ) -> None:
        """A file's consent card was answered: on accept, upload the kept file to the OneDrive
        URL Teams gives and show it; on decline, drop it. (The invoke was answered 200 when
        it was stored.)"""
        value = activity.value if isinstance(activity.value, dict) else {}
        context = value.get("context")
        context = context if isinstance(context, dict) else {}
        upload = value.get("uploadInfo")
        upload = upload if isinstance(upload, dict) else {}
        user = inbound.user_ref(activity, resolve=resolve)
        conversation = inbound.conversation_ref(activity)
        key = context.get("k")
        if (
            context.get("pln") != "file"
            or not isinstance(key, str)
            or not self.signer.verify(user.workspace_id, "file", key, str(context.get("s") or ""))
        ):
            log.warning("file consent with unknown context refused")
            return
        kept = await self.bot.db.run(
            functools.partial(
                self.references.take_file, key=key, tenant=user.workspace_id, user_id=user.user_id
            )
        )
        if kept is None:
            await self._say(platform, conversation, FILE_GONE)
            return
        if value.get("action") != "accept":
            await self._say(platform, conversation, f"Okay, I won't send {kept['filename']}.")
            return
        content: bytes = kept["content"]
        url = upload.get("uploadUrl")
        # https only; plain http just when the connector itself is (a local emulator)
        local = str(activity.service_url).startswith("http:")
        try:
            if not isinstance(url, str) or not url.startswith(
                ("https://", "http://") if local else ("https://",)
            ):
                raise ValueError("no usable upload URL")
            async with self.http().put(
                url,
                data=content,
                headers={
                    "Content-Range": f"bytes 0-{len(content) - 1}/{len(content)}",
                    "Content-Length": str(len(content)),
                },
                timeout=aiohttp.ClientTimeout(total=60),
            ) as response:
                if response.status >= 300:
                    raise ValueError(f"upload answered {response.status}")
        except Exception:
            log.exception("uploading a file to Teams failed")
            await self._say(platform, conversation, SOMETHING_WENT_WRONG)
            return
        info = {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.teams.card.file.info",
                    "contentUrl": upload.get("contentUrl"),
                    "name": upload.get("name") or kept["filename"],
                    "content": {
                        "uniqueId": upload.get("uniqueId"),
                        "fileType": upload.get("fileType") or kept["filename"].rpartition(".")[2],
                    },
                }
            ],
        }
        target = platform.target(conversation)

        async def post(connector: Any) -> Any:
            return await connector.conversations.send_to_conversation(target.conversation_id, info)

        try:
            await platform._with_connector(target, post)
        except Exception:
            log.exception("posting the file card failed")

    async def _say(self, platform: TeamsPlatform, conversation: ConversationRef, text: str) -> None:
        await self.bot.send_later([Message(text=text, conversation=conversation)])
