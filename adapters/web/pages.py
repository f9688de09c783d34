"""HTML pages from Jinja templates (autoescaped), and the static files they use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from adapters.web.security import secure
from bot.core.clock import week_of

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _day(moment: Any) -> str:
    return f"{moment:%d %b %Y}" if moment is not None else "—"


_env.filters["day"] = _day
_env.filters["week"] = week_of  # "week of 7 Dec": people read dates, not ISO weeks


def render_page(template: str, **values: Any) -> str:
    return _env.get_template(template).render(**values)


async def static_file(request: web.Request) -> web.StreamResponse:
    """The pages' own CSS and script (no CDN: everything works offline)."""
    name = request.match_info["name"]
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
        raise web.HTTPNotFound()
    response = web.Response(
        body=path.read_bytes(), content_type=STATIC_TYPES[path.suffix], charset="utf-8"
    )
    response.headers["Cache-Control"] = "no-cache"
    return secure(response, "default-src 'none'", private=False)


def add_static_routes(app: web.Application) -> None:
    app.router.add_get("/web/static/{name}", static_file)
