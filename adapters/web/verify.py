"""`GET /verify/<code>`: anyone holding a portfolio's verification code sees what was
acknowledged (member, goal as worded at close, dates, hours, coach) and that it is genuine.

Public, no login: the code is the credential, an HMAC over everything the page states
(bot/services/verification.py), so a code typed wrong, made up, or for a record changed after
it was closed gets 404 and one plain sentence. Nothing private is shown: no feedback, no
answers, no ratings.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from adapters.web.pages import render_page
from adapters.web.security import DASHBOARD_CSP, secure
from bot.services.verification import verified
from storage.db import Database

log = logging.getLogger(__name__)
MAX_CODE = 80  # the stored column's width: anything longer is not a code


@dataclass(frozen=True)
class Verifier:
    db: Database
    key: str

    def facts(self, code: str) -> dict[str, Any] | None:
        """What a genuine code stands for, or None."""
        if len(code) > MAX_CODE:
            return None
        with self.db.session() as session:
            found = verified(session, self.key, code)
            if found is None:
                return None
            cycle, member = found
            return {
                "member": member.display_name or member.user_id,
                "goal": cycle.goal_text,
                "coach": cycle.coach_name,
                "hours": f"{cycle.hours or 0:g}",
                "offered_at": cycle.offered_at,
                "answered_at": cycle.answered_at,
                "closed_at": cycle.closed_at,
                "code": cycle.code,
            }

    async def page(self, request: web.Request) -> web.StreamResponse:
        code = request.match_info["code"]
        facts = await asyncio.to_thread(self.facts, code)
        if facts is None:
            log.info("a verification code did not verify")
            html = render_page("verify.html", genuine=False, cycle=None)
            return secure(
                web.Response(status=404, text=html, content_type="text/html"), DASHBOARD_CSP
            )
        html = render_page("verify.html", genuine=True, cycle=facts)
        return secure(web.Response(text=html, content_type="text/html"), DASHBOARD_CSP)

    def add_routes(self, app: web.Application) -> None:
        # Anything under /verify/ (a slash in a pasted code too) gets the plain page.
        app.router.add_get("/verify/{code:.+}", self.page)
