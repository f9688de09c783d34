"""What a Teams turn was answered for is kept: a real `plnbot serve` (anonymous Teams, as with
a local emulator) killed with SIGKILL in the middle of a burst of shares and restarted on the
same database; every share whose turn got its 200 is stored once and gets its card.

Black-box: Bot Framework activities over HTTP, the fake connector in the test's event loop
(tests/teams_fakes.py) receiving what the bot sends, an SQLite file in the test's folder.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from tests.serve_rig import ServeProcess
from tests.teams_fakes import ANA, COACH, TOMAS, FakeConnector, message

SHARES = 60
URL = re.compile(r"https://example\.org/teams/\d+")


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = FakeConnector()
    await fake.start()
    yield fake
    await fake.stop()


async def test_teams_shares_answered_before_a_kill_9_are_stored_and_carded(
    tmp_path: Path, connector: FakeConnector
) -> None:
    database_url = f"sqlite:///{tmp_path / 'plnbot.db'}"

    def serve(name: str) -> ServeProcess:
        return ServeProcess(
            name=name,
            database_url=database_url,
            api=None,
            workdir=tmp_path,
            env_extra={"PLNBOT_COACHES": COACH.aad},
            args=["--allow-anonymous-teams"],
        )

    async with aiohttp.ClientSession() as http:
        first = serve("first")
        try:
            await first.ready(http)
            url = f"http://127.0.0.1:{first.port}/api/messages"

            async def post(activity: dict) -> int:
                try:
                    async with http.post(
                        url, data=json.dumps(activity), headers={"Content-Type": "application/json"}
                    ) as response:
                        await response.read()
                        return response.status
                except aiohttp.ClientError:
                    return -1

            assert (
                await post(
                    message("setup Math PLN", service_url=connector.service_url, person=COACH)
                )
                == 200
            )
            await connector.wait_for(lambda c: "Math PLN" in c.text)

            answered: list[str] = []
            pending = list(range(SHARES))

            async def sender() -> None:
                while pending:
                    i = pending.pop(0)
                    person = ANA if i % 2 else TOMAS
                    link = f"https://example.org/teams/{i}"
                    activity = message(
                        f"share {link} Title {i}", service_url=connector.service_url, person=person
                    )
                    if await post(activity) == 200:
                        answered.append(link)
                        if len(answered) == SHARES // 2:
                            first.kill()  # kill -9 once half the turns were answered

            await asyncio.gather(*(sender() for _ in range(8)))
            assert await first.exited(within=10) is not None
        finally:
            await first.close()

        second = serve("after the crash")
        try:
            await second.ready(http)
            engine = sa.create_engine(database_url)

            def stored() -> Counter[str]:
                with engine.connect() as conn:
                    return Counter(u for (u,) in conn.execute(sa.text("SELECT url FROM artifact")))

            def cards() -> Counter[str]:
                found: Counter[str] = Counter()
                for call in connector.sent():
                    found.update(set(URL.findall(json.dumps(call.body, default=str))))
                return found

            for _ in range(300):  # up to 30 s for the restarted process to catch up
                if set(answered) <= stored().keys() and stored().keys() <= cards().keys():
                    break
                await asyncio.sleep(0.1)
            engine.dispose()
        finally:
            await second.close()

    assert len(answered) >= SHARES // 2
    kept, carded = stored(), cards()
    assert set(answered) <= kept.keys(), f"lost: {sorted(set(answered) - kept.keys())[:5]}"
    assert all(count == 1 for count in kept.values()), "a share was stored twice"
    assert kept.keys() <= carded.keys(), f"uncarded: {sorted(kept.keys() - carded.keys())[:5]}"
    # One channel: at most the one card in flight there when the process died is doubled.
    assert sum(count - 1 for count in carded.values()) <= 1
