"""Neutral card -> Adaptive Card (and messages -> Bot Framework activities) for Teams.

Cards are version 1.5 with `Action.Execute` (Universal Actions, an `adaptiveCard/action`
invoke) and an `Action.Submit` fallback for older clients (a message whose `value` is the
data), so inbound handles both. Every action carries `{"pln": {"a": action, "v": value,
"s": signature}}`; the signature (HMAC under the bot's secret key, bound to the tenant) lets
inbound refuse a forged or foreign `value` before the core sees it.

A row of six or more buttons with one action whose values differ only after the last `:`
(the check-in's 0–10) becomes a choice set next to the card's inputs, with one submit.
Long text is cut for display only (Teams refuses activities over about 28 KB).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.messages import Button, Card, Input, Message

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.5"
MAX_TEXT_BLOCK = 4000
MAX_ACTIONS = 6  # Teams shows at most six card actions
MAX_CHOICES = 40
CHOICE_INPUT = "pln_choice"
DATA_KEY = "pln"
_BOLD = re.compile(r"(?<![*\w])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![*\w])")
_MENTION = re.compile(r"<@([A-Za-z0-9_:.\-]+)(?:\|[^>]*)?>")


class Signer:
    """Signs (tenant, action, value) so a card's data can't be forged or moved elsewhere."""

    def __init__(self, key: str) -> None:
        self._key = hashlib.sha256(f"plnbot-teams-card:{key}".encode()).digest()

    def sign(self, tenant: str, action: str, value: str, origin: str = "") -> str:
        message = f"{tenant}\x1f{action}\x1f{value}\x1f{origin}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:24]

    def verify(
        self, tenant: str, action: str, value: str, signature: str, origin: str = ""
    ) -> bool:
        return hmac.compare_digest(self.sign(tenant, action, value, origin), signature or "")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def markdown(text: str, names: Mapping[str, str] | None = None) -> str:
    """Our Slack-style text as Teams markdown: `*bold*` -> `**bold**`, `<@id>` -> a name,
    one paragraph per line (Teams joins single newlines)."""
    text = _BOLD.sub(r"**\1**", text)
    text = _MENTION.sub(lambda m: f"**{(names or {}).get(m.group(1)) or 'a member'}**", text)
    text = text.replace("• ", "- ")
    return "\n\n".join(line for line in text.split("\n"))


_CODE_SPAN = re.compile(r"(`[^`\n]*`)")


def _no_html(text: str) -> str:
    """Teams reads a subset of HTML in message text (never in cards): a typed `<a href=…>`
    or `<at>` is escaped so it shows as typed. Code spans show literally already."""
    parts = _CODE_SPAN.split(text)
    return "".join(p if i % 2 else p.replace("<", "&lt;") for i, p in enumerate(parts))


def no_links(text: str) -> str:
    """The core writes no markdown links, so any `[label](url)` was typed by a person: a
    zero-width space between `]` and `(` keeps it text, so it can't disguise where it goes."""
    return text.replace("](", "]\u200b(")


def _text_block(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "TextBlock",
        "text": clip(no_links(text), MAX_TEXT_BLOCK),
        "wrap": True,
        **extra,
    }


def _action_data(
    signer: Signer, tenant: str, action: str, value: str, *, choice: bool = False, origin: str = ""
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "a": action,
        "v": value,
        "s": signer.sign(tenant, action, value, origin),
    }
    if origin:
        data["ch"] = origin  # a private copy of a card asked for in this channel
    if choice:
        data["c"] = 1  # the value is completed by the card's choice set
    return {DATA_KEY: data}


def _action(
    button: Button,
    signer: Signer,
    tenant: str,
    *,
    choice_prefix: str | None = None,
    origin: str = "",
) -> dict[str, Any]:
    if button.url:
        return {"type": "Action.OpenUrl", "title": clip(button.label, 80), "url": button.url}
    if choice_prefix is not None:
        data = _action_data(
            signer, tenant, button.action_id, choice_prefix, choice=True, origin=origin
        )
    else:
        data = _action_data(signer, tenant, button.action_id, button.value, origin=origin)
    action: dict[str, Any] = {
        "type": "Action.Execute",
        "title": clip(button.label, 80),
        "verb": button.action_id,
        "data": data,
        "fallback": {"type": "Action.Submit", "title": clip(button.label, 80), "data": data},
    }
    if button.style == "primary":
        action["style"] = "positive"
    elif button.style == "danger":
        action["style"] = "destructive"
    return action


def _input(field: Input) -> dict[str, Any]:
    element: dict[str, Any] = {"id": field.id, "label": clip(field.label, 200)}
    if field.kind == "select":
        element.update(
            type="Input.ChoiceSet",
            style="compact",
            choices=[{"title": clip(o.label, 100), "value": o.value} for o in field.options],
        )
        if field.initial:
            element["value"] = field.initial
    else:
        element.update(type="Input.Text", isMultiline=field.kind == "multiline")
        if field.initial:
            element["value"] = clip(field.initial, field.max_length or 4000)
        if field.max_length:
            element["maxLength"] = field.max_length
        if field.placeholder:
            element["placeholder"] = clip(field.placeholder, 150)
    if not field.optional:
        element["isRequired"] = True
        element["errorMessage"] = f"Please fill in “{clip(field.label, 60)}”."
    return element


@dataclass(frozen=True)
class ChoiceRow:
    action: Button  # the first button, whose action id and style the submit takes
    prefix: str  # the shared value before the last ":"
    choices: tuple[tuple[str, str], ...]  # (label, the part after the last ":")


def choice_row(buttons: tuple[Button, ...]) -> ChoiceRow | None:
    """Six or more buttons with one action and values `prefix:choice` -> a choice set."""
    actions = [b for b in buttons if not b.url]
    if len(actions) < 6 or len({b.action_id for b in actions}) != 1:
        return None
    parts = [b.value.rpartition(":") for b in actions]
    prefixes = {prefix for prefix, sep, _ in parts if sep}
    if len(prefixes) != 1 or any(not sep for _, sep, _ in parts):
        return None
    return ChoiceRow(
        action=actions[0],
        prefix=prefixes.pop(),
        choices=tuple((b.label, choice) for b, (_, _, choice) in zip(actions, parts, strict=True)),
    )


def adaptive_card(
    card: Card,
    *,
    signer: Signer,
    tenant: str,
    names: Mapping[str, str] | None = None,
    origin: str = "",
) -> dict[str, Any]:
    """`origin`: the channel a private copy of this card was asked for in (Teams shows it in
    the 1:1 chat); its actions then act as if pressed there, as Slack's modals do."""
    body: list[dict[str, Any]] = []
    if card.title:
        body.append(_text_block(card.title, weight="Bolder", size="Medium"))
    if card.body:
        body.append(_text_block(markdown(card.body, names)))
    if card.fields:
        body.append(
            {
                "type": "FactSet",
                "facts": [
                    {
                        "title": clip(no_links(f.label), 100),
                        "value": clip(no_links(markdown(f.value, names)), 1000),
                    }
                    for f in card.fields
                ],
            }
        )
    row = choice_row(card.buttons)
    if row is not None:
        body.append(
            {
                "type": "Input.ChoiceSet",
                "id": CHOICE_INPUT,
                "label": "Your rating",
                "style": "compact" if len(row.choices) > 12 else "expanded",
                "isRequired": True,
                "errorMessage": "Please choose one.",
                "choices": [
                    {"title": clip(label, 60), "value": value}
                    for label, value in row.choices[:MAX_CHOICES]
                ],
            }
        )
    body += [_input(field) for field in card.inputs]
    if card.footer:
        body.append(_text_block(markdown(card.footer, names), isSubtle=True, size="Small"))

    actions: list[dict[str, Any]] = []
    if row is not None:
        submit = Button(label="Save", action_id=row.action.action_id, style="primary")
        actions.append(_action(submit, signer, tenant, choice_prefix=row.prefix, origin=origin))
        actions += [_action(b, signer, tenant) for b in card.buttons if b.url]
    else:
        actions += [_action(b, signer, tenant, origin=origin) for b in card.buttons]
    if card.submit is not None:
        actions.append(_action(card.submit, signer, tenant, origin=origin))
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "body": body or [_text_block(" ")],
        "actions": actions[:MAX_ACTIONS],
    }


def message_activity(
    message: Message,
    *,
    signer: Signer,
    tenant: str,
    names: Mapping[str, str] | None = None,
    origin: str = "",
) -> dict[str, Any]:
    """A Bot Framework message activity (as JSON) for a neutral message.

    With a card, `text` would show above it as a second bubble, so the text becomes the
    `summary` Teams uses for notifications instead.
    """
    activity: dict[str, Any] = {"type": "message", "channelData": {"tenant": {"id": tenant}}}
    if message.card is not None:
        activity["summary"] = clip(_MENTION.sub("a member", message.text), 250)
        activity["attachments"] = [
            {
                "contentType": CARD_CONTENT_TYPE,
                "content": adaptive_card(
                    message.card, signer=signer, tenant=tenant, names=names, origin=origin
                ),
            }
        ]
    else:
        activity["textFormat"] = "markdown"
        activity["text"] = clip(_no_html(no_links(markdown(message.text, names))), 20000)
    return activity


def file_consent_activity(message: Message, *, context: dict[str, Any]) -> dict[str, Any]:
    """Ask to send a file: Teams bots send files through a consent card in 1:1 chats.
    `context` comes back with the person's answer (it names the file kept meanwhile)."""
    assert message.attachment is not None
    attachment = message.attachment
    return {
        "type": "message",
        "textFormat": "markdown",
        "text": clip(markdown(message.text), 2000),
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.teams.card.file.consent",
                "name": attachment.filename,
                "content": {
                    "description": clip(message.text, 200),
                    "sizeInBytes": len(attachment.content),
                    "acceptContext": context,
                    "declineContext": context,
                },
            }
        ],
    }


def invoke_message(text: str, status: int = 200) -> dict[str, Any]:
    """The body an `adaptiveCard/action` invoke answers with: a short message to the clicker."""
    return {
        "statusCode": status,
        "type": "application/vnd.microsoft.activity.message",
        "value": clip(_MENTION.sub("a member", text), 1000),
    }
