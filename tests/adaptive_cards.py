"""What Microsoft Teams accepts from a bot, as rules a test can apply (tests/teams_fakes.py
refuses whatever breaks one, as the Bot Framework connector does).

Written from the Adaptive Cards 1.5 schema (github.com/microsoft/AdaptiveCards,
`schemas/1.5.0/adaptive-card.json`: element and action types, their properties — none other
allowed — required fields and enumerations) and Microsoft's Teams bot documentation ("Format
your bot messages": the message size limit and the 413 `MessageSizeTooBig` answer; "Send and
receive files": consent cards only in personal chats). Where Teams is stricter than the schema
it says so (`Action.Execute` needs a `verb`: Teams routes Universal Actions by it; at most six
card actions; an `Action.OpenUrl` needs an absolute URL).

Size is measured as Teams documents it: "the entire message payload encoded as UTF-16". The
payload is the activity's JSON as the service reads it — strings decoded, so an escaped
`\\ud83d\\ude00` counts as the one character it is — written compactly and encoded as
UTF-16: two bytes for each character of the Basic Multilingual Plane, four for each astral
character (an emoji, a CJK extension ideograph). UTF-8 bytes or Python's `len` would count a
page of emoji at half or a quarter of what Teams counts. Microsoft has published the limit as
about 28 KB, then 40 KB, now 100 KB (80 KB recommended); the fake holds bots to the smallest,
28 KB, so what passes here passes every tenant's Teams.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
FILE_CONSENT = "application/vnd.microsoft.teams.card.file.consent"
FILE_INFO = "application/vnd.microsoft.teams.card.file.info"
MAX_VERSION = (1, 5)
MAX_ACTIONS = 6  # Teams' host config renders at most six actions in a card's action bar
SIZE_LIMIT = 28 * 1024  # bytes of UTF-16

_COMMON = {"type", "id", "isVisible", "requires", "fallback", "height", "separator", "spacing"}
_INPUT = _COMMON | {"errorMessage", "isRequired", "label"}
_ACTION = {"type", "title", "iconUrl", "id", "style", "fallback", "tooltip", "isEnabled"}
_ACTION |= {"mode", "requires"}

# type -> (allowed properties, required properties), from the 1.5 schema
ELEMENTS: dict[str, tuple[set[str], set[str]]] = {
    "TextBlock": (
        _COMMON
        | {"text", "color", "fontType", "horizontalAlignment", "isSubtle", "maxLines", "size"}
        | {"weight", "wrap", "style"},
        {"text"},
    ),
    "RichTextBlock": (_COMMON | {"inlines", "horizontalAlignment"}, {"inlines"}),
    "Image": (
        _COMMON
        | {"url", "altText", "backgroundColor", "horizontalAlignment", "selectAction"}
        | {"size", "style", "width"},
        {"url"},
    ),
    "ImageSet": (_COMMON | {"images", "imageSize"}, {"images"}),
    "Media": (_COMMON | {"sources", "poster", "altText"}, {"sources"}),
    "FactSet": (_COMMON | {"facts"}, {"facts"}),
    "Container": (
        _COMMON
        | {"items", "selectAction", "style", "verticalContentAlignment", "bleed"}
        | {"backgroundImage", "minHeight", "rtl", "rtl?"},  # the schema spells it "rtl?"
        {"items"},
    ),
    "ColumnSet": (
        _COMMON | {"columns", "selectAction", "style", "bleed", "minHeight", "horizontalAlignment"},
        set(),
    ),
    "ActionSet": (_COMMON | {"actions"}, {"actions"}),
    "Table": (
        _COMMON
        | {"columns", "rows", "firstRowAsHeader", "showGridLines", "gridStyle"}
        | {"horizontalCellContentAlignment", "verticalCellContentAlignment"},
        set(),
    ),
    "Input.Text": (
        _INPUT
        | {"isMultiline", "maxLength", "placeholder", "regex", "style", "inlineAction"}
        | {"value"},
        {"id"},
    ),
    "Input.Number": (_INPUT | {"max", "min", "placeholder", "value"}, {"id"}),
    "Input.Date": (_INPUT | {"max", "min", "placeholder", "value"}, {"id"}),
    "Input.Time": (_INPUT | {"max", "min", "placeholder", "value"}, {"id"}),
    "Input.Toggle": (_INPUT | {"title", "value", "valueOff", "valueOn", "wrap"}, {"id", "title"}),
    "Input.ChoiceSet": (
        _INPUT | {"choices", "isMultiSelect", "style", "value", "placeholder", "wrap"},
        {"id"},
    ),
}
ACTIONS: dict[str, tuple[set[str], set[str]]] = {
    "Action.Execute": (_ACTION | {"verb", "data", "associatedInputs"}, {"verb"}),
    "Action.Submit": (_ACTION | {"data", "associatedInputs"}, set()),
    "Action.OpenUrl": (_ACTION | {"url"}, {"url"}),
    "Action.ShowCard": (_ACTION | {"card"}, {"card"}),
    "Action.ToggleVisibility": (_ACTION | {"targetElements"}, {"targetElements"}),
}
CARD_PROPERTIES = {
    "type", "version", "refresh", "authentication", "body", "actions", "selectAction",
    "fallbackText", "backgroundImage", "minHeight", "rtl", "speak", "lang",
    "verticalContentAlignment", "$schema",
    "msteams",  # Teams' own extension (full width, mentions)
}  # fmt: skip
ENUMS: dict[str, set[str]] = {  # compared case-insensitively, as the schema's patterns do
    "size": {"default", "small", "medium", "large", "extralarge", "auto", "stretch"},
    "weight": {"default", "lighter", "bolder"},
    "color": {"default", "dark", "light", "accent", "good", "warning", "attention"},
    "spacing": {"default", "none", "small", "medium", "large", "extralarge", "padding"},
    "horizontalAlignment": {"left", "center", "right"},
    "fontType": {"default", "monospace"},
    "height": {"auto", "stretch"},
    "associatedInputs": {"auto", "none"},
    "mode": {"primary", "secondary"},
}
STYLES: dict[str, set[str]] = {
    "TextBlock": {"default", "heading"},
    "Input.Text": {"text", "tel", "url", "email", "password"},
    "Input.ChoiceSet": {"compact", "expanded", "filtered"},
    "Container": {"default", "emphasis", "good", "attention", "warning", "accent"},
    "ColumnSet": {"default", "emphasis", "good", "attention", "warning", "accent"},
    "Image": {"default", "person"},
}
ACTION_STYLES = {"default", "positive", "destructive"}
BOOLEANS = {
    "wrap", "isSubtle", "isMultiline", "isRequired", "isVisible", "separator", "isMultiSelect",
    "isEnabled", "bleed", "firstRowAsHeader", "showGridLines", "rtl",
}  # fmt: skip
STRINGS = {
    "text", "label", "errorMessage", "placeholder", "title", "verb", "url", "altText",
    "tooltip", "iconUrl", "regex", "fallbackText", "speak", "lang", "id",
}  # fmt: skip
_VERSION = re.compile(r"^(\d+)\.(\d+)$")


def payload_text(activity: Any) -> str:
    """The activity's JSON as Teams reads it: decoded strings, no insignificant whitespace."""
    return json.dumps(activity, ensure_ascii=False, separators=(",", ":"))


def activity_size(activity: Any) -> int:
    """Bytes of the activity's JSON payload encoded as UTF-16 (what Teams limits)."""
    return len(payload_text(activity).encode("utf-16-le"))


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.input_ids: dict[str, str] = {}

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    # -- values ---------------------------------------------------------------------------
    def values(self, path: str, kind: str, item: dict[str, Any]) -> None:
        for key, value in item.items():
            where = f"{path}.{key}"
            if key in BOOLEANS and not isinstance(value, bool):
                self.problem(where, f"must be true or false, not {value!r}")
            elif key in STRINGS and not isinstance(value, str):
                self.problem(where, f"must be a string, not {type(value).__name__}")
            elif key == "maxLength" or key == "maxLines":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    self.problem(where, f"must be a number, not {value!r}")
            elif key == "style" and kind in STYLES:
                if not isinstance(value, str) or value.lower() not in STYLES[kind]:
                    self.problem(where, f"{value!r} is not one of {sorted(STYLES[kind])}")
            elif key == "style" and kind in ACTIONS:
                if not isinstance(value, str) or value.lower() not in ACTION_STYLES:
                    self.problem(where, f"{value!r} is not one of {sorted(ACTION_STYLES)}")
            elif key in ENUMS and not (kind == "Image" and key == "height"):  # Image: "50px"
                allowed = ENUMS[key]
                if not isinstance(value, str) or value.lower() not in allowed:
                    self.problem(where, f"{value!r} is not one of {sorted(allowed)}")

    # -- elements -------------------------------------------------------------------------
    def elements(self, path: str, items: Any) -> None:
        if not isinstance(items, list):
            self.problem(path, "must be a list of elements")
            return
        for index, element in enumerate(items):
            self.element(f"{path}[{index}]", element)

    def element(self, path: str, element: Any) -> None:
        if not isinstance(element, dict):
            self.problem(path, "an element must be an object")
            return
        kind = element.get("type")
        if kind not in ELEMENTS:
            self.problem(path, f"unknown element type {kind!r}")
            return
        path = f"{path}<{kind}>"
        allowed, required = ELEMENTS[kind]
        for key in sorted(set(element) - allowed):
            self.problem(path, f"{kind} has no property {key!r}")
        for key in sorted(required - set(element)):
            self.problem(path, f"{kind} needs {key!r}")
        self.values(path, kind, element)
        if kind.startswith("Input."):
            self.input(path, kind, element)
        if kind == "FactSet":
            self.facts(path, element.get("facts"))
        elif kind == "Container":
            self.elements(f"{path}.items", element.get("items"))
        elif kind == "ColumnSet":
            for index, column in enumerate(element.get("columns") or []):
                where = f"{path}.columns[{index}]"
                if not isinstance(column, dict) or column.get("type", "Column") != "Column":
                    self.problem(where, "a ColumnSet holds Columns")
                    continue
                self.elements(f"{where}.items", column.get("items") or [])
        elif kind == "ActionSet":
            self.actions(f"{path}.actions", element.get("actions"))
        elif kind == "RichTextBlock":
            for index, run in enumerate(element.get("inlines") or []):
                if not isinstance(run, str) and not (
                    isinstance(run, dict)
                    and run.get("type", "TextRun") == "TextRun"
                    and isinstance(run.get("text"), str)
                ):
                    self.problem(f"{path}.inlines[{index}]", "a TextRun needs its text")
        elif kind == "Image":
            self.url(f"{path}.url", element.get("url"), data=True)
        fallback = element.get("fallback")
        if fallback is not None and fallback != "drop":
            self.element(f"{path}.fallback", fallback)

    def input(self, path: str, kind: str, element: dict[str, Any]) -> None:
        ident = element.get("id")
        if not isinstance(ident, str) or not ident:
            self.problem(path, "an input needs a non-empty id")
        elif ident in self.input_ids:
            self.problem(path, f"input id {ident!r} is used twice (also {self.input_ids[ident]})")
        else:
            self.input_ids[ident] = path
        if kind == "Input.ChoiceSet":
            choices = element.get("choices")
            if not isinstance(choices, list) or not choices:
                self.problem(path, "a choice set needs choices")
                return
            for index, choice in enumerate(choices):
                where = f"{path}.choices[{index}]"
                if not isinstance(choice, dict):
                    self.problem(where, "a choice must be an object")
                    continue
                for key in sorted(set(choice) - {"type", "title", "value"}):
                    self.problem(where, f"a choice has no property {key!r}")
                for key in ("title", "value"):
                    if not isinstance(choice.get(key), str):
                        self.problem(where, f"a choice needs a string {key!r}")

    def facts(self, path: str, facts: Any) -> None:
        if not isinstance(facts, list):
            self.problem(f"{path}.facts", "must be a list")
            return
        for index, fact in enumerate(facts):
            where = f"{path}.facts[{index}]"
            if not isinstance(fact, dict):
                self.problem(where, "a fact must be an object")
                continue
            for key in sorted(set(fact) - {"type", "title", "value"}):
                self.problem(where, f"a fact has no property {key!r}")
            for key in ("title", "value"):
                if not isinstance(fact.get(key), str):
                    self.problem(where, f"a fact needs a string {key!r}")

    # -- actions --------------------------------------------------------------------------
    def actions(self, path: str, actions: Any) -> None:
        if not isinstance(actions, list):
            self.problem(path, "must be a list of actions")
            return
        for index, action in enumerate(actions):
            self.action(f"{path}[{index}]", action)

    def action(self, path: str, action: Any) -> None:
        if not isinstance(action, dict):
            self.problem(path, "an action must be an object")
            return
        kind = action.get("type")
        if kind not in ACTIONS:
            self.problem(path, f"unknown action type {kind!r}")
            return
        path = f"{path}<{kind}>"
        allowed, required = ACTIONS[kind]
        for key in sorted(set(action) - allowed):
            self.problem(path, f"{kind} has no property {key!r}")
        for key in sorted(required - set(action)):
            self.problem(path, f"{kind} needs {key!r}")
        self.values(path, kind, action)
        title = action.get("title")
        if not isinstance(title, str) or not title.strip():
            self.problem(path, "a button needs a title (Teams shows no icon-only actions)")
        if kind == "Action.Execute" and not (
            isinstance(action.get("verb"), str) and action["verb"]
        ):
            self.problem(path, "Action.Execute needs a verb (Teams routes the invoke by it)")
        data = action.get("data", {})
        if kind in ("Action.Execute", "Action.Submit") and not isinstance(data, (dict, str)):
            self.problem(f"{path}.data", "must be an object or a string")
        if kind == "Action.OpenUrl":
            self.url(f"{path}.url", action.get("url"))
        if kind == "Action.ShowCard":
            self.card(f"{path}.card", action.get("card"), top=False)
        fallback = action.get("fallback")
        if fallback is not None and fallback != "drop":
            self.action(f"{path}.fallback", fallback)

    def url(self, path: str, url: Any, *, data: bool = False) -> None:
        if not isinstance(url, str):
            self.problem(path, "a URL must be a string")
            return
        parts = urlsplit(url)
        if data and parts.scheme == "data":
            return
        if parts.scheme in ("mailto", "tel") and parts.path:
            return
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.problem(path, f"{url[:80]!r} is not an absolute http(s) URL")
        elif any(c.isspace() for c in url):
            self.problem(path, "a URL can't contain spaces")

    # -- the card -------------------------------------------------------------------------
    def card(self, path: str, card: Any, *, top: bool = True) -> None:
        if not isinstance(card, dict):
            self.problem(path, "a card must be an object")
            return
        if card.get("type") != "AdaptiveCard":
            self.problem(path, "type must be 'AdaptiveCard'")
        for key in sorted(set(card) - CARD_PROPERTIES):
            self.problem(path, f"an AdaptiveCard has no property {key!r}")
        version = card.get("version")
        if top or version is not None:
            match = _VERSION.match(version) if isinstance(version, str) else None
            if match is None:
                self.problem(f"{path}.version", f"needs a version like '1.5', not {version!r}")
            elif (int(match[1]), int(match[2])) > MAX_VERSION:
                self.problem(f"{path}.version", f"{version} is newer than Teams renders (1.5)")
        if "body" in card:
            self.elements(f"{path}.body", card["body"])
        if "actions" in card:
            self.actions(f"{path}.actions", card["actions"])
            if isinstance(card["actions"], list) and len(card["actions"]) > MAX_ACTIONS:
                self.problem(
                    f"{path}.actions",
                    f"{len(card['actions'])} actions; Teams shows at most {MAX_ACTIONS}",
                )
        for key in ("fallbackText", "speak", "lang"):
            if key in card and not isinstance(card[key], str):
                self.problem(f"{path}.{key}", "must be a string")


def card_problems(card: Any) -> list[str]:
    """Everything wrong with an Adaptive Card by the rules above (empty when Teams takes it)."""
    checker = _Checker()
    checker.card("card", card)
    return checker.problems


def _attachment(path: str, attachment: Any, *, personal: bool) -> list[str]:
    if not isinstance(attachment, dict):
        return [f"{path}: an attachment must be an object"]
    kind = attachment.get("contentType")
    if kind == CARD_CONTENT_TYPE:
        checker = _Checker()
        checker.card(f"{path}.content", attachment.get("content"))
        return checker.problems
    content = attachment.get("content")
    if kind == FILE_CONSENT:
        problems = []
        if not personal:
            problems.append(f"{path}: a file consent card can only be sent in a 1:1 chat")
        if not isinstance(attachment.get("name"), str) or not attachment["name"]:
            problems.append(f"{path}: a file consent card needs the file's name")
        if not isinstance(content, dict) or not isinstance(content.get("sizeInBytes"), int):
            problems.append(f"{path}.content: needs sizeInBytes")
        return problems
    if kind == FILE_INFO:
        if not isinstance(attachment.get("contentUrl"), str) or not isinstance(content, dict):
            return [f"{path}: a file info card needs contentUrl and content"]
        return []
    return [f"{path}: Teams doesn't render attachments of type {kind!r}"]


def activity_problems(activity: Any, *, personal: bool = False) -> list[str]:
    """What the Bot Framework connector would refuse in a message it is asked to post or
    update (`personal`: the conversation is a 1:1 chat). Size is `activity_size`'s job."""
    if not isinstance(activity, dict):
        return ["activity: must be a JSON object"]
    problems = []
    if activity.get("type") != "message":
        problems.append(f"activity.type: a bot posts messages, not {activity.get('type')!r}")
    attachments = activity.get("attachments")
    text = activity.get("text")
    if attachments is not None and not isinstance(attachments, list):
        problems.append("activity.attachments: must be a list")
        attachments = None
    if not attachments and not (isinstance(text, str) and text.strip()):
        problems.append("activity: a message needs text or an attachment")
    for key in ("text", "summary", "textFormat"):
        if key in activity and not isinstance(activity[key], str):
            problems.append(f"activity.{key}: must be a string")
    if activity.get("textFormat", "plain") not in ("plain", "markdown", "xml"):
        problems.append(f"activity.textFormat: {activity['textFormat']!r} is not a text format")
    for index, attachment in enumerate(attachments or []):
        problems += _attachment(f"activity.attachments[{index}]", attachment, personal=personal)
    return problems
