"""`export portfolio`: a PDF and a CSV of a member's professional learning, with the
reflections they chose to include; and the dashboard buttons on `me` and `report`."""

from __future__ import annotations

import csv
import io
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
