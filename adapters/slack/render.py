"""Neutral card -> Block Kit (messages and modals), within Slack's limits.

Limits: 50 blocks per message (100 per modal), 3,000 characters per section text, 75 per
button label, 2,000 per button value, 24 per modal title. Long text is truncated for
display only; storage always keeps the whole text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.messages import Button, Card, Input, Message

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_BUTTON = 75
MAX_FIELD = 2000
MAX_TEXT = 40000
MAX_MODAL_TITLE = 24
ACTIONS_PER_BLOCK = 25


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_QUOTE = re.compile(r"^&gt; ", re.MULTILINE)


def escape(text: str) -> str:
    """Text as Slack shows it literally: `&`, `<` and `>` escaped, as Slack asks of every
    mrkdwn string. The core never writes Slack markup, so this is all of it: nothing a person
    typed (`<!channel>`, `<@U…>`, `<https://evil|innocent.org>`, or the same typed as
    `&lt;!channel&gt;`) can broadcast, mention or disguise a link. Formatting marks
    (`*bold*`, `_italic_`) stay: they are harmless."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _QUOTE.sub("> ", escaped)  # a line's leading "> " stays a quote (no "<", no harm)


def clip_escaped(text: str, limit: int) -> str:
    """`escape(text)` within `limit` characters, never cut inside an entity."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 4))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def mrkdwn(text: str, limit: int = MAX_SECTION) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip_escaped(text, limit)}


def plain(text: str, limit: int = MAX_SECTION) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": True}


def _button(button: Button, position: int) -> dict[str, Any]:
    # Action ids must be unique within a message; inbound conversion drops the "#n".
    element: dict[str, Any] = {
        "type": "button",
        "text": plain(button.label, MAX_BUTTON),
        "action_id": f"{button.action_id}#{position}",
        "value": clip(button.value, MAX_FIELD) or button.action_id,
    }
    if button.style in ("primary", "danger"):
        element["style"] = button.style
    if button.url:
        element["url"] = button.url  # a link button; Slack still reports the click (a no-op)
    return element


def _sections(text: str) -> list[dict[str, Any]]:
    """Split long text over several sections (each at most 3,000 characters once escaped,
    never cut inside an entity)."""
    escaped, blocks = escape(text), []
    while escaped and len(blocks) < 5:
        cut = len(escaped) if len(escaped) <= MAX_SECTION else MAX_SECTION
        amp = escaped.rfind("&", max(0, cut - 4), cut)
        if cut < len(escaped) and amp != -1 and ";" not in escaped[amp:cut]:
            cut = amp
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": escaped[:cut]}})
        escaped = escaped[cut:]
    return blocks


def card_blocks(card: Card) -> list[dict[str, Any]]:
    """Blocks for a message card (inputs are shown in modals, not here)."""
    blocks: list[dict[str, Any]] = []
    if card.title:
        blocks.append({"type": "header", "text": plain(card.title, 150)})
    if card.body:
        blocks += _sections(card.body)
    for start in range(0, len(card.fields), 10):  # a section holds at most 10 fields
        chunk = card.fields[start : start + 10]
        blocks.append(
            {
                "type": "section",
                "fields": [mrkdwn(f"*{f.label}*\n{f.value}", MAX_FIELD) for f in chunk],
            }
        )
    for index, start in enumerate(range(0, len(card.buttons), ACTIONS_PER_BLOCK)):
        chunk = card.buttons[start : start + ACTIONS_PER_BLOCK]
        blocks.append(
            {
                "type": "actions",
                "block_id": f"actions-{index}",
                "elements": [_button(b, start + i) for i, b in enumerate(chunk)],
            }
        )
    if card.footer:
        blocks.append({"type": "context", "elements": [mrkdwn(card.footer, MAX_FIELD)]})
    if len(blocks) > MAX_BLOCKS:
        blocks = [
            *blocks[: MAX_BLOCKS - 1],
            {"type": "context", "elements": [mrkdwn("…more than fits here; see `me` or `help`.")]},
        ]
    return blocks


def message_payload(message: Message) -> dict[str, Any]:
    payload: dict[str, Any] = {"text": clip_escaped(message.text, MAX_TEXT)}
    if message.card is not None:
        payload["blocks"] = card_blocks(message.card)
    return payload


def _input_block(field: Input) -> dict[str, Any]:
    element: dict[str, Any]
    if field.kind == "select":
        options = [{"text": plain(o.label, 75), "value": o.value} for o in field.options]
        element = {"type": "static_select", "action_id": field.id, "options": options}
        initial = next((o for o in options if o["value"] == field.initial), None)
        if initial is not None:
            element["initial_option"] = initial
    else:
        element = {
            "type": "plain_text_input",
            "action_id": field.id,
            "multiline": field.kind == "multiline",
        }
        if field.initial:
            element["initial_value"] = clip(field.initial, field.max_length or 3000)
        if field.max_length:
            element["max_length"] = field.max_length
        if field.placeholder:
            element["placeholder"] = plain(field.placeholder, 150)
    return {
        "type": "input",
        "block_id": field.id,
        "label": plain(field.label, 2000),
        "optional": field.optional,
        "element": element,
    }


def modal_view(card: Card, *, channel_id: str, is_dm: bool) -> dict[str, Any]:
    """A modal whose submission comes back as the card's submit action."""
    assert card.submit is not None
    blocks: list[dict[str, Any]] = []
    if card.body:
        blocks.append({"type": "section", "text": mrkdwn(card.body)})
    blocks += [_input_block(field) for field in card.inputs]
    return {
        "type": "modal",
        "callback_id": card.submit.action_id,
        "title": plain(card.title or "PLN Bot", MAX_MODAL_TITLE),
        "submit": plain(card.submit.label, MAX_MODAL_TITLE),
        "close": plain("Cancel", MAX_MODAL_TITLE),
        "private_metadata": json.dumps(
            {"channel": channel_id, "dm": is_dm, "value": card.submit.value}
        ),
        "blocks": blocks[:100],
    }


def view_values(state: dict[str, Any]) -> dict[str, str]:
    """A view submission's `state.values` as {input id: text}."""
    values: dict[str, str] = {}
    for block in (state or {}).get("values", {}).values():
        for action_id, element in block.items():
            if element.get("type") == "static_select":
                selected = element.get("selected_option") or {}
                values[action_id] = selected.get("value") or ""
            else:
                values[action_id] = element.get("value") or ""
    return values
