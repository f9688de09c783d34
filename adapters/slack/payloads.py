"""What a signed Slack request must look like before Bolt and the bot read it.

`plnbot serve` checks the signature on the raw bytes first (adapters/slack/setup.py); only a
signed request is read at all. `parse` then reads the body once, strictly, the way Slack sends
it (a slash command's form, Events API JSON, or interactivity's `payload=<JSON>` form), and
`check` makes sure every field that Bolt's routing and our translation (inbound.py, app.py)
index has the type and size they rely on: ids fit their columns, a `user` that is read as an
object is one, `actions` is a list of objects, and so on. A request that fails either gets 400
and goes no further: no listener runs, nothing is stored, and the log gets its size only.

Unknown fields are left alone (Slack adds fields; nothing here reads them). `Malformed`'s text
is a short reason made from our own words and field names, never from the body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from slack_sdk.signature import SignatureVerifier

Check = Callable[[Any, str], None]

# Slack's ids are short (U0123ABCD, T0001, 1700000400.000100): 64 characters is the width of
# every id column they are stored in.
_ID = re.compile(r"[^\s\x00-\x1f\x7f]{0,64}")
_NAME_LIMIT = 255  # callback_id, action_id, block_id: Slack's own limit
_METADATA_LIMIT = 3000  # a view's private_metadata: Slack's own limit
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class Malformed(ValueError):
    """A signed request PLN Bot can't read; its text is a short reason, never the body."""


class RawSignatureVerifier(SignatureVerifier):
    """slack_sdk's verifier (the five-minute window, a constant-time comparison) over the raw
    bytes Slack signed. The SDK's own decodes the body as UTF-8 first and reads the headers
    as they come, so a body that is not UTF-8, a timestamp that is not a number or a signature
    that is not ASCII would raise instead of being refused."""

    def is_valid(self, body: str | bytes, timestamp: str | None, signature: str | None) -> bool:
        if timestamp is None or not _TIMESTAMP.fullmatch(timestamp):
            return False
        if signature is None or not signature.isascii():
            return False
        return bool(super().is_valid(body=body, timestamp=timestamp, signature=signature))

    def generate_signature(self, *, timestamp: str, body: str | bytes) -> str | None:
        raw = body.encode() if isinstance(body, str) else (body or b"")
        base = b"v0:" + timestamp.encode() + b":" + raw
        digest = hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return f"v0={digest}"


def parse(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The request body as Slack meant it, or Malformed. The same reading Bolt does (JSON when
    the content type says so or the body is an object, else a form, whose `payload` is JSON),
    but strict: invalid UTF-8, bad percent-encoding or a JSON value that is not an object is
    refused instead of being half-read."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("the body is not UTF-8") from None
    if not text:
        raise Malformed("the body is empty")
    if (content_type or "").split(";")[0] == "application/json" or text.startswith("{"):
        body = _json(text, "the body")
    else:
        form = _form(text)
        body = _json(form["payload"], "payload") if "payload" in form else form
    if not isinstance(body, dict):
        raise Malformed("the body is not a JSON object")
    return body


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise Malformed(f"{what} is nested too deeply") from None
    except ValueError:
        raise Malformed(f"{what} is not JSON") from None


def _form(text: str) -> dict[str, str]:
    try:
        # As Bolt reads a form: a name given twice keeps its last value.
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict"))
    except (ValueError, UnicodeDecodeError):
        raise Malformed("the form is not URL-encoded UTF-8") from None


# -- field checks ------------------------------------------------------------------------------
def _fail(path: str, expected: str) -> Malformed:
    return Malformed(f"{path}: expected {expected}")


def _text(value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise _fail(path, "a string")


def _ident(value: Any, path: str) -> None:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise _fail(path, "an id (up to 64 characters, no spaces)")


def _name(value: Any, path: str) -> None:
    if not isinstance(value, str) or len(value) > _NAME_LIMIT:
        raise _fail(path, f"a string of up to {_NAME_LIMIT} characters")


def _flag(value: Any, path: str) -> None:
    if not isinstance(value, (bool, str)):
        raise _fail(path, "true or false")


def _metadata(value: Any, path: str) -> None:
    if not isinstance(value, str) or len(value) > _METADATA_LIMIT:
        raise _fail(path, f"a string of up to {_METADATA_LIMIT} characters")
    try:
        json.loads(value or "{}")
    except RecursionError:
        raise Malformed(f"{path} is nested too deeply") from None
    except ValueError:
        pass  # not ours: read as no metadata


def _nullable(check: Check) -> Check:
    def nullable(value: Any, path: str) -> None:
        if value is not None:
            check(value, path)

    return nullable


def _either(first: Check, second: Check, expected: str) -> Check:
    def either(value: Any, path: str) -> None:
        try:
            first(value, path)
        except Malformed:
            try:
                second(value, path)
            except Malformed:
                raise _fail(path, expected) from None

    return either


def _obj(fields: Mapping[str, Check], *, required: tuple[str, ...] = ()) -> Check:
    def obj(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _fail(path, "an object")
        for key in required:
            if key not in value:
                raise Malformed(f"{path}.{key}: missing")
        for key, check in fields.items():
            if key in value:
                check(value[key], f"{path}.{key}")

    return obj


def _list(item: Check, *, at_least: int = 0) -> Check:
    def items(value: Any, path: str) -> None:
        if not isinstance(value, list) or len(value) < at_least:
            raise _fail(path, f"a list of at least {at_least}" if at_least else "a list")
        for n, element in enumerate(value):
            item(element, f"{path}[{n}]")

    return items


def _map(item: Check) -> Check:
    def mapping(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _fail(path, "an object")
        for element in value.values():
            item(element, f"{path}.*")

    return mapping


def _anything(value: Any, path: str) -> None:
    return None


ID, NAME, TEXT, FLAG = _ident, _name, _text, _nullable(_flag)
OPT_ID, OPT_NAME, OPT_TEXT = _nullable(_ident), _nullable(_name), _nullable(_text)

TEAM = _obj({"id": ID, "domain": TEXT, "name": TEXT, "enterprise_id": OPT_ID})
ENTERPRISE = _obj({"id": ID, "name": TEXT})
USER = _obj({"id": ID, "name": TEXT, "username": TEXT, "team_id": ID, "real_name": TEXT})
CHANNEL = _obj({"id": ID, "name": TEXT})
FILE = _obj({"id": ID, "permalink": TEXT, "title": TEXT, "name": TEXT})
MESSAGE = _obj(
    {
        "type": NAME,
        "subtype": OPT_NAME,
        "user": ID,
        "bot_id": OPT_ID,
        "app_id": ID,
        "team": ID,
        "text": OPT_TEXT,
        "ts": ID,
        "thread_ts": OPT_ID,
        "files": _list(FILE),
    }
)
ITEM = _obj({"type": NAME, "channel": ID, "ts": ID, "file": ID})
ASSISTANT_THREAD = _obj({"channel_id": ID, "thread_ts": ID})
AUTHORIZATION = _obj(
    {
        "team_id": OPT_ID,
        "user_id": ID,
        "enterprise_id": OPT_ID,
        "is_bot": FLAG,
        "is_enterprise_install": FLAG,
    }
)
ACTION = _obj(
    {
        "action_id": NAME,
        "block_id": NAME,
        "type": NAME,
        "value": OPT_TEXT,
        "action_ts": ID,
        "selected_option": _nullable(_obj({"value": OPT_TEXT})),
    },
    required=("action_id",),  # Bolt's action matcher indexes it
)
CONTAINER = _obj(
    {
        "type": NAME,
        "message_ts": ID,
        "channel_id": ID,
        "thread_ts": ID,
        "view_id": ID,
        "is_ephemeral": FLAG,
    }
)
STATE = _obj(
    {
        "values": _map(
            _map(
                _obj(
                    {
                        "type": NAME,
                        "value": OPT_TEXT,
                        "selected_option": _nullable(_obj({"value": OPT_TEXT})),
                    }
                )
            )
        )
    }
)
VIEW = _obj(
    {
        "id": ID,
        "team_id": ID,
        "app_id": ID,
        "bot_id": ID,
        "type": NAME,
        "callback_id": NAME,
        "hash": NAME,
        "external_id": NAME,
        "private_metadata": _nullable(_metadata),
        "app_installed_team_id": OPT_ID,
        "root_view_id": OPT_ID,
        "previous_view_id": OPT_ID,
        "state": STATE,
    }
)
EVENT_FIELDS: dict[str, Check] = {
    "type": NAME,
    "subtype": OPT_NAME,
    # An id in the events the bot handles; an object in a few others (user_change, …).
    "user": _either(ID, USER, "an id or a user object"),
    "channel": _either(ID, CHANNEL, "an id or a channel object"),
    "team": ID,
    "user_team": ID,
    "source_team": ID,
    "bot_id": OPT_ID,
    "app_id": ID,
    "item_user": ID,
    "text": OPT_TEXT,
    "ts": ID,
    "thread_ts": OPT_ID,
    "event_ts": ID,
    "channel_type": NAME,
    "tab": NAME,
    "reaction": NAME,
    "callback_id": NAME,
    "function_execution_id": NAME,
    "bot_access_token": TEXT,
    "item": ITEM,
    "message": MESSAGE,
    "previous_message": MESSAGE,
    "files": _list(FILE),
    "assistant_thread": ASSISTANT_THREAD,
    "function": _obj({"callback_id": NAME}),
    "tokens": _obj({"bot": _list(ID), "oauth": _list(ID)}),  # tokens_revoked
}
EVENT = _obj(EVENT_FIELDS, required=("type",))
# The events PLN Bot listens to read `user` and `channel` as ids.
_HANDLED_EVENT = _obj({"user": ID, "channel": ID})
HANDLED_EVENTS = (
    "message",
    "reaction_added",
    "reaction_removed",
    "member_joined_channel",
    "app_home_opened",
)
ENVELOPE = _obj(
    {
        "type": NAME,
        "token": TEXT,
        "team_id": ID,
        "enterprise_id": OPT_ID,
        "context_team_id": OPT_ID,
        "context_enterprise_id": OPT_ID,
        "api_app_id": ID,
        "user_id": ID,
        "user_name": TEXT,
        "channel_id": ID,
        "channel_name": TEXT,
        "team_domain": TEXT,
        "command": NAME,
        "text": OPT_TEXT,
        "trigger_id": NAME,
        "response_url": OPT_TEXT,
        "callback_id": NAME,
        "event_id": NAME,
        "action_ts": ID,
        "message_ts": ID,
        "thread_ts": OPT_ID,
        "challenge": TEXT,
        "action_id": NAME,
        "block_id": NAME,
        "function_execution_id": NAME,
        "bot_access_token": TEXT,
        "is_enterprise_install": FLAG,
        "is_ext_shared_channel": FLAG,
        "team": _nullable(TEAM),
        "enterprise": _nullable(_either(ID, ENTERPRISE, "an id or an enterprise object")),
        "user": _nullable(USER),
        "channel": _nullable(CHANNEL),
        "event": EVENT,
        "authorizations": _list(AUTHORIZATION),
        "actions": _list(ACTION),
        "message": MESSAGE,
        "previous_message": MESSAGE,
        "view": VIEW,
        "container": CONTAINER,
        "state": STATE,
        "function_data": _obj({}),
        "assistant_thread": ASSISTANT_THREAD,
        "response_urls": _list(_obj({"response_url": TEXT, "channel_id": ID})),
    }
)
# The kinds of typed request PLN Bot reads, and what each needs beyond the envelope's field
# types (Bolt indexes these without looking). Legacy kinds the bot never asks Slack for
# (attachment buttons, dialogs, workflow steps) are refused: Bolt indexes their parts too.
# Slack sends a trigger_id with every command and interaction; the bot opens modals with it.
_VIEW = _obj({}, required=("callback_id", "type"))
_KINDS: dict[str, Check] = {
    "url_verification": _obj({"challenge": TEXT}, required=("challenge",)),
    "app_rate_limited": _anything,
    "event_callback": _obj({}, required=("event",)),
    "block_actions": _obj(
        {"actions": _list(ACTION, at_least=1)}, required=("actions", "user", "trigger_id")
    ),
    "block_suggestion": _anything,
    "view_submission": _obj({"view": _VIEW}, required=("view", "user", "trigger_id")),
    "view_closed": _obj({"view": _VIEW}, required=("view", "user")),
    "shortcut": _obj({}, required=("callback_id", "user", "trigger_id")),
    "message_action": _obj({}, required=("callback_id", "user", "trigger_id")),
}
_COMMAND = _obj({}, required=("command", "user_id", "channel_id", "trigger_id"))


def check(body: dict[str, Any]) -> None:
    """Raise Malformed unless `body` (from `parse`) is a Slack request of a shape Bolt and PLN
    Bot can read without failing."""
    ENVELOPE(body, "body")
    kind = body.get("type")
    if kind is None:
        if "ssl_check" in body:
            return  # Slack's periodic certificate check: Bolt answers it
        if "command" not in body:
            raise Malformed("body: neither a slash command nor a typed request")
        _COMMAND(body, "body")
        return
    kind_check = _KINDS.get(kind)
    if kind_check is None:
        raise Malformed("body.type: not a kind of request PLN Bot reads")
    kind_check(body, "body")
    if kind == "event_callback":
        event = body["event"]  # required by the kind's check; ENVELOPE made it a typed object
        if event["type"] in HANDLED_EVENTS:
            _HANDLED_EVENT(event, "body.event")


def read(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """`parse`, then `check`: the body of a signed request, or Malformed."""
    body = parse(raw, content_type)
    check(body)
    return body
