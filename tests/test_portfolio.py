"""`export portfolio`: a PDF and a CSV of a member's professional learning, with the
reflections they chose to include; and the dashboard buttons on `me` and `report`."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pypdf
import pytest

from bot.features import portfolio
from bot.services.links import DashboardLinks
from tests.story import Story

PRIVATE_NOTE = "worried-about-pacing-private"
PRIVATE_REFLECTION = "not-sure-it-works-for-everyone-private"


def pdf_text(content: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def squash(text: str) -> str:
    return " ".join(text.split())


async def zelda_learns(story: Story) -> None:
    """Zelda sets a goal, checks in three times over three weeks (shares one, keeps the
    others private), reflects in a prompt's thread and privately, and shares evidence that
    two peers endorse."""
    await story.command("U_COACH", "setup Math PLN")
    await story.join("U_ZELDA")
    await story.command("U_ZELDA", "goal add Use exit tickets every day", channel=None)
    await story.command("U_ZELDA", "checkin", channel=None)
    await story.say("U_ZELDA", f"4 - {PRIVATE_NOTE}")
    story.clock.advance(timedelta(days=7))
    await story.command("U_ZELDA", "checkin", channel=None)
    saved = await story.say("U_ZELDA", "7 - students led the exit ticket review")
    card = saved[0].message.card
    assert card is not None
    await story.press("U_ZELDA", "checkin_share", card.buttons[0].value, channel=None)
    story.clock.advance(timedelta(days=7))
    await story.command("U_ZELDA", "checkin", channel=None)
    await story.say("U_ZELDA", "9 - colleagues borrowed my routine")

    prompt = next(s for s in await story.command("U_COACH", "prompt assessment") if not s.ephemeral)
    await story.reply_in_thread(
        "U_ZELDA", prompt.ref.message_id, "Students chose their own exit question"
    )
    assert prompt.message.card is not None
    await story.press("U_ZELDA", "reflect_private", prompt.message.card.buttons[0].value)
    await story.say("U_ZELDA", PRIVATE_REFLECTION)

    shared = await story.command(
        "U_ZELDA", "share https://example.org/exit Exit ticket bank #assessment"
    )
    share_card = next(s for s in shared if not s.ephemeral).message.card
    assert share_card is not None
    artifact = share_card.buttons[0].value
    await story.press("U_BEN", "endorse_note", artifact, values={"note": "Borrowing the starters"})
    await story.press("U_ANA", "endorse", artifact)


async def test_export_portfolio_dms_a_pdf_and_a_csv_with_shared_reflections_only(
    story: Story,
) -> None:
    await zelda_learns(story)
    sent = await story.command("U_ZELDA", "export portfolio")
    assert any(s.ephemeral and "direct message" in s.text for s in sent)
    files = [s for s in sent if s.message.attachment is not None]
    assert [s.conversation.channel_id for s in files] == ["D-U_ZELDA", "D-U_ZELDA"]
    pdf, table = (s.message.attachment for s in files)
    assert pdf is not None and table is not None
    assert pdf.mime_type == "application/pdf" and pdf.filename.endswith(".pdf")
    assert pdf.content.startswith(b"%PDF-")

    text = squash(pdf_text(pdf.content))
    for expected in (
        "Professional learning portfolio",
        "Zelda",
        "Goal 1: Use exit tickets every day",
        "24 Nov 2026: 4/10 (Envisioning)",
        "01 Dec 2026: 7/10 (Planning)",
        "08 Dec 2026: 9/10 (Staging)",
        "students led the exit ticket review",  # shared check-in
        "Students chose their own exit question",  # reply in a prompt's thread
        "Exit ticket bank",
        "https://example.org/exit",
        "Endorsed by Ben",
        "Borrowing the starters",
        "Endorsed by Ana",
        "Reflections included: those this educator shared",
    ):
        assert expected in text, expected
    for private in (PRIVATE_NOTE, PRIVATE_REFLECTION, "colleagues borrowed my routine"):
        assert private not in text

    rows = list(csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))))
    assert [r["rating"] for r in rows if r["record"] == "rating"] == ["4", "7", "9"]
    assert {r["person"] for r in rows if r["record"] == "endorsement"} == {"Ben", "Ana"}
    reflections = [r["text"] for r in rows if r["record"] == "reflection"]
    assert reflections == [
        "students led the exit ticket review",
        "Students chose their own exit question",
    ]
    assert (
        PRIVATE_NOTE not in table.content.decode()
        and PRIVATE_REFLECTION not in table.content.decode()
    )


async def test_with_private_the_member_chooses_to_include_private_reflections(story: Story) -> None:
    await zelda_learns(story)
    sent = await story.command("U_ZELDA", "export portfolio with private", channel=None)
    pdf = sent[0].message.attachment
    assert pdf is not None
    text = squash(pdf_text(pdf.content))
    assert PRIVATE_NOTE in text and PRIVATE_REFLECTION in text
    assert "including private reflections" in text
    bad = await story.command("U_ZELDA", "export portfolio everything", channel=None)
    assert "Usage: `export portfolio`" in bad[0].text and bad[0].message.attachment is None


async def test_the_pdf_reads_without_a_unicode_font(
    story: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(portfolio, "FONT_CANDIDATES", ())
    await zelda_learns(story)
    sent = await story.command("U_ZELDA", "export portfolio", channel=None)
    pdf = sent[0].message.attachment
    assert pdf is not None
    text = squash(pdf_text(pdf.content))
    assert "Goal 1: Use exit tickets every day" in text and '"Borrowing the starters"' in text


async def test_a_new_member_gets_an_empty_but_valid_portfolio(story: Story) -> None:
    sent = await story.command("U_NEW", "export portfolio", channel=None)
    pdf = sent[0].message.attachment
    assert pdf is not None
    text = squash(pdf_text(pdf.content))
    assert "No goals or check-ins yet" in text and "No evidence shared yet" in text


def test_csv_cells_that_a_spreadsheet_would_run_are_kept_as_text() -> None:
    assert portfolio._cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert portfolio._cell("+1") == "'+1" and portfolio._cell("@SUM(A1)") == "'@SUM(A1)"
    assert portfolio._cell("plain") == "plain" and portfolio._cell(7) == "7"


async def test_me_and_report_carry_an_open_dashboard_link(story: Story) -> None:
    links = DashboardLinks(key="k", base_url="https://pln.example.org/", clock=story.clock)
    story.bot.links = links
    await story.command("U_COACH", "setup Math PLN")
    me = await story.command("U_ANA", "me", channel=None)
    card = me[0].message.card
    assert card is not None
    [button] = [b for b in card.buttons if b.url]
    assert button.label == "Open dashboard"
    assert button.url is not None and button.url.startswith(
        "https://pln.example.org/dashboard/v1.m."
    )
    report = await story.command("U_COACH", "report")
    card = report[0].message.card
    assert card is not None and report[0].ephemeral
    [button] = [b for b in card.buttons if b.url]
    assert button.url is not None and "/dashboard/v1.c." in button.url
    # A platform that reports clicks on link buttons (Slack does) gets no error back.
    assert await story.press("U_ANA", "open_dashboard", channel=None) == []
    # Without the web side wired, `me` simply has no link.
    story.bot.links = None
    card = (await story.command("U_ANA", "me", channel=None))[0].message.card
    assert card is not None and not [b for b in card.buttons if b.url]


def zelda_is_acknowledged(story: Story, db) -> str:  # type: ignore[no-untyped-def]
    """The coach acknowledged a 6-hour cycle on Zelda's goal; she logged an indicator twice;
    Ben tried her share and said what his students did. Returns the cycle's code."""
    import sqlalchemy as sa

    from bot.services.verification import code_for, signing_key
    from storage.models import (
        Artifact,
        CoachingCycle,
        CycleNote,
        Enactment,
        Goal,
        Indicator,
        IndicatorValue,
        Member,
    )

    now = story.clock.now()
    with db.session() as session:
        zelda = session.execute(sa.select(Member).where(Member.user_id == "U_ZELDA")).scalar_one()
        ben = session.execute(sa.select(Member).where(Member.user_id == "U_BEN")).scalar_one()
        goal = session.execute(sa.select(Goal).where(Goal.member_id == zelda.id)).scalar_one()
        artifact = session.execute(sa.select(Artifact)).scalars().first()
        indicator = Indicator(goal_id=goal.id, number=1, kind="achievement", text="Exit-ticket %")
        session.add(indicator)
        session.flush()
        for days, value in ((14, 64), (0, 72)):
            session.add(
                IndicatorValue(
                    indicator_id=indicator.id, value=value, logged_at=now - timedelta(days=days)
                )
            )
        artifact.goal_id = goal.id  # her share is evidence for the goal, with students' work
        artifact.student_evidence = "Most students rewrote their answer after the ticket"
        session.add(artifact)
        cycle = CoachingCycle(
            workspace_id=zelda.workspace_id,
            member_id=zelda.id,
            coach_name="Coach Carter",
            goal_id=goal.id,
            goal_text=goal.text,
            status="closed",
            hours=6,
            offered_at=now - timedelta(days=20),
            answered_at=now - timedelta(days=19),
            closed_at=now,
        )
        session.add(cycle)
        session.flush()
        cycle.code = code_for(signing_key(session, story.bot.settings), cycle, zelda)
        session.add(CycleNote(cycle_id=cycle.id, text="Wait time grew", in_portfolio=True))
        session.add(CycleNote(cycle_id=cycle.id, text="Kept between us", in_portfolio=False))
        session.add(
            Enactment(
                artifact_id=artifact.id,
                member_id=ben.id,
                due_on=now.date(),
                status="answered",
                answer="Every student wrote an exit question",
                answered_at=now,
            )
        )
        session.commit()
        return cycle.code


async def test_a_portfolio_a_district_can_credit_is_a_tagged_pdf_with_hours_and_codes(
    story: Story,
    db,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    import shutil
    import subprocess

    await zelda_learns(story)
    code = zelda_is_acknowledged(story, db)
    sent = await story.command("U_ZELDA", "export portfolio")
    pdf, table = (s.message.attachment for s in sent if s.message.attachment is not None)
    assert pdf is not None and table is not None

    text = squash(pdf_text(pdf.content))
    for expected in (
        "Acknowledged professional learning: 6 hours in 1 coaching cycle",
        "Indicator 1 (student achievement): Exit-ticket % — 24 Nov 2026: 64; 08 Dec 2026: 72",
        "Coaching cycles acknowledged",
        "Use exit tickets every day — 6 hours",
        "Coach: Coach Carter",
        f"Verification code: {code}",
        "Coach's feedback: “Wait time grew”",
        "Ben tried “Exit ticket bank",
        "Every student wrote an exit question",
        # Per goal: the evidence named for it and the cycle acknowledged on it.
        "Evidence for this goal: “Exit ticket bank",
        "tried in class by 1 peer · with student evidence",
        f"Coaching cycle acknowledged: 6 hours with Coach Carter, 08 Dec 2026 (code {code})",
        "What students did: Most students rewrote their answer after the ticket",
        "evidence for goal 1",
    ):
        assert expected in text, expected
    assert "Kept between us" not in text  # feedback she did not choose to include
    for reached in ("Envisioning", "Planning", "Staging"):  # her ratings 4, 7 and 9
        words = squash(story.bot.prompts.band_descriptor(reached, "classroom"))
        assert f"{reached}: {words[:40]}" in text, reached
    # Reading order: the summary, then goals, then cycles, then evidence.
    assert text.index("Acknowledged professional") < text.index("Goals and self-ratings")
    assert text.index("Goals and self-ratings") < text.index("Coaching cycles acknowledged")
    assert text.index("Coaching cycles acknowledged") < text.index("Evidence of practice")

    reader = pypdf.PdfReader(io.BytesIO(pdf.content))
    catalog = reader.trailer["/Root"]
    assert bool(catalog["/MarkInfo"]["/Marked"])
    assert catalog["/Lang"] == "en"
    top = catalog["/StructTreeRoot"]["/K"]
    document = (top[0] if isinstance(top, list) else top).get_object()
    assert document["/S"] == "/Document"
    kinds = [str(e.get_object()["/S"]) for e in document["/K"]]
    assert {"/H1", "/H2", "/P", "/Figure"} <= set(kinds) and kinds[0] == "/H1"
    if shutil.which("pdfinfo"):  # poppler's own view, where it is installed (.ci/run does)
        path = tmp_path / "portfolio.pdf"
        path.write_bytes(pdf.content)
        info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
        assert re.search(r"^Tagged:\s+yes$", info, re.M), info

    rows = list(csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))))
    [cycle] = [r for r in rows if r["record"] == "coaching cycle"]
    assert (cycle["hours"], cycle["code"], cycle["person"]) == ("6", code, "Coach Carter")
    assert [r["value"] for r in rows if r["record"] == "indicator"] == ["64", "72"]
    assert [r["person"] for r in rows if r["record"] == "tried by a peer"] == ["Ben"]
    [share] = [r for r in rows if r["record"] == "share"]
    assert share["goal"] == "1. Use exit tickets every day"
    assert share["note"] == "what students did: Most students rewrote their answer after the ticket"
    assert [r["goal"] for r in rows if r["record"] == "tried by a peer"] == [share["goal"]]
