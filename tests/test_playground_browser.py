"""The playground and the dashboards in headless Chromium (Debian's package, via Playwright):
what a newcomer does with a mouse and a keyboard, and what a dashboard link shows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from storage.models import CheckIn, Digest, Endorsement, Member
from tests.web_rig import (
    ANA,
    ANA_PRIVATE,
    BEN,
    BEN_GOAL,
    BEN_PRIVATE,
    WebRig,
    browser_fixture,  # noqa: F401  (the `browser` fixture: one Chromium for the module)
    community_with_two_teachers,
    module_loop_web_fixture,  # noqa: F401  (the `web` fixture, in the module's loop)
)

pytestmark = pytest.mark.asyncio(loop_scope="module")  # where the module's Chromium lives

WAIT = 10_000  # ms


class Watch:
    """Every request the page makes and every console error it logs (CSP violations too)."""

    def __init__(self, page: Any) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )
        page.on("pageerror", lambda error: self.errors.append(str(error)))


async def type_in(page: Any, text: str) -> None:
    await page.fill("#say", text)
    await page.press("#say", "Enter")


async def be(page: Any, persona: str, where: str = "channel") -> None:
    await page.click(f'[data-persona="{persona}"]')
    await page.click(f'[data-where="{where}"]')


async def test_coach_sets_up_a_teacher_shares_another_endorses_and_the_digest_appears(
    web: WebRig, browser: Any
) -> None:
    page = await browser.new_page(viewport={"width": 1300, "height": 900})
    watch = Watch(page)
    await page.goto(f"{web.url}/playground")
    await page.wait_for_selector("body[data-ready='true']")
    assert await page.get_attribute('[data-persona="W_CASEY"]', "aria-pressed") == "true"

    # Casey (the coach, selected at first) makes the channel a community.
    await type_in(page, "setup Math PLN")
    await page.wait_for_selector("article:has-text('is now the PLN community')", timeout=WAIT)
    await page.wait_for_selector("#community-status:has-text('Math PLN')", timeout=WAIT)

    # Ana shares evidence; it appears as a card with an Endorse button.
    await be(page, ANA)
    await page.click("button.chip:has-text('Exit tickets that worked')")  # a suggestion
    await page.press("#say", "Enter")
    share = page.locator("article.bot:has(.card-title:has-text('Exit tickets that worked'))")
    await share.wait_for(timeout=WAIT)

    # Ben endorses it with a note, through the card's form.
    await be(page, BEN)
    await share.locator("button[data-action='endorse_note_open']").click()
    form = page.locator("form[data-submit='endorse_note']").last
    await form.locator("textarea[name='note']").fill("Borrowing the sentence starters")
    await form.locator("button[type=submit]").click()
    await page.wait_for_selector(
        "article:has(.card-title:has-text('Exit tickets that worked')) button:has-text('Endorse (1)')",
        timeout=WAIT,
    )

    # Fast-forward: the week's digest is posted in the channel, with Ana's share first.
    await page.click("[data-run='digest']")
    await page.wait_for_selector("#run-status:has-text('is posted')", timeout=WAIT)
    digest = page.locator("article.bot:has(.card-title:has-text('the week'))")
    await digest.wait_for(timeout=WAIT)
    text = await digest.inner_text()
    assert "1. Exit tickets that worked" in text and "by Ana" in text
    assert "Borrowing the sentence starters" in text

    with web.db.session() as session:
        [endorsement] = session.exec(select(Endorsement)).all()
        assert endorsement.note == "Borrowing the sentence starters"
        assert [d.iso_week for d in session.exec(select(Digest))] == ["2026-W48"]
    assert all(url.startswith(web.url) for url in watch.requests), watch.requests
    assert watch.errors == []
    await page.close()


async def test_a_teachers_dashboard_chart_shows_her_stored_ratings(
    web: WebRig, browser: Any
) -> None:
    await community_with_two_teachers(web)
    page = await browser.new_page(viewport={"width": 1300, "height": 900})
    watch = Watch(page)
    await page.goto(f"{web.url}/playground")
    await page.wait_for_selector("body[data-ready='true']")
    await be(page, ANA, "dm")
    await type_in(page, "me")
    link = page.locator(
        "article:has(.card-title:has-text('Your professional learning')) a.btn.link"
    )
    await link.wait_for(timeout=WAIT)
    href = await link.get_attribute("href")
    assert href is not None and href.startswith(f"{web.url}/dashboard/v1.m.")

    response = await page.goto(href)
    assert response is not None and response.status == 200
    chart = page.locator("article.goal").first.locator("svg.chart")
    assert await chart.get_attribute("role") == "img"
    assert "Self-ratings over time" in await chart.locator("title").first.text_content()
    points = await chart.locator("g.point").evaluate_all(
        """groups => groups.map(g => ({
            rating: Number(g.dataset.rating), date: g.dataset.date, checkin: Number(g.dataset.checkin),
            cy: Number(g.querySelector('circle').getAttribute('cy')),
            label: g.querySelector('text').textContent }))"""
    )
    with web.db.session() as session:
        ana = session.exec(select(Member).where(Member.user_id == ANA)).one()
        stored = session.exec(
            select(CheckIn)
            .where(CheckIn.member_id == ana.id, CheckIn.rating.is_not(None))  # type: ignore[union-attr]
            .order_by(CheckIn.answered_at)  # type: ignore[arg-type]
        ).all()
    assert [(p["checkin"], p["rating"], p["date"]) for p in points] == [
        (c.id, c.rating, c.answered_at.date().isoformat()) for c in stored if c.answered_at
    ]
    assert [p["rating"] for p in points] == [4, 7, 9]
    assert [p["label"] for p in points] == ["4", "7", "9"]
    # Higher ratings sit higher on the chart, at the same scale (SVG y grows downwards).
    heights = [p["cy"] for p in points]
    assert heights[0] > heights[1] > heights[2]
    assert abs((heights[0] - heights[1]) / 3 - (heights[1] - heights[2]) / 2) < 0.2
    bands = await chart.locator("rect.band").evaluate_all("rs => rs.map(r => r.dataset.band)")
    assert bands == ["Investigating", "Envisioning", "Planning", "Staging"]

    page_text = await page.content()
    for foreign in (BEN_GOAL, BEN_PRIVATE, ANA_PRIVATE, "Lab notebook routine"):
        assert foreign not in page_text
    assert all(url.startswith(web.url) for url in watch.requests), watch.requests
    assert watch.errors == []
    await page.close()


async def test_tampered_expired_and_other_peoples_links_in_the_browser(
    web: WebRig, browser: Any
) -> None:
    await community_with_two_teachers(web)
    page = await browser.new_page()
    ana, ben = web.dashboard_url(ANA), web.dashboard_url(BEN)

    response = await page.goto(ben)
    assert response is not None and response.status == 200
    assert (
        BEN_GOAL in await page.content()
        and "Use exit tickets every day" not in await page.content()
    )

    version, kind, subject, viewer, expires, signature = ana.rsplit("/", 1)[1].split(".")
    ben_id = str(web.member(BEN).id)
    for forged in (
        f"{version}.{kind}.{ben_id}.{ben_id}.{expires}.{signature}",
        f"{version}.{kind}.{subject}.{viewer}.{int(expires) + 3600}.{signature}",
    ):
        response = await page.goto(f"{web.url}/dashboard/{forged}")
        assert response is not None and response.status == 403
        assert "isn't valid" in await page.inner_text("h1")
        assert BEN_GOAL not in await page.content()

    web.clock.advance(timedelta(days=8))
    response = await page.goto(ana)
    assert response is not None and response.status == 403
    assert "expired" in await page.inner_text("h1")
    await page.close()
