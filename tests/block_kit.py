"""Block Kit as Slack checks it: `problems(blocks | view) -> list[str]`.

The rules are written from Slack's Block Kit reference (docs.slack.dev/reference/block-kit:
blocks, block elements, composition objects, views) and from its Web API method pages
(chat.postMessage, views.open, views.publish). Each problem reads the way Slack words its
own (`must be less than 3001 characters [json-pointer:/blocks/0/text/text]`), so a test that
fails on one points at the exact field. The fake Web API (tests/slack_fakes.py) refuses a
payload with any problem, as Slack does, so a card that Slack would refuse fails the test
that sent it.

Only what PLN Bot can send is modelled closely (section, header, actions, context, divider,
input, image; button, static_select, plain_text_input; modal and home views); any other block
or element type is refused, as Slack refuses a type it does not know.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Surfaces
MESSAGE_BLOCKS = 50  # "up to 50 blocks in each message"
VIEW_BLOCKS = 100  # "and 100 blocks in modals or Home tabs"

# Composition objects
TEXT = 3000  # any text object
OPTION_TEXT = 75
OPTION_VALUE = 150
OPTION_DESCRIPTION = 75
OPTION_URL = 3000
CONFIRM_TITLE, CONFIRM_TEXT, CONFIRM_BUTTON = 100, 300, 30

# Blocks
ID = 255  # block_id, action_id, callback_id, external_id
SECTION_TEXT = 3000
SECTION_FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
ACTIONS_ELEMENTS = 25
CONTEXT_ELEMENTS = 10
INPUT_LABEL = 2000
INPUT_HINT = 2000
IMAGE_URL = 3000
IMAGE_ALT = 2000
IMAGE_TITLE = 2000

# Elements
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
BUTTON_URL = 3000
BUTTON_LABEL = 75  # accessibility_label
PLACEHOLDER = 150
SELECT_OPTIONS = 100
SELECT_GROUPS = 100
INPUT_LENGTH = 3000  # plain_text_input: max_length 1..3000, min_length 0..3000

# Views
MODAL_TEXT = 24  # title, submit, close
PRIVATE_METADATA = 3000
VIEW_BYTES = 250_000  # views.open: view_too_large "greater than 250kb"

# Message text (chat.postMessage `text`)
MESSAGE_TEXT = 40_000  # "Provide no more than 40,000 characters or risk truncation"
FALLBACK_TEXT = 4_000  # what Slack advises for the notification/fallback text

BLOCK_TYPES = {"section", "header", "actions", "context", "divider", "input", "image"}
ACTION_ELEMENTS = {"button", "static_select"}
INPUT_ELEMENTS = {"plain_text_input", "static_select"}
ACCESSORY_ELEMENTS = {"button", "static_select", "image"}


def problems(surface: list[Any] | dict[str, Any]) -> list[str]:
    """Every way `surface` breaks Slack's rules: a message's `blocks` (a list) or a view (a
    dict with `type` modal or home). An empty list means Slack would take it."""
    check = _Checker()
    if isinstance(surface, dict):
        check.view(surface, "/view")
    else:
        check.blocks(surface, "/blocks", MESSAGE_BLOCKS)
    return check.found


def slack_messages(found: Iterable[str]) -> list[str]:
    """Problems as Slack lists them in `response_metadata.messages`."""
    return [f"[ERROR] {problem}" for problem in found]


def fallback_problems(text: Any, *, limit: int = FALLBACK_TEXT) -> list[str]:
    """The top-level `text` is the notification and the fallback for the blocks: Slack
    advises keeping it under 4,000 characters (it truncates only past 40,000)."""
    if not isinstance(text, str):
        return []
    if len(text) > limit:
        return [
            f"fallback text is {len(text):,} characters, more than {limit:,} [json-pointer:/text]"
        ]
    return []


def assert_fallback(text: Any, *, limit: int = FALLBACK_TEXT) -> None:
    """Fail when a message's top-level `text` is longer than Slack advises."""
    found = fallback_problems(text, limit=limit)
    assert not found, found[0]


class _Checker:
    def __init__(self) -> None:
        self.found: list[str] = []
        self._block_ids: set[str] = set()
        self._action_ids: set[str] = set()

    # ---- helpers ------------------------------------------------------------------------

    def bad(self, message: str, path: str) -> None:
        self.found.append(f"{message} [json-pointer:{path}]")

    def length(self, value: Any, limit: int, path: str, *, least: int = 0) -> None:
        if not isinstance(value, str):
            self.bad("must be a string", path)
            return
        if len(value) > limit:
            self.bad(f"must be less than {limit + 1} characters", path)
        if len(value) < least:
            self.bad(f"must be more than {least - 1} characters", path)

    def text(self, obj: Any, path: str, *, limit: int = TEXT, plain_only: bool = False) -> None:
        """A text object: plain_text or mrkdwn, 1..limit characters."""
        if not isinstance(obj, dict):
            self.bad("must be a text object", path)
            return
        kind = obj.get("type")
        if kind not in ("plain_text", "mrkdwn"):
            self.bad("must be a valid enum value (plain_text, mrkdwn)", f"{path}/type")
            return
        if plain_only and kind != "plain_text":
            self.bad("must be plain_text", f"{path}/type")
        if kind == "mrkdwn" and "emoji" in obj:
            self.bad("emoji is only allowed on plain_text", f"{path}/emoji")
        if kind == "plain_text" and "verbatim" in obj:
            self.bad("verbatim is only allowed on mrkdwn", f"{path}/verbatim")
        if "text" not in obj:
            self.bad("missing required field: text", path)
            return
        self.length(obj["text"], limit, f"{path}/text", least=1)

    def identifier(self, obj: dict[str, Any], key: str, path: str, seen: set[str]) -> None:
        if key not in obj:
            return
        value = obj[key]
        self.length(value, ID, f"{path}/{key}", least=1)
        if isinstance(value, str):
            if value in seen:
                self.bad(f"{key} must be unique: {value!r} is used twice", f"{path}/{key}")
            seen.add(value)

    # ---- views --------------------------------------------------------------------------

    def view(self, view: dict[str, Any], path: str) -> None:
        kind = view.get("type")
        if kind not in ("modal", "home"):
            self.bad("must be a valid enum value (modal, home)", f"{path}/type")
        for key in ("callback_id", "external_id"):
            if key in view:
                self.length(view[key], ID, f"{path}/{key}")
        if "private_metadata" in view:
            self.length(view["private_metadata"], PRIVATE_METADATA, f"{path}/private_metadata")
        blocks = view.get("blocks")
        if kind == "modal":
            if "title" not in view:
                self.bad("missing required field: title", path)
            for key in ("title", "submit", "close"):
                if key in view:
                    self.text(view[key], f"{path}/{key}", limit=MODAL_TEXT, plain_only=True)
            has_input = isinstance(blocks, list) and any(
                isinstance(b, dict) and b.get("type") == "input" for b in blocks
            )
            if has_input and "submit" not in view:
                self.bad("submit is required when the view has an input block", path)
        if blocks is None:
            self.bad("missing required field: blocks", path)
            return
        self.blocks(blocks, f"{path}/blocks", VIEW_BLOCKS)

    # ---- blocks -------------------------------------------------------------------------

    def blocks(self, blocks: Any, path: str, most: int) -> None:
        if not isinstance(blocks, list):
            self.bad("must be an array", path)
            return
        if len(blocks) > most:
            self.bad(f"must contain at most {most} items", path)
        for i, block in enumerate(blocks):
            self.block(block, f"{path}/{i}")

    def block(self, block: Any, path: str) -> None:
        if not isinstance(block, dict):
            self.bad("must be an object", path)
            return
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            self.bad(f"unsupported block type {kind!r}", f"{path}/type")
            return
        self.identifier(block, "block_id", path, self._block_ids)
        getattr(self, f"block_{kind}")(block, path)

    def block_section(self, block: dict[str, Any], path: str) -> None:
        if "text" not in block and "fields" not in block:
            self.bad("must define either `text` or `fields`", path)
        if "text" in block:
            self.text(block["text"], f"{path}/text", limit=SECTION_TEXT)
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list) or not fields:
                self.bad("must be a non-empty array", f"{path}/fields")
            else:
                if len(fields) > SECTION_FIELDS:
                    self.bad(f"must contain at most {SECTION_FIELDS} items", f"{path}/fields")
                for i, field in enumerate(fields):
                    self.text(field, f"{path}/fields/{i}", limit=FIELD_TEXT)
        if "accessory" in block:
            self.element(block["accessory"], f"{path}/accessory", ACCESSORY_ELEMENTS)

    def block_header(self, block: dict[str, Any], path: str) -> None:
        if "text" not in block:
            self.bad("missing required field: text", path)
            return
        self.text(block["text"], f"{path}/text", limit=HEADER_TEXT, plain_only=True)

    def block_actions(self, block: dict[str, Any], path: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            self.bad("must be a non-empty array", f"{path}/elements")
            return
        if len(elements) > ACTIONS_ELEMENTS:
            self.bad(f"must contain at most {ACTIONS_ELEMENTS} items", f"{path}/elements")
        for i, element in enumerate(elements):
            self.element(element, f"{path}/elements/{i}", ACTION_ELEMENTS)

    def block_context(self, block: dict[str, Any], path: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            self.bad("must be a non-empty array", f"{path}/elements")
            return
        if len(elements) > CONTEXT_ELEMENTS:
            self.bad(f"must contain at most {CONTEXT_ELEMENTS} items", f"{path}/elements")
        for i, element in enumerate(elements):
            where = f"{path}/elements/{i}"
            if isinstance(element, dict) and element.get("type") == "image":
                self.element_image(element, where)
            else:
                self.text(element, where)

    def block_divider(self, block: dict[str, Any], path: str) -> None:
        return None

    def block_image(self, block: dict[str, Any], path: str) -> None:
        self.element_image(block, path)
        if "title" in block:
            self.text(block["title"], f"{path}/title", limit=IMAGE_TITLE, plain_only=True)

    def block_input(self, block: dict[str, Any], path: str) -> None:
        if "label" not in block:
            self.bad("missing required field: label", path)
        else:
            self.text(block["label"], f"{path}/label", limit=INPUT_LABEL, plain_only=True)
        if "hint" in block:
            self.text(block["hint"], f"{path}/hint", limit=INPUT_HINT, plain_only=True)
        if "optional" in block and not isinstance(block["optional"], bool):
            self.bad("must be a boolean", f"{path}/optional")
        if "element" not in block:
            self.bad("missing required field: element", path)
            return
        self.element(block["element"], f"{path}/element", INPUT_ELEMENTS)

    # ---- elements -----------------------------------------------------------------------

    def element(self, element: Any, path: str, allowed: set[str]) -> None:
        if not isinstance(element, dict):
            self.bad("must be an object", path)
            return
        kind = element.get("type")
        if kind not in allowed:
            self.bad(f"unsupported element type {kind!r} here", f"{path}/type")
            return
        self.identifier(element, "action_id", path, self._action_ids)
        getattr(self, f"element_{kind}")(element, path)

    def element_button(self, element: dict[str, Any], path: str) -> None:
        if "text" not in element:
            self.bad("missing required field: text", path)
        else:
            self.text(element["text"], f"{path}/text", limit=BUTTON_TEXT, plain_only=True)
        if "value" in element:
            self.length(element["value"], BUTTON_VALUE, f"{path}/value", least=1)
        if "url" in element:
            self.length(element["url"], BUTTON_URL, f"{path}/url", least=1)
        if "style" in element and element["style"] not in ("primary", "danger"):
            self.bad("must be a valid enum value (primary, danger)", f"{path}/style")
        if "accessibility_label" in element:
            self.length(element["accessibility_label"], BUTTON_LABEL, f"{path}/accessibility_label")
        if "confirm" in element:
            self.confirm(element["confirm"], f"{path}/confirm")

    def element_static_select(self, element: dict[str, Any], path: str) -> None:
        if "placeholder" in element:
            self.text(
                element["placeholder"], f"{path}/placeholder", limit=PLACEHOLDER, plain_only=True
            )
        options, groups = element.get("options"), element.get("option_groups")
        if (options is None) == (groups is None):
            self.bad("must define exactly one of `options` or `option_groups`", path)
        every: list[Any] = []
        if options is not None:
            self.options(options, f"{path}/options")
            every = options if isinstance(options, list) else []
        if groups is not None:
            if not isinstance(groups, list) or not groups:
                self.bad("must be a non-empty array", f"{path}/option_groups")
            else:
                if len(groups) > SELECT_GROUPS:
                    self.bad(f"must contain at most {SELECT_GROUPS} items", f"{path}/option_groups")
                for i, group in enumerate(groups):
                    where = f"{path}/option_groups/{i}"
                    if not isinstance(group, dict):
                        self.bad("must be an object", where)
                        continue
                    self.text(
                        group.get("label"), f"{where}/label", limit=OPTION_TEXT, plain_only=True
                    )
                    self.options(group.get("options"), f"{where}/options")
                    every += group.get("options") or []
        if "initial_option" in element and element["initial_option"] not in every:
            self.bad("initial_option must match one of the options", f"{path}/initial_option")
        if "confirm" in element:
            self.confirm(element["confirm"], f"{path}/confirm")

    def options(self, options: Any, path: str) -> None:
        if not isinstance(options, list) or not options:
            self.bad("must be a non-empty array", path)
            return
        if len(options) > SELECT_OPTIONS:
            self.bad(f"must contain at most {SELECT_OPTIONS} items", path)
        values: set[Any] = set()
        for i, option in enumerate(options):
            where = f"{path}/{i}"
            if not isinstance(option, dict):
                self.bad("must be an object", where)
                continue
            self.text(option.get("text"), f"{where}/text", limit=OPTION_TEXT, plain_only=True)
            if "value" not in option:
                self.bad("missing required field: value", where)
            else:
                self.length(option["value"], OPTION_VALUE, f"{where}/value", least=1)
                if option["value"] in values:
                    self.bad("option values must be unique", f"{where}/value")
                values.add(option["value"])
            if "description" in option:
                self.text(
                    option["description"],
                    f"{where}/description",
                    limit=OPTION_DESCRIPTION,
                    plain_only=True,
                )
            if "url" in option:
                self.length(option["url"], OPTION_URL, f"{where}/url", least=1)

    def element_plain_text_input(self, element: dict[str, Any], path: str) -> None:
        if "placeholder" in element:
            self.text(
                element["placeholder"], f"{path}/placeholder", limit=PLACEHOLDER, plain_only=True
            )
        if "multiline" in element and not isinstance(element["multiline"], bool):
            self.bad("must be a boolean", f"{path}/multiline")
        most = INPUT_LENGTH
        if "max_length" in element:
            limit = element["max_length"]
            if not isinstance(limit, int) or isinstance(limit, bool):
                self.bad("must be an integer", f"{path}/max_length")
            elif not 1 <= limit <= INPUT_LENGTH:
                self.bad(f"must be between 1 and {INPUT_LENGTH}", f"{path}/max_length")
            else:
                most = limit
        if "min_length" in element:
            least = element["min_length"]
            if not isinstance(least, int) or isinstance(least, bool):
                self.bad("must be an integer", f"{path}/min_length")
            elif not 0 <= least <= INPUT_LENGTH:
                self.bad(f"must be between 0 and {INPUT_LENGTH}", f"{path}/min_length")
            elif least > most:
                self.bad("min_length must not be more than max_length", f"{path}/min_length")
        if "initial_value" in element:
            value = element["initial_value"]
            if not isinstance(value, str):
                self.bad("must be a string", f"{path}/initial_value")
            elif len(value) > most:
                self.bad(
                    f"initial_value is {len(value)} characters, longer than max_length {most}",
                    f"{path}/initial_value",
                )

    def element_image(self, element: dict[str, Any], path: str) -> None:
        if "image_url" not in element and "slack_file" not in element:
            self.bad("must define either `image_url` or `slack_file`", path)
        if "image_url" in element:
            self.length(element["image_url"], IMAGE_URL, f"{path}/image_url", least=1)
        if "alt_text" not in element:
            self.bad("missing required field: alt_text", path)
        else:
            self.length(element["alt_text"], IMAGE_ALT, f"{path}/alt_text", least=1)

    def confirm(self, confirm: Any, path: str) -> None:
        if not isinstance(confirm, dict):
            self.bad("must be an object", path)
            return
        self.text(confirm.get("title"), f"{path}/title", limit=CONFIRM_TITLE, plain_only=True)
        self.text(confirm.get("text"), f"{path}/text", limit=CONFIRM_TEXT)
        self.text(confirm.get("confirm"), f"{path}/confirm", limit=CONFIRM_BUTTON, plain_only=True)
        self.text(confirm.get("deny"), f"{path}/deny", limit=CONFIRM_BUTTON, plain_only=True)
