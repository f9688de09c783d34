"""Server-rendered SVG charts for the dashboards: no script, no external file, readable
without colour (every value is also written as text), and described for screen readers
(`<title>` and `<desc>` referenced by `aria-labelledby`).

Colours are the Okabe–Ito palette, distinguishable with the common colour-vision
deficiencies. Only presentation attributes are used (no inline `style`), so the pages'
Content-Security-Policy needs no 'unsafe-inline'.

A figure held back by the small-group rule (bot/small_groups.py) gets no bar and no number:
its description reads "fewer than N people". The bands chart is only ever drawn for a
group that is shown (it takes the shown `Ratings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from bot.bands import BANDS, Ratings
from bot.clock import week_of
from bot.progress import RatingPoint, WeekStats
from bot.small_groups import Figure

OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}
BAND_COLOURS = {
    "Investigating": OKABE_ITO["orange"],
    "Envisioning": OKABE_ITO["sky_blue"],
    "Planning": OKABE_ITO["bluish_green"],
    "Staging": OKABE_ITO["reddish_purple"],
}
INK = "#1f2328"
GRID = "#d0d7de"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def _open(chart_id: str, width: int, height: int, title: str, desc: str) -> list[str]:
    return [
        f'<svg class="chart" id="{escape(chart_id)}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'font-family="{FONT}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>',
    ]


def _day(moment: datetime) -> str:
    return f"{moment:%d %b %Y}"


def _short(moment: datetime, *, with_time: bool = False) -> str:
    return f"{moment.day} {moment:%b}" + (f" {moment:%H:%M}" if with_time else "")


def rating_chart(chart_id: str, title: str, points: Sequence[RatingPoint]) -> str:
    """Self-ratings (0–10) over time, with the four Future Ready bands shaded behind."""
    width, height = 660, 260
    left, right, top, bottom = 44, 150, 18, 40
    plot_w, plot_h = width - left - right, height - top - bottom

    def y_of(value: float) -> float:
        return top + plot_h - value / 10 * plot_h

    if points:
        desc = "Ratings in time order: " + "; ".join(
            f"{_day(p.at)}: {p.rating} out of 10, {p.band}" for p in points
        )
    else:
        desc = "No ratings yet."
    out = _open(chart_id, width, height, title, desc)
    for low, high, name in BANDS:
        lower = low - 0.5 if low > 0 else 0.0
        upper = high + 0.5 if high < 10 else 10.0
        colour = BAND_COLOURS[name]
        out.append(
            f'<rect class="band" data-band="{name}" x="{left}" y="{y_of(upper):.1f}" '
            f'width="{plot_w}" height="{(upper - lower) / 10 * plot_h:.1f}" fill="{colour}" '
            f'fill-opacity="0.18"/>'
        )
        middle = y_of((lower + upper) / 2)
        out.append(
            f'<rect x="{left + plot_w + 8}" y="{middle - 6:.1f}" width="12" height="12" '
            f'fill="{colour}" rx="2"/>'
        )
        out.append(
            f'<text x="{left + plot_w + 25}" y="{middle + 4:.1f}" font-size="12" fill="{INK}">'
            f"{name} {low}–{high}</text>"
        )
    for tick in range(0, 11, 2):
        y = y_of(tick)
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" font-size="12" text-anchor="end" '
            f'fill="{INK}">{tick}</text>'
        )
    out.append(
        f'<text x="12" y="{top + plot_h / 2:.1f}" font-size="12" fill="{INK}" '
        f'text-anchor="middle" transform="rotate(-90 12 {top + plot_h / 2:.1f})">'
        "Self-rating (0–10)</text>"
    )
    if not points:
        out.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" font-size="14" '
            f'text-anchor="middle" fill="{INK}">No check-ins yet</text>'
        )
        out.append("</svg>")
        return "".join(out)
    first, last = points[0].at, points[-1].at
    span = (last - first).total_seconds()
    inset = 24
    same_days = span < 2 * 86400 and len(points) > 1  # several check-ins in a day or two

    def x_of(index: int) -> float:
        if span <= 0:
            if len(points) == 1:
                return left + plot_w / 2
            return left + inset + (plot_w - 2 * inset) * index / (len(points) - 1)
        fraction = (points[index].at - first).total_seconds() / span
        return left + inset + (plot_w - 2 * inset) * fraction

    coords = [(x_of(i), y_of(p.rating)) for i, p in enumerate(points)]
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{OKABE_ITO["blue"]}" '
            f'stroke-width="2.5" stroke-linejoin="round"/>'
        )
    label_every = max(1, len(points) // 6)
    for index, ((x, y), point) in enumerate(zip(coords, points, strict=True)):
        out.append(
            f'<g class="point" data-rating="{point.rating}" '
            f'data-date="{point.at.date().isoformat()}" data-checkin="{point.checkin_id}">'
            f"<title>{escape(_day(point.at))}: {point.rating}/10, {point.band}</title>"
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5.5" fill="{OKABE_ITO["blue"]}" '
            'stroke="#ffffff" stroke-width="2"/>'
            f'<text x="{x:.1f}" y="{y - 10:.1f}" font-size="12" font-weight="700" '
            f'text-anchor="middle" fill="{INK}">{point.rating}</text></g>'
        )
        if index % label_every == 0 or index == len(points) - 1:
            out.append(
                f'<text x="{x:.1f}" y="{top + plot_h + 18}" font-size="11" '
                f'text-anchor="middle" fill="{INK}">'
                f"{escape(_short(point.at, with_time=same_days))}</text>"
            )
    out.append("</svg>")
    return "".join(out)


PARTICIPATION = (
    ("shares", "Shares", OKABE_ITO["orange"]),
    ("endorsements", "Endorsements", OKABE_ITO["blue"]),
    ("reflections", "Reflections", OKABE_ITO["bluish_green"]),
    ("checkins_answered", "Check-ins answered", OKABE_ITO["reddish_purple"]),
)


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    out = []
    for label, colour in items:
        out.append(f'<rect x="{x:.1f}" y="{y - 10}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{x + 17:.1f}" y="{y}" font-size="12" fill="{INK}">{label}</text>')
        x += 30 + 7.2 * len(label)
    return out


def _axis(
    left: float, top: float, plot_w: float, plot_h: float, most: int
) -> tuple[list[str], int]:
    """Horizontal grid lines with whole-number labels; returns the lines and the axis top."""
    step = max(1, -(-most // 4))
    ceiling = step * 4 if most > 0 else 4
    out = []
    for value in range(0, ceiling + 1, step if most > 0 else 1):
        y = top + plot_h - value / ceiling * plot_h
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        out.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" font-size="12" text-anchor="end" '
            f'fill="{INK}">{value}</text>'
        )
    return out, ceiling


def _week_label(week: str) -> str:
    """An axis label people read: the week's Monday, "7 Dec"."""
    return week_of(week).removeprefix("week of ")


def _value(week: WeekStats, key: str) -> int | None:
    """A week's number for `key`, None when it is a held-back figure."""
    value = getattr(week, key)
    return value.value if isinstance(value, Figure) else int(value)


def _said(week: WeekStats, key: str, label: str) -> str:
    """`3 reflections`, or `reflections: fewer than 5 people` for a held-back figure."""
    value = getattr(week, key)
    if isinstance(value, Figure) and not value.shown:
        return f"{label}: {value.text}"
    return f"{_value(week, key)} {label}"


def participation_chart(chart_id: str, weeks: Sequence[WeekStats]) -> str:
    """Shares, endorsements, reflections and answered check-ins per ISO week (grouped bars)."""
    width, height = 720, 290
    left, right, top, bottom = 40, 12, 40, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    desc = "; ".join(
        f"{week_of(w.week)}: "
        + ", ".join(_said(w, key, label.lower()) for key, label, _ in PARTICIPATION)
        for w in weeks
    )
    out = _open(chart_id, width, height, "Participation by week", desc or "No weeks.")
    out += _legend([(label, colour) for _, label, colour in PARTICIPATION], left, 18)
    values = [_value(w, key) for w in weeks for key, _, _ in PARTICIPATION]
    most = max([v for v in values if v is not None] or [0])
    grid, ceiling = _axis(left, top, plot_w, plot_h, most)
    out += grid
    group = plot_w / max(1, len(weeks))
    bar = min(16.0, (group - 10) / len(PARTICIPATION))
    for index, week in enumerate(weeks):
        start = left + index * group + (group - bar * len(PARTICIPATION)) / 2
        for position, (key, label, colour) in enumerate(PARTICIPATION):
            value = _value(week, key)
            if value is None:  # held back: no bar, no number
                continue
            bar_h = value / ceiling * plot_h
            x = start + position * bar
            y = top + plot_h - bar_h
            out.append(
                f'<rect class="bar" data-week="{week.week}" data-series="{key}" '
                f'data-value="{value}" x="{x:.1f}" y="{y:.1f}" width="{bar - 1:.1f}" '
                f'height="{bar_h:.1f}" fill="{colour}"><title>{week_of(week.week)}: {value} '
                f"{label.lower()}</title></rect>"
            )
            if value:
                out.append(
                    f'<text x="{x + bar / 2:.1f}" y="{y - 3:.1f}" font-size="10" '
                    f'text-anchor="middle" fill="{INK}">{value}</text>'
                )
        out.append(
            f'<text x="{left + index * group + group / 2:.1f}" y="{top + plot_h + 18}" '
            f'font-size="12" text-anchor="middle" fill="{INK}">{_week_label(week.week)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def checkins_chart(chart_id: str, weeks: Sequence[WeekStats]) -> str:
    """Check-ins the bot sent per week, and how many of them were answered (when shown)."""
    width, height = 720, 250
    left, right, top, bottom = 40, 12, 40, 40
    plot_w, plot_h = width - left - right, height - top - bottom

    def described(w: WeekStats) -> str:
        answered = w.checkins_answered
        if not answered.shown:
            return f"{week_of(w.week)}: {w.checkins_sent} sent, answered by {answered.text}"
        return f"{week_of(w.week)}: {answered.value} answered of {w.checkins_sent} sent"

    desc = "; ".join(described(w) for w in weeks)
    out = _open(chart_id, width, height, "Check-ins answered vs sent", desc or "No weeks.")
    out += _legend([("Sent", OKABE_ITO["sky_blue"]), ("Answered", OKABE_ITO["blue"])], left, 18)
    most = max([w.checkins_sent for w in weeks] or [0])
    grid, ceiling = _axis(left, top, plot_w, plot_h, most)
    out += grid
    group = plot_w / max(1, len(weeks))
    bar = min(34.0, group * 0.5)
    for index, week in enumerate(weeks):
        x = left + index * group + (group - bar) / 2
        answered = week.checkins_answered.value
        series: list[tuple[str, int, str, float]] = [
            ("sent", week.checkins_sent, OKABE_ITO["sky_blue"], 0.0)
        ]
        if answered is not None:
            series.append(("answered", answered, OKABE_ITO["blue"], bar * 0.2))
        for key, value, colour, inset in series:
            bar_h = value / ceiling * plot_h
            out.append(
                f'<rect class="bar" data-week="{week.week}" data-series="{key}" '
                f'data-value="{value}" x="{x + inset:.1f}" y="{top + plot_h - bar_h:.1f}" '
                f'width="{bar - 2 * inset:.1f}" height="{bar_h:.1f}" fill="{colour}">'
                f"<title>{week_of(week.week)}: {value} {key}</title></rect>"
            )
        if week.checkins_sent:
            y = top + plot_h - week.checkins_sent / ceiling * plot_h
            shown = f"{answered}/{week.checkins_sent}"
            label = shown if answered is not None else f"{week.checkins_sent} sent"
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{y - 4:.1f}" font-size="11" '
                f'text-anchor="middle" fill="{INK}">{label}</text>'
            )
        out.append(
            f'<text x="{left + index * group + group / 2:.1f}" y="{top + plot_h + 18}" '
            f'font-size="12" text-anchor="middle" fill="{INK}">{_week_label(week.week)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def bands_chart(chart_id: str, ratings: Ratings, *, week: str) -> str:
    """How one week's self-ratings (one per person who checked in) fall into the bands, with
    their average. Only for a group the small-group rule shows: it takes the shown value."""
    bands = ratings.bands
    width, row = 560, 34
    left, top = 150, 10
    height = top * 2 + row * len(BANDS)
    most = max(bands.values() or [0]) or 1
    plot_w = width - left - 60
    desc = (
        "; ".join(
            f"{name}: {bands.get(name, 0)} of {ratings.people} people" for _, _, name in BANDS
        )
        + f"; average {ratings.average:.1f} out of 10"
    )
    out = _open(chart_id, width, height, f"Self-ratings in the {week_of(week)}, by band", desc)
    for index, (low, high, name) in enumerate(BANDS):
        value = bands.get(name, 0)
        y = top + index * row
        bar_w = value / most * plot_w
        out.append(
            f'<text x="{left - 10}" y="{y + row / 2 + 4:.1f}" font-size="13" text-anchor="end" '
            f'fill="{INK}">{name} ({low}–{high})</text>'
        )
        out.append(
            f'<rect class="bar" data-band="{name}" data-value="{value}" x="{left}" y="{y + 5}" '
            f'width="{bar_w:.1f}" height="{row - 10}" fill="{BAND_COLOURS[name]}">'
            f"<title>{name}: {value}</title></rect>"
        )
        out.append(
            f'<text x="{left + bar_w + 8:.1f}" y="{y + row / 2 + 4:.1f}" font-size="13" '
            f'font-weight="700" fill="{INK}">{value}</text>'
        )
    out.append("</svg>")
    return "".join(out)
