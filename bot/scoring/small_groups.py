"""The small-group rule (DESIGN §7, issue #12), in one place.

A figure about people — how many check-ins or reflections they wrote, how their self-ratings
fall into the Future Ready bands, an average — is shown to coaches and leaders only when the
group it describes has at least PLNBOT_MIN_GROUP people (5 unless configured, never fewer
than 3). Below that it reads "fewer than N people".

Why: a self-rating is private to its author, and an aggregate of one or two people is not
an aggregate. In a community of three, "Investigating 1, Staging 1" tells the coach who
rated themselves where. The threshold is about the *group a figure describes* — the people
whose answers went into it — not the size of the community: a community of twenty of whom
two checked in this week is, for this week's bands, a group of two. The group's own size is
held back with the figure (`people` is None), since "2 people" would give it away too.

Callers decide what the group is (they know who went into a figure) and hand it here;
every renderer — `report`, the community dashboard and its charts, the digest's
participation line — takes its figures from `figure`, `count_of`, `ratings_of` and
`shown_sum`, and its wording for a held-back figure from `fewer_than` / `held_back`. None of
them compares a group with the threshold itself.

Decided here, for every figure: the person looking doesn't count towards the group (they
know their own answers and could take them out of it); a count's group is the distinct
people behind it, and a count of 0 is held back too (it says of everyone that they didn't),
unless nobody was asked; a total adds only the parts that are shown. Decided where the
figures are read (bot/scoring/progress.py): self-ratings are for a finished week only, so the bands
don't move between two looks by the one person who answered in between.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.scoring.bands import Ratings, summarise

VARIABLE = "PLNBOT_MIN_GROUP"
DEFAULT_MIN_GROUP = 5
SMALLEST_MIN_GROUP = 3  # below this, one person and the viewer make a "group"

T = TypeVar("T")


def check_min_group(value: int) -> int:
    """`value` if it is an allowed threshold, else ValueError (the settings' validator)."""
    if value < SMALLEST_MIN_GROUP:
        raise ValueError(
            f"must be {SMALLEST_MIN_GROUP} or more, not {value}: in a smaller group a coach "
            "could work out one person's private answers"
        )
    return value


@dataclass(frozen=True, kw_only=True)
class Figure(Generic[T]):
    """A figure about a group of people, as a coach or leader may see it.

    `value` and `people` (the group's size) are None when the group is smaller than
    `min_group`: the renderer then says `fewer_than(min_group)`, never a number."""

    value: T | None
    people: int | None
    min_group: int

    @property
    def shown(self) -> bool:
        return self.value is not None

    @property
    def text(self) -> str:
        """The value as text, or "fewer than N people"."""
        return fewer_than(self.min_group) if self.value is None else str(self.value)


def figure(value: T, *, people: int, min_group: int) -> Figure[T]:
    """`value`, computed from `people` people, kept only when they are at least `min_group`."""
    check_min_group(min_group)  # never below 3, whoever calls
    if people < min_group:
        return Figure(value=None, people=None, min_group=min_group)
    return Figure(value=value, people=people, min_group=min_group)


def _others(people: Iterable[int], viewer: int | None) -> int:
    """The group's size as the viewer sees it: they know their own answers and could take
    them out of a figure, so they don't count towards the group that protects the others."""
    return len(set(people) - {viewer})


def count_of(
    people_by_event: Iterable[int],
    *,
    min_group: int,
    viewer: int | None = None,
    asked: int | None = None,
) -> Figure[int]:
    """A count of events (check-ins answered, reflections written) given as one person id
    per event: the group is the distinct people behind them (other than `viewer`), so 12
    check-ins from 2 people are held back as 2 would be — and so is 0, which says of every
    one of them that they didn't. `asked`, when given, is how many were asked (check-ins
    sent): when nobody was, the count is about no one and shows as 0."""
    ids = list(people_by_event)
    if asked == 0 and not ids:
        return Figure(value=0, people=0, min_group=check_min_group(min_group))
    return figure(len(ids), people=_others(ids, viewer), min_group=min_group)


def ratings_of(
    rating_by_person: Mapping[int, int], *, min_group: int, viewer: int | None = None
) -> Figure[Ratings]:
    """Band counts and the average of one rating per person (person id -> rating); the group
    is those people, other than `viewer`."""
    return figure(
        summarise(rating_by_person.values()),
        people=_others(rating_by_person, viewer),
        min_group=min_group,
    )


@dataclass(frozen=True, kw_only=True)
class Total:
    """The sum of the parts of a figure that are shown (weeks, say). A held-back part is
    never added in — the total minus the parts shown would give it away — so a total says
    how many of its `parts` it leaves out (`held`); `value` is None when it leaves out all
    of them. Parts about no one (a week nobody was asked) are not parts at all."""

    value: int | None
    parts: int
    held: int
    min_group: int

    @property
    def shown(self) -> bool:
        return self.value is not None


def shown_sum(parts: Iterable[Figure[int]], *, min_group: int) -> Total:
    """Add up the shown parts only (see `Total`)."""
    figures = list(parts)
    counted = [f.value for f in figures if f.value is not None and f.people != 0]
    held = sum(1 for f in figures if f.value is None)
    return Total(
        value=sum(counted) if counted or not held else None,
        parts=len(counted) + held,
        held=held,
        min_group=min_group,
    )


def fewer_than(min_group: int) -> str:
    """What a held-back figure reads: "fewer than 5 people"."""
    return f"fewer than {min_group} people"


def held_back(min_group: int, *, once: str) -> str:
    """A held-back figure with when it will show: held_back(5, once="answered") is
    "fewer than 5 people — shown once 5 have answered"."""
    return f"{fewer_than(min_group)} — shown once {min_group} have {once}"


def reason(min_group: int) -> str:
    """Why some figures are missing, for the foot of a report or page."""
    return (
        f"Figures about {fewer_than(min_group)} are held back, so no one's private answers "
        "can be picked out of them."
    )
