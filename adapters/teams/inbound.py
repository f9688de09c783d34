"""Bot Framework activities from Teams -> neutral events. Pure functions over the SDK's
`Activity`, tested with payloads shaped like Teams' own (tests/payloads/teams/).

Identities: the tenant is the workspace; a person's user id is their Entra (AAD) object id
when Teams sends one, else their Teams id (hashed when longer than our 64-character ids).
A channel is known by its channel id; a reply in a channel thread keeps the channel id and
carries the thread's root message id as `thread_id`.

Shared and private channels (manifest `supportsChannelFeatures`): a shared channel belongs to
its host team and tenant, and people from other teams and other tenants take part in it. The
workspace is the tenant hosting the conversation, `conversation.tenantId` (Microsoft: "to
retrieve the host tenant ID for any event or action payload received by a bot"), before
`channelData.tenant`; a person's own tenant (`membershipSource.tenantId`) never moves their
activity into another workspace. Such a channel's members are its own, not the host team's
(`team_wide`), so the channel is not counted as one of the team's (`reference_blob`).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ChannelAccount

from adapters.teams.render import CHOICE_INPUT, DATA_KEY, KEEP_KEY, Signer
from bot.core.events import (
    ActionEvent,
    CommandEvent,
    ConversationRef,
    Event,
    MessageEvent,
    MessageRef,
    ReactionEvent,
    UserRef,
)

PLATFORM = "teams"
MAX_ID = 64
MAX_VALUE = 10_000
_LINK = re.compile(r"<a\b[^>]*\bhref=\"([^\"]+)\"[^>]*>.*?</a>", re.I | re.S)
_TAG = re.compile(r"<(?!@)[^>]+>")  # markup, but not our <@user> mentions
_THREAD = re.compile(r";messageid=(\d+)", re.I)

# (Teams id, AAD object id or None) -> our user id; the bridge passes one that knows the
# people already met, so a mention without an AAD id still finds the right member.
Resolver = Callable[[str, str | None], str]


def short_id(raw: str) -> str:
    """Ids longer than our columns become a stable hash (`h:` + 40 hex characters)."""
    return raw if len(raw) <= MAX_ID else "h:" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def default_resolver(teams_id: str, aad_object_id: str | None) -> str:
    return aad_object_id or short_id(teams_id)


def _channel_data(activity: Activity) -> dict[str, Any]:
    return activity.channel_data if isinstance(activity.channel_data, dict) else {}


def tenant_of(activity: Activity) -> str:
    """The tenant hosting the conversation (see the module docstring), else channelData's."""
    conversation = activity.conversation
    tenant = None
    if conversation is not None:
        tenant = conversation.tenant_id or (conversation.additional_properties or {}).get(
            "tenantId"
        )
    if not tenant:
        tenant = (_channel_data(activity).get("tenant") or {}).get("id")
    return str(tenant or activity.channel_id or "")  # the Bot Framework Emulator sends none


def channel_kind(activity: Activity) -> str:
    """ "standard", "shared" or "private" for a channel (Teams' channelData.channel.type)."""
    channel = _channel_data(activity).get("channel")
    kind = channel.get("type") if isinstance(channel, dict) else None
    return str(kind).lower() if isinstance(kind, str) and kind else "standard"


def team_wide(activity: Activity) -> bool:
    """Whether people added here joined the whole team (a team's roster change), rather than
    one shared or private channel, whose members are its own."""
    event = str(_channel_data(activity).get("eventType") or "").lower()
    return channel_kind(activity) == "standard" and not event.startswith("channelmember")


def conversation_type(activity: Activity) -> str:
    conversation = activity.conversation
    kind = (conversation.conversation_type if conversation else None) or ""
    if not kind:  # older payloads: a channel has channelData.channel; else a group flag
        channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
        if channel_data.get("channel"):
            kind = "channel"
        else:
            kind = "groupChat" if conversation and conversation.is_group else "personal"
    return kind


def teams_conversation_id(activity: Activity) -> str:
    """The id to post a new message to: the channel (not the thread) in a team."""
    conversation_id = str(activity.conversation.id or "") if activity.conversation else ""
    if conversation_type(activity) == "channel":
        channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
        channel = (channel_data.get("channel") or {}).get("id") if channel_data else None
        return str(channel or conversation_id.split(";")[0])
    return conversation_id


def thread_root(activity: Activity) -> str | None:
    """The root message id when the activity is in a channel thread."""
    match = _THREAD.search(str(activity.conversation.id or "")) if activity.conversation else None
    return match.group(1) if match else None


def team_id(activity: Activity) -> str | None:
    channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    team = (channel_data.get("team") or {}).get("id") if channel_data else None
    return str(team) if team else None


def reference_blob(activity: Activity) -> dict[str, Any]:
    """What the platform needs to post into this conversation (kept in ConversationRef.raw)."""
    recipient = activity.recipient or ChannelAccount()
    return {
        "service_url": activity.service_url or "",
        "conversation_id": teams_conversation_id(activity),
        "conversation_type": conversation_type(activity),
        "tenant": tenant_of(activity),
        "bot_id": recipient.id or "",
        "bot_name": recipient.name or "",
        # A shared or private channel is not one of the team's channels: its people are its
        # own (the team's roster isn't theirs, and a team-wide welcome doesn't reach it).
        "team_id": team_id(activity) if channel_kind(activity) == "standard" else None,
    }


def conversation_ref(activity: Activity) -> ConversationRef:
    kind = conversation_type(activity)
    channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    name = (channel_data.get("channel") or {}).get("name") if channel_data else None
    name = name or (activity.conversation.name if activity.conversation else None) or ""
    return ConversationRef(
        platform=PLATFORM,
        workspace_id=tenant_of(activity),
        channel_id=short_id(teams_conversation_id(activity)),
        thread_id=thread_root(activity) if kind == "channel" else None,
        is_dm=kind == "personal",
        name=str(name),
        raw=reference_blob(activity),
    )


def client_timezone(activity: Activity) -> str | None:
    for entity in activity.entities or []:
        if (entity.type or "").lower() == "clientinfo":
            zone = (entity.additional_properties or {}).get("timezone")
            if isinstance(zone, str) and zone:
                return zone
    return None


def user_ref(
    activity: Activity, account: ChannelAccount | None = None, resolve: Resolver = default_resolver
) -> UserRef:
    account = account or activity.from_property or ChannelAccount()
    return UserRef(
        platform=PLATFORM,
        workspace_id=tenant_of(activity),
        user_id=resolve(account.id or "", account.aad_object_id),
        name=account.name or "",
        timezone=client_timezone(activity) if account is activity.from_property else None,
    )


def _mentions(activity: Activity) -> list[dict[str, Any]]:
    found = []
    for entity in activity.entities or []:
        props = entity.additional_properties or {}
        mentioned = props.get("mentioned")
        if (entity.type or "").lower() == "mention" and isinstance(mentioned, dict):
            found.append(
                {"id": str(mentioned.get("id") or ""), "text": props.get("text"), **mentioned}
            )
    return found


def bot_mentioned(activity: Activity) -> bool:
    bot = activity.recipient.id if activity.recipient else None
    return any(m["id"] == bot for m in _mentions(activity))


def clean_text(activity: Activity, resolve: Resolver = default_resolver) -> str:
    """The words typed: the bot's @mention removed (by the SDK), other mentions as `<@id>`,
    links and markup as plain text."""
    working = copy.copy(activity)
    working.text = activity.text or ""
    if bot_mentioned(working):
        with contextlib.suppress(KeyError, TypeError, AttributeError):  # a malformed entity
            TurnContext.remove_recipient_mention(working)
    text = working.text or ""
    bot = activity.recipient.id if activity.recipient else None
    for mention in _mentions(activity):  # what the SDK left (it stops at a malformed entity)
        if mention["id"] == bot and isinstance(mention.get("text"), str):
            text = text.replace(mention["text"], "")
    for mention in _mentions(activity):
        if mention["id"] == bot or not isinstance(mention.get("text"), str):
            continue
        user_id = resolve(mention["id"], mention.get("aadObjectId"))
        text = text.replace(mention["text"], f"<@{user_id}>")
    text = _LINK.sub(lambda m: html.unescape(m.group(1)), text)
    text = _TAG.sub(lambda m: "\n" if m.group(0).lower() in ("<br>", "<br/>", "</p>") else "", text)
    text = html.unescape(text).replace("\xa0", " ")
    return text.strip()


def message_event(
    activity: Activity,
    *,
    is_command: Callable[[str], bool],
    resolve: Resolver = default_resolver,
) -> Event | None:
    """Words to the bot: in a 1:1 chat a message (flows, answers, commands); in a channel or
    group chat an @mention is a command, and a reply in a thread is a message there (a
    reflection under a prompt). Channel chatter that doesn't mention the bot is ignored."""
    conversation = conversation_ref(activity)
    user = user_ref(activity, resolve=resolve)
    text = clean_text(activity, resolve)
    dedupe = f"msg:{activity.id}" if activity.id else None
    if conversation.is_dm:
        return MessageEvent(
            user=user,
            conversation=conversation,
            text=text,
            message_id=activity.id or "",
            dedupe_key=dedupe,
            raw=activity,
        )
    in_thread = conversation.thread_id is not None and conversation.thread_id != activity.id
    mentioned = bot_mentioned(activity)
    if in_thread and not (mentioned and is_command(text)):
        return MessageEvent(
            user=user,
            conversation=conversation,
            text=text,
            message_id=activity.id or "",
            dedupe_key=dedupe,
            raw=activity,
        )
    if not mentioned and conversation_type(activity) == "channel":
        return None
    return CommandEvent(
        user=user,
        conversation=ConversationRef(
            platform=conversation.platform,
            workspace_id=conversation.workspace_id,
            channel_id=conversation.channel_id,
            is_dm=False,
            name=conversation.name,
            raw=conversation.raw,
        ),
        text=text,
        dedupe_key=dedupe,
        raw=activity,
    )


@dataclass(frozen=True)
class CardRefused:
    """A card submit we can't act on: no data, data from another card or tenant, or a forgery."""

    reason: str
    needs_choice: bool = False


def card_data(activity: Activity) -> Any:
    """The data of a card action: `value.action.data` for Action.Execute (an invoke),
    `value` itself for Action.Submit (a message)."""
    value = activity.value
    if activity.type == "invoke":
        action = value.get("action") if isinstance(value, dict) else None
        return action.get("data") if isinstance(action, dict) else None
    return value


def card_action(
    activity: Activity, *, signer: Signer, resolve: Resolver = default_resolver
) -> ActionEvent | CardRefused:
    data = card_data(activity)
    if not isinstance(data, dict):
        return CardRefused("no card data")
    ours = data.get(DATA_KEY)
    if not isinstance(ours, dict):
        return CardRefused("not one of our cards")
    action, value, signature = ours.get("a"), ours.get("v", ""), ours.get("s")
    origin = ours.get("ch", "")
    if not (
        isinstance(action, str)
        and isinstance(value, str)
        and isinstance(signature, str)
        and isinstance(origin, str)
    ):
        return CardRefused("malformed card data")
    tenant = tenant_of(activity)
    if not signer.verify(tenant, action, value, signature, origin):
        return CardRefused("signature does not match")
    values = {
        str(key): str(item)[:MAX_VALUE]
        for key, item in data.items()
        if key != DATA_KEY and isinstance(item, (str, int, float, bool)) and len(str(key)) <= 64
    }
    kept = ours.get(KEEP_KEY)
    for key in kept if isinstance(kept, list) else []:
        # a prefilled field Teams had no room to show: left empty, it keeps what is stored
        if isinstance(key, str) and not values.get(key, "").strip():
            values.pop(key, None)
    choice = values.pop(CHOICE_INPUT, None)
    if ours.get("c"):
        if not choice or not choice.strip():
            return CardRefused("no choice made", needs_choice=True)
        value = f"{value}:{choice.strip()}"
    conversation = conversation_ref(activity)
    # A private copy of a card asked for in a channel acts in that channel (where a share
    # goes, whose community it is), as a Slack modal does; replies stay private.
    acting_in = ConversationRef(
        platform=conversation.platform,
        workspace_id=conversation.workspace_id,
        channel_id=origin or conversation.channel_id,
        is_dm=conversation.is_dm and not origin,
        name="" if origin else conversation.name,
        raw=None if origin else conversation.raw,
    )
    return ActionEvent(
        user=user_ref(activity, resolve=resolve),
        conversation=acting_in,
        action_id=action,
        value=value,
        values=values,
        message=MessageRef(conversation=conversation, message_id=activity.reply_to_id)
        if activity.reply_to_id
        else None,
        dedupe_key=f"act:{activity.id}" if activity.id else None,
        raw=activity,
    )


def reaction_events(
    activity: Activity, *, endorse: str, resolve: Resolver = default_resolver
) -> list[ReactionEvent]:
    """Reactions on one of the bot's messages; Teams' "like" is the endorsing reaction."""
    if not activity.reply_to_id:
        return []
    conversation = conversation_ref(activity)
    message = MessageRef(conversation=conversation, message_id=activity.reply_to_id)
    user = user_ref(activity, resolve=resolve)
    events = []
    for added, reactions in ((True, activity.reactions_added), (False, activity.reactions_removed)):
        for index, reaction in enumerate(reactions or []):
            kind = (reaction.type or "").lower()
            events.append(
                ReactionEvent(
                    user=user,
                    conversation=conversation,
                    reaction=endorse if kind == "like" else kind,
                    message=message,
                    added=added,
                    dedupe_key=f"react:{activity.id}:{int(added)}:{index}" if activity.id else None,
                    raw=activity,
                )
            )
    return events


def added_people(activity: Activity) -> list[ChannelAccount]:
    """People (not the bot) in `membersAdded`."""
    bot = activity.recipient.id if activity.recipient else None
    return [m for m in activity.members_added or [] if m.id and m.id != bot]


def bot_added(activity: Activity) -> bool:
    bot = activity.recipient.id if activity.recipient else None
    return any(m.id == bot for m in activity.members_added or [])


def bot_removed(activity: Activity) -> bool:
    """The bot left a conversation (in a shared channel: it was no longer allowed there)."""
    bot = activity.recipient.id if activity.recipient else None
    return any(m.id == bot for m in activity.members_removed or [])
