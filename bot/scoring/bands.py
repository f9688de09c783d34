"""The Future Ready self-rating scale, and how a group's ratings are summarised."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

BANDS = (
    (0, 3, "Investigating"),
    (4, 5, "Envisioning"),
    (6, 7, "Planning"),
    (8, 10, "Staging"),
)


# Whose work a band describes: a teacher's classroom, a coach's or principal's school, a
# district leader's district. Roles are the profile's (bot/features/profiles.py); a member
# without one reads the classroom wording.
ROLE_GROUPS = {
    "teacher": "classroom",
    "other": "classroom",
    "instructional_coach": "school",
    "principal": "school",
    "district_leader": "district",
}
GROUPS = ("classroom", "school", "district")
STAGING = 8  # from this rating up a check-in asks for a piece of evidence


def role_group(role: str | None) -> str:
    """The group whose band descriptors fit `role`: classroom, school or district."""
    return ROLE_GROUPS.get(role or "", "classroom")


def band(rating: int) -> str:
    """The band name of a 0–10 rating."""
    for low, high, name in BANDS:
        if low <= rating <= high:
            return name
    raise ValueError(f"rating {rating} is outside 0–10")


@dataclass(frozen=True, kw_only=True)
class Ratings:
    """One group's self-ratings (one per person): how many fall in each band, every band in
    scale order, and their average. Shown to a coach only through bot/scoring/small_groups.py."""

    bands: dict[str, int]
    average: float
    people: int

    def line(self) -> str:
        """The bands and average as one line: `Investigating 1, … · average 5.2`."""
        counts = ", ".join(f"{name} {count}" for name, count in self.bands.items())
        return f"{counts} · average {self.average:.1f}"


def summarise(ratings: Iterable[int]) -> Ratings:
    """Band counts and the average of `ratings`, one rating per person."""
    values = list(ratings)
    bands = {name: 0 for _, _, name in BANDS}
    for rating in values:
        bands[band(rating)] += 1
    average = sum(values) / len(values) if values else 0.0
    return Ratings(bands=bands, average=average, people=len(values))
