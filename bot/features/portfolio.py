"""A member's professional learning portfolio, as a PDF (and a CSV) a district can credit.

`export portfolio` DMs both files; the member's dashboard has download buttons too. It holds
their goals, every self-rating over time, the evidence they shared with the peer endorsements
and notes it received, and the reflections they chose to include.

Which reflections are in it (the rule, stated on the first page too):
- always: check-in reflections the member pressed "Share with my community" on, and replies
  they wrote in a reflection prompt's thread (the community has already seen both);
- only with `export portfolio with private` (which goes to the member's own DM, never to a
  link): their private reflections and unshared check-in notes as well.
The dashboard's download button always uses the first rule.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from sqlmodel import Session, col, select

from bot.core.context import Context, UsageError
from bot.core.messages import Attachment, Message, Visibility
from bot.core.router import Router
from bot.scoring.bands import BANDS, role_group
from bot.scoring.progress import GoalProgress, MemberProgress, member_progress
from bot.services.links import OPEN_LINK
from bot.services.prompts import PromptLibrary
from storage.models import (
    Artifact,
    CheckIn,
    CoachingCycle,
    CycleNote,
    Enactment,
    Goal,
    Indicator,
    IndicatorValue,
    Member,
    Reflection,
    ReflectionPrompt,
)

log = logging.getLogger(__name__)

ROLE_NAMES = {
    "teacher": "Teacher",
    "instructional_coach": "Instructional coach",
    "principal": "Principal",
    "district_leader": "District leader",
    "other": "Other",
}
INCLUSION_RULE = (
    "Reflections included: those this educator shared with their community (shared check-ins "
    "and replies to reflection prompts). Private reflections are left out unless they chose "
    "to include them."
)
PRIVATE_RULE = (
    "Reflections included: everything this educator wrote, at their request, including "
    "private reflections and check-in notes."
)


@dataclass(frozen=True, kw_only=True)
class IncludedReflection:
    at: datetime
    source: str
    text: str
    private: bool


@dataclass(frozen=True, kw_only=True)
class IndicatorTrack:
    """An indicator of progress on a goal and its values over time."""

    goal_id: int
    number: int
    kind: str
    text: str
    values: tuple[tuple[datetime, float, str], ...]  # (when, value, note)


@dataclass(frozen=True, kw_only=True)
class Acknowledged:
    """A closed coaching cycle: the hours a coach acknowledged, verifiable by its code."""

    goal: str
    goal_id: int | None
    coach: str
    hours: float
    offered_at: datetime
    accepted_at: datetime | None
    closed_at: datetime
    code: str
    feedback: tuple[str, ...]  # the notes the member chose to include


@dataclass(frozen=True, kw_only=True)
class Tried:
    """A peer tried one of the member's shares and said what students did."""

    artifact_id: int
    title: str
    by: str
    at: datetime
    answer: str


INDICATOR_KINDS = {
    "achievement": "student achievement",
    "engagement": "student engagement",
    "practice": "evidence of practice",
    "skills": "21st-century skills",
}


@dataclass(frozen=True, kw_only=True)
class Portfolio:
    progress: MemberProgress
    reflections: tuple[IncludedReflection, ...]
    include_private: bool
    generated_at: datetime
    element_names: dict[str, str]
    indicators: tuple[IndicatorTrack, ...] = ()
    cycles: tuple[Acknowledged, ...] = ()
    tried: tuple[Tried, ...] = ()
    verify_url: str = ""  # where a code is checked: <public url>/verify/
    descriptors: dict[str, str] = field(default_factory=dict)  # band -> words for their role

    @property
    def hours(self) -> float:
        """Total acknowledged hours of professional learning."""
        return sum(c.hours for c in self.cycles)

    @property
    def member(self) -> Member:
        return self.progress.member

    @cached_property
    def tried_counts(self) -> Counter[int]:
        """How many peers tried each of the member's shares (by artifact id)."""
        return Counter(item.artifact_id for item in self.tried)

    @property
    def name(self) -> str:
        return self.member.display_name or "PLN member"


def portfolio_record(
    session: Session,
    prompts: PromptLibrary,
    member: Member,
    *,
    now: datetime,
    include_private: bool = False,
    verify_url: str = "",
) -> Portfolio:
    """Everything the portfolio shows; private text only when `include_private`."""
    goals = {g.id: g for g in session.exec(select(Goal).where(Goal.member_id == member.id))}
    reflections: list[IncludedReflection] = []
    for checkin in session.exec(
        select(CheckIn).where(
            CheckIn.member_id == member.id, CheckIn.status == "answered", CheckIn.reflection != ""
        )
    ):
        if not (checkin.shared or include_private):
            continue
        goal = goals.get(checkin.goal_id)
        about = f"goal {goal.number}" if goal else "my practice"
        rated = f" ({checkin.rating}/10)" if checkin.rating is not None else ""
        reflections.append(
            IncludedReflection(
                at=checkin.answered_at or checkin.created_at,
                source=f"Check-in on {about}{rated}" + ("" if checkin.shared else ", private"),
                text=checkin.reflection,
                private=not checkin.shared,
            )
        )
    for reflection, prompt in session.exec(
        select(Reflection, ReflectionPrompt)
        .join(ReflectionPrompt, ReflectionPrompt.id == Reflection.prompt_id, isouter=True)  # type: ignore[arg-type]
        .where(Reflection.member_id == member.id)
    ):
        if reflection.is_private and not include_private:
            continue
        asked = f"“{_clip(prompt.text, 160)}”" if prompt is not None else "a reflection prompt"
        where = "Private reflection on" if reflection.is_private else "Reply to"
        reflections.append(
            IncludedReflection(
                at=reflection.created_at,
                source=f"{where} {asked}",
                text=reflection.text,
                private=reflection.is_private,
            )
        )
    reflections.sort(key=lambda r: r.at)
    return Portfolio(
        progress=member_progress(session, member),
        reflections=tuple(reflections),
        include_private=include_private,
        generated_at=now,
        element_names={key: e.name for key, e in prompts.elements.items()},
        indicators=indicator_tracks(session, list(goals)),
        cycles=_acknowledged(session, member),
        tried=_tried(session, member),
        verify_url=verify_url,
        descriptors={
            name: prompts.band_descriptor(name, role_group(member.role)) for _, _, name in BANDS
        },
    )


def indicator_tracks(session: Session, goal_ids: list[int | None]) -> tuple[IndicatorTrack, ...]:
    """Each goal's indicators of progress with their values, oldest first."""
    ids = [g for g in goal_ids if g is not None]
    if not ids:
        return ()
    tracks = []
    for indicator in session.exec(
        select(Indicator)
        .where(col(Indicator.goal_id).in_(ids))
        .order_by(col(Indicator.goal_id), col(Indicator.number))
    ):
        values = session.exec(
            select(IndicatorValue)
            .where(IndicatorValue.indicator_id == indicator.id)
            .order_by(col(IndicatorValue.logged_at), col(IndicatorValue.id))
        ).all()
        tracks.append(
            IndicatorTrack(
                goal_id=indicator.goal_id,
                number=indicator.number,
                kind=indicator.kind,
                text=indicator.text,
                values=tuple((v.logged_at, v.value, v.note) for v in values),
            )
        )
    return tuple(tracks)


def _acknowledged(session: Session, member: Member) -> tuple[Acknowledged, ...]:
    """Closed cycles only: an offer, a decline or a cycle under way acknowledges nothing."""
    found = []
    for cycle in session.exec(
        select(CoachingCycle)
        .where(CoachingCycle.member_id == member.id, CoachingCycle.status == "closed")
        .order_by(col(CoachingCycle.closed_at))
    ):
        if cycle.closed_at is None or cycle.code is None:
            continue
        notes = session.exec(
            select(CycleNote.text)
            .where(CycleNote.cycle_id == cycle.id, col(CycleNote.in_portfolio).is_(True))
            .order_by(col(CycleNote.created_at))
        ).all()
        found.append(
            Acknowledged(
                goal=cycle.goal_text,
                goal_id=cycle.goal_id,
                coach=cycle.coach_name,
                hours=cycle.hours or 0.0,
                offered_at=cycle.offered_at,
                accepted_at=cycle.answered_at,
                closed_at=cycle.closed_at,
                code=cycle.code,
                feedback=tuple(notes),
            )
        )
    return tuple(found)


def _tried(session: Session, member: Member) -> tuple[Tried, ...]:
    rows = session.exec(
        select(Enactment, Artifact.title, Member.display_name)
        .join(Artifact, col(Artifact.id) == Enactment.artifact_id)
        .join(Member, col(Member.id) == Enactment.member_id)
        .where(Artifact.author_id == member.id, Enactment.status == "answered")
        .order_by(col(Enactment.answered_at))
    ).all()
    return tuple(
        Tried(
            artifact_id=e.artifact_id,
            title=title,
            by=name or "a peer",
            at=e.answered_at or e.created_at,
            answer=e.answer,
        )
        for e, title, name in rows
    )


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _day(moment: datetime | None) -> str:
    return f"{moment:%d %b %Y}" if moment is not None else "—"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "member"


def portfolio_filename(portfolio: Portfolio, extension: str) -> str:
    """The copy with private reflections says so in its name: it is not the one to send."""
    private = "-for-you-only" if portfolio.include_private else ""
    return (
        f"portfolio-{slug(portfolio.name)}{private}-{portfolio.generated_at:%Y-%m-%d}.{extension}"
    )


def portfolio_title(portfolio: Portfolio) -> str:
    if portfolio.include_private:
        return "Professional learning portfolio — for you only (with private reflections)"
    return "Professional learning portfolio"


# --- CSV --------------------------------------------------------------------------------

CSV_COLUMNS = (
    "record",
    "date",
    "goal",
    "rating",
    "band",
    "title",
    "url",
    "element",
    "community",
    "person",
    "note",
    "text",
    "value",
    "hours",
    "code",
)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with one of these is a formula to a spreadsheet: keep it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def portfolio_csv(portfolio: Portfolio) -> bytes:
    """One row per goal, rating, indicator value, acknowledged coaching cycle, share tried
    by a peer, included reflection, share and endorsement received."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)

    def row(**values: object) -> None:
        writer.writerow([_cell(values.get(column, "")) for column in CSV_COLUMNS])

    names = portfolio.element_names
    for progress in portfolio.progress.goals:
        goal = progress.goal
        label = f"{goal.number}. {goal.text}" if goal else "my practice"
        if goal is not None:
            row(
                record="goal",
                date=goal.created_at.date().isoformat(),
                goal=label,
                element=names.get(goal.element or "", ""),
                note=f"done {goal.done_at.date().isoformat()}" if goal.done_at else goal.status,
            )
        for point in progress.ratings:
            row(
                record="rating",
                date=point.at.date().isoformat(),
                goal=label,
                rating=point.rating,
                band=point.band,
            )
    goal_labels = {
        g.goal.id: f"{g.goal.number}. {g.goal.text}" for g in portfolio.progress.goals if g.goal
    }
    for track in portfolio.indicators:
        for at, value, note in track.values:
            row(
                record="indicator",
                date=at.date().isoformat(),
                goal=goal_labels.get(track.goal_id, ""),
                title=track.text,
                element=INDICATOR_KINDS.get(track.kind, track.kind),
                value=f"{value:g}",
                note=note,
            )
    for cycle in portfolio.cycles:
        row(
            record="coaching cycle",
            date=cycle.closed_at.date().isoformat(),
            goal=cycle.goal,
            person=cycle.coach,
            hours=f"{cycle.hours:g}",
            code=cycle.code,
            url=f"{portfolio.verify_url}{cycle.code}" if portfolio.verify_url else "",
            text=" | ".join(cycle.feedback),
        )
    share_goals = {
        s.artifact.id: goal_labels.get(s.artifact.goal_id, "") for s in portfolio.progress.shares
    }
    for tried in portfolio.tried:
        row(
            record="tried by a peer",
            date=tried.at.date().isoformat(),
            goal=share_goals.get(tried.artifact_id, ""),
            title=tried.title,
            person=tried.by,
            text=tried.answer,
        )
    for reflection in portfolio.reflections:
        row(
            record="reflection",
            date=reflection.at.date().isoformat(),
            title=reflection.source,
            text=reflection.text,
        )
    for share in portfolio.progress.shares:
        artifact = share.artifact
        row(
            record="share",
            date=artifact.created_at.date().isoformat(),
            goal=goal_labels.get(artifact.goal_id, ""),
            title=artifact.title,
            note=f"what students did: {artifact.student_evidence}"
            if artifact.student_evidence
            else "",
            url=artifact.url or artifact.file_ref or "",
            element=names.get(artifact.element or "", ""),
            community=share.community,
            text=artifact.description,
        )
        for endorsement in share.endorsements:
            row(
                record="endorsement",
                date=endorsement.at.date().isoformat(),
                title=artifact.title,
                person=endorsement.endorser,
                note=endorsement.note,
            )
    return out.getvalue().encode("utf-8-sig")  # the BOM lets spreadsheets read UTF-8


# --- PDF --------------------------------------------------------------------------------

# A Unicode font when the system has one (Debian's fonts-dejavu-core comes with Chromium);
# otherwise the PDF core font with text folded to Latin-1.
FONT_CANDIDATES = (
    (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    ),
    (
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    ),
)
_FOLD = str.maketrans(
    {"“": '"', "”": '"', "‘": "'", "’": "'", "–": "-", "—": "-", "…": "...", "•": "-", "✓": "v"}
)
BAND_FILL = {  # Okabe–Ito colours, lightened for the shaded bands
    "Investigating": (250, 226, 179),
    "Envisioning": (204, 233, 248),
    "Planning": (179, 226, 213),
    "Staging": (240, 215, 229),
}
LINE = (0, 114, 178)  # Okabe–Ito blue


class _PortfolioPDF(FPDF):
    """A tagged PDF: every heading, paragraph and chart is a structure element (H1, H2, P,
    Figure with its alternative text) in reading order, the language is set, and the
    running footer is marked as an artifact, which screen readers skip."""

    footer_text = ""

    def footer(self) -> None:
        self._out("/Artifact BMC")
        self.set_y(-12)
        self.set_font(self.font_family, size=8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, f"{self.footer_text} · page {self.page_no()}", align="C")
        self._out("EMC")

    @contextmanager
    def tagged(self, kind: str, alt: str | None = None) -> Iterator[None]:
        """Content written inside is one structure element of `kind` on this page. fpdf2
        tags only images itself; this uses its structure tree the same way for text."""
        mcid = self.struct_builder.next_mcid_for_page(self.page)
        self._add_marked_content(struct_type=f"/{kind}", mcid=mcid, alt_text=alt)
        self._out(f"/{kind} <</MCID {mcid}>> BDC")
        yield
        self._out("EMC")


class _Writer:
    """Small helpers over fpdf2 so the layout reads top to bottom."""

    def __init__(self, title: str, author: str) -> None:
        self.pdf = _PortfolioPDF(format="A4")
        self.pdf.set_margins(18, 16, 18)
        self.pdf.set_auto_page_break(True, margin=18)
        self.unicode = False
        for regular, bold in FONT_CANDIDATES:
            if Path(regular).exists() and Path(bold).exists():
                self.pdf.add_font("Body", "", regular)
                self.pdf.add_font("Body", "B", bold)
                self.unicode = True
                break
        self.family = "Body" if self.unicode else "Helvetica"
        self.pdf.set_title(title)
        self.pdf.set_author(author)
        self.pdf.set_creator("PLN Bot")
        self.pdf.set_subject("Professional learning portfolio")
        self.pdf.set_lang("en")
        self.pdf.add_page()

    def text(self, value: str) -> str:
        if self.unicode:
            return value
        return value.translate(_FOLD).encode("latin-1", "replace").decode("latin-1")

    def _block(self, kind: str, value: str, height: float, link: str = "") -> None:
        """A tagged block of text, moved whole to the next page when it doesn't fit here
        (a marked sequence must not cross a page), or split by lines when it is longer
        than a page."""
        pdf = self.pdf
        found = pdf.multi_cell(0, height, self.text(value), dry_run=True, output="LINES")
        lines: list[str] = list(found) if isinstance(found, list) else [self.text(value)]
        room = int((pdf.page_break_trigger - pdf.get_y()) // height)
        if len(lines) > room:
            pdf.add_page()
            room = int((pdf.page_break_trigger - pdf.get_y()) // height)
        room = max(room, 1)
        for start in range(0, len(lines), room):
            if start:
                pdf.add_page()
            chunk = "\n".join(lines[start : start + room])
            with pdf.tagged(kind):
                pdf.multi_cell(
                    0, height, chunk, link=link, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
                )

    def heading(self, value: str, size: int = 14) -> None:
        if self.pdf.get_y() > 250:
            self.pdf.add_page()
        self.pdf.ln(3)
        self.pdf.set_font(self.family, "B", size)
        self.pdf.set_text_color(20, 20, 20)
        self._block("H1" if size >= 15 else "H2", value, size * 0.5)
        self.pdf.ln(1)

    def para(self, value: str, size: int = 10, bold: bool = False, grey: bool = False) -> None:
        self.pdf.set_font(self.family, "B" if bold else "", size)
        self.pdf.set_text_color(*((90, 90, 90) if grey else (20, 20, 20)))
        self._block("P", value, size * 0.5)

    def link(self, value: str, url: str) -> None:
        self.pdf.set_font(self.family, "", 9)
        self.pdf.set_text_color(*LINE)
        self._block("P", value, 4.5, link=url)
        self.pdf.set_text_color(20, 20, 20)

    def rating_chart(self, progress: GoalProgress) -> None:
        """Ratings over time on the 0–10 scale, the four bands shaded and labelled; tagged
        as a figure whose alternative text says what it shows."""
        pdf = self.pdf
        width, height = 120.0, 42.0
        if pdf.get_y() + height + 8 > pdf.page_break_trigger:
            pdf.add_page()
        alt = "Chart of self-ratings over time: " + ", ".join(
            f"{_day(p.at)} {p.rating} of 10" for p in progress.ratings
        )
        with pdf.tagged("Figure", alt=self.text(alt)):
            self._draw_chart(progress, width, height)

    def _draw_chart(self, progress: GoalProgress, width: float, height: float) -> None:
        pdf = self.pdf
        left, top = pdf.l_margin + 8, pdf.get_y() + 2
        scale = height / 10.0

        def y_of(value: float) -> float:
            return top + height - value * scale

        pdf.set_font(self.family, "", 7)
        for low, high, name in BANDS:
            lower = low - 0.5 if low > 0 else 0.0
            upper = high + 0.5 if high < 10 else 10.0
            pdf.set_fill_color(*BAND_FILL[name])
            pdf.rect(left, y_of(upper), width, (upper - lower) * scale, style="F")
            pdf.set_text_color(60, 60, 60)
            pdf.text(
                left + width + 1.5, y_of((lower + upper) / 2) + 1, self.text(f"{name} {low}–{high}")
            )
        pdf.set_draw_color(120, 120, 120)
        pdf.set_line_width(0.2)
        pdf.rect(left, top, width, height)
        for tick in (0, 5, 10):
            pdf.text(left - 4.5, y_of(tick) + 1, str(tick))
        points = progress.ratings
        if points:
            first, last = points[0].at, points[-1].at
            span = (last - first).total_seconds()

            def x_of(index: int) -> float:
                if span <= 0:
                    fraction = (index + 0.5) / len(points)
                else:
                    fraction = 0.04 + 0.92 * (points[index].at - first).total_seconds() / span
                return left + width * fraction

            pdf.set_draw_color(*LINE)
            pdf.set_line_width(0.6)
            coords = [(x_of(i), y_of(p.rating)) for i, p in enumerate(points)]
            for (x1, y1), (x2, y2) in itertools.pairwise(coords):
                pdf.line(x1, y1, x2, y2)
            pdf.set_fill_color(*LINE)
            pdf.set_text_color(20, 20, 20)
            for (x, y), point in zip(coords, points, strict=True):
                pdf.circle(x, y, 1.0, style="F")
                pdf.text(x - 1, y - 2, str(point.rating))
            pdf.set_text_color(60, 60, 60)
            pdf.text(left, top + height + 4, self.text(_day(first)))
            if len(points) > 1:
                label = self.text(_day(last))
                pdf.text(left + width - pdf.get_string_width(label), top + height + 4, label)
        pdf.set_y(top + height + 7)
        pdf.set_text_color(20, 20, 20)

    def output(self) -> bytes:
        return bytes(self.pdf.output())


def _goal_evidence_and_cycles(doc: _Writer, portfolio: Portfolio, goal_id: int | None) -> None:
    """Under a goal: the shares named as its evidence (with endorsements, peers who tried them,
    student evidence) and the coaching cycles acknowledged on it."""
    for share in portfolio.progress.shares:
        artifact = share.artifact
        if artifact.goal_id != goal_id:
            continue
        facts = [f"shared {_day(artifact.created_at)}"]
        count = len(share.endorsements)
        facts.append(f"{count} peer endorsement{'s' if count != 1 else ''}")
        peers = portfolio.tried_counts[artifact.id or 0]
        if peers:
            facts.append(f"tried in class by {peers} peer{'s' if peers != 1 else ''}")
        if artifact.student_evidence:
            facts.append("with student evidence")
        doc.para(f"Evidence for this goal: “{artifact.title}” — {' · '.join(facts)}", 9)
    for cycle in portfolio.cycles:
        if cycle.goal_id is not None and cycle.goal_id == goal_id:
            doc.para(
                f"Coaching cycle acknowledged: {cycle.hours:g} hours with {cycle.coach}, "
                f"{_day(cycle.closed_at)} (code {cycle.code})",
                9,
            )


def portfolio_pdf(portfolio: Portfolio) -> bytes:
    member = portfolio.member
    progress = portfolio.progress
    names = portfolio.element_names
    doc = _Writer(f"{portfolio_title(portfolio)}: {portfolio.name}", portfolio.name)
    doc.pdf.footer_text = doc.text(
        f"{portfolio.name} · professional learning portfolio · generated by PLN Bot on "
        f"{_day(portfolio.generated_at)}"
    )
    doc.heading(portfolio_title(portfolio), 18 if not portfolio.include_private else 15)
    doc.para(portfolio.name, 13, bold=True)
    details = [ROLE_NAMES.get(member.role or "", "")]
    if member.school:
        details.append(member.school)
    doc.para(" · ".join(d for d in details if d) or "Educator")
    moments = [p.at for g in progress.goals for p in g.ratings]
    moments += [s.artifact.created_at for s in progress.shares]
    moments += [r.at for r in portfolio.reflections]
    period = f"Activity from {_day(min(moments))} to {_day(max(moments))}. " if moments else ""
    doc.para(f"{period}Generated {_day(portfolio.generated_at)} by PLN Bot.", 9, grey=True)
    doc.pdf.ln(2)
    doc.para(
        f"Goals: {len([g for g in progress.goals if g.goal])} · check-ins answered: "
        f"{progress.checkins_answered} · evidence shared: {len(progress.shares)} · "
        f"peer endorsements received: {progress.endorsements_received} · "
        f"endorsements given: {len(progress.given)}"
    )
    if portfolio.cycles:
        first = min(c.offered_at for c in portfolio.cycles)
        last = max(c.closed_at for c in portfolio.cycles)
        count = len(portfolio.cycles)
        doc.para(
            f"Acknowledged professional learning: {portfolio.hours:g} hours in {count} coaching "
            f"cycle{'s' if count != 1 else ''}, {_day(first)} to {_day(last)}, each signed by "
            "its coach and verifiable by its code (below).",
            10,
            bold=True,
        )
    doc.para(
        "Self-ratings use the Future Ready scale from 0 to 10: Investigating 0–3, "
        "Envisioning 4–5, Planning 6–7, Staging 8–10.",
        9,
        grey=True,
    )
    doc.para(PRIVATE_RULE if portfolio.include_private else INCLUSION_RULE, 9, grey=True)
    doc.para(
        "Ratings are the educator's own assessments; endorsements come from named peers in "
        "their Professional Learning Network.",
        9,
        grey=True,
    )

    doc.heading("Goals and self-ratings over time")
    if not progress.goals:
        doc.para("No goals or check-ins yet.")
    for goal_progress in progress.goals:
        goal = goal_progress.goal
        doc.para(goal_progress.title, 11, bold=True)
        if goal is not None:
            facts = [f"set {_day(goal.created_at)}"]
            if goal.element:
                facts.append(f"element: {names.get(goal.element, goal.element)}")
            if goal.target_date:
                facts.append(f"target {goal.target_date:%d %b %Y}")
            facts.append(f"achieved {_day(goal.done_at)}" if goal.status == "done" else "active")
            doc.para(" · ".join(facts), 9, grey=True)
        for track in portfolio.indicators:
            if goal is None or track.goal_id != goal.id:
                continue
            kind = INDICATOR_KINDS.get(track.kind, track.kind)
            values = "; ".join(f"{_day(at)}: {value:g}" for at, value, _ in track.values)
            doc.para(
                f"Indicator {track.number} ({kind}): {track.text} — {values or 'no values yet'}", 9
            )
        if not goal_progress.ratings:
            doc.para("No ratings yet.", 9)
        else:
            doc.para(
                "Ratings: "
                + "; ".join(
                    f"{_day(p.at)}: {p.rating}/10 ({p.band})" for p in goal_progress.ratings
                ),
                9,
            )
            reached = dict.fromkeys(p.band for p in goal_progress.ratings)
            for name in reached:
                if portfolio.descriptors.get(name):
                    doc.para(f"{name}: {portfolio.descriptors[name]}", 9, grey=True)
            doc.rating_chart(goal_progress)
        if goal is not None:
            _goal_evidence_and_cycles(doc, portfolio, goal.id)

    doc.heading("Coaching cycles acknowledged")
    if not portfolio.cycles:
        doc.para("No coaching cycle acknowledged yet.", 9)
    for cycle in portfolio.cycles:
        doc.para(f"{cycle.goal or 'A goal'} — {cycle.hours:g} hours", 11, bold=True)
        accepted = f", accepted {_day(cycle.accepted_at)}" if cycle.accepted_at else ""
        doc.para(
            f"Coach: {cycle.coach} · offered {_day(cycle.offered_at)}{accepted}, "
            f"acknowledged {_day(cycle.closed_at)}",
            9,
            grey=True,
        )
        where = f" — check it at {portfolio.verify_url}{cycle.code}" if portfolio.verify_url else ""
        doc.para(f"Verification code: {cycle.code}{where}", 9)
        for note in cycle.feedback:
            doc.para(f"Coach's feedback: “{note}”", 9)
        doc.pdf.ln(1)

    doc.heading("Reflections")
    if not portfolio.reflections:
        doc.para("No reflections included.", 9)
    for reflection in portfolio.reflections:
        doc.para(f"{_day(reflection.at)} · {reflection.source}", 9, bold=True)
        doc.para(reflection.text, 10)
        doc.pdf.ln(1)

    doc.heading("Evidence of practice and peer endorsements")
    goal_numbers = {g.goal.id: g.goal.number for g in progress.goals if g.goal}
    if not progress.shares:
        doc.para("No evidence shared yet.", 9)
    for share in progress.shares:
        artifact = share.artifact
        doc.para(artifact.title, 11, bold=True)
        facts = [f"shared {_day(artifact.created_at)} in {share.community}"]
        if artifact.goal_id in goal_numbers:
            facts.append(f"evidence for goal {goal_numbers[artifact.goal_id]}")
        if artifact.element:
            facts.append(names.get(artifact.element, artifact.element))
        count = len(share.endorsements)
        facts.append(f"{count} peer endorsement{'s' if count != 1 else ''}")
        doc.para(" · ".join(facts), 9, grey=True)
        if artifact.url or artifact.file_ref:
            target = artifact.url or artifact.file_ref or ""
            doc.link(target, target if target.startswith(("http://", "https://")) else "")
        if artifact.description:
            doc.para(artifact.description, 10)
        if artifact.student_evidence:
            doc.para(f"What students did: {artifact.student_evidence}", 10)
        for endorsement in share.endorsements:
            note = f": “{endorsement.note}”" if endorsement.note else ""
            doc.para(f"Endorsed by {endorsement.endorser} on {_day(endorsement.at)}{note}", 9)
        doc.pdf.ln(1)

    if portfolio.tried:
        doc.heading("Practice others tried, and what their students did")
        for tried in portfolio.tried:
            doc.para(f"{_day(tried.at)} · {tried.by} tried “{tried.title}”", 9, bold=True)
            doc.para(tried.answer, 10)

    if progress.given:
        doc.heading("Peer work this educator endorsed")
        for given in progress.given:
            note = f" — your note: “{given.note}”" if given.note else ""
            doc.para(f"{_day(given.at)} · you endorsed “{given.title}” by {given.author}{note}", 9)
    return doc.output()


# --- the command ------------------------------------------------------------------------


async def export_portfolio(ctx: Context, args: str) -> None:
    """DM the portfolio as PDF and CSV; private reflections only when asked for."""
    choice = " ".join(args.lower().split())
    if choice not in ("", "with private", "private"):
        raise UsageError(
            "Usage: `export portfolio` (with the reflections you shared) or "
            "`export portfolio with private` (your private reflections too)."
        )
    record = portfolio_record(
        ctx.session,
        ctx.prompts,
        ctx.member,
        now=ctx.now,
        include_private=bool(choice),
        verify_url=f"{ctx.links.base_url}/verify/" if ctx.links is not None else "",
    )
    text = (
        "Your portfolio *for you only*: it includes your private reflections and check-in "
        "notes, so keep this copy to yourself. `export portfolio` makes the one to share "
        "with your district."
        if choice
        else "Your professional learning portfolio (with the reflections you shared), "
        "ready for your district."
    )
    ctx.send(
        Message(
            text=text,
            visibility=Visibility.DM,
            to=ctx.user,
            attachment=Attachment(
                filename=portfolio_filename(record, "pdf"),
                content=portfolio_pdf(record),
                mime_type="application/pdf",
            ),
        )
    )
    ctx.send(
        Message(
            text="The same portfolio as a spreadsheet (CSV): one row per goal, rating, "
            "reflection, share and endorsement.",
            visibility=Visibility.DM,
            to=ctx.user,
            attachment=Attachment(
                filename=portfolio_filename(record, "csv"),
                content=portfolio_csv(record),
                mime_type="text/csv",
            ),
        )
    )
    if not ctx.conversation.is_dm:
        ctx.reply("I've sent your portfolio to you as a direct message.")


async def ignore_link_click(ctx: Context) -> None:
    """Link buttons open a page; platforms that report the click need no answer."""
    return None


def register(router: Router) -> None:
    router.command(
        "export portfolio",
        export_portfolio,
        usage="export portfolio [with private]",
        summary="your professional learning portfolio (PDF and CSV) for your district",
    )
    router.action(OPEN_LINK, ignore_link_click)
