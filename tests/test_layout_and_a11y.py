"""The playground and the dashboards on a phone, a tablet and a desktop, in headless Chromium
(Debian's package, via Playwright), and checked with axe-core.

Layout is measured, not eyeballed: element boxes at 360x740 and 390x844 (phones), 768x1024 (a
tablet) and 1280x800 (a desktop): the message area's height, the composer inside the viewport
and not covered, no sideways scrolling of the page, the drawer opening and closing, chart
labels of 12 px or more as rendered. axe-core (the npm package, in tests/.axe: `npm install
--prefix tests/.axe axe-core@<version>`, as .ci/run does) is injected into each page and must
find nothing serious or critical. Screenshots go to $PLNBOT_SHOTS (default /tmp/plnbot-shots).

One Chromium and one populated server for the module (the tests only read, apart from one
message typed with the keyboard up), so the module takes seconds.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlmodel import select

from adapters.web.charts import bands_chart, checkins_chart, participation_chart, rating_chart
from bot.scoring.bands import summarise
from bot.scoring.progress import RatingPoint, WeekStats
from bot.scoring.small_groups import count_of
from storage.db import Database
from storage.models import Community, Member
from tests.doubles import FrozenClock
from tests.web_rig import (
    ANA,
    CASEY,
    WebRig,
    browser_fixture,  # noqa: F401  (the `browser` fixture: one Chromium for the module)
    community_with_two_teachers,
    running_web,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")  # where the module's Chromium lives

AXE = Path(__file__).parent / ".axe" / "node_modules" / "axe-core" / "axe.min.js"
NO_AXE = (
    f"axe-core is not installed at {AXE.relative_to(Path(__file__).parent.parent)}: "
    "`npm install --prefix tests/.axe axe-core@4` (.ci/run installs the pinned version)"
)
SHOTS = Path(os.environ.get("PLNBOT_SHOTS", "/tmp/plnbot-shots"))
PHONE_S, PHONE, TABLET, DESKTOP = (360, 740), (390, 844), (768, 1024), (1280, 800)
SIZES = [PHONE_S, PHONE, TABLET, DESKTOP]
SIDEWAYS = [(740, 360), (844, 390)]  # phones turned to landscape
SHOT_WIDTHS = {390, 768, 1280}
DRAWER_BELOW = 1024  # px: the sidebar is a drawer below 64rem (web.css)
MIN_LABEL_PX = 12
WAIT = 10_000  # ms


@dataclass
class Site:
    web: WebRig
    playground: str
    member: str
    community: str
    refused: str


@pytest_asyncio.fixture(name="site", scope="module", loop_scope="module")
async def site_fixture(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Site]:
    """The playground after the two-teacher story, with its dashboard links (SQLite only:
    layout doesn't depend on the database)."""
    path = tmp_path_factory.mktemp("layout") / "plnbot.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    clock = FrozenClock(datetime(2026, 11, 24, 14, 0, tzinfo=UTC))
    async with running_web(db, clock) as web:
        await community_with_two_teachers(web)
        with db.session() as session:
            community = session.exec(select(Community)).one()
            coach = session.exec(select(Member).where(Member.user_id == CASEY)).one()
            links = web.runtime.bot.links
            assert links is not None
            community_url = links.community_url(community, coach)
        yield Site(
            web=web,
            playground=f"{web.url}/playground",
            member=web.dashboard_url(ANA),
            community=community_url,
            refused=f"{web.url}/dashboard/v1.m.1.1.1.not-a-signature",
        )
    db.dispose()


def page_url(site: Site, which: str) -> str:
    return f"{site.web.url}/{which}" if which in ("privacy", "terms") else getattr(site, which)


def size_id(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


async def open_page(
    browser: Any, size: tuple[int, int], *, bypass_csp: bool = False, motion: bool = False
) -> tuple[Any, Any, list[str]]:
    """A fresh context at `size` (a touch device below desktop width) and its page, with the
    console errors it logs (a Content-Security-Policy violation is one)."""
    width, height = size
    touch = min(width, height) < 800  # phones and tablets, either way up
    context = await browser.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=1,
        is_mobile=touch,
        has_touch=touch,
        reduced_motion="no-preference" if motion else "reduce",
        bypass_csp=bypass_csp,
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, errors


async def open_playground(page: Any, site: Site) -> None:
    await page.goto(site.playground)
    await page.wait_for_selector("body[data-ready='true']")
    await page.wait_for_selector("#messages article", timeout=WAIT)


SHELL = """() => {
  const box = (selector) => {
    const element = document.querySelector(selector);
    if (!element) return null;
    const r = element.getBoundingClientRect();
    return {x: r.x, y: r.y, width: r.width, height: r.height, right: r.right, bottom: r.bottom};
  };
  // What a tap in the middle of `selector` would land on: itself, or whatever covers it.
  const onTop = (selector) => {
    const element = document.querySelector(selector);
    const r = element.getBoundingClientRect();
    const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
    return hit === element || element.contains(hit)
      ? "itself" : hit ? `${hit.tagName}#${hit.id}.${hit.className}` : "nothing";
  };
  const root = document.documentElement;
  return {
    innerWidth, innerHeight, clientWidth: root.clientWidth, scrollWidth: root.scrollWidth,
    scrollHeight: root.scrollHeight,
    messages: box("#messages"), composer: box("#composer"), say: box("#say"),
    send: box("#composer button[type=submit]"), sidebar: box("#sidebar"),
    toggle: box("#menu-toggle"), chatHead: box(".chat-head"),
    sayOnTop: onTop("#say"), sendOnTop: onTop("#composer button[type=submit]"),
    sidebarShown: getComputedStyle(document.querySelector("#sidebar")).visibility === "visible",
    toggleShown: getComputedStyle(document.querySelector("#menu-toggle")).display !== "none",
  };
}"""


def assert_no_sideways_scroll(shell: dict[str, Any], width: int) -> None:
    # innerWidth stays the device width: a page too wide for a phone would make a mobile
    # browser zoom out (innerWidth grows) rather than scroll.
    assert shell["innerWidth"] == width, shell
    assert shell["scrollWidth"] <= shell["innerWidth"], shell
    assert shell["scrollWidth"] <= shell["clientWidth"], shell


def assert_composer_usable(shell: dict[str, Any]) -> None:
    """The message box and Send are on screen, below the messages, and nothing covers them."""
    composer, messages = shell["composer"], shell["messages"]
    for name in ("say", "send"):
        box = shell[name]
        assert box["x"] >= 0 and box["right"] <= shell["innerWidth"], (name, shell)
        assert box["y"] >= 0 and box["bottom"] <= shell["innerHeight"], (name, shell)
    assert composer["bottom"] <= shell["innerHeight"] + 0.5, shell
    assert composer["y"] >= messages["bottom"] - 0.5, shell
    assert shell["sayOnTop"] == "itself" and shell["sendOnTop"] == "itself", shell


@pytest.mark.parametrize("size", SIZES + SIDEWAYS, ids=size_id)
async def test_the_playground_fills_the_screen_at_every_size(
    browser: Any, site: Site, size: tuple[int, int]
) -> None:
    width, height = size
    context, page, errors = await open_page(browser, size)
    await open_playground(page, site)
    shell = await page.evaluate(SHELL)

    assert_no_sideways_scroll(shell, width)
    assert shell["scrollHeight"] <= height, shell  # the page is the screen; messages scroll
    # The messages get most of the screen (they had 24 px at 390x844 and 164 px at 768);
    # on a phone turned sideways, half of its little height.
    messages = shell["messages"]
    if height > 600:
        assert messages["height"] >= 0.55 * height and messages["height"] >= 400, shell
    else:
        assert messages["height"] >= 0.45 * height, shell
    assert messages["width"] >= (width - 290 if width >= DRAWER_BELOW else width), shell
    assert_composer_usable(shell)
    if width < DRAWER_BELOW:  # the sidebar waits in its drawer, off screen
        assert shell["toggleShown"] and not shell["sidebarShown"], shell
        assert shell["sidebar"]["right"] <= 0, shell
    else:  # a column beside the conversation, no Menu button
        assert not shell["toggleShown"] and shell["sidebarShown"], shell
        assert shell["sidebar"]["x"] == 0 and shell["sidebar"]["right"] <= messages["x"], shell
    # The newest message is in view (the list starts scrolled to the bottom).
    newest = await page.locator("#messages > article").last.bounding_box()
    assert newest is not None
    assert newest["y"] + newest["height"] <= messages["bottom"] + 1, (newest, shell)

    if width in SHOT_WIDTHS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"playground-{width}.png"))
    assert errors == []
    await context.close()


async def test_the_drawer_opens_and_closes_with_a_button_the_keyboard_and_a_tap(
    browser: Any, site: Site
) -> None:
    context, page, errors = await open_page(browser, PHONE, motion=True)
    await open_playground(page, site)
    toggle, drawer = page.locator("#menu-toggle"), page.locator("#sidebar")

    async def is_open() -> bool:
        state = await page.evaluate(
            """() => {
              const r = document.querySelector('#sidebar').getBoundingClientRect();
              return {left: r.left, right: r.right, width: innerWidth,
                      shown: getComputedStyle(document.querySelector('#sidebar')).visibility};
            }"""
        )
        assert state["left"] >= -0.5 or state["right"] <= 0.5, state  # still sliding
        return bool(state["shown"] == "visible" and state["left"] >= -0.5)

    async def settled(open_: bool) -> None:
        place = "r.left >= 0" if open_ else "r.right <= 0 && s.visibility === 'hidden'"
        await page.wait_for_function(
            "() => { const e = document.querySelector('#sidebar'); const r = "
            "e.getBoundingClientRect(); const s = getComputedStyle(e); return " + place + "; }",
            timeout=WAIT,
        )

    async def focused() -> str:
        return str(await page.evaluate("() => document.activeElement.id || ''"))

    async def inert_behind() -> bool:
        return bool(
            await page.evaluate(
                "() => ['.top', '.chat', '.skip-link'].every(s => document.querySelector(s).inert)"
            )
        )

    # Keyboard: focus the Menu button and press Enter.
    assert await toggle.get_attribute("aria-expanded") == "false"
    assert await toggle.get_attribute("aria-controls") == "sidebar"
    assert not await is_open() and not await drawer.is_visible()
    await toggle.focus()
    await page.keyboard.press("Enter")
    await settled(True)
    assert await is_open() and await toggle.get_attribute("aria-expanded") == "true"
    assert await focused() == "menu-close"  # focus moves into the drawer
    box = await drawer.bounding_box()
    assert box is not None and box["x"] == 0 and box["x"] + box["width"] <= PHONE[0]
    assert box["height"] == PHONE[1]
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / "playground-390-menu.png"))
    # Screen readers meet a named modal dialog, and the page behind it is inert.
    dialog = page.get_by_role("dialog", name="Menu")
    assert await dialog.is_visible() and await dialog.get_attribute("aria-modal") == "true"
    assert await inert_behind()
    for _ in range(4):  # Tab stays in the drawer (the page behind can't take focus)
        await page.keyboard.press("Tab")
        assert await page.evaluate(
            "() => document.querySelector('#sidebar').contains(document.activeElement)"
        )
    # What's in the drawer can be used: the scheduler's buttons are on screen.
    run = await page.locator("[data-run='digest']").bounding_box()
    assert run is not None and run["x"] + run["width"] <= PHONE[0]
    assert run["y"] + run["height"] <= PHONE[1]
    await page.keyboard.press("Escape")
    await settled(False)
    assert not await is_open() and await toggle.get_attribute("aria-expanded") == "false"
    assert await focused() == "menu-toggle"  # focus returns to the button that opened it
    assert not await inert_behind() and await page.get_by_role("dialog").count() == 0

    # Pointer: the Menu button opens it, the Close button closes it.
    await toggle.click()
    await settled(True)
    await page.locator("#menu-close").click()
    await settled(False)
    assert await toggle.get_attribute("aria-expanded") == "false"

    # A tap on the dimmed page beside the drawer closes it.
    await toggle.click()
    await settled(True)
    await page.mouse.click(PHONE[0] - 10, PHONE[1] // 2)
    await settled(False)

    # Choosing a conversation closes it and shows that conversation.
    await toggle.click()
    await settled(True)
    await page.locator("[data-where='dm']").click()
    await settled(False)
    assert "direct messages" in await page.inner_text("#chat-title")
    assert await focused() == "menu-toggle"

    # Turned into a wide screen while open: the drawer becomes the sidebar column again.
    await toggle.click()
    await settled(True)
    await page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    await page.wait_for_function("() => !document.body.classList.contains('drawer-open')")
    assert not await inert_behind() and not await toggle.is_visible()
    assert await drawer.is_visible() and await page.locator("#say").is_visible()
    assert errors == []
    await context.close()


async def test_a_keyboard_user_can_skip_to_the_message_box(browser: Any, site: Site) -> None:
    context, page, errors = await open_page(browser, DESKTOP)
    await open_playground(page, site)
    await page.keyboard.press("Tab")
    link = page.locator(".skip-link")
    assert await page.evaluate("() => document.activeElement.className") == "skip-link"
    box = await link.bounding_box()
    assert box is not None and box["y"] >= 0  # shown while it has focus
    await page.keyboard.press("Enter")
    assert await page.evaluate("() => document.activeElement.id") == "say"
    assert errors == []
    await context.close()


@pytest.mark.parametrize("size,keyboard", [(PHONE_S, 300), (PHONE, 340)], ids=["360", "390"])
async def test_the_composer_stays_above_the_on_screen_keyboard(
    browser: Any, site: Site, size: tuple[int, int], keyboard: int
) -> None:
    """With `interactive-widget=resizes-content`, Chrome on Android gives the page only the
    height above the keyboard; here the viewport is shrunk by the keyboard's height."""
    width, height = size
    context, page, errors = await open_page(browser, size)
    await open_playground(page, site)
    await page.click("[data-persona='W_ANA']")
    await page.focus("#say")
    await page.keyboard.type("help")
    await page.set_viewport_size({"width": width, "height": height - keyboard})
    await page.wait_for_timeout(100)  # layout after the resize
    shell = await page.evaluate(SHELL)
    assert_no_sideways_scroll(shell, width)
    assert_composer_usable(shell)
    assert shell["scrollHeight"] <= height - keyboard, shell
    assert shell["messages"]["height"] >= 150, shell  # a few messages still show
    assert await page.evaluate("() => document.activeElement.id") == "say"
    assert await page.input_value("#say") == "help"

    await page.keyboard.press("Enter")  # sent; the answer shows above the composer
    answer = page.locator("#messages > article:has-text('PLN Bot')").last
    await page.wait_for_selector("#messages article:has-text('goal add')", timeout=WAIT)
    await page.wait_for_timeout(200)
    shell = await page.evaluate(SHELL)
    box = await answer.bounding_box()
    assert box is not None
    assert shell["messages"]["y"] - 1 <= box["y"] + box["height"] <= shell["messages"]["bottom"] + 1
    assert_composer_usable(shell)
    assert errors == []
    await context.close()


CHART_TEXT = """() => Array.from(document.querySelectorAll("svg.chart text"))
  .filter((t) => t.getClientRects().length)
  .map((t) => {
    const m = t.getScreenCTM();
    const r = t.getBoundingClientRect();
    return {chart: t.closest("svg").id, text: t.textContent,
            px: parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b),
            box: [r.left, r.top, r.right, r.bottom]};
  })"""


async def assert_chart_labels_readable(page: Any, width: int) -> set[str]:
    """Every chart label is 12 px or more as rendered, inside its chart, and clear of the
    others; legends too; charts fit their box (and fill a phone's). The charts' ids."""
    texts = await page.evaluate(CHART_TEXT)
    small = [(t["chart"], t["text"], round(t["px"], 1)) for t in texts if t["px"] < MIN_LABEL_PX]
    assert small == [], small
    charts = {t["chart"] for t in texts}
    for chart in charts:
        frame = await page.locator(f"svg#{chart}").bounding_box()
        assert frame is not None
        boxes = [t for t in texts if t["chart"] == chart]
        for i, a in enumerate(boxes):
            left, top, right, bottom = a["box"]
            assert left >= frame["x"] - 0.5 and right <= frame["x"] + frame["width"] + 0.5, a
            assert top >= frame["y"] - 0.5 and bottom <= frame["y"] + frame["height"] + 0.5, a
            for b in boxes[i + 1 :]:  # no label sits on another
                (al, at, ar, ab), (bl, bt, br, bb) = a["box"], b["box"]
                overlap = min(ar, br) - max(al, bl), min(ab, bb) - max(at, bt)
                assert overlap[0] <= 0.5 or overlap[1] <= 0.5, (chart, a, b)
    legend = await page.locator(".chart-legend li").evaluate_all(
        "items => items.map(i => parseFloat(getComputedStyle(i).fontSize))"
    )
    assert legend and min(legend) >= MIN_LABEL_PX
    for chart in await page.locator("svg.chart").all():
        box = await chart.bounding_box()
        figure = await chart.locator("xpath=..").bounding_box()
        assert box is not None and figure is not None
        assert box["x"] + box["width"] <= figure["x"] + figure["width"] + 0.5
        if width < 500:
            assert box["width"] >= figure["width"] - 0.5
    return charts


def awkward_charts() -> str:
    """Every chart with data that crowds it: check-ins an hour apart, a 10 at the top, a
    day of several check-ins, three-digit counts, held-back weeks, a busy band."""
    start = datetime(2026, 10, 5, 9, tzinfo=UTC)
    spread = [
        RatingPoint(checkin_id=i, at=start + timedelta(hours=hours), rating=rating)
        for i, (hours, rating) in enumerate(
            [(0, 5), (1, 6), (2, 5), (26, 0), (50, 10), (51, 10), (400, 9), (401, 8), (800, 10)]
        )
    ]
    one_day = [
        RatingPoint(checkin_id=20 + i, at=start + timedelta(hours=i), rating=3 + i)
        for i in range(4)
    ]
    weeks = [
        WeekStats(
            week=f"2026-W{41 + i}",
            shares=120 - i * 7,
            endorsements=3 * i,
            checkins_sent=130 + i,
            reflections=count_of(range(100 + i), min_group=5),
            checkins_answered=(
                count_of(range(99 + i), min_group=5) if i % 3 else count_of([1, 2], min_group=5)
            ),
        )
        for i in range(8)
    ]
    small_weeks = [
        WeekStats(
            week=f"2026-W{41 + i}",
            checkins_sent=12 - i % 2,
            reflections=count_of([], min_group=5),
            checkins_answered=count_of(range(12 - i % 2), min_group=5),
        )
        for i in range(8)
    ]
    figures = [
        rating_chart("goal-chart-0", "Spread out", spread),
        rating_chart("goal-chart-1", "One day", one_day),
        rating_chart("goal-chart-2", "None yet", []),
        participation_chart("participation-chart", weeks),
        checkins_chart("checkins-chart", weeks),
        checkins_chart("checkins-small-chart", small_weeks),
        bands_chart("bands-chart", summarise([0, 1, 2, 3, 3, 5, 6, 9] * 15), week="2026-W48"),
    ]
    return "".join(f'<section><figure class="chart-box">{f}</figure></section>' for f in figures)


@pytest.mark.parametrize("size", [PHONE_S, TABLET, DESKTOP], ids=size_id)
async def test_every_chart_keeps_its_labels_readable_with_crowded_data(
    browser: Any, site: Site, size: tuple[int, int]
) -> None:
    context, page, errors = await open_page(browser, size)
    # A page of this origin first: the static files may only be used by the site's own pages.
    await page.goto(site.refused)
    await page.set_content(
        f'<!doctype html><html lang="en"><head><meta name="viewport" content="width=device-width">'
        f'<link rel="stylesheet" href="{site.web.url}/web/static/web.css"></head>'
        f'<body class="dashboard"><main class="page">{awkward_charts()}</main></body></html>',
        wait_until="load",
    )
    charts = await assert_chart_labels_readable(page, size[0])
    assert len(charts) == 7
    if size == PHONE_S:
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / "crowded-charts-360.png"), full_page=True)
    assert [e for e in errors if "status of 403" not in e] == []
    await context.close()


OUTSIDE = """() => {
  // Everything that reaches past the right edge, other than what scrolls inside its own box.
  const width = document.documentElement.clientWidth;
  return Array.from(document.body.querySelectorAll("*"))
    .filter((e) => !e.closest(".table-scroll") && !e.closest("svg title, svg desc"))
    .filter((e) => e.getBoundingClientRect().right > width + 0.5)
    .map((e) => `${e.tagName}.${e.getAttribute("class") || ""}`);
}"""


@pytest.mark.parametrize("size", SIZES, ids=size_id)
@pytest.mark.parametrize("which", ["member", "community", "refused", "privacy", "terms"])
async def test_dashboards_reflow_and_their_chart_labels_stay_readable(
    browser: Any, site: Site, size: tuple[int, int], which: str
) -> None:
    width, _ = size
    context, page, errors = await open_page(browser, size)
    response = await page.goto(page_url(site, which))
    assert response is not None and response.status == (403 if which == "refused" else 200)
    await page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    shell = await page.evaluate(
        "() => ({innerWidth, clientWidth: document.documentElement.clientWidth,"
        " scrollWidth: document.documentElement.scrollWidth})"
    )
    assert_no_sideways_scroll(shell, width)
    assert await page.evaluate(OUTSIDE) == []
    # Tables wider than the screen scroll in their own box, which a keyboard can reach.
    for table in await page.locator("table").all():
        wrapper = table.locator("xpath=..")
        assert await wrapper.get_attribute("class") == "table-scroll"
        assert await wrapper.get_attribute("tabindex") == "0"
        assert await wrapper.get_attribute("aria-label")
    if which not in ("member", "community"):  # no charts; the refusal logs its own 403
        assert [e for e in errors if "status of 403" not in e] == []
        await context.close()
        return

    charts = await assert_chart_labels_readable(page, width)
    assert charts == (
        {"participation-chart", "checkins-chart"}
        if which == "community"
        else {f"goal-chart-{i}" for i in range(len(charts))}
    )

    if which == "community" and width in SHOT_WIDTHS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"community-{width}.png"))
        await page.screenshot(path=str(SHOTS / f"community-{width}-full.png"), full_page=True)
    assert errors == []
    await context.close()


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's default rules (WCAG 2.x A/AA and best practices) on the page as it is."""
    await page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await page.evaluate(
        """async () => {
          const r = await axe.run(document);
          return {passed: r.passes.length, violations: r.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(" "))}))};
        }"""
    )
    assert result["passed"] >= 10, result  # it really looked (the simplest page passes 15)
    violations: list[dict[str, Any]] = result["violations"]
    return violations


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=size_id)
@pytest.mark.parametrize(
    "which",
    ["playground", "playground-menu", "playground-dm", "member", "community", "refused", "privacy"],
)
async def test_axe_finds_nothing_serious_or_critical(
    browser: Any, site: Site, size: tuple[int, int], which: str
) -> None:
    if not AXE.is_file():
        pytest.skip(NO_AXE)
    if which in ("playground-menu", "playground-dm") and size == DESKTOP:
        pytest.skip("the same page as on a phone, and no drawer on a desktop")
    # The pages forbid injected script (their CSP), so this context bypasses it for axe alone.
    context, page, _ = await open_page(browser, size, bypass_csp=True)
    if which.startswith("playground"):
        await open_playground(page, site)
        if which == "playground-menu":
            await page.click("#menu-toggle")
            await page.wait_for_function("() => document.body.classList.contains('drawer-open')")
        if which == "playground-dm":  # Ana's DMs, with a form open (the profile)
            await page.click("[data-persona='W_ANA']")
            await page.click("#menu-toggle")
            await page.click("[data-where='dm']")
            await page.fill("#say", "profile")
            await page.press("#say", "Enter")
            await page.wait_for_selector("#messages form.card-form select", timeout=WAIT)
    else:
        await page.goto(page_url(site, which))
        await page.evaluate(
            "() => document.querySelectorAll('details').forEach(d => d.open = true)"
        )
    violations = await axe_violations(page)
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], serious
    assert violations == [], violations  # nothing moderate or minor either, so far
    await context.close()
