"""Small groups stay private (issue #12, DESIGN §7): a coach's `report`, the community
dashboard and the digest show counts, bands and averages only for groups of at least
PLNBOT_MIN_GROUP people (5 unless configured, never fewer than 3); below that they read
"fewer than N people".

Over real HTTP with the real SDKs: signed Slack requests into the running `plnbot serve` app,
a fake Slack Web API on 127.0.0.1 recording what the bot sends, and the dashboard link from
the report's button fetched like a browser would."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from typer.testing import CliRunner

from bot.config import ConfigError, Settings, load_settings
from bot.core.clock import week_of
from bot.scoring.small_groups import DEFAULT_MIN_GROUP
from plnbot.cli import app as cli
from plnbot.runtime import build_runtime, make_web_app
from storage.db import Database
from tests.slack_fakes import FakeSlackAPI
from tests.slack_rig import SECRET, SlackRig

COACH = "U_COACH"
BAND_COUNT = re.compile(r"(Investigating|Envisioning|Planning|Staging) \d")
AVERAGE = re.compile(r"average \d")


class ShiftedClock:
    """Real time (Slack checks request timestamps against it), moved by `offset`: the
    teachers check in last week, the coach looks this week."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Community:
    """A Slack channel registered as a community: the coach and some teachers."""

    slack: SlackRig
    clock: ShiftedClock
    teachers: list[str]
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def say(self, user: str, words: str, *, channel: str = "C_PLN") -> list[dict[str, Any]]:
        """`/pln <words>` from `user`; what the bot answered them (ephemeral or in the DM)."""
        token = f"r{next(self._ids)}"
        dm = channel.startswith("D")
        await self.slack.command(
            words,
            user_id=user,
            user_name=user.lower(),
            channel_id=channel,
            channel_name="directmessage" if dm else "pln-math",
            response_token=token,
        )
        await self.slack.settle()
        return await _responses(self.slack.fake, token)

    async def check_in(self, user: str, rating: int, words: str) -> None:
        """`checkin` in the DM with the bot, answered with a rating and a private sentence."""
        await self.say(user, "checkin", channel=f"D{user}")
        await self.answer(user, rating, words)

    async def answer(self, user: str, rating: int, words: str) -> None:
        """The check-in waiting in `user`'s DM, answered in a message there."""
        n = next(self._ids)
        await self.slack.event(
            {
                "type": "message",
                "channel": f"D{user}",
                "channel_type": "im",
                "user": user,
                "text": f"{rating} - {words}",
                "ts": f"1700000{n:03d}.000100",
                "event_ts": f"1700000{n:03d}.000100",
            },
            event_id=f"EvCheckin{n}",
        )
        await self.slack.settle()

    async def report(self) -> dict[str, Any]:
        [answer] = await self.say(COACH, "report")
        return answer

    async def dashboard(self, report: dict[str, Any]) -> str:
        """The community dashboard the report's "Open dashboard" button opens."""
        urls = re.findall(r'"url": "([^"]*/dashboard/[^"]*)"', json.dumps(report["blocks"]))
        assert len(urls) == 1, report["blocks"]
        async with self.slack.http.get(urls[0]) as response:
            assert response.status == 200
            return await response.text()


async def _responses(fake: FakeSlackAPI, token: str) -> list[dict[str, Any]]:
    for _ in range(200):  # a response_url post lands just after the work is marked done
        found = fake.responses_to(token)
        if found:
            return found
        await asyncio.sleep(0.01)
    return []


@asynccontextmanager
async def community_of(db: Database, teachers: int, **settings: Any) -> AsyncIterator[Community]:
    """`plnbot serve` with Slack on; the coach runs `setup Math PLN` in a channel with
    `teachers` teachers (and the bot) in it."""
    people = [f"U_T{n}" for n in range(1, teachers + 1)]
    users = {
        user: {"name": user.lower(), "real_name": f"Teacher {user[3:]}", "tz": "UTC"}
        for user in people
    }
    users[COACH] = {"name": "coach", "real_name": "Casey Coach", "tz": "UTC"}
    fake = FakeSlackAPI(users=users, channel_members={"C_PLN": [COACH, *people, "UBOT"]})
    await fake.start()
    clock = ShiftedClock()
    runtime = build_runtime(
        Settings(  # type: ignore[call-arg]
            DATABASE_URL=db.url,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_API_URL=fake.base_url,
            PLNBOT_COACHES=COACH,
            PLNBOT_SECRET_KEY="test-dashboard-secret",
            **settings,
        ),
        clock=clock,
    )
    server = TestServer(make_web_app(runtime, scheduler=False), host="127.0.0.1")
    await server.start_server()
    runtime.port = server.port or 0  # dashboard links point at this server
    try:
        async with aiohttp.ClientSession() as http:
            slack = SlackRig(
                url=str(server.make_url("")).rstrip("/"),
                http=http,
                fake=fake,
                runtime=runtime,
                db=db,
            )
            community = Community(slack=slack, clock=clock, teachers=people)
            setup = await community.say(COACH, "setup Math PLN")
            assert "Default schedule" in setup[0]["text"]
            yield community
    finally:
        await server.close()
        await fake.stop()
        runtime.db.dispose()


RATINGS = [2, 4, 6, 7, 9, 5]  # Investigating, Envisioning, Planning, Planning, Staging, …


async def last_week_everyone_checks_in(community: Community) -> None:
    """Last week the coach sent check-ins and every teacher answered one, privately."""
    community.clock.offset = -timedelta(days=7)
    await community.say(COACH, "checkins send")
    for teacher, rating in zip(community.teachers, RATINGS, strict=False):
        await community.answer(teacher, rating, f"PRIVATE-{teacher}: how my week went")
    community.clock.offset = timedelta(0)  # and on Monday the coach asks for the report


ANSWERED_BAR = re.compile(r'data-series="checkins_answered" data-value="[1-9]')


def report_line(report: dict[str, Any], label: str) -> str:
    [line] = [line for line in report["text"].splitlines() if line.startswith(label)]
    return line


async def test_in_a_community_of_three_the_report_shows_no_bands_only_fewer_than_5(
    db: Database,
) -> None:
    async with community_of(db, teachers=3) as community:
        await last_week_everyone_checks_in(community)
        report = await community.report()
        everything = json.dumps(report)
        ratings = report_line(report, "Self-ratings last week")
        assert "fewer than 5 people — shown once 5 have checked in during a week" in ratings
        assert not BAND_COUNT.search(everything) and not AVERAGE.search(everything)
        assert "Figures about fewer than 5 people are held back" in report["text"]
        assert "Members: 4" in report["text"]  # who is in the channel is no secret
        assert report_line(report, "Check-ins (4 weeks)") == (
            "Check-ins (4 weeks): 4 sent · answered: fewer than 5 people — shown once 5 have "
            "answered in a week"
        )
        assert "PRIVATE" not in everything and "/10" not in everything
        assert report["response_type"] == "ephemeral"

        # The dashboard behind the report's button holds the same back: no bands chart,
        # no counts of ratings, no bars for answers.
        page = await community.dashboard(report)
        assert "Where members place themselves" in page
        assert "fewer than 5 people checked in, so their self-ratings stay with them" in page
        assert 'id="bands-chart"' not in page and "data-band=" not in page
        assert not BAND_COUNT.search(page) and not AVERAGE.search(page)
        assert not ANSWERED_BAR.search(page) and 'data-series="reflections"' not in page
        assert (
            '<span class="n">4</span> check-ins sent · answered by fewer than 5 people a week'
            in page
        )
        assert "PRIVATE" not in page


async def test_with_five_who_checked_in_the_report_shows_the_bands_and_average(
    db: Database,
) -> None:
    async with community_of(db, teachers=5) as community:
        await last_week_everyone_checks_in(community)
        report = await community.report()
        assert report_line(report, "Self-ratings last week") == (
            f"Self-ratings last week ({week_of(_last_week())}): Investigating 1, Envisioning 1, "
            "Planning 2, Staging 1 · average 5.6 (5 people)"
        )
        assert report_line(report, "Check-ins (4 weeks)") == (
            "Check-ins (4 weeks): 5 answered of 6 sent"
        )
        assert report_line(report, "Reflections (4 weeks)") == (  # nobody reflected
            "Reflections (4 weeks): fewer than 5 people — shown once 5 have reflected in a week"
        )
        assert "PRIVATE" not in json.dumps(report)
        fields = json.dumps(report["blocks"])
        assert "Investigating 1, Envisioning 1, Planning 2, Staging 1" in fields

        page = await community.dashboard(report)
        assert 'id="bands-chart"' in page and 'data-band="Planning" data-value="2"' in page
        assert "Planning: 2 of 5 people" in page and "average 5.6 out of 10" in page
        assert f'data-week="{_last_week()}" data-series="checkins_answered" data-value="5"' in page
        assert "PRIVATE" not in page


async def test_plnbot_min_group_3_shows_a_group_of_three(db: Database) -> None:
    async with community_of(db, teachers=3, PLNBOT_MIN_GROUP=3) as community:
        await last_week_everyone_checks_in(community)
        report = await community.report()
        assert report_line(report, "Self-ratings last week").endswith(
            "Investigating 1, Envisioning 1, Planning 1, Staging 0 · average 4.0 (3 people)"
        )
        page = await community.dashboard(report)
        assert 'id="bands-chart"' in page and 'data-band="Investigating" data-value="1"' in page
        assert "Investigating: 1 of 3 people" in page
        assert f'data-week="{_last_week()}" data-series="checkins_answered" data-value="3"' in page
        assert "3 answered of 4 sent" in report["text"]


async def test_the_coach_looking_is_not_part_of_the_group_that_hides_the_others(
    db: Database,
) -> None:
    # Four teachers and the coach checked in: five ratings, but the coach knows their own
    # and could take it out, leaving four — fewer than 5.
    async with community_of(db, teachers=4) as community:
        community.clock.offset = -timedelta(days=7)
        await community.check_in(COACH, 8, "PRIVATE-coach: my own week")
        await last_week_everyone_checks_in(community)
        report = await community.report()
        assert "fewer than 5 people" in report_line(report, "Self-ratings last week")
        assert not BAND_COUNT.search(json.dumps(report))


async def test_this_weeks_ratings_wait_until_the_week_is_over(db: Database) -> None:
    # A figure that moved with each answer would show, between two looks at it, the band of
    # whoever answered in between; so bands and averages are for a finished week only.
    async with community_of(db, teachers=5) as community:
        for teacher, rating in zip(community.teachers, RATINGS, strict=False):
            await community.check_in(teacher, rating, "PRIVATE: this week")
            report = await community.report()
            assert not BAND_COUNT.search(json.dumps(report))
        assert "fewer than 5 people" in report_line(report, "Self-ratings last week")
        community.clock.offset = timedelta(days=7)
        report = await community.report()
        assert "Planning 2, Staging 1 · average 5.6 (5 people)" in report["text"]


async def test_the_digest_counts_check_ins_only_once_enough_people_answered(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The posted digest is rendered by the outbox sender, which reads PLNBOT_MIN_GROUP as
    # start-up does: from the environment.
    monkeypatch.setenv("PLNBOT_MIN_GROUP", "3")
    async with community_of(db, teachers=3, PLNBOT_MIN_GROUP=3) as community:
        await community.say("U_T1", "share https://example.org/exit Exit tickets")
        for teacher in community.teachers[:2]:
            await community.check_in(teacher, 5, "PRIVATE: this week")
        [preview] = await community.say(COACH, "digest preview")
        assert (
            "This week: 1 share; reflections and check-ins: fewer than 3 people — shown once 3 "
            "have taken part." in preview["text"]
        )
        await community.check_in(community.teachers[2], 7, "PRIVATE: this week")
        [preview] = await community.say(COACH, "digest preview")
        assert "check-ins: fewer than" not in preview["text"]
        assert "3 check-ins answered" in preview["text"]

        await community.say(COACH, "digest post")
        posted = [
            p
            for p in community.slack.fake.calls_to("chat.postMessage")
            if "the week's best work" in p["text"]
        ]
        assert len(posted) == 1 and posted[0]["channel"] == "C_PLN"
        assert (
            "This week: 1 share, 3 check-ins answered; reflections: fewer than 3 people — "
            "shown once 3 have taken part." in posted[0]["text"]
        )
        assert "PRIVATE" not in json.dumps(posted)


@pytest.mark.parametrize("value", ["2", "1", "0", "-5", "a few"])
def test_a_min_group_below_3_is_refused_at_start_up(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env, and nothing created here
    monkeypatch.setenv("PLNBOT_MIN_GROUP", value)
    with pytest.raises(ConfigError, match=r"^PLNBOT_MIN_GROUP: "):
        load_settings()
    result = CliRunner().invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 2
    assert result.stderr.startswith("plnbot: PLNBOT_MIN_GROUP: ")
    assert result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # refused before any database was made


def test_the_default_is_5_and_3_is_the_smallest_allowed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLNBOT_MIN_GROUP", raising=False)
    assert load_settings().min_group == 5 == DEFAULT_MIN_GROUP
    monkeypatch.setenv("PLNBOT_MIN_GROUP", "3")
    assert load_settings().min_group == 3
    with pytest.raises(ConfigError) as raised:
        load_settings(PLNBOT_MIN_GROUP=2)
    assert str(raised.value) == (
        "PLNBOT_MIN_GROUP: must be 3 or more, not 2: in a smaller group a coach could work "
        "out one person's private answers"
    )


def _last_week() -> str:
    from bot.core.clock import iso_week

    return iso_week((datetime.now(UTC) - timedelta(days=7)).date())
