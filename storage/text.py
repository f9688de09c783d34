"""No control character reaches the database: one guard on every statement's parameters.

PostgreSQL refuses a NUL in text outright (`A string literal cannot contain NUL (0x00)
characters`), so a title with one failed the whole unit of work there while SQLite stored it;
the other C0 control characters (and DEL) are invisible junk in a title or a note, and some
break what reads them later (XML in exports, terminals). Every string parameter of every
statement, from the ORM or Core, on SQLite and PostgreSQL alike, loses them on its way to the
driver; tab, newline and carriage return stay.

JSON kept as text (the inbox's payloads) is untouched: `json.dumps` writes a NUL as the six
characters `\\u0000`, which are not control characters, and the column is TEXT, not JSONB
(which would refuse `\\u0000`).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def without_controls(text: str) -> str:
    """`text` without C0 control characters (and DEL), tab, newline and carriage return kept."""
    return CONTROL.sub("", text)


def _clean(value: Any) -> Any:
    return without_controls(value) if isinstance(value, str) else value


def _dirty(row: Any) -> bool:
    """Whether any string among one statement's parameters holds a control character."""
    values = row.values() if isinstance(row, dict) else row
    if not isinstance(values, (tuple, list, type({}.values()))):
        return False
    for value in values:
        # isprintable() is one C loop that nearly every string passes (no control character
        # is printable); only strings with a newline or a tab are searched as well.
        if isinstance(value, str) and not value.isprintable() and CONTROL.search(value):
            return True
    return False


def _clean_row(row: Any) -> Any:
    if isinstance(row, dict):
        return {key: _clean(value) for key, value in row.items()}
    return type(row)(_clean(value) for value in row)


def clean_parameters(parameters: Any, executemany: bool) -> Any:
    """A statement's parameters (a tuple, a list or a dict, or a list of them for
    executemany) as the driver gets them: the same object when no string in them holds a
    control character (nearly always), else a cleaned copy."""
    if executemany and isinstance(parameters, (list, tuple)):
        for row in parameters:
            if _dirty(row):
                return [_clean_row(row) if _dirty(row) else row for row in parameters]
        return parameters
    return _clean_row(parameters) if _dirty(parameters) else parameters


def install_text_guard(engine: Engine) -> None:
    """Clean every statement's string parameters on `engine` before the driver sees them."""

    @sa.event.listens_for(engine, "before_cursor_execute", retval=True)
    def _guard(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> tuple[str, Any]:
        return statement, clean_parameters(parameters, executemany)
