"""The privacy notice and terms of use the Teams app manifest links to (`privacyUrl`,
`termsOfUseUrl`): what PLN Bot stores, who sees it and how a member takes it back, in the
words of DESIGN §7. Plain pages, readable on a phone, no cookies."""

from __future__ import annotations

from aiohttp import web

from adapters.web.pages import render_page
from adapters.web.security import DASHBOARD_CSP, secure


async def privacy(request: web.Request) -> web.Response:
    page = web.Response(text=render_page("privacy.html"), content_type="text/html")
    return secure(page, DASHBOARD_CSP, private=False)


async def terms(request: web.Request) -> web.Response:
    page = web.Response(text=render_page("terms.html"), content_type="text/html")
    return secure(page, DASHBOARD_CSP, private=False)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/privacy", privacy)
    app.router.add_get("/terms", terms)
