"""The playground page's JSON -> neutral events. Pure functions.

In the channel, what a persona types is a command to the bot (as `/pln <words>` in Slack; a
leading `/pln` or `@PLN Bot` is accepted and dropped); a reply in a thread is a message in that
thread. In a DM, what they type is a message, as it is to the bot on any platform.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from adapters.web.platform import (
    PERSONA_BY_ID,
    PERSONAS,
    Persona,
    channel_ref,
    dm_ref,
    user_ref,
)
from bot.core.events import (
    ActionEvent,
    CommandEvent,
    ConversationRef,
    Event,
    MessageEvent,
    MessageRef,
    ReactionEvent,
)

MAX_TEXT = 8000
MAX_VALUE = 8000
_PREFIX = re.compile(r"^\s*(?:/pln\b|@pln(?:[ _-]?bot)?\b)\s*", re.I)
_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_MESSAGE_ID = re.compile(r"^m[0-9a-f]*-?\d{1,12}$")


class BadRequest(ValueError):
    """The page sent something the playground does not understand."""


def persona_of(body: Mapping[str, Any]) -> Persona:
    persona = PERSONA_BY_ID.get(str(body.get("as", "")))
    if persona is None:
        raise BadRequest("unknown persona")
    return persona


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise BadRequest("text must be a string")
    if len(value) > limit:
        raise BadRequest(f"text is longer than {limit} characters")
    return value


def with_mentions(text: str) -> str:
    """`@Ben` -> `<@W_BEN>` for the playground's personas, as platforms send mentions."""
    for persona in PERSONAS:
        text = re.sub(
            rf"(?<![\w<])@{re.escape(persona.name)}\b",
            f"<@{persona.user_id}>",
            text,
            flags=re.I,
        )
    return text


def conversation_of(body: Mapping[str, Any], persona: Persona) -> ConversationRef:
    where = body.get("where")
    if where == "channel":
        return channel_ref()
    if where == "dm":
        return dm_ref(persona.user_id)
    raise BadRequest("where must be 'channel' or 'dm'")


def _dedupe(body: Mapping[str, Any], prefix: str) -> str | None:
    nonce = body.get("nonce")
    if isinstance(nonce, str) and _NONCE.match(nonce):
        return f"{prefix}:{nonce}"
    return None


def typed_event(body: Mapping[str, Any]) -> tuple[Persona, ConversationRef, Event]:
    """What a persona typed: a command in the channel, a thread reply, or a DM message."""
    persona = persona_of(body)
    conversation = conversation_of(body, persona)
    text = with_mentions(_text(body.get("text", "")).strip())
    if not text:
        raise BadRequest("nothing was typed")
    thread = body.get("thread")
    user = user_ref(persona)
    key = _dedupe(body, "say")
    if thread and not conversation.is_dm:
        if not isinstance(thread, str) or not _MESSAGE_ID.match(thread):
            raise BadRequest("bad thread id")
        conversation = replace(conversation, thread_id=thread)
        return (
            persona,
            conversation,
            MessageEvent(user=user, conversation=conversation, text=text, dedupe_key=key),
        )
    if conversation.is_dm and not _PREFIX.match(text):
        return (
            persona,
            conversation,
            MessageEvent(user=user, conversation=conversation, text=text, dedupe_key=key),
        )
    words = _PREFIX.sub("", text, count=1)
    return (
        persona,
        conversation,
        CommandEvent(user=user, conversation=conversation, text=words, dedupe_key=key),
    )


def action_event(body: Mapping[str, Any]) -> ActionEvent:
    """A button press or a form submit on a card in the channel or the persona's DM."""
    persona = persona_of(body)
    conversation = conversation_of(body, persona)
    action = _text(body.get("action", ""), 100)
    if not action:
        raise BadRequest("no action")
    values = body.get("values") or {}
    if not isinstance(values, dict):
        raise BadRequest("values must be an object")
    clean = {str(k)[:100]: _text(v, MAX_VALUE) for k, v in values.items() if isinstance(v, str)}
    message_id = body.get("message")
    message = (
        MessageRef(conversation=conversation, message_id=message_id)
        if isinstance(message_id, str) and message_id
        else None
    )
    return ActionEvent(
        user=user_ref(persona),
        conversation=conversation,
        action_id=action,
        value=_text(body.get("value", ""), MAX_VALUE),
        values=clean,
        message=message,
        dedupe_key=_dedupe(body, "act"),
    )


def reaction_event(body: Mapping[str, Any], *, reaction: str, added: bool) -> ReactionEvent:
    """The star toggle on a channel message."""
    persona = persona_of(body)
    message_id = body.get("message")
    if not isinstance(message_id, str) or not _MESSAGE_ID.match(message_id):
        raise BadRequest("bad message id")
    conversation = channel_ref()
    return ReactionEvent(
        user=user_ref(persona),
        conversation=conversation,
        reaction=reaction,
        message=MessageRef(conversation=conversation, message_id=message_id),
        added=added,
        dedupe_key=_dedupe(body, "react"),
    )
