"""Wire the web side into `plnbot serve`: dashboards and portfolio downloads always (the bot
DMs their links from any platform), `/verify/<code>` always, and the playground when asked
for or when no other platform is configured."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from adapters.web import policies
from adapters.web.dashboards import Dashboards
from adapters.web.pages import add_static_routes
from adapters.web.platform import PLATFORM, WebPlatform
from adapters.web.playground import Playground
from adapters.web.verify import Verifier
from bot.services.links import DashboardLinks

if TYPE_CHECKING:
    from plnbot.runtime import Runtime

log = logging.getLogger(__name__)


def attach_web(runtime: Runtime) -> None:
    from plnbot.runtime import secret_key

    key = secret_key(runtime.db, runtime.settings)
    links = DashboardLinks(
        key=key,
        base_url=lambda: runtime.public_url,
        clock=runtime.clock,
        lifetime=timedelta(days=runtime.settings.dashboard_link_days),
    )
    runtime.bot.links = links
    dashboards = Dashboards(db=runtime.db, bot=runtime.bot, links=links)
    verifier = Verifier(db=runtime.db, key=key)  # /verify/<code>: public, always on
    handlers = [add_static_routes, dashboards.add_routes, policies.add_routes, verifier.add_routes]

    wanted = runtime.playground
    if wanted is None:
        wanted = not runtime.platforms  # on when Slack and Teams are not configured
    runtime.playground = wanted
    if wanted:
        platform = WebPlatform(runtime.clock)
        runtime.platforms[PLATFORM] = platform
        playground = Playground(runtime, platform)
        handlers.append(playground.add_routes)
        runtime.attach(web_playground=playground)

    def add_routes(app: web.Application) -> None:
        for add in handlers:
            add(app)

    runtime.web_handlers.append(add_routes)
    if runtime.settings.public_url is None and runtime.host in ("0.0.0.0", "::"):
        log.warning(
            "dashboard links point at %s; set PLNBOT_PUBLIC_URL to the address people reach",
            runtime.public_url,
        )
