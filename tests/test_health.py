"""/healthz over HTTP: "ok" only when a real write commits; a database that answers but keeps
no write (a read-only SQLite file, a read-only PostgreSQL session) is "degraded"."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from bot.config import Settings
from plnbot.runtime import HealthProbe, Runtime, build_runtime, make_web_app
from storage.db import PROBE_KEY, Database


@contextlib.asynccontextmanager
async def _serve(runtime: Runtime) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    server = TestServer(make_web_app(runtime, scheduler=False), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield http, str(server.make_url("/healthz"))
    finally:
        await server.close()
        runtime.db.dispose()


async def _health(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        return response.status, await response.json()


def _read_only_url(db: Database) -> str:
    """The same database, opened so that nothing can be written to it."""
    url = sa.engine.make_url(db.url)
    if db.is_sqlite:
        return f"sqlite:///file:{url.database}?mode=ro&uri=true"
    options = "-c default_transaction_read_only=on"
    return url.update_query_dict({"options": options}).render_as_string(hide_password=False)


def _probe_row(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT value FROM keyvalue WHERE key = :key"), {"key": PROBE_KEY}
        ).scalar()


async def test_healthz_is_ok_when_a_write_commits(db: Database) -> None:
    runtime = build_runtime(Settings(DATABASE_URL=db.url), playground=False)  # type: ignore[call-arg]
    async with _serve(runtime) as (http, url):
        assert await _health(http, url) == (200, {"status": "ok", "db": "ok"})
        written = _probe_row(db)
        assert written is not None  # a real row, committed
        for _ in range(20):  # polled hard: still one write per second at most
            assert (await _health(http, url))[0] == 200
        assert _probe_row(db) == written


async def test_healthz_is_degraded_when_the_database_keeps_no_write(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    build_runtime(Settings(DATABASE_URL=db.url), playground=False).db.dispose()  # type: ignore[call-arg]
    read_only = Settings(DATABASE_URL=_read_only_url(db))  # type: ignore[call-arg]
    runtime = build_runtime(read_only, playground=False)  # starts: reads still work
    async with _serve(runtime) as (http, url):
        statuses = await asyncio.gather(*(_health(http, url) for _ in range(10)))
        assert statuses == [(503, {"status": "degraded", "db": "read-only"})] * 10
    warnings = [r.message for r in caplog.records if "health probe" in r.message]
    assert len(warnings) == 1 and "read-only" in warnings[0]  # one line, not one per probe


async def test_healthz_is_down_when_the_database_does_not_answer(
    db: Database, tmp_path: Path
) -> None:
    runtime = build_runtime(Settings(DATABASE_URL=db.url), playground=False)  # type: ignore[call-arg]
    async with _serve(runtime) as (http, url):
        assert (await _health(http, url))[0] == 200
        runtime.db.engine.dispose()
        gone = tmp_path / "gone" / "plnbot.db"  # a directory that does not exist
        runtime.db.engine = sa.create_engine(f"sqlite:///{gone}")
        await asyncio.sleep(1.05)  # the last answer is kept for a second
        assert await _health(http, url) == (503, {"status": "degraded", "db": "down"})


async def test_a_hung_write_is_reported_and_not_piled_up(db: Database) -> None:
    """A database that hangs: "down" after the timeout, and no second write is started while
    the first one still hangs."""
    started: list[float] = []

    class Hanging:
        def check_writes(self, stamp: str) -> None:
            started.append(time.monotonic())
            if len(started) == 1:
                time.sleep(0.6)

    probe = HealthProbe(Hanging(), every=0.0, timeout=0.2)  # type: ignore[arg-type]
    assert await probe.state() == "down"
    assert await probe.state() == "down"
    assert len(started) == 1
    await asyncio.sleep(0.5)
    assert await probe.state() == "ok"  # the hung write finished; the next one is quick
    assert len(started) == 2
