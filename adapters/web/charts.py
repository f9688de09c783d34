"""Server-rendered SVG charts for the dashboards: no script, no external file, readable
without colour (every value is also written as text), and described for screen readers
(`<title>` and `<desc>` referenced by `aria-labelledby`).

Colours are the Okabe–Ito palette, distinguishable with the common colour-vision
deficiencies. Only presentation attributes are used (no inline `style`), so the pages'
Content-Security-Policy needs no 'unsafe-inline'.

Sizes: each chart is drawn 400 units wide and scales to its box (web.css caps the box at
28rem), so a phone's narrowest box (about 310 px at 360 px) still shows every label at 12 px
or more (`LABEL` units) and a desktop's at about 18 px. Legends are HTML lists after the SVG:
they wrap on a narrow screen instead of shrinking. Per-bar numbers are left to the bars'
titles, the description and the page's table where they would not fit side by side.

A figure held back by the small-group rule (bot/scoring/small_groups.py) gets no bar and no number:
its description reads "fewer than N people". The bands chart is only ever drawn for a
group that is shown (it takes the shown `Ratings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from bot.core.clock import week_bounds, week_of
from bot.scoring.bands import BANDS, Ratings
from bot.scoring.progress import RatingPoint, WeekStats
from bot.scoring.small_groups import Figure

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
WIDTH = 400  # viewBox units; see "Sizes" above
LABEL = 16  # font size in viewBox units: >= 12 px wherever the chart is 310 px wide or more
CHAR = 0.56  # a label's average character width, in em (to keep labels from overlapping)
_COLOUR_NAMES = {colour: name.replace("_", "-") for name, colour in OKABE_ITO.items()}


def _legend_html(items: Sequence[tuple[str, str]]) -> str:
    """A chart's legend as an HTML list (web.css colours the swatches by class)."""
    entries = "".join(
        f'<li><span class="swatch swatch-{_COLOUR_NAMES[colour]}"></span>{escape(label)}</li>'
        for label, colour in items
    )
    return f'<ul class="chart-legend">{entries}</ul>'


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
    """Self-ratings (0–10) over time, with the four Future Ready bands shaded behind (their
    legend follows the SVG)."""
    width, height = WIDTH, 260
    left, right, top, bottom = 48, 12, 18, 40
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
    for tick in range(0, 11, 2):
        y = y_of(tick)
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 8}" y="{y + 5:.1f}" font-size="{LABEL}" text-anchor="end" '
            f'fill="{INK}">{tick}</text>'
        )
    out.append(
        f'<text x="17" y="{top + plot_h / 2:.1f}" font-size="{LABEL}" fill="{INK}" '
        f'text-anchor="middle" transform="rotate(-90 17 {top + plot_h / 2:.1f})">'
        "Self-rating (0–10)</text>"
    )
    legend = _legend_html(
        [(f"{name} {low}–{high}", BAND_COLOURS[name]) for low, high, name in BANDS]
    )
    if not points:
        out.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" font-size="{LABEL}" '
            f'text-anchor="middle" fill="{INK}">No check-ins yet</text>'
        )
        out.append("</svg>")
        return "".join(out) + legend
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
    # Each point's number goes above it, or below it when that is where there is room (a 10
    # at the top, a neighbour's number in the way); check-ins too close for either keep
    # their number in the point's title, the description and the page's table.
    placed: list[tuple[float, float, float, float]] = []

    def number_at(x: float, y: float, text: str) -> float | None:
        half_w = 0.62 * LABEL * len(text) / 2 + 1
        for baseline in (y - 11, y + 23):
            box = (x - half_w, baseline - 0.75 * LABEL, x + half_w, baseline + 0.25 * LABEL)
            if box[1] < 0 or box[3] > top + plot_h + 4:
                continue
            if all(
                box[2] <= other[0] or other[2] <= box[0] or box[3] <= other[1] or other[3] <= box[1]
                for other in placed
            ):
                placed.append(box)
                return baseline
        return None

    for (x, y), point in zip(coords, points, strict=True):
        baseline = number_at(x, y, str(point.rating))
        number = (
            ""
            if baseline is None
            else f'<text x="{x:.1f}" y="{baseline:.1f}" font-size="{LABEL}" font-weight="700" '
            f'text-anchor="middle" fill="{INK}">{point.rating}</text>'
        )
        out.append(
            f'<g class="point" data-rating="{point.rating}" '
            f'data-date="{point.at.date().isoformat()}" data-checkin="{point.checkin_id}">'
            f"<title>{escape(_day(point.at))}: {point.rating}/10, {point.band}</title>"
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{OKABE_ITO["blue"]}" '
            f'stroke="#ffffff" stroke-width="2"/>{number}</g>'
        )
    # Date labels that don't overlap: from the left, each one clear of the last; the latest
    # check-in always gets its date (in place of those before it that it would touch).
    dates = [_short(p.at, with_time=same_days) for p in points]

    def half(index: int) -> float:
        return CHAR * LABEL * len(dates[index]) / 2

    def x_label(index: int) -> float:  # under its point, but clear of the axis and the edge
        return min(max(coords[index][0], left + half(index)), width - half(index) - 2)

    def clear(before: int, after: int) -> bool:
        return x_label(before) + half(before) + 8 <= x_label(after) - half(after)

    labelled: list[int] = []
    for index in range(len(points)):
        if not labelled or clear(labelled[-1], index):
            labelled.append(index)
    latest = len(points) - 1
    if labelled[-1] != latest:
        while labelled and not clear(labelled[-1], latest):
            labelled.pop()
        labelled.append(latest)
    for index in labelled:
        out.append(
            f'<text x="{x_label(index):.1f}" y="{top + plot_h + 22}" font-size="{LABEL}" '
            f'text-anchor="middle" fill="{INK}">{escape(dates[index])}</text>'
        )
    out.append("</svg>")
    return "".join(out) + legend


def indicator_chart(
    chart_id: str, title: str, values: Sequence[tuple[datetime, float, str]]
) -> str:
    """An indicator of progress over time (its own scale: the teacher's words say what the
    numbers are), drawn beside the goal's self-ratings; every value is in the description."""
    width, height = WIDTH, 200
    left, right, top, bottom = 48, 12, 18, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    desc = (
        "Values in time order: " + "; ".join(f"{_day(at)}: {value:g}" for at, value, _ in values)
        if values
        else "No values yet."
    )
    out = _open(chart_id, width, height, title, desc)
    if not values:
        out.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" font-size="{LABEL}" '
            f'text-anchor="middle" fill="{INK}">No values yet</text></svg>'
        )
        return "".join(out)
    low = min(0.0, min(v for _, v, _ in values))
    high = max(v for _, v, _ in values)
    high = high if high > low else low + 1
    first, last = values[0][0], values[-1][0]
    span = (last - first).total_seconds()

    def y_of(value: float) -> float:
        return top + plot_h - (value - low) / (high - low) * plot_h

    def x_of(index: int) -> float:
        if span <= 0:
            return left + plot_w * (index + 0.5) / len(values)
        return left + 24 + (plot_w - 48) * (values[index][0] - first).total_seconds() / span

    for tick in (low, (low + high) / 2, high):
        y = y_of(tick)
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{left - 8}" y="{y + 5:.1f}" font-size="{LABEL}" text-anchor="end" '
            f'fill="{INK}">{tick:g}</text>'
        )
    coords = [(x_of(i), y_of(v)) for i, (_, v, _) in enumerate(values)]
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{OKABE_ITO["vermillion"]}" '
            f'stroke-width="2.5" stroke-linejoin="round"/>'
        )
    for (x, y), (at, value, _) in zip(coords, values, strict=True):
        out.append(
            f'<g class="value" data-value="{value:g}" data-date="{at.date().isoformat()}">'
            f"<title>{escape(_day(at))}: {value:g}</title>"
            f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" '
            f'fill="{OKABE_ITO["vermillion"]}" stroke="#ffffff" stroke-width="2"/></g>'
        )
    out.append(
        f'<text x="{left}" y="{top + plot_h + 22}" font-size="{LABEL}" fill="{INK}">'
        f"{escape(_short(first))}</text>"
    )
    if len(values) > 1:
        out.append(
            f'<text x="{left + plot_w}" y="{top + plot_h + 22}" font-size="{LABEL}" '
            f'text-anchor="end" fill="{INK}">{escape(_short(last))}</text>'
        )
    out.append("</svg>")
    return "".join(out)


PARTICIPATION = (
    ("shares", "Shares", OKABE_ITO["orange"]),
    ("endorsements", "Endorsements", OKABE_ITO["blue"]),
    ("reflections", "Reflections", OKABE_ITO["bluish_green"]),
    ("checkins_answered", "Check-ins answered", OKABE_ITO["reddish_purple"]),
)


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
            f'<text x="{left - 6}" y="{y + 5:.1f}" font-size="{LABEL}" text-anchor="end" '
            f'fill="{INK}">{value}</text>'
        )
    return out, ceiling


def _week_ticks(weeks: Sequence[WeekStats], centre_of: list[float], baseline: float) -> list[str]:
    """Each week's Monday under its bars as people read it, on two lines to fit a phone: the
    day ("7"), and the month ("Dec") under the first week and wherever the month changes."""
    out = []
    month = ""
    for week, x in zip(weeks, centre_of, strict=True):
        try:
            monday, _ = week_bounds(week.week)
        except ValueError:
            day, this_month = week_of(week.week), ""
        else:
            day, this_month = str(monday.day), f"{monday:%b}"
        out.append(
            f'<text x="{x:.1f}" y="{baseline}" font-size="{LABEL}" text-anchor="middle" '
            f'fill="{INK}">{escape(day)}</text>'
        )
        if this_month and this_month != month:
            out.append(
                f'<text x="{x:.1f}" y="{baseline + 20}" font-size="{LABEL}" '
                f'text-anchor="middle" fill="{INK}">{this_month}</text>'
            )
        month = this_month or month
    return out


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
    """Shares, endorsements, reflections and answered check-ins per ISO week (grouped bars;
    the numbers are in each bar's title, the description and the page's table)."""
    width, height = WIDTH, 240
    left, right, top, bottom = 40, 8, 14, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    desc = "; ".join(
        f"{week_of(w.week)}: "
        + ", ".join(_said(w, key, label.lower()) for key, label, _ in PARTICIPATION)
        for w in weeks
    )
    out = _open(chart_id, width, height, "Participation by week", desc or "No weeks.")
    values = [_value(w, key) for w in weeks for key, _, _ in PARTICIPATION]
    most = max([v for v in values if v is not None] or [0])
    grid, ceiling = _axis(left, top, plot_w, plot_h, most)
    out += grid
    group = plot_w / max(1, len(weeks))
    bar = min(16.0, (group - 8) / len(PARTICIPATION))
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
    centres = [left + index * group + group / 2 for index in range(len(weeks))]
    out += _week_ticks(weeks, centres, top + plot_h + 20)
    out.append("</svg>")
    return "".join(out) + _legend_html([(label, colour) for _, label, colour in PARTICIPATION])


def checkins_chart(chart_id: str, weeks: Sequence[WeekStats]) -> str:
    """Check-ins the bot sent per week, and how many of them were answered (when shown):
    "3/5" over a week's bar, "–/5" when its answers are held back. Numbers too wide for a
    week's room (a large community) climb a line or two where they would touch a neighbour."""
    width, height = WIDTH, 250
    left, right, bottom = 40, 8, 48
    group = (width - left - right) / max(1, len(weeks))
    labels = [
        f"{'–' if w.checkins_answered.value is None else w.checkins_answered.value}/"
        f"{w.checkins_sent}"
        for w in weeks
    ]
    stagger = any(CHAR * LABEL * len(label) > group - 4 for label in labels)
    top = 64 if stagger else 24  # room for three lines of numbers over the tallest bar
    plot_w, plot_h = width - left - right, height - top - bottom

    def described(w: WeekStats) -> str:
        answered = w.checkins_answered
        if not answered.shown:
            return f"{week_of(w.week)}: {w.checkins_sent} sent, answered by {answered.text}"
        return f"{week_of(w.week)}: {answered.value} answered of {w.checkins_sent} sent"

    desc = "; ".join(described(w) for w in weeks)
    out = _open(chart_id, width, height, "Check-ins answered vs sent", desc or "No weeks.")
    most = max([w.checkins_sent for w in weeks] or [0])
    grid, ceiling = _axis(left, top, plot_w, plot_h, most)
    out += grid
    bar = min(34.0, group * 0.6)
    placed: list[tuple[float, float, float, float]] = []  # the numbers' boxes so far
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
            half = CHAR * LABEL * len(labels[index]) / 2 + 1
            centre = min(x + bar / 2, width - half - 1)  # the last one stays inside
            bar_top = top + plot_h - week.checkins_sent / ceiling * plot_h
            for y in (bar_top - 5, bar_top - 25, bar_top - 45):
                box = (centre - half, y - 0.75 * LABEL, centre + half, y + 0.25 * LABEL)
                if all(
                    box[2] <= o[0] or o[2] <= box[0] or box[3] <= o[1] or o[3] <= box[1]
                    for o in placed
                ):
                    break
            placed.append(box)
            out.append(
                f'<text x="{centre:.1f}" y="{y:.1f}" font-size="{LABEL}" '
                f'text-anchor="middle" fill="{INK}">{labels[index]}</text>'
            )
    centres = [left + index * group + group / 2 for index in range(len(weeks))]
    out += _week_ticks(weeks, centres, top + plot_h + 20)
    out.append("</svg>")
    legend = [("Sent", OKABE_ITO["sky_blue"]), ("Answered", OKABE_ITO["blue"])]
    return "".join(out) + _legend_html(legend)


def bands_chart(chart_id: str, ratings: Ratings, *, week: str) -> str:
    """How one week's self-ratings (one per person who checked in) fall into the bands, with
    their average. Only for a group the small-group rule shows: it takes the shown value."""
    bands = ratings.bands
    width, row = WIDTH, 52  # each band: its name, then its bar with the count at the end
    left, top = 2, 4
    height = top * 2 + row * len(BANDS)
    most = max(bands.values() or [0]) or 1
    plot_w = width - left - 40
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
            f'<text x="{left}" y="{y + LABEL}" font-size="{LABEL}" fill="{INK}">'
            f"{name} ({low}–{high})</text>"
        )
        out.append(
            f'<rect class="bar" data-band="{name}" data-value="{value}" x="{left}" y="{y + 22}" '
            f'width="{bar_w:.1f}" height="20" fill="{BAND_COLOURS[name]}">'
            f"<title>{name}: {value}</title></rect>"
        )
        out.append(
            f'<text x="{left + bar_w + 8:.1f}" y="{y + 38}" font-size="{LABEL}" '
            f'font-weight="700" fill="{INK}">{value}</text>'
        )
    out.append("</svg>")
    return "".join(out)
