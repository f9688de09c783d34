"""Dashboard links at the HTTP boundary: signed, expiring, and showing only what the link's
owner may see. (The same rules in a real browser: tests/test_playground_browser.py.)"""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest
from sqlmodel import select

from bot.config import Settings
from bot.services.links import DashboardLinks, LinkRefused
from plnbot.runtime import secret_key
from storage.db import Database
from storage.models import CheckIn, Community, Member
from tests.web_rig import (
    ANA,
    ANA_PRIVATE,
    ANA_PRIVATE_REFLECTION,
    BEN,
    BEN_GOAL,
    BEN_PRIVATE,
    CASEY,
    SECRET,
    WebRig,
    community_with_two_teachers,
    web_fixture,  # noqa: F401  (the `web` fixture)
)


async def fetch(web: WebRig, url: str) -> tuple[int, str, aiohttp.typedefs.LooseHeaders]:
    async with web.http.get(url) as response:
        return response.status, await response.text(errors="replace"), response.headers


def community_url(web: WebRig, coach: str = CASEY) -> str:
    with web.db.session() as session:
        community = session.exec(select(Community)).one()
        member = session.exec(select(Member).where(Member.user_id == coach)).one()
    links = web.runtime.bot.links
    assert links is not None
    return links.community_url(community, member)


async def test_a_teachers_link_shows_her_ratings_and_nothing_of_another_teacher(
    web: WebRig,
) -> None:
    await community_with_two_teachers(web)
    status, page, headers = await fetch(web, web.dashboard_url(ANA))
    assert status == 200
    assert "Ana's professional learning" in page
    assert "Use exit tickets every day" in page and "Exit tickets that worked" in page
    assert "Borrowing the starters" in page  # an endorsement note she received
    with web.db.session() as session:
        ana = session.exec(select(Member).where(Member.user_id == ANA)).one()
        ratings = [
            c.rating
            for c in session.exec(
                select(CheckIn)
                .where(CheckIn.member_id == ana.id, CheckIn.status == "answered")
                .order_by(CheckIn.answered_at)  # type: ignore[arg-type]
            )
        ]
    assert ratings == [4, 7, 9]
    for rating in ratings:
        assert f'data-rating="{rating}"' in page
    # Nothing of Ben's, and no private text at all (not even her own) on a page a link opens.
    for other in (
        BEN_GOAL,
        BEN_PRIVATE,
        "Lab notebook routine",
        ANA_PRIVATE,
        ANA_PRIVATE_REFLECTION,
    ):
        assert other not in page
    assert "unsafe-inline" not in headers["Content-Security-Policy"]

    status, page, _ = await fetch(web, web.dashboard_url(BEN))
    assert status == 200 and BEN_GOAL in page
    assert "Use exit tickets every day" not in page and ANA_PRIVATE not in page


async def test_tampered_or_foreign_links_get_403_and_show_nothing(web: WebRig) -> None:
    await community_with_two_teachers(web)
    good = web.dashboard_url(ANA)
    base, token = good.rsplit("/", 1)
    version, kind, subject, viewer, expires, signature = token.split(".")
    ben = str(web.member(BEN).id)
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    tampered = [
        f"{version}.{kind}.{ben}.{ben}.{expires}.{signature}",  # someone else's number
        f"{version}.{kind}.{subject}.{viewer}.{int(expires) + 86400 * 365}.{signature}",  # longer
        f"{version}.c.1.{viewer}.{expires}.{signature}",  # a member link turned community link
        f"{version}.{kind}.{subject}.{viewer}.{expires}.{flipped}",
        f"{version}.{kind}.{subject}.{viewer}.{expires}.",
        f"v2.{kind}.{subject}.{viewer}.{expires}.{signature}",
        "not-a-token",
        token + "x",
    ]
    for bad in tampered:
        for suffix in ("", "/portfolio.pdf", "/portfolio.csv"):
            status, page, headers = await fetch(web, f"{base}/{bad}{suffix}")
            assert status == 403, (bad, suffix)
            assert "isn't valid" in page and "Exit tickets" not in page
            assert headers["Cache-Control"] == "no-store"

    # A link signed with another key (another installation) is refused too.
    other = DashboardLinks(key="another-key", base_url=web.url, clock=web.clock)
    status, _, _ = await fetch(web, other.member_url(web.member(ANA)))
    assert status == 403


async def test_an_expired_link_gets_403_and_says_how_to_get_a_new_one(web: WebRig) -> None:
    await web.say(ANA, "dm", "goal add Use exit tickets every day")
    url = web.dashboard_url(ANA)
    web.clock.advance(timedelta(days=7) - timedelta(seconds=1))
    assert (await fetch(web, url))[0] == 200
    web.clock.advance(timedelta(seconds=2))
    status, page, _ = await fetch(web, url)
    assert status == 403 and "expired" in page and "<code>me</code>" in page
    assert "Use exit tickets" not in page


async def test_a_link_dies_with_its_member_even_if_the_number_is_reused(web: WebRig) -> None:
    await web.say(ANA, "dm", "goal add Use exit tickets every day")
    ana = web.member(ANA)
    url = web.dashboard_url(ANA)
    await web.say(ANA, "dm", "forget confirm")
    assert (await fetch(web, url))[0] == 403
    with web.db.session() as session:  # someone new gets her old number
        session.add(
            Member(
                id=ana.id,
                workspace_id=ana.workspace_id,
                user_id="W_SOMEONE_NEW",
                display_name="Zoe",
                created_at=web.clock.now() + timedelta(seconds=5),
            )
        )
    status, page, _ = await fetch(web, url)
    assert status == 403 and "Zoe" not in page


async def test_a_coachs_link_shows_community_aggregates_only(web: WebRig) -> None:
    await community_with_two_teachers(web)
    url = community_url(web)
    status, page, headers = await fetch(web, url)
    assert status == 200
    assert "Math PLN" in page and "Participation by week" in page
    assert "Check-ins: answered vs sent" in page and "Standards per element" in page
    assert "Exit tickets that worked" in page  # shared work, with its endorsement count
    assert 'role="img"' in page and "<title" in page and "<desc" in page
    # Never anyone's check-in notes, reflections or goals, private or not.
    for private in (
        ANA_PRIVATE,
        ANA_PRIVATE_REFLECTION,
        BEN_PRIVATE,
        BEN_GOAL,
        "Exit questions in science",
    ):
        assert private not in page
    assert "Use exit tickets every day" not in page
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    # A coach's link opens no member's portfolio.
    for suffix in ("/portfolio.pdf", "/portfolio.csv"):
        status, page, _ = await fetch(web, url + suffix)
        assert status == 403 and ANA_PRIVATE not in page


async def test_pages_send_a_strict_content_security_policy(web: WebRig) -> None:
    await web.say(ANA, "dm", "goal add Use exit tickets every day")
    for path in ("/playground", "/dashboard/garbage", web.dashboard_url(ANA).replace(web.url, "")):
        async with web.http.get(web.url + path) as response:
            policy = response.headers["Content-Security-Policy"]
            assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
            assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
            assert "http" not in policy  # nothing from another origin, no CDN
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Referrer-Policy"] == "no-referrer"
            page = await response.text()
            assert (
                "<script>" not in page
                and " style=" not in page
                and "https://" not in page.split("</head>")[0]
            )


def test_links_verify_round_trip_and_the_key_is_generated_once(db: Database, clock) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(DATABASE_URL=db.url)  # type: ignore[call-arg]
    first = secret_key(db, settings)
    assert first and secret_key(db, settings) == first  # generated once, kept in the database
    assert secret_key(db, Settings(DATABASE_URL=db.url, PLNBOT_SECRET_KEY=SECRET)) == SECRET  # type: ignore[call-arg]
    links = DashboardLinks(key=first, base_url="https://pln.example.org/", clock=clock)
    with db.session() as session:
        member = Member(
            workspace_id=_workspace(session),
            user_id="U1",
            display_name="Ana",
            created_at=clock.now(),
        )
        session.add(member)
        session.flush()
        url = links.member_url(member)
        assert url.startswith("https://pln.example.org/dashboard/v1.m.")
        grant = links.verify(session, url.rsplit("/", 1)[1])
        assert grant.kind == "m" and grant.member.id == member.id
        assert grant.expires == (clock.now() + timedelta(days=7)).replace(microsecond=0)
        again = DashboardLinks(key=secret_key(db, settings), base_url="x", clock=clock)
        assert again.verify(session, url.rsplit("/", 1)[1]).member.user_id == "U1"
        try:
            DashboardLinks(key="other", base_url="x", clock=clock).verify(
                session, url.rsplit("/", 1)[1]
            )
        except LinkRefused as refused:
            assert not refused.expired
        else:
            raise AssertionError("a link signed with another key verified")


def _workspace(session) -> int:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from storage.queries import get_or_create_workspace

    workspace = get_or_create_workspace(
        session, platform="test", external_id="W1", now=datetime.now(UTC)
    )
    assert workspace.id is not None
    return workspace.id


def test_an_operator_can_make_links_last_longer_or_shorter(db: Database) -> None:
    from plnbot.runtime import build_runtime

    settings = Settings(DATABASE_URL=db.url, PLNBOT_DASHBOARD_LINK_DAYS=2)  # type: ignore[call-arg]
    runtime = build_runtime(settings, playground=False)
    assert runtime.bot.links is not None
    assert runtime.bot.links.lifetime == timedelta(days=2)
    too_long = {"DATABASE_URL": db.url, "PLNBOT_DASHBOARD_LINK_DAYS": 365}
    with pytest.raises(ValueError, match="PLNBOT_DASHBOARD_LINK_DAYS"):
        Settings(**too_long)  # type: ignore[arg-type]


async def test_a_teachers_dashboard_charts_her_indicator_beside_her_ratings(web: WebRig) -> None:
    from datetime import UTC, datetime

    from storage.models import Goal, Indicator, IndicatorValue

    await community_with_two_teachers(web)
    with web.db.session() as session:
        ana = session.exec(select(Member).where(Member.user_id == ANA)).one()
        goal = session.exec(select(Goal).where(Goal.member_id == ana.id)).first()
        assert goal is not None
        indicator = Indicator(
            goal_id=goal.id or 0, number=1, kind="engagement", text="Hands up per lesson"
        )
        session.add(indicator)
        session.flush()
        for day, value in ((1, 6), (8, 11)):
            session.add(
                IndicatorValue(
                    indicator_id=indicator.id or 0,
                    value=value,
                    logged_at=datetime(2026, 12, day, 15, tzinfo=UTC),
                )
            )
        session.commit()
    status, page, _ = await fetch(web, web.dashboard_url(ANA))
    assert status == 200
    assert "Hands up per lesson" in page and "(student engagement)" in page
    assert 'data-value="6"' in page and 'data-value="11"' in page
    assert "Values in time order: 01 Dec 2026: 6; 08 Dec 2026: 11" in page  # for screen readers
    status, page, _ = await fetch(web, web.dashboard_url(BEN))
    assert "Hands up per lesson" not in page
