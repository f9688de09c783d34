"""Dashboards behind signed, expiring links (see bot/services/links.py for the link format).

    GET /dashboard/<token>                 a member's own progress, or a coach's community view
    GET /dashboard/<token>/portfolio.pdf   the member's portfolio (member links only)
    GET /dashboard/<token>/portfolio.csv

A tampered, foreign or expired link gets 403 and the page says what to do. A member link
shows that member's data only; a community link shows aggregates, shared work and activity
dates, never the text of a check-in or reflection, and no figure about fewer than
PLNBOT_MIN_GROUP people (bot/scoring/small_groups.py: they read "fewer than N people").
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from adapters.web.charts import (
    bands_chart,
    checkins_chart,
    indicator_chart,
    participation_chart,
    rating_chart,
)
from adapters.web.pages import render_page
from adapters.web.render import safe_url
from adapters.web.security import DASHBOARD_CSP, secure
from bot.core.dispatch import Bot
from bot.features.portfolio import (
    INDICATOR_KINDS,
    indicator_tracks,
    portfolio_csv,
    portfolio_filename,
    portfolio_pdf,
    portfolio_record,
)
from bot.scoring.progress import community_overview, member_progress
from bot.scoring.small_groups import fewer_than, reason
from bot.services.links import DashboardLinks, Grant, LinkRefused
from storage.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    status: int
    body: bytes
    content_type: str
    filename: str | None = None


class Dashboards:
    def __init__(self, *, db: Database, bot: Bot, links: DashboardLinks) -> None:
        self.db = db
        self.bot = bot
        self.links = links

    def _refused(self, problem: LinkRefused) -> Page:
        html = render_page("refused.html", expired=problem.expired, days=self.links.lifetime.days)
        return Page(403, html.encode(), "text/html")

    def render(self, token: str, what: str) -> Page:
        """The page (or file) a token opens; 403 for anything but a genuine, current link."""
        with self.db.session() as session:
            try:
                grant = self.links.verify(session, token)
            except LinkRefused as problem:
                log.info("dashboard link refused: %s", problem)
                return self._refused(problem)
            if grant.kind == "m":
                if what == "page":
                    return self._member_page(session, grant, token)
                record = portfolio_record(
                    session, self.bot.prompts, grant.member, now=self.bot.clock.now()
                )
                if what == "pdf":
                    return Page(
                        200,
                        portfolio_pdf(record),
                        "application/pdf",
                        portfolio_filename(record, "pdf"),
                    )
                return Page(
                    200, portfolio_csv(record), "text/csv", portfolio_filename(record, "csv")
                )
            if what != "page":  # a coach's link opens aggregates, never a member's portfolio
                return self._refused(LinkRefused("a community link has no portfolio"))
            return self._community_page(session, grant)

    def _member_page(self, session: Any, grant: Grant, token: str) -> Page:
        progress = member_progress(session, grant.member)
        names = {key: e.name for key, e in self.bot.prompts.elements.items()}
        charts = []
        tracks = indicator_tracks(session, [g.goal.id for g in progress.goals if g.goal])
        for index, goal_progress in enumerate(progress.goals):
            goal = goal_progress.goal
            indicators = [
                {
                    "text": track.text,
                    "kind": INDICATOR_KINDS.get(track.kind, track.kind),
                    "readings": track.values,
                    "svg": indicator_chart(
                        f"goal-{index}-indicator-{track.number}",
                        f"{track.text} over time",
                        track.values,
                    ),
                }
                for track in tracks
                if goal is not None and track.goal_id == goal.id
            ]
            charts.append(
                {
                    "indicators": indicators,
                    "goal_id": goal.id if goal else "none",
                    "title": goal_progress.title,
                    "done": bool(goal and goal.status == "done"),
                    "element": names.get(goal.element or "", "") if goal else "",
                    "points": goal_progress.ratings,
                    "svg": rating_chart(
                        f"goal-chart-{index}",
                        f"Self-ratings over time: {goal_progress.title}",
                        goal_progress.ratings,
                    ),
                }
            )
        shares = [
            {
                "title": share.artifact.title,
                "url": safe_url(share.artifact.url or ""),
                "created_at": share.artifact.created_at,
                "community": share.community,
                "element": names.get(share.artifact.element or "", ""),
                "endorsements": share.endorsements,
            }
            for share in progress.shares
        ]
        html = render_page(
            "member.html",
            name=grant.member.display_name,
            expires=grant.expires,
            base=f"/dashboard/{token}",
            progress=progress,
            goal_count=len([g for g in progress.goals if g.goal is not None]),
            charts=charts,
            shares=shares,
        )
        return Page(200, html.encode(), "text/html")

    def _community_page(self, session: Any, grant: Grant) -> Page:
        assert grant.community is not None
        overview = community_overview(
            session,
            self.bot.prompts,
            grant.community,
            now=self.bot.clock.now(),
            min_group=self.bot.settings.min_group,
            viewer_id=grant.member.id,
        )
        ratings = overview.ratings.ratings
        names = {key: e.name for key, e in self.bot.prompts.elements.items()}

        def share(top: Any) -> dict[str, Any]:
            return {
                "title": top.artifact.title,
                "url": safe_url(top.artifact.url or ""),
                "author": top.author,
                "element": names.get(top.artifact.element or "", ""),
                "endorsers": top.endorsers,
            }

        html = render_page(
            "community.html",
            community=grant.community,
            coach=grant.member.display_name or "a coach",
            expires=grant.expires,
            overview=overview,
            top=[share(t) for t in overview.top],
            elements=[
                {"name": name, "best": share(best) if best else None}
                for name, best in overview.by_element
            ],
            participation_svg=participation_chart("participation-chart", overview.weeks),
            checkins_svg=checkins_chart("checkins-chart", overview.weeks),
            # No chart at all for a held-back week: its bars would be the figure.
            bands_svg=(
                bands_chart("bands-chart", ratings.value, week=overview.ratings.week)
                if ratings.value is not None
                else ""
            ),
            fewer_than=fewer_than(overview.min_group),
            held_reason=reason(overview.min_group),
        )
        return Page(200, html.encode(), "text/html")

    async def _serve(self, request: web.Request, what: str) -> web.StreamResponse:
        page = await asyncio.to_thread(self.render, request.match_info["token"], what)
        response = web.Response(status=page.status, body=page.body, content_type=page.content_type)
        if page.content_type == "text/html":
            response.charset = "utf-8"
        if page.filename:
            response.headers["Content-Disposition"] = f'attachment; filename="{page.filename}"'
        return secure(response, DASHBOARD_CSP)

    async def page(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "page")

    async def pdf(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "pdf")

    async def csv(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "csv")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/dashboard/{token}", self.page)
        app.router.add_get("/dashboard/{token}/portfolio.pdf", self.pdf)
        app.router.add_get("/dashboard/{token}/portfolio.csv", self.csv)
