"""Neutral card -> Block Kit (messages and modals), within Slack's limits.

Limits (Slack's Block Kit reference; tests/block_kit.py checks every one): 50 blocks per
message and 100 per modal or Home tab, 3,000 characters per section text and 2,000 per
field, 150 per header, 75 per button label and option, 2,000 per button value, 24 per modal
title, submit and close, 1-3,000 for a text box's max_length. The top-level `text` (the
notification and the fallback) stays within the 4,000 characters Slack advises: past that
it is a summary line and the blocks carry the words. Text that must be shortened is cut at
a word boundary with an ellipsis, for display only; storage always keeps the whole text.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from bot.core.messages import Button, Card, Input, Message

log = logging.getLogger(__name__)

MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_BUTTON = 75
MAX_FIELD = 2000
MAX_URL = 3000
MAX_FALLBACK = 4000  # Slack advises it; it truncates a message's text only past 40,000
MAX_MODAL_TITLE = 24
MAX_INPUT = 3000  # a plain_text_input's max_length: 1 to 3,000
MAX_OPTIONS = 100
MAX_METADATA = 3000  # a view's private_metadata
ACTIONS_PER_BLOCK = 25

_SPACE = re.compile(r"\s")


def _word_cut(text: str, limit: int) -> int:
    """Where to cut `text` so that it and an ellipsis fit in `limit`: at the last space
    when there is one in the second half, else at `limit - 1`."""
    cut = limit - 1
    space = max((m.start() for m in _SPACE.finditer(text, limit // 2, cut + 1)), default=-1)
    return space if space > 0 else cut


def clip(text: str, limit: int) -> str:
    """`text` within `limit` characters, cut at a word boundary with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: _word_cut(text, limit)].rstrip() + "…"


_QUOTE = re.compile(r"^&gt; ", re.MULTILINE)


def escape(text: str) -> str:
    """Text as Slack shows it literally: `&`, `<` and `>` escaped, as Slack asks of every
    mrkdwn string. The core never writes Slack markup, so this is all of it: nothing a person
    typed (`<!channel>`, `<@U…>`, `<https://evil|innocent.org>`, or the same typed as
    `&lt;!channel&gt;`) can broadcast, mention or disguise a link. Formatting marks
    (`*bold*`, `_italic_`) stay: they are harmless."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _QUOTE.sub("> ", escaped)  # a line's leading "> " stays a quote (no "<", no harm)


def _entity_safe(escaped: str, cut: int) -> int:
    """`cut`, moved back so it never falls inside an entity (`&amp;`, `&lt;`, `&gt;`)."""
    amp = escaped.rfind("&", max(0, cut - 4), cut)
    if cut < len(escaped) and amp != -1 and ";" not in escaped[amp:cut]:
        return amp
    return cut


def clip_escaped(text: str, limit: int) -> str:
    """`escape(text)` within `limit` characters, cut at a word boundary (never inside an
    entity) with an ellipsis."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = _entity_safe(escaped, _word_cut(escaped, limit))  # entities hold no spaces
    return escaped[:cut].rstrip() + "…"


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
        "value": button.value[:MAX_FIELD] or button.action_id,  # a value is never shown
    }
    if button.style in ("primary", "danger"):
        element["style"] = button.style
    if button.url and len(button.url) <= MAX_URL:
        element["url"] = button.url  # a link button; Slack still reports the click (a no-op)
    elif button.url:
        log.warning("a button's link is %d characters, past Slack's %d", len(button.url), MAX_URL)
    return element


def _section_cut(escaped: str) -> int:
    """Where the first section of `escaped` ends: the whole when it fits, else at the last
    line break (or space) in the second half of the 3,000 characters, never in an entity."""
    if len(escaped) <= MAX_SECTION:
        return len(escaped)
    window = escaped[:MAX_SECTION]
    for mark in ("\n", " "):
        at = window.rfind(mark, MAX_SECTION // 2)
        if at > 0:
            return at + 1
    return _entity_safe(escaped, MAX_SECTION)


def _sections(text: str, most: int = MAX_BLOCKS) -> list[dict[str, Any]]:
    """Long text over as many sections as it needs (each at most 3,000 characters once
    escaped, split at a line break or a space, never inside an entity), `most` at most:
    past that the last one ends with an ellipsis."""
    escaped = escape(text)
    blocks: list[dict[str, Any]] = []
    while escaped.strip() and len(blocks) < most:
        cut = _section_cut(escaped)
        chunk, escaped = escaped[:cut], escaped[cut:]
        if escaped.strip() and len(blocks) == most - 1:
            chunk = chunk[: _entity_safe(chunk, MAX_SECTION - 1)].rstrip() + "…"
        if chunk.strip():
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
    return blocks


def card_blocks(card: Card) -> list[dict[str, Any]]:
    """Blocks for a message card (inputs are shown in modals, not here)."""
    blocks: list[dict[str, Any]] = []
    if card.title:
        blocks.append({"type": "header", "text": plain(card.title, MAX_HEADER)})
    if card.body:
        blocks += _sections(card.body)
    for start in range(0, len(card.fields), 10):  # a section holds at most 10 fields
        fields = card.fields[start : start + 10]
        blocks.append(
            {
                "type": "section",
                "fields": [mrkdwn(f"*{f.label}*\n{f.value}", MAX_FIELD) for f in fields],
            }
        )
    for index, start in enumerate(range(0, len(card.buttons), ACTIONS_PER_BLOCK)):
        buttons = card.buttons[start : start + ACTIONS_PER_BLOCK]
        blocks.append(
            {
                "type": "actions",
                "block_id": f"actions-{index}",
                "elements": [_button(b, start + i) for i, b in enumerate(buttons)],
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


def fallback_text(text: str) -> str:
    """A message's top-level `text` (the notification, and what shows where blocks can't):
    the whole text when it fits in 4,000 characters once escaped, else its first line as a
    summary (cut at a word boundary), the blocks carrying the rest."""
    escaped = escape(text)
    if len(escaped) <= MAX_FALLBACK:
        return escaped
    first = text.strip().split("\n", 1)[0]
    return clip_escaped(first, MAX_FALLBACK)


def message_payload(message: Message) -> dict[str, Any]:
    payload: dict[str, Any] = {"text": fallback_text(message.text)}
    if message.card is not None:
        payload["blocks"] = card_blocks(message.card)
    elif payload["text"] != escape(message.text):
        # Too long for the text alone: the words go in sections, the text is their summary.
        payload["blocks"] = _sections(message.text)
    return payload


def _input_block(field: Input) -> dict[str, Any]:
    element: dict[str, Any]
    if field.kind == "select" and field.options:
        shown = field.options[:MAX_OPTIONS]
        options = [{"text": plain(o.label, MAX_BUTTON), "value": o.value} for o in shown]
        element = {"type": "static_select", "action_id": field.id, "options": options}
        initial = next((o for o in options if o["value"] == field.initial), None)
        if initial is not None:
            element["initial_option"] = initial
    else:
        # Slack's text box holds 1 to 3,000 characters, whatever the field asks for.
        longest = min(max(field.max_length or MAX_INPUT, 1), MAX_INPUT)
        element = {
            "type": "plain_text_input",
            "action_id": field.id,
            "multiline": field.kind == "multiline",
        }
        if field.initial:
            element["initial_value"] = clip(field.initial, longest)
        if field.max_length:
            element["max_length"] = longest
        if field.placeholder:
            element["placeholder"] = plain(field.placeholder, 150)
    return {
        "type": "input",
        "block_id": field.id,
        "label": plain(field.label, 2000),
        "optional": field.optional,
        "element": element,
    }


def _metadata(channel_id: str, is_dm: bool, value: str) -> str:
    """What a modal carries to its submission, within Slack's 3,000 characters (a value,
    like a button's, is an id: cut only when something is wrong)."""
    value = value[:MAX_FIELD]
    while True:
        meta = json.dumps(
            {"channel": channel_id, "dm": is_dm, "value": value},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        if len(meta) <= MAX_METADATA or not value:
            return meta
        value = value[: len(value) - (len(meta) - MAX_METADATA)]


def modal_view(card: Card, *, channel_id: str, is_dm: bool) -> dict[str, Any]:
    """A modal whose submission comes back as the card's submit action."""
    assert card.submit is not None
    inputs = [_input_block(field) for field in card.inputs][:MAX_VIEW_BLOCKS]
    blocks = _sections(card.body, MAX_VIEW_BLOCKS - len(inputs)) if card.body else []
    blocks += inputs
    return {
        "type": "modal",
        "callback_id": card.submit.action_id,
        "title": plain(card.title or "PLN Bot", MAX_MODAL_TITLE),
        "submit": plain(card.submit.label, MAX_MODAL_TITLE),
        "close": plain("Cancel", MAX_MODAL_TITLE),
        "private_metadata": _metadata(channel_id, is_dm, card.submit.value),
        "blocks": blocks,
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
