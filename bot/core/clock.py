"""Time is injected so tests can travel through weeks, timezones and DST changes (their clock
is `FrozenClock`, in tests/doubles.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def iso_week(day: date) -> str:
    """`2026-W48` for a date."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_of(week: str) -> str:
    """An ISO week as people read it: `2026-W50` -> "week of 7 Dec" (its Monday). Weeks stay
    ISO in commands, keys and files; this is for what people see."""
    try:
        monday, _ = week_bounds(week)
    except ValueError:
        return week
    return f"week of {monday.day} {monday:%b}"


def week_bounds(week: str) -> tuple[date, date]:
    """Monday and the following Monday of an ISO week like `2026-W48`."""
    try:
        year_text, week_text = week.split("-W")
        monday = date.fromisocalendar(int(year_text), int(week_text), 1)
    except ValueError as exc:
        raise ValueError(f"not an ISO week: {week!r} (expected YYYY-Www)") from exc
    return monday, monday + timedelta(days=7)
