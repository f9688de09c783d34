"""Slack payloads -> neutral events. Pure functions, tested with recorded real payloads."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from adapters.slack.render import view_values
from bot.core.events import (
    ActionEvent,
    CommandEvent,
    ConversationRef,
    MemberJoinedEvent,
    MessageEvent,
    MessageRef,
    ReactionEvent,
    UserRef,
)

PLATFORM = "slack"
SLACKBOT = "USLACKBOT"  # Slackbot writes in every app's DM (reminders, notices) as this user
_LINK = re.compile(r"<((?:https?|mailto|ftp)[^>|]*)(?:\|[^>]*)?>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_MENTION_AND_SPACE = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>[ \t]*")
_LEADING_MENTION = re.compile(r"^\s*<@[UW][A-Z0-9]+(?:\|[^>]*)?>[ \t]*")


def plain_text(text: str) -> str:
    """Slack's escaped, link-wrapped text as plain words (mentions stay `<@U…>`)."""
    text = _LINK.sub(lambda m: m.group(1), text or "")
    text = _USER.sub(lambda m: f"<@{m.group(1)}>", text)
    text = _CHANNEL.sub(lambda m: f"#{m.group(2) or m.group(1)}", text)
    return html.unescape(text)


def _team(body: dict[str, Any]) -> str:
    team = body.get("team_id") or (body.get("team") or {}).get("id")
    if not team:
        team = (body.get("user") or {}).get("team_id", "")
    return str(team or "")


def _conversation(
    team: str,
    channel: str,
    *,
    thread: str | None = None,
    name: str = "",
    raw: dict[str, Any] | None = None,
) -> ConversationRef:
    return ConversationRef(
        platform=PLATFORM,
        workspace_id=team,
        channel_id=channel,
        thread_id=thread,
        is_dm=channel.startswith("D"),
        name=name,
        raw=raw,
    )


def command_event(body: dict[str, Any]) -> CommandEvent:
    team = _team(body)
    return CommandEvent(
        user=UserRef(
            platform=PLATFORM,
            workspace_id=team,
            user_id=body["user_id"],
            name=body.get("user_name", ""),
        ),
        conversation=_conversation(
            team,
            body["channel_id"],
            name=body.get("channel_name", "")
            if body.get("channel_name") != "directmessage"
            else "",
            raw={"response_url": body.get("response_url"), "trigger_id": body.get("trigger_id")},
        ),
        text=plain_text(body.get("text", "")),
        dedupe_key=f"cmd:{body['trigger_id']}" if body.get("trigger_id") else None,
        raw=body,
    )


def _from_a_bot(event: dict[str, Any]) -> bool:
    """Written by an app, a bot user or Slackbot: never something a person said to us."""
    return bool(
        event.get("bot_id")
        or event.get("subtype") == "bot_message"
        or event.get("user") == SLACKBOT
        or not event.get("user")
    )


def _bot_users(body: dict[str, Any]) -> set[str]:
    """Our bot user's id in this workspace, from the envelope's `authorizations`."""
    return {
        str(a.get("user_id"))
        for a in body.get("authorizations") or []
        if a.get("is_bot") and a.get("user_id")
    }


def _mentions(text: str, bots: set[str]) -> bool:
    return any(m.group(1) in bots for m in _USER.finditer(text or ""))


def _without_mentions(text: str, bots: set[str]) -> str:
    """The words addressed to the bot: its mentions (and the spaces after them) removed,
    anyone else's kept, line breaks kept (a share's notes)."""
    if not bots:  # an envelope without authorizations: the leading mention is the bot's
        return _LEADING_MENTION.sub("", text or "").strip()
    return _MENTION_AND_SPACE.sub(
        lambda m: "" if m.group(1) in bots else m.group(0), text or ""
    ).strip()


def message_event(body: dict[str, Any]) -> MessageEvent | None:
    """A DM to the bot, or a reply in a channel thread; None for anything else (a bot's or
    Slackbot's message, channel chatter, a channel message that mentions the bot: that one
    arrives again as `app_mention` and runs as a command)."""
    event = body["event"]
    if _from_a_bot(event) or event.get("subtype") not in (None, "file_share", "thread_broadcast"):
        return None
    channel = event.get("channel", "")
    thread = event.get("thread_ts")
    is_dm = event.get("channel_type") == "im" or channel.startswith("D")
    if not is_dm and (not thread or thread == event.get("ts")):
        return None
    bots = _bot_users(body)
    text = event.get("text", "")
    if not is_dm and _mentions(text, bots):
        return None
    if is_dm:  # "@PLN Bot help" in its own DM is "help"
        text = _without_mentions(text, bots) if _mentions(text, bots) else text
    team = _team(body) or event.get("team", "")
    return MessageEvent(
        user=UserRef(platform=PLATFORM, workspace_id=team, user_id=event.get("user", "")),
        conversation=_conversation(team, channel, thread=None if is_dm else thread),
        text=plain_text(text),
        message_id=event.get("ts", ""),
        dedupe_key=f"evt:{body.get('event_id')}" if body.get("event_id") else None,
        raw=body,
    )


def mention_event(body: dict[str, Any]) -> CommandEvent | None:
    """`@PLN Bot <words>` in a channel (`app_mention`): the words run as a command there,
    as `/pln <words>` would. Slack never sends app_mention for DMs; its `message` twin is
    dropped by `message_event`."""
    event = body["event"]
    if _from_a_bot(event) or event.get("subtype") not in (None, "file_share", "thread_broadcast"):
        return None
    if event.get("edited"):  # an edit of a message that was worked already
        return None
    team = _team(body) or event.get("team", "")
    channel = str(event.get("channel", ""))
    if not channel:
        return None
    text = _without_mentions(event.get("text", ""), _bot_users(body))
    return CommandEvent(
        user=UserRef(platform=PLATFORM, workspace_id=team, user_id=event.get("user", "")),
        conversation=_conversation(team, channel),
        text=plain_text(text),
        dedupe_key=f"evt:{body.get('event_id')}" if body.get("event_id") else None,
        raw=body,
    )


def reaction_event(body: dict[str, Any]) -> ReactionEvent | None:
    event = body["event"]
    item = event.get("item") or {}
    if item.get("type") != "message":
        return None
    team = _team(body)
    conversation = _conversation(team, item.get("channel", ""))
    return ReactionEvent(
        user=UserRef(platform=PLATFORM, workspace_id=team, user_id=event.get("user", "")),
        conversation=conversation,
        reaction=event.get("reaction", ""),
        message=MessageRef(conversation=conversation, message_id=item.get("ts", "")),
        added=event.get("type") == "reaction_added",
        dedupe_key=f"evt:{body.get('event_id')}" if body.get("event_id") else None,
        raw=body,
    )


def joined_event(body: dict[str, Any]) -> MemberJoinedEvent:
    event = body["event"]
    team = _team(body) or event.get("team", "")
    return MemberJoinedEvent(
        user=UserRef(platform=PLATFORM, workspace_id=team, user_id=event.get("user", "")),
        conversation=_conversation(team, event.get("channel", "")),
        dedupe_key=f"evt:{body.get('event_id')}" if body.get("event_id") else None,
        raw=body,
    )


def action_event(body: dict[str, Any]) -> ActionEvent | None:
    """A button press on one of our cards (block_actions)."""
    actions = body.get("actions") or []
    if not actions:
        return None
    action = actions[0]
    team = _team(body)
    user = body.get("user") or {}
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id", ""
    )
    message_ts = (body.get("message") or {}).get("ts") or (body.get("container") or {}).get(
        "message_ts"
    )
    thread = (body.get("message") or {}).get("thread_ts")
    conversation = _conversation(
        team,
        channel,
        raw={"response_url": body.get("response_url"), "trigger_id": body.get("trigger_id")},
    )
    return ActionEvent(
        user=UserRef(
            platform=PLATFORM,
            workspace_id=team,
            user_id=user.get("id", ""),
            name=user.get("name", ""),
        ),
        conversation=conversation,
        action_id=str(action.get("action_id", "")).split("#", 1)[0],
        value=str(action.get("value") or (action.get("selected_option") or {}).get("value") or ""),
        message=MessageRef(conversation=conversation, message_id=message_ts)
        if message_ts
        else None,
        dedupe_key=f"act:{message_ts or ''}:{action.get('action_ts', '')}:{action.get('action_id', '')}",
        raw={**body, "_thread": thread},
    )


def view_event(body: dict[str, Any]) -> ActionEvent:
    """A modal submission: the callback id is the card's submit action."""
    view = body.get("view") or {}
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    team = _team(body)
    user = body.get("user") or {}
    channel = str(meta.get("channel") or "")
    return ActionEvent(
        user=UserRef(
            platform=PLATFORM,
            workspace_id=team,
            user_id=user.get("id", ""),
            name=user.get("name", ""),
        ),
        conversation=_conversation(team, channel),
        action_id=str(view.get("callback_id", "")),
        value=str(meta.get("value") or ""),
        values=view_values(view.get("state") or {}),
        dedupe_key=f"view:{view.get('id', '')}:{view.get('hash', '')}",
        raw=body,
    )
