"""Neutral card -> Adaptive Card (and messages -> Bot Framework activities) for Teams.

Cards are version 1.5 with `Action.Execute` (Universal Actions, an `adaptiveCard/action`
invoke) and an `Action.Submit` fallback for older clients (a message whose `value` is the
data), so inbound handles both. Every action carries `{"pln": {"a": action, "v": value,
"s": signature}}`; the signature (HMAC under the bot's secret key, bound to the tenant) lets
inbound refuse a forged or foreign `value` before the core sees it.

A row of six or more buttons with one action whose values differ only after the last `:`
(the check-in's 0–10) becomes a choice set next to the card's inputs, with one submit.

Size: Teams refuses a message whose payload, encoded as UTF-16, is over its limit (documented
as about 28 KB, later 40 KB and 100 KB; we keep every activity under `MAX_ACTIVITY`, 26 KB,
which leaves room for what the service adds). It is measured on the final activity JSON
(`payload_size`), and every length limit here counts UTF-16 code units, as Teams and its
clients do: an emoji or another astral character is two. A message too big for one activity
is sent as several (`message_activities`): a card's facts continue in further cards (the
first keeps the title, the inputs and the buttons, the last the footer) and long text goes in
paragraphs. A message the bot may update later (one with a `link`: a share's card, a digest,
a check-in) is kept to one activity instead, by shortening its longest text, so an update
(an endorsement count, `forget` redrawing it) always reaches all of it. A form whose prefilled
text would not fit shows the longest of those fields empty, and an empty answer there keeps
what was stored (the action's data names them: `k`).

`text` (with a card: the notification `summary`, and an invoke's answer) is the core's
Slack-style text; in message text it becomes Teams markdown, in a summary plain words.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.messages import Button, Card, Input, Message

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.5"
MAX_TEXT_BLOCK = 4000  # UTF-16 code units, as every limit here
MAX_FACT = 2000  # a fact's value: a whole goal (1,000 characters) even in emoji
MAX_ACTIONS = 6  # Teams shows at most six card actions
MAX_CHOICES = 40
CHOICE_INPUT = "pln_choice"
DATA_KEY = "pln"
KEEP_KEY = "k"  # in an action's data: inputs shown empty whose empty answer keeps what was stored
MAX_ACTIVITY = 26 * 1024  # bytes of UTF-16 in one activity's JSON (Teams refuses ~28 KB)
MAX_TEXT = 20000  # UTF-16 units of a text message kept to one activity (then the budget)
MAX_SUMMARY = 250
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


def utf16_units(text: str) -> int:
    """Length as Teams counts it: UTF-16 code units (an astral character is two)."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def clip(text: str, limit: int) -> str:
    """At most `limit` UTF-16 code units, cut with "…" (never inside a character)."""
    if len(text) <= limit // 2 or utf16_units(text) <= limit:
        return text
    kept = text.encode("utf-16-le")[: 2 * (limit - 1)]
    if kept and 0xD8 <= kept[-1] <= 0xDB:  # the first half of a surrogate pair
        kept = kept[:-2]
    return kept.decode("utf-16-le") + "…"


def payload_size(activity: Any) -> int:
    """Bytes of an activity's JSON payload encoded as UTF-16: what Teams' size limit counts
    (strings as the characters they are, not as escapes; no insignificant whitespace)."""
    text = json.dumps(activity, ensure_ascii=False, separators=(",", ":"))
    return len(text) * 2 if text.isascii() else len(text.encode("utf-16-le"))


def markdown(text: str, names: Mapping[str, str] | None = None) -> str:
    """Our Slack-style text as Teams markdown: `*bold*` -> `**bold**`, `<@id>` -> a name,
    one paragraph per line (Teams joins single newlines)."""
    text = _BOLD.sub(r"**\1**", text)
    text = _MENTION.sub(lambda m: f"**{(names or {}).get(m.group(1)) or 'a member'}**", text)
    text = text.replace("• ", "- ")
    return "\n\n".join(line for line in text.split("\n"))


def plain(text: str, names: Mapping[str, str] | None = None, *, lines: bool = False) -> str:
    """Our Slack-style text as plain words (a notification summary, an invoke's answer show
    no markup): `*bold*` and code marks dropped, `<@id>` a name; one line unless `lines`."""
    text = _BOLD.sub(r"\1", text)
    text = _MENTION.sub(lambda m: (names or {}).get(m.group(1)) or "a member", text)
    text = text.replace("`", "")
    if lines:
        return "\n".join(" ".join(line.split()) for line in text.splitlines()).strip()
    return " ".join(text.split())


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


@dataclass
class CardParts:
    """A card's elements by role, so a card too big for one activity can be laid out over
    several: `head` (title, body) and `form` (choice set, inputs) stay with the buttons in
    the first; `facts` can continue in further cards; `footer` ends the last."""

    head: list[dict[str, Any]]
    facts: list[dict[str, Any]]
    form: list[dict[str, Any]]
    footer: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    title: str = ""

    def whole(self) -> dict[str, Any]:
        facts = [_fact_set(self.facts)] if self.facts else []
        return _card(self.head + facts + self.form + self.footer, self.actions)


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "body": body or [_text_block(" ")],
        "actions": actions[:MAX_ACTIONS],
    }


def _fact_set(facts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FactSet", "facts": facts}


def card_parts(
    card: Card,
    *,
    signer: Signer,
    tenant: str,
    names: Mapping[str, str] | None = None,
    origin: str = "",
) -> CardParts:
    head: list[dict[str, Any]] = []
    if card.title:
        head.append(_text_block(card.title, weight="Bolder", size="Medium"))
    if card.body:
        head.append(_text_block(markdown(card.body, names)))
    facts = [
        {
            "title": clip(no_links(f.label), 100),
            "value": clip(no_links(markdown(f.value, names)), MAX_FACT),
        }
        for f in card.fields
    ]
    form: list[dict[str, Any]] = []
    row = choice_row(card.buttons)
    if row is not None:
        form.append(
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
    form += [_input(field) for field in card.inputs]
    footer = []
    if card.footer:
        footer.append(_text_block(markdown(card.footer, names), isSubtle=True, size="Small"))

    actions: list[dict[str, Any]] = []
    if row is not None:
        submit = Button(label="Save", action_id=row.action.action_id, style="primary")
        actions.append(_action(submit, signer, tenant, choice_prefix=row.prefix, origin=origin))
        actions += [_action(b, signer, tenant) for b in card.buttons if b.url]
    else:
        actions += [_action(b, signer, tenant, origin=origin) for b in card.buttons]
    if card.submit is not None:
        actions.append(_action(card.submit, signer, tenant, origin=origin))
    return CardParts(head, facts, form, footer, actions, title=card.title)


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
    return card_parts(card, signer=signer, tenant=tenant, names=names, origin=origin).whole()


# -- fitting Teams' size limit -------------------------------------------------------------
def _with_card(base: dict[str, Any], card: dict[str, Any]) -> dict[str, Any]:
    return {**base, "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": card}]}


def _shown_texts(card: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(object, key) of every text a card shows that can be shortened for display."""
    found: list[tuple[dict[str, Any], str]] = []
    for element in card.get("body") or []:
        if element.get("type") == "TextBlock":
            found.append((element, "text"))
        elif element.get("type") == "FactSet":
            for fact in element.get("facts") or []:
                found += [(fact, "title"), (fact, "value")]
    return found


def _keep_when_empty(card: dict[str, Any], input_id: str) -> None:
    """Every action's data names `input_id`: its empty answer keeps what was stored."""
    for action in card.get("actions") or []:
        for each in (action, action.get("fallback") or {}):
            ours = (each.get("data") or {}).get(DATA_KEY) if isinstance(each, dict) else None
            if isinstance(ours, dict) and input_id not in ours.setdefault(KEEP_KEY, []):
                ours[KEEP_KEY].append(input_id)


def _drop_prefills(card: dict[str, Any], fits: Callable[[], bool], *, at_least: int) -> None:
    """Prefilled text fields (of `at_least` UTF-16 units), the largest first, shown empty
    until the card fits; an empty answer there keeps what was stored."""
    inputs = sorted(
        (
            e
            for e in card["body"]
            if e.get("type") == "Input.Text" and utf16_units(e.get("value") or "") >= at_least
        ),
        key=lambda e: -utf16_units(e["value"]),
    )
    for element in inputs:
        if fits():
            return
        del element["value"]
        element["placeholder"] = "Too long to show here: leave it empty to keep it as it is."
        _keep_when_empty(card, element["id"])


def fit_card(base: dict[str, Any], card: dict[str, Any], budget: int) -> dict[str, Any]:
    """One activity carrying `card`, shortened until it fits `budget`: long prefilled form
    fields shown empty (an empty answer keeps them), then the longest texts it shows cut,
    then facts past what fits counted instead of shown, then any prefill left."""
    if payload_size(_with_card(base, card)) <= budget:
        return _with_card(base, card)
    card = copy.deepcopy(card)

    def fits() -> bool:
        return payload_size(_with_card(base, card)) <= budget

    _drop_prefills(card, fits, at_least=500)
    if fits():
        return _with_card(base, card)

    def shortened(limit: int) -> dict[str, Any]:
        trial = copy.deepcopy(card)
        for holder, key in _shown_texts(trial):
            holder[key] = clip(holder[key], limit)
        return trial

    low, high = 40, max((utf16_units(h[k]) for h, k in _shown_texts(card)), default=40)
    best = shortened(low)
    while low < high:  # the largest limit that fits
        middle = (low + high + 1) // 2
        trial = shortened(middle)
        if payload_size(_with_card(base, trial)) <= budget:
            best, low = trial, middle
        else:
            high = middle - 1
    card = best
    for element in card["body"]:
        if element.get("type") == "FactSet":
            shown, dropped = list(element["facts"]), 0
            while len(shown) > 1 and not fits():
                shown.pop()
                dropped += 1
                element["facts"] = [*shown, {"title": "…", "value": f"{dropped} more not shown"}]
    _drop_prefills(card, fits, at_least=1)
    return _with_card(base, card)


def split_card(parts: CardParts, base: dict[str, Any], budget: int) -> list[dict[str, Any]]:
    """The activities that show a card too big for one: the first with the title, body, as
    many facts as fit, the form and the buttons; then cards continuing the facts ("…
    (continued)"), the last with the footer. Each is measured as it will be sent."""
    whole = _with_card(base, parts.whole())
    if payload_size(whole) <= budget:
        return [whole]
    sizes = [payload_size(f) for f in parts.facts]  # each fact's JSON, in UTF-16 bytes

    def take(
        fixed: list[dict[str, Any]],
        after: list[dict[str, Any]],
        actions: list[Any],
        start: int,
        extra: dict[str, Any],
    ) -> tuple[dict[str, Any], int]:
        """A card of `fixed`, facts from `start` on while they fit, then `after`."""
        empty = _with_card(extra, _card([*fixed, _fact_set([]), *after], actions))
        total, end = payload_size(empty), start
        while end < len(sizes):
            more = sizes[end] + (2 if end > start else 0)  # a comma between facts
            if total + more > budget:
                break
            total, end = total + more, end + 1
        facts = [_fact_set(parts.facts[start:end])] if end > start else []
        return _card([*fixed, *facts, *after], actions), end

    first, end = take(parts.head, parts.form, parts.actions, 0, base)
    activities = [fit_card(base, first, budget)]
    more = dict(base)
    if "summary" in base:
        more["summary"] = clip(f"{base['summary']} (continued)", MAX_SUMMARY)
    heading = [_text_block(f"{parts.title} (continued)", weight="Bolder")] if parts.title else []
    while end < len(sizes):
        card, after = take(heading, [], [], end, more)
        if after == end:  # a fact too big alone: shortened to fit
            card, after = _card([*heading, _fact_set(parts.facts[end : end + 1])], []), end + 1
        activities.append(fit_card(more, card, budget))
        end = after
    if parts.footer:
        last = activities[-1]["attachments"][0]["content"]
        joined = _card([*last["body"], *parts.footer], last["actions"])
        if len(activities) > 1 and payload_size(_with_card(more, joined)) <= budget:
            activities[-1] = _with_card(more, joined)
        else:
            activities.append(fit_card(more, _card([*heading, *parts.footer], []), budget))
    return activities


def _split_text(base: dict[str, Any], text: str, budget: int) -> list[dict[str, Any]]:
    """Text too long for one activity, in as many as it needs, cut between paragraphs (or,
    for a paragraph that alone is too long, between characters)."""
    whole = {**base, "text": text}
    if payload_size(whole) <= budget:
        return [whole]
    room = budget - payload_size({**base, "text": ""})  # bytes for the text's characters

    def cost(piece: str) -> int:
        return payload_size(piece) - 4  # its JSON without the quotes (escapes count per char)

    gap = cost("\n\n")
    chunks: list[str] = []
    current, used = "", 0
    for paragraph in text.split("\n\n"):
        size = cost(paragraph)
        while size > room:  # a paragraph longer than one activity: cut between characters
            low, high = 1, len(paragraph)
            while low < high:
                middle = (low + high + 1) // 2
                if cost(paragraph[:middle]) <= room:
                    low = middle
                else:
                    high = middle - 1
            if current:
                chunks.append(current)
                current, used = "", 0
            chunks.append(paragraph[:low])
            paragraph = paragraph[low:]
            size = cost(paragraph)
        if current and used + gap + size <= room:
            current, used = f"{current}\n\n{paragraph}", used + gap + size
        else:
            if current:
                chunks.append(current)
            current, used = paragraph, size
    if current or not chunks:
        chunks.append(current)
    return [{**base, "text": chunk} for chunk in chunks]


def message_activities(
    message: Message,
    *,
    signer: Signer,
    tenant: str,
    names: Mapping[str, str] | None = None,
    origin: str = "",
    split: bool = True,
    budget: int = MAX_ACTIVITY,
) -> list[dict[str, Any]]:
    """The Bot Framework message activities (as JSON) that carry a neutral message: one, or
    (`split`, for a message too big for Teams) several, each within `budget`. Without
    `split` the message is shortened to fit one (see the module docstring).

    With a card, `text` would show above it as a second bubble, so the text becomes the
    `summary` Teams uses for notifications instead.
    """
    base: dict[str, Any] = {"type": "message", "channelData": {"tenant": {"id": tenant}}}
    if message.card is not None:
        base["summary"] = clip(plain(message.text, names), MAX_SUMMARY)
        parts = card_parts(message.card, signer=signer, tenant=tenant, names=names, origin=origin)
        if split:
            return split_card(parts, base, budget)
        return [fit_card(base, parts.whole(), budget)]
    base["textFormat"] = "markdown"
    text = _no_html(no_links(markdown(message.text, names)))
    if split:
        return _split_text(base, text, budget)
    activity = {**base, "text": clip(text, MAX_TEXT)}
    limit = MAX_TEXT
    while payload_size(activity) > budget and limit > 100:
        limit = limit * 3 // 4
        activity["text"] = clip(text, limit)
    return [activity]


def message_activity(
    message: Message,
    *,
    signer: Signer,
    tenant: str,
    names: Mapping[str, str] | None = None,
    origin: str = "",
    budget: int = MAX_ACTIVITY,
) -> dict[str, Any]:
    """One activity for `message` (an update, or a message the bot may update later), within
    Teams' size limit."""
    return message_activities(
        message,
        signer=signer,
        tenant=tenant,
        names=names,
        origin=origin,
        split=False,
        budget=budget,
    )[0]


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


def invoke_message(
    text: str, status: int = 200, names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The body an `adaptiveCard/action` invoke answers with: a short message to the clicker
    (Teams shows it as plain text)."""
    return {
        "statusCode": status,
        "type": "application/vnd.microsoft.activity.message",
        "value": clip(plain(text, names, lines=True), 1000),
    }
