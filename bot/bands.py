"""The Future Ready self-rating scale."""

from __future__ import annotations

BANDS = (
    (0, 3, "Investigating"),
    (4, 5, "Envisioning"),
    (6, 7, "Planning"),
    (8, 10, "Staging"),
)


def band(rating: int) -> str:
    """The band name of a 0–10 rating."""
    for low, high, name in BANDS:
        if low <= rating <= high:
            return name
    raise ValueError(f"rating {rating} is outside 0–10")
