"""Neutral messages as JSON, so a reply can wait in the outbox across a restart.

Every type that crosses the boundary is a frozen dataclass of plain values; this turns one
into a dict of JSON values and back, field by field, from the dataclass's own type hints.
Bytes (an export's file) travel as base64. A platform blob (`ConversationRef.raw`) must be
JSON already, as both platforms' are.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import types
import typing
from collections import OrderedDict
from collections.abc import Mapping
from enum import Enum
from functools import cache
from typing import Any, TypeVar, cast

from bot.core.events import ConversationRef, MessageRef, UserRef
from bot.core.messages import (
    Attachment,
    Button,
    Card,
    Field,
    Input,
    Link,
    Message,
    Option,
    Visibility,
)

T = TypeVar("T")

# Names the type hints of these modules use, for resolving them once.
_TYPES: dict[str, Any] = {
    cls.__name__: cls
    for cls in (
        Attachment,
        Button,
        Card,
        ConversationRef,
        Field,
        Input,
        Link,
        Message,
        MessageRef,
        Option,
        UserRef,
        Visibility,
    )
}


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, localns=_TYPES, globalns={**vars(typing), **_TYPES})


@cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def dump(value: Any) -> Any:
    """A dataclass (or a value inside one) as JSON values; None fields are left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        found = ((name, getattr(value, name)) for name in _names(type(value)))
        return {name: dump(item) for name, item in found if item is not None}
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple | list):
        return [dump(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): dump(v) for k, v in value.items()}
    return value


def load(cls: type[T], data: Mapping[str, Any]) -> T:
    """The dataclass `cls` from what `dump` made of it."""
    hints = _hints(cast(type, cls))  # a class is hashable; mypy cannot tell for type[T]
    values = {
        f.name: _load_value(hints[f.name], data[f.name])
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name in data
    }
    return cls(**values)


def _load_value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _load_value(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_load_value(item, v) for v in value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return load(hint, value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if hint is bytes:
        return base64.b64decode(value["b64"])
    return value


# Messages this process encoded lately, by their text: the sender reads most replies back
# moments after the unit of work queued them, and a frozen message decoded from that text
# equals the one encoded (None fields aside, which no field defaults away from None).
_RECENT: OrderedDict[str, Message] = OrderedDict()
_RECENT_LIMIT = 2048
_RECENT_LOCK = threading.Lock()


def message_to_json(message: Message) -> str:
    text = json.dumps(dump(message), ensure_ascii=False, separators=(",", ":"))
    with _RECENT_LOCK:
        _RECENT[text] = message
        if len(_RECENT) > _RECENT_LIMIT:
            _RECENT.popitem(last=False)
    return text


def message_from_json(text: str) -> Message:
    with _RECENT_LOCK:
        known = _RECENT.pop(text, None)
    return known if known is not None else load(Message, json.loads(text))
