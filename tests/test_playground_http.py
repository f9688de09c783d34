"""The playground's JSON API over real HTTP (what the page does), `plnbot serve` printing its
URL, and the playground staying off when a real platform is configured."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer, unused_port
from sqlmodel import select

from bot.config import Settings
from plnbot.runtime import build_runtime, make_web_app
from storage.db import Database
from storage.models import Digest, Endorsement, Member
from tests.doubles import FrozenClock
from tests.web_rig import ANA, BEN, CARA, CASEY, WebRig, web_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


async def test_coach_sets_up_a_teacher_shares_another_endorses_the_digest_appears(
    web: WebRig,
) -> None:
    await web.say(CASEY, "channel", "setup Math PLN")
    welcome = await web.last(ANA, "channel", "is now the PLN community")
    assert "Math PLN" in welcome["html"]
    await web.say(ANA, "channel", "share https://example.org/exit-tickets Exit tickets that worked")
    message, artifact = await web.button_value(
        BEN, "channel", "Exit tickets that worked", "endorse"
    )
    await web.press(BEN, "channel", message, "endorse", artifact)
    card = await web.last(CARA, "channel", "Exit tickets that worked")
    assert "Endorse (1)" in card["html"] and "Ben" in card["html"]
    assert "updated" in card["html"]  # the card was updated in place, not posted again

    answer = await web.run("digest")
    assert "digest (week of 23 Nov) is posted" in answer
    digest = await web.last(CARA, "channel", "the week&#x27;s best work")
    assert "Exit tickets that worked" in digest["html"] and "by Ana" in digest["html"]
    assert "already posted" in await web.run("digest")  # one digest per week, as for real
    with web.db.session() as session:
        assert len(session.exec(select(Endorsement)).all()) == 1
        assert [d.iso_week for d in session.exec(select(Digest))] == ["2026-W48"]


async def test_commands_and_their_answers_stay_private_to_whoever_typed_them(web: WebRig) -> None:
    await web.say(CASEY, "channel", "setup Math PLN")
    await web.say(CASEY, "channel", "report")
    casey_sees = " ".join(m["html"] for m in await web.view(CASEY, "channel"))
    ana_sees = " ".join(m["html"] for m in await web.view(ANA, "channel"))
    assert "Report · Math PLN" in casey_sees and "Only visible to you" in casey_sees
    assert "Report · Math PLN" not in ana_sees and ">report<" not in ana_sees
    assert "is now the PLN community" in ana_sees  # what the bot posts to the channel is public
    await web.say(ANA, "channel", "setup Hijack")
    refused = await web.last(ANA, "channel", "for coaches")
    assert "Only visible to you" in refused["html"]


async def test_checkins_fast_forward_and_are_answered_with_a_button(web: WebRig) -> None:
    await web.say(CASEY, "channel", "setup Math PLN")
    await web.say(ANA, "dm", "goal add Use exit tickets every day")
    assert "Check-ins sent to 4 members" in await web.run("checkins")
    message, value = await web.button_value(ANA, "dm", "Use exit tickets every day", "checkin_rate")
    assert value.endswith(":0")
    await web.press(ANA, "dm", message, "checkin_rate", value.replace(":0", ":6"))
    await web.say(ANA, "dm", "tried them in two classes")
    saved = await web.last(ANA, "dm", "Saved: 6 (Planning)")
    assert "Share with my community" in saved["html"]
    assert not [m for m in await web.view(BEN, "dm") if "Saved: 6" in m["html"]]


async def test_export_portfolio_in_the_playground_downloads_a_pdf(web: WebRig) -> None:
    await web.say(ANA, "dm", "goal add Use exit tickets every day")
    await web.say(ANA, "dm", "export portfolio")
    pdf = await web.last(ANA, "dm", ".pdf")
    href = pdf["html"].split('href="', 1)[1].split('"', 1)[0]
    assert href.startswith("/playground/files/")
    async with web.http.get(web.url + href) as response:
        assert response.status == 200 and response.content_type == "application/pdf"
        assert (await response.read()).startswith(b"%PDF-")
        assert "attachment" in response.headers["Content-Disposition"]


async def test_cross_site_or_non_json_posts_are_refused_and_store_nothing(web: WebRig) -> None:
    body = {"as": ANA, "where": "dm", "text": "goal add Sneaky"}
    for kwargs in (
        {"json": body, "headers": {"Origin": "http://evil.example"}},
        {"json": body, "headers": {"Sec-Fetch-Site": "cross-site"}},
        {"data": {"as": ANA, "where": "dm", "text": "goal add Sneaky"}},
    ):
        async with web.http.post(f"{web.url}/playground/api/say", **kwargs) as response:
            assert response.status == 403
    async with web.http.post(
        f"{web.url}/playground/api/say", json={"as": "W_NOBODY", "where": "dm", "text": "hi"}
    ) as response:
        assert response.status == 400
    with web.db.session() as session:
        assert session.exec(select(Member)).all() == []


async def test_the_playground_stays_off_when_a_platform_is_configured(
    db: Database, clock: FrozenClock
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        DATABASE_URL=db.url, SLACK_SIGNING_SECRET="s", SLACK_BOT_TOKEN="xoxb-test"
    )
    runtime = build_runtime(settings, clock=clock)
    assert runtime.playground is False and "web" not in runtime.platforms
    assert runtime.bot.links is not None  # dashboards still work for Slack members
    server = TestServer(make_web_app(runtime, scheduler=False), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(str(server.make_url("/playground"))) as response:
                assert response.status == 404
            async with http.get(str(server.make_url("/dashboard/v1.m.1.1.1.x"))) as response:
                assert response.status == 403
    finally:
        await server.close()
        runtime.db.dispose()
    forced = build_runtime(settings, clock=clock, playground=True)
    assert forced.playground is True and "web" in forced.platforms
    forced.db.dispose()


def _serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    port = unused_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "MICROSOFT_", "PLNBOT_", "DATABASE_URL"))
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'serve.db'}"
    env["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from plnbot.cli import main; main()",
            "serve",
            "--port",
            str(port),
            *args,
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return process, port


async def test_plnbot_serve_prints_the_playground_url_last(tmp_path: Path) -> None:
    process, port = _serve(tmp_path)
    try:
        assert process.stdout is not None
        first = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
        last = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 10)
        assert first.startswith(f"PLN Bot is running at http://127.0.0.1:{port}")
        assert last.strip() == f"Try it in your browser: http://127.0.0.1:{port}/playground"
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/playground") as response:
                        assert response.status == 200
                        assert "PLN Bot" in await response.text()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("plnbot serve never answered")
    finally:
        process.terminate()
        process.wait(timeout=20)

    process, port = _serve(tmp_path, "--no-playground")
    try:
        assert process.stdout is not None
        first = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
        assert first.startswith("PLN Bot is running at")
    finally:
        process.terminate()
        rest, _ = process.communicate(timeout=20)
    assert "/playground" not in rest
