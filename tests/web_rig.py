"""The web side at the HTTP boundary: the real `plnbot serve` app on 127.0.0.1 with the
playground on, driven through its JSON API (as the page does) or by headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from sqlmodel import select

from bot.config import Settings
from plnbot.runtime import Runtime, build_runtime, make_web_app
from storage.db import Database
from storage.models import Member
from tests.doubles import FrozenClock

SECRET = "test-dashboard-secret"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
NO_BROWSER = (
    "no Chromium here: browser tests need Debian's chromium package "
    "(`apt-get install -y chromium`; .ci/run installs it) and Playwright for Python"
)


@dataclass
class WebRig:
    url: str
    http: aiohttp.ClientSession
    runtime: Runtime
    db: Database
    clock: FrozenClock

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(f"{self.url}{path}", json=body) as response:
            data = await response.json()
            assert response.status == 200, data
            return data

    async def say(self, who: str, where: str, text: str, **extra: Any) -> None:
        await self.post("/playground/api/say", {"as": who, "where": where, "text": text, **extra})

    async def press(
        self,
        who: str,
        where: str,
        message: str,
        action: str,
        value: str = "",
        values: dict[str, str] | None = None,
    ) -> None:
        await self.post(
            "/playground/api/act",
            {
                "as": who,
                "where": where,
                "message": message,
                "action": action,
                "value": value,
                "values": values or {},
            },
        )

    async def run(self, job: str) -> str:
        return str((await self.post("/playground/api/run", {"job": job}))["message"])

    async def view(self, who: str, where: str) -> list[dict[str, Any]]:
        async with self.http.get(
            f"{self.url}/playground/api/view", params={"as": who, "where": where}
        ) as response:
            assert response.status == 200
            return list((await response.json())["messages"])

    async def last(self, who: str, where: str, containing: str) -> dict[str, Any]:
        """The newest message `who` sees in `where` whose HTML contains `containing`."""
        found = [m for m in await self.view(who, where) if containing in m["html"]]
        assert found, f"no message with {containing!r} for {who} in {where}"
        return found[-1]

    async def button_value(
        self, who: str, where: str, containing: str, action: str
    ) -> tuple[str, str]:
        """(message id, value) of a button on the newest message containing `containing`."""
        message = await self.last(who, where, containing)
        match = re.search(rf'data-action="{action}" data-value="([^"]*)"', message["html"])
        assert match, f"no {action} button on {message['html'][:300]}"
        return message["id"], match.group(1)

    def member(self, user_id: str) -> Member:
        with self.db.session() as session:
            member = session.exec(select(Member).where(Member.user_id == user_id)).one()
            return member

    def dashboard_url(self, user_id: str) -> str:
        links = self.runtime.bot.links
        assert links is not None
        return links.member_url(self.member(user_id))


@asynccontextmanager
async def running_web(db: Database, clock: FrozenClock) -> AsyncIterator[WebRig]:
    """`plnbot serve` (playground on, no scheduler) on 127.0.0.1 over `db`, until the block ends."""
    settings = Settings(  # type: ignore[call-arg]
        DATABASE_URL=db.url, PLNBOT_SECRET_KEY=SECRET
    )
    runtime = build_runtime(settings, clock=clock)
    assert runtime.playground is True and "web" in runtime.platforms
    server = TestServer(make_web_app(runtime, scheduler=False), host="127.0.0.1")
    await server.start_server()
    runtime.port = server.port or 0  # dashboard links point at this test server
    async with aiohttp.ClientSession() as http:
        yield WebRig(
            url=str(server.make_url("")).rstrip("/"),
            http=http,
            runtime=runtime,
            db=db,
            clock=clock,
        )
    await server.close()
    runtime.db.dispose()


@pytest.fixture(name="web")
async def web_fixture(db: Database, clock: FrozenClock) -> AsyncIterator[WebRig]:
    async with running_web(db, clock) as rig:
        yield rig


@pytest_asyncio.fixture(name="web", loop_scope="module")
async def module_loop_web_fixture(db: Database, clock: FrozenClock) -> AsyncIterator[WebRig]:
    """The same rig, fresh for each test, in the module's event loop: for the browser modules,
    whose one Chromium lives in that loop (their tests run there: `loop_scope="module"`)."""
    async with running_web(db, clock) as rig:
        yield rig


def chromium_path() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.path.exists("/usr/bin/chromium"):
        found = "/usr/bin/chromium"
    return found


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Headless Debian Chromium through Playwright; skips (with the reason) without one."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip(NO_BROWSER)
    executable = chromium_path()
    if executable is None:
        pytest.skip(NO_BROWSER)
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield instance
        finally:
            await instance.close()


@pytest_asyncio.fixture(name="browser", scope="module", loop_scope="module")
async def browser_fixture() -> AsyncIterator[Any]:
    """One Chromium per test module (each test opens its own context or page in it)."""
    async with chromium() as instance:
        yield instance


CASEY, ANA, BEN, CARA = "W_CASEY", "W_ANA", "W_BEN", "W_CARA"
ANA_PRIVATE = "Ana-private-worry-about-pacing"
ANA_PRIVATE_REFLECTION = "Ana-private-reflection-not-for-anyone"
BEN_GOAL = "Ben-only-goal-lab-notebooks"
BEN_PRIVATE = "Ben-private-note-on-lab-safety"


async def checkin(web: WebRig, who: str, answer: str, *, days_later: int = 0) -> None:
    """`checkin` in the DM and answer it (a rating and a sentence)."""
    from datetime import timedelta

    web.clock.advance(timedelta(days=days_later))
    await web.say(who, "dm", "checkin")
    await web.say(who, "dm", answer)


async def community_with_two_teachers(web: WebRig) -> dict[str, Any]:
    """Casey sets up; Ana and Ben share and check in over three weeks (Ana shares one
    check-in and keeps the others private); Cara and Ben endorse Ana's share; Ana writes a
    private reflection; the week's digest goes out."""
    await web.say(CASEY, "channel", "setup Math PLN")
    await web.say(ANA, "channel", "share https://example.org/exit-tickets Exit tickets that worked")
    await web.say(BEN, "channel", "share https://example.org/lab Lab notebook routine")
    message, artifact = await web.button_value(
        CARA, "channel", "Exit tickets that worked", "endorse"
    )
    await web.press(
        CARA, "channel", message, "endorse_note", artifact, {"note": "Borrowing the starters"}
    )
    await web.press(BEN, "channel", message, "endorse", artifact)

    await web.say(ANA, "dm", "goal add Use exit tickets every day")
    await web.say(BEN, "dm", f"goal add {BEN_GOAL}")
    await checkin(web, ANA, f"4 - {ANA_PRIVATE}")
    await checkin(web, BEN, f"6 - {BEN_PRIVATE}")
    await checkin(web, ANA, "7 - students wrote their own exit questions", days_later=7)
    shared, checkin_id = await web.button_value(ANA, "dm", "7/10", "checkin_share")
    await web.press(ANA, "dm", shared, "checkin_share", checkin_id)
    await checkin(web, ANA, "9 - colleagues borrowed my routine", days_later=7)

    await web.say(CASEY, "channel", "prompt assessment")
    prompt, prompt_id = await web.button_value(
        ANA, "channel", "Reflection prompt", "reflect_private"
    )
    await web.press(ANA, "channel", prompt, "reflect_private", prompt_id)
    await web.say(ANA, "dm", ANA_PRIVATE_REFLECTION)
    await web.say(BEN, "channel", "Exit questions in science too", thread=prompt)
    return {"artifact": artifact}
