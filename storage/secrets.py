"""Secrets at rest: the Slack tokens that OAuth installs leave in our database are sealed with
Fernet (AES-128-CBC + HMAC-SHA256) under keys that live in the environment (PLNBOT_TOKEN_KEY),
never in the database, so a dump, a backup or a replica holds no token anyone can use.

Several comma-separated keys make rotation possible (MultiFernet): the first one seals, every
one opens, and `rotate_tokens` re-seals what an older key sealed. A sealed value carries a
`fernet:` prefix, so rows stored in plain text before encryption was turned on still read (and
are found and sealed by `rotate_tokens`).

Plain SQLAlchemy and `cryptography` only: the Slack adapter applies the cipher to slack_sdk's
objects; this module knows the tables and columns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import Engine

from storage.slack_tables import slack_bots, slack_installations

log = logging.getLogger(__name__)

PREFIX = "fernet:"
KEY_VARIABLE = "PLNBOT_TOKEN_KEY"

# Every column slack_sdk's installation store fills with something that grants access: tokens,
# refresh tokens and an incoming webhook's URL (posting to it needs nothing else). Names are
# the same on slack_sdk's Installation and Bot objects.
SECRET_COLUMNS: dict[str, tuple[str, ...]] = {
    slack_installations.name: (
        "bot_token",
        "bot_refresh_token",
        "user_token",
        "user_refresh_token",
        "incoming_webhook_url",
    ),
    slack_bots.name: ("bot_token", "bot_refresh_token"),
}
_TABLES = {table.name: table for table in (slack_installations, slack_bots)}


class TokenKeyError(Exception):
    """A sealed value opens with none of the configured keys (the key it was sealed with is
    not in PLNBOT_TOKEN_KEY, or the value was damaged)."""


def new_key() -> str:
    """A fresh random key, in the form PLNBOT_TOKEN_KEY takes."""
    return Fernet.generate_key().decode("ascii")


def parse_keys(text: str) -> list[Fernet]:
    """The keys in a PLNBOT_TOKEN_KEY value, first (the sealing one) first.

    Raises ValueError saying which key is wrong; the message never repeats a key, since it
    ends up in logs and terminals.
    """
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        raise ValueError("no key given (make one with `plnbot tokens new-key`)")
    keys = []
    for position, part in enumerate(parts, start=1):
        try:
            keys.append(Fernet(part))
        except (ValueError, TypeError):
            which = f"key {position} of {len(parts)}" if len(parts) > 1 else "the key"
            raise ValueError(
                f"{which} is not a Fernet key (44 characters of url-safe base64); "
                "make one with `plnbot tokens new-key`"
            ) from None
    return keys


def is_sealed(value: str | None) -> bool:
    return value is not None and value.startswith(PREFIX)


class TokenCipher:
    """Seals and opens stored secrets with the keys in PLNBOT_TOKEN_KEY."""

    def __init__(self, keys: str) -> None:
        fernets = parse_keys(keys)
        self._current = fernets[0]
        self._all = MultiFernet(fernets)

    def seal(self, value: str | None) -> str | None:
        """`value` encrypted with the first key (None stays None: nothing to hide)."""
        if value is None:
            return None
        return PREFIX + self._current.encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, value: str | None) -> str | None:
        """The plain value of a stored one; a value stored before encryption (no prefix)
        comes back as it is. Raises TokenKeyError when no key opens it."""
        if value is None or not value.startswith(PREFIX):
            return value
        try:
            return self._all.decrypt(value[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise TokenKeyError(
                f"a stored Slack token opens with none of the keys in {KEY_VARIABLE}"
            ) from exc

    def seal_column(self, table: str, column: str, value: str | None) -> str | None:
        """`seal`, refusing what would not fit the column: PostgreSQL rejects a value longer
        than a VARCHAR and SQLite keeps it, and the two must behave alike."""
        sealed = self.seal(value)
        limit = column_limit(table, column)
        if sealed is not None and limit is not None and len(sealed) > limit:
            raise ValueError(
                f"{table}.{column}: sealed, this value is {len(sealed)} characters and the "
                f"column holds {limit}; widen it with a migration before storing secrets this long"
            )
        return sealed

    def is_current(self, value: str | None) -> bool:
        """Sealed with the first key, so rotation can leave it alone."""
        if not is_sealed(value):
            return False
        assert value is not None
        try:
            self._current.decrypt(value[len(PREFIX) :].encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True


def column_limit(table: str, column: str) -> int | None:
    """How many characters the column holds (None: Text, since migration 0007)."""
    length = getattr(_TABLES[table].c[column].type, "length", None)
    return int(length) if length else None


@dataclass(frozen=True)
class Rotation:
    rows: int  # rows holding at least one secret
    rewritten: int  # rows whose secrets were sealed again with the first key
    plain: int  # of those, rows that had a secret in plain text


def rotate_tokens(engine: Engine, cipher: TokenCipher) -> Rotation:
    """Seal every stored secret with the first key: plain-text ones and those an older key
    sealed. One transaction: if any value opens with none of the keys, TokenKeyError is raised
    and nothing is rewritten (the operator puts the missing key back and runs it again)."""
    rows = rewritten = plain = unreadable = 0
    with engine.begin() as conn:
        for name, columns in SECRET_COLUMNS.items():
            table = _TABLES[name]
            selected = conn.execute(sa.select(table.c.id, *(table.c[c] for c in columns)))
            updates: list[dict[str, object]] = []
            for row in selected.mappings():
                values = {c: row[c] for c in columns if row[c] is not None}
                if not values:
                    continue
                rows += 1
                stale = {c: v for c, v in values.items() if not cipher.is_current(v)}
                if not stale:
                    continue
                try:
                    fresh = {
                        c: cipher.seal_column(name, c, cipher.open(v)) for c, v in stale.items()
                    }
                except TokenKeyError:
                    unreadable += 1
                    continue
                plain += any(not is_sealed(v) for v in stale.values())
                updates.append({"row_id": row["id"], **{f"new_{c}": v for c, v in fresh.items()}})
            if updates and not unreadable:
                _write(conn, table, columns, updates)
            rewritten += len(updates)
        if unreadable:
            raise TokenKeyError(
                f"{unreadable} stored row(s) open with none of the keys in {KEY_VARIABLE} "
                "(add the key they were sealed with after the new one); nothing was rewritten"
            )
    return Rotation(rows=rows, rewritten=rewritten, plain=plain)


def _write(
    conn: sa.Connection, table: sa.Table, columns: Iterable[str], updates: list[dict[str, object]]
) -> None:
    # One executemany per set of columns being changed (every row in a batch binds the same
    # parameters); bound as new_<column>, since a column's own name is SQLAlchemy's to use.
    by_columns: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for update in updates:
        changed = tuple(c for c in columns if f"new_{c}" in update)
        by_columns.setdefault(changed, []).append(update)
    for changed, batch in by_columns.items():
        statement = (
            table.update()
            .where(table.c.id == sa.bindparam("row_id"))
            .values({c: sa.bindparam(f"new_{c}") for c in changed})
        )
        conn.execute(statement, batch)
