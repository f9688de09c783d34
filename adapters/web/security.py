"""Response headers for the web pages: a strict Content-Security-Policy and friends.

No page loads anything from another origin, runs inline script, or uses inline styles; the
dashboards run no script at all. Dashboard links carry their credential in the path, so pages
send no Referer and are never cached.
"""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web

R = TypeVar("R", bound=web.StreamResponse)

PLAYGROUND_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
DASHBOARD_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def secure(response: R, csp: str, *, private: bool = True) -> R:
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    if private:
        response.headers["Cache-Control"] = "no-store"
    return response


def same_origin(request: web.Request) -> bool:
    """A state-changing request must come from our own page: browsers add Origin (and
    Sec-Fetch-Site) to cross-site requests, and a form on another site cannot send JSON."""
    if request.content_type != "application/json":
        return False
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin.split("://", 1)[-1] == request.host
