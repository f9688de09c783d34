"""Verification codes for acknowledged coaching cycles: what a district checks at
`GET /verify/<code>`.

A code names its cycle and carries an HMAC-SHA256 (under PLNBOT_SECRET_KEY, or the key
generated on first run and kept in the database) over everything the acknowledgement states:
the member, the goal as worded then, the coach, the hours and the day it was closed. A code
typed wrong, made up, or for a cycle whose record was changed afterwards does not verify.

    <cycle id>-<16 base32 characters>      e.g.  42-K7D2M4QX9PLT3VBA
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from sqlmodel import Session, select

from bot.config import Settings
from storage.models import CoachingCycle, KeyValue, Member

_CODE = re.compile(r"^(\d{1,12})-([A-Z2-7]{16})$")


def signing_key(session: Session, settings: Settings) -> str:
    """PLNBOT_SECRET_KEY, or the key `plnbot serve` generated on first run (made here when
    nothing ran before, the same way)."""
    if settings.secret_key:
        return settings.secret_key
    row = session.exec(select(KeyValue).where(KeyValue.key == "secret_key")).first()
    if row is None:
        row = KeyValue(key="secret_key", value=secrets.token_urlsafe(32))
        session.add(row)
        session.flush()
    return row.value


def _statement(cycle: CoachingCycle, member: Member) -> bytes:
    closed = cycle.closed_at.date().isoformat() if cycle.closed_at else ""
    parts = (
        str(cycle.id),
        str(member.workspace_id),
        member.user_id,
        cycle.goal_text,
        cycle.coach_name,
        f"{cycle.hours or 0:g}",
        closed,
    )
    return "\x1f".join(parts).encode()


def _signature(key: str, cycle: CoachingCycle, member: Member) -> str:
    digest = hmac.new(key.encode(), _statement(cycle, member), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:16]


def code_for(key: str, cycle: CoachingCycle, member: Member) -> str:
    """The verification code of a closed cycle."""
    return f"{cycle.id}-{_signature(key, cycle, member)}"


def verified(session: Session, key: str, code: str) -> tuple[CoachingCycle, Member] | None:
    """The closed cycle and its member a code stands for, or None when it does not verify
    (malformed, unknown, not closed, or the record no longer says what was signed)."""
    found = _CODE.match(code.strip().upper())
    if found is None:
        return None
    cycle = session.get(CoachingCycle, int(found.group(1)))
    if cycle is None or cycle.status != "closed" or cycle.code is None:
        return None
    member = session.get(Member, cycle.member_id)
    if member is None:
        return None
    expected = _signature(key, cycle, member)
    if not hmac.compare_digest(expected, found.group(2)):
        return None
    return cycle, member
