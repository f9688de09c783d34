"""Real `plnbot serve` processes for the durability tests, black-box over HTTP.

Each `ServeProcess` is the venv's `plnbot serve --no-scheduler` on a free port of 127.0.0.1,
with a clean environment, a log file in the test's folder, and the fake Slack Web API
(`tests.slack_fakes.FakeSlackAPI`, running in the test's own event loop) as its Slack. A
`ServeRig` starts them, signs and sends Slack requests to them, restarts them on the same
database, and reads what was stored (the database) and posted (the fakes).

Shares are spread over several community channels: Slack lets an app post about one message a
second per channel (the bot paces itself to that, in bursts of 4), so a hundred cards in one
channel would take a hundred seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa

from tests.slack_fakes import FakeSlackAPI, sign, slash_command_body

PLNBOT = str(Path(sys.executable).with_name("plnbot"))  # `python -m plnbot.cli` has no __main__
HOST = "127.0.0.1"
SECRET = "durable-signing-secret"
COACH = "U_COACH"
BOT_USER = "UBOT"
FORM = "application/x-www-form-urlencoded"
CONNECTION_FAILED = -1  # what `post` answers when no HTTP answer came back


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def teachers(count: int) -> list[str]:
    """U_T0001, U_T0002, …"""
    return [f"U_T{n:04d}" for n in range(1, count + 1)]


def community_channels(count: int) -> list[str]:
    """C_PLN, C_PLN002, C_PLN003, …"""
    return ["C_PLN", *(f"C_PLN{n:03d}" for n in range(2, count + 1))]


def by_number(urls: Iterable[str]) -> list[str]:
    """Shared URLs in the order they were made (…/2 before …/10)."""
    return sorted(urls, key=lambda url: int(url.rsplit("/", 1)[1]))


async def fresh_postgres_database(server_url: str, name: str, *, workdir: Path) -> str:
    """The URL of database `name` on `server_url`'s server (created if missing), with its
    public schema dropped, recreated and brought up to date by `plnbot db upgrade`."""
    server = sa.engine.make_url(server_url)
    scratch = server.set(database=name).render_as_string(hide_password=False)
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if found is None:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    fresh = sa.create_engine(scratch, isolation_level="AUTOCOMMIT")
    try:
        with fresh.connect() as conn:
            # A process an earlier test left behind (still draining) must not hold locks.
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    finally:
        fresh.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLNBOT_", "DATABASE_URL"))}
    upgrade = await asyncio.to_thread(
        subprocess.run,
        [PLNBOT, "db", "upgrade"],
        env={**env, "DATABASE_URL": scratch},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgrade.returncode == 0, f"plnbot db upgrade failed:\n{upgrade.stderr}"
    return scratch


@contextlib.asynccontextmanager
async def postgres_rig(
    workdir: Path, database: str, *, why: str, channels: int = 25
) -> AsyncIterator[ServeRig]:
    """A rig on scratch database `database` of PLNBOT_TEST_POSTGRES_URL's server (the test is
    skipped, saying `why` it needs PostgreSQL, when that is not set)."""
    import pytest

    server = os.environ.get("PLNBOT_TEST_POSTGRES_URL")
    if not server:
        pytest.skip(f"set PLNBOT_TEST_POSTGRES_URL: {why}")
    scratch = await fresh_postgres_database(server, database, workdir=workdir)
    rig = ServeRig(workdir=workdir, database_url=scratch, channels=channels)
    try:
        yield rig
    finally:
        await rig.close()


@dataclass(frozen=True)
class Share:
    """One `/pln share <url> <title>` to send."""

    url: str
    title: str
    user: str
    channel: str


@dataclass
class Burst:
    """What each share of a burst got back, and which were sent after the signal."""

    status: dict[str, int]
    sent_after_signal: set[str] = field(default_factory=set)
    signalled_at: float | None = None  # time.monotonic()

    @property
    def answered(self) -> set[str]:
        """URLs of the shares answered 200: Slack was told they were received."""
        return {url for url, status in self.status.items() if status == 200}


class ServeProcess:
    """One `plnbot serve --no-scheduler` process."""

    def __init__(
        self,
        *,
        name: str,
        database_url: str,
        api: FakeSlackAPI | None,
        workdir: Path,
        env_extra: dict[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}/slack/events"
        self.log = workdir / f"serve-{re.sub(r'[^a-z0-9]+', '-', name.lower())}.log"
        prefixes = ("SLACK_", "PLNBOT_", "MICROSOFT_", "OPENAI_", "DATABASE_URL")
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        env.update(
            DATABASE_URL=database_url,
            PLNBOT_COACHES=COACH,
            PLNBOT_LOG_LEVEL="WARNING",
            PLNBOT_LLM="off",
            PYTHONUNBUFFERED="1",
        )
        if api is not None:  # Slack; without it, only what `env_extra` and `args` turn on
            env.update(
                SLACK_SIGNING_SECRET=SECRET,
                SLACK_BOT_TOKEN="xoxb-durable",
                SLACK_API_URL=api.base_url,
                PLNBOT_SLACK_RATE="1000",
            )
        env.update(env_extra or {})
        command = [PLNBOT, "serve", "--no-scheduler", "--host", HOST, "--port", str(self.port)]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [*command, *args],
                cwd=workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def ready(self, http: aiohttp.ClientSession, timeout: float = 60) -> None:
        """Wait until /healthz answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with code {self.process.returncode} before it was "
                    f"ready:\n{self.log_tail()}"
                )
            try:
                async with http.get(f"http://{HOST}:{self.port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"{self.name} was not ready within {timeout:.0f} s:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """kill -9: no chance to finish anything."""
        self.process.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM, what a deploy or `docker stop` sends."""
        self.process.send_signal(signal.SIGTERM)

    async def exited(self, within: float) -> int | None:
        """The exit code once the process has exited, or None if it is still running."""
        deadline = time.monotonic() + within
        while self.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.process.poll()

    async def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        await self.exited(10)

    def log_tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class ServeRig:
    """Serve processes on one database, the fake Slack they post to, and what they did."""

    def __init__(self, *, workdir: Path, database_url: str, users: int = 50, channels: int = 30):
        self.workdir = workdir
        self.database_url = database_url
        self.users = teachers(users)
        self.channels = community_channels(channels)
        self.run = uuid.uuid4().hex[:8]
        self.prefix = f"https://example.org/{self.run}/"
        self._url = re.compile(re.escape(self.prefix) + r"\d+")
        self.fakes: list[FakeSlackAPI] = []
        self.processes: list[ServeProcess] = []
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64),
            timeout=aiohttp.ClientTimeout(total=15),
        )
        self.engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
        self._triggers = itertools.count(1)

    @property
    def fake(self) -> FakeSlackAPI:
        """The fake Slack Web API serve processes start with (the latest one)."""
        return self.fakes[-1]

    async def start_fake(self, **kwargs: Any) -> FakeSlackAPI:
        """A (new) fake Slack Web API that knows the coach and the teachers."""
        people = {COACH: {"name": "pln.coach", "real_name": "Casey Coach"}}
        people.update(
            {
                user: {"name": user.lower(), "real_name": f"Teacher {user[3:]}"}
                for user in self.users
            }
        )
        members = {channel: [COACH, BOT_USER] for channel in self.channels}
        fake = FakeSlackAPI(users=people, channel_members=members, **kwargs)
        await fake.start()
        self.fakes.append(fake)
        return fake

    async def serve(self, name: str, *args: str) -> ServeProcess:
        """Start `plnbot serve [args]` on the rig's database and wait until it answers."""
        if not self.fakes:
            await self.start_fake()
        process = ServeProcess(
            name=name,
            database_url=self.database_url,
            api=self.fake,
            workdir=self.workdir,
            args=args,
        )
        self.processes.append(process)
        await process.ready(self.http)
        return process

    async def close(self) -> None:
        for process in self.processes:
            await process.close()
        await self.http.close()
        for fake in self.fakes:
            await fake.stop()
        self.engine.dispose()

    # ---- requests ------------------------------------------------------------------------

    def command(self, text: str, *, user: str, channel: str) -> str:
        """A signed-to-be `/pln <text>` slash command body, with its own trigger id."""
        n = next(self._triggers)
        return slash_command_body(
            text,
            user_id=user,
            user_name=user.lower(),
            channel_id=channel,
            channel_name=channel.lower(),
            response_url=self.fake.response_url(f"{self.run}-{n}"),
            trigger_id=f"{7400000000000 + n}.738474920.{uuid.uuid4().hex}",
        )

    async def post(self, serve: ServeProcess, body: str, content_type: str = FORM) -> int:
        """POST a signed body; its HTTP status, or CONNECTION_FAILED."""
        headers = {"Content-Type": content_type, **sign(body, SECRET)}
        try:
            async with self.http.post(serve.url, data=body.encode(), headers=headers) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return CONNECTION_FAILED

    async def setup(self, serve: ServeProcess, channels: Sequence[str] | None = None) -> None:
        """The coach runs `/pln setup` in each channel; wait until every community exists."""
        channels = list(channels or self.channels)
        before = self.count("SELECT count(*) FROM community")
        for channel in channels:
            status = await self.post(serve, self.command("setup", user=COACH, channel=channel))
            assert status == 200, f"/pln setup in {channel} answered {status}"
        await self.until(
            lambda: self.count("SELECT count(*) FROM community") >= before + len(channels),
            timeout=30,
            what=f"{len(channels)} communities set up",
        )

    def shares(self, count: int, *, users: int | None = None) -> list[Share]:
        """`count` shares with distinct URLs, round-robin over teachers and channels."""
        people = self.users[: users or len(self.users)]
        return [
            Share(
                url=f"{self.prefix}{i}",
                title=f"Title {i}",
                user=people[i % len(people)],
                channel=self.channels[i % len(self.channels)],
            )
            for i in range(count)
        ]

    async def burst(
        self,
        targets: ServeProcess | Sequence[ServeProcess],
        shares: Sequence[Share],
        *,
        concurrency: int = 16,
        when_half_answered: Callable[[], None] | None = None,
    ) -> Burst:
        """Send the shares `concurrency` at a time (alternating over `targets`); call
        `when_half_answered` (say, a kill) as soon as half of them got a 200."""
        servers = [targets] if isinstance(targets, ServeProcess) else list(targets)
        result = Burst(status={})
        answered = 0
        queue = iter(enumerate(shares))  # shared by the workers: each share is sent once

        async def worker() -> None:
            nonlocal answered
            for i, share in queue:
                if result.signalled_at is not None:
                    result.sent_after_signal.add(share.url)
                body = self.command(
                    f"share {share.url} {share.title}", user=share.user, channel=share.channel
                )
                status = await self.post(servers[i % len(servers)], body)
                result.status[share.url] = status
                answered += status == 200
                if (
                    when_half_answered is not None
                    and result.signalled_at is None
                    and answered >= len(shares) // 2
                ):
                    result.signalled_at = time.monotonic()
                    when_half_answered()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return result

    # ---- what happened -------------------------------------------------------------------

    def count(self, query: str, **params: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(query), params).scalar_one())

    def stored(self) -> Counter[str]:
        """Artifact rows per shared URL of this rig."""
        query = sa.text("SELECT url FROM artifact WHERE url LIKE :prefix")
        with self.engine.connect() as conn:
            return Counter(url for (url,) in conn.execute(query, {"prefix": f"{self.prefix}%"}))

    def cards(self) -> Counter[str]:
        """chat.postMessage calls (on every fake) carrying each shared URL: a share's card."""
        cards: Counter[str] = Counter()
        for fake in self.fakes:
            for params in fake.calls_to("chat.postMessage"):
                cards.update(set(self._url.findall(json.dumps(params, default=str))))
        return cards

    def extra_cards_per_channel(self) -> Counter[str]:
        """Cards posted more than once, by channel (what was in flight when a process died:
        at most one message per destination is in flight at a time)."""
        seen: Counter[tuple[str, str]] = Counter()
        for fake in self.fakes:
            for params in fake.calls_to("chat.postMessage"):
                for url in set(self._url.findall(json.dumps(params, default=str))):
                    seen[(str(params.get("channel")), url)] += 1
        extra: Counter[str] = Counter()
        for (channel, _), count in seen.items():
            if count > 1:
                extra[channel] += count - 1
        return extra

    def goals(self, user: str) -> list[str]:
        """The user's goals' text, in the order they were stored."""
        query = sa.text(
            "SELECT goal.text FROM goal JOIN member ON member.id = goal.member_id "
            "WHERE member.user_id = :user ORDER BY goal.id"
        )
        with self.engine.connect() as conn:
            return [text for (text,) in conn.execute(query, {"user": user})]

    async def settle(self, urls: Iterable[str], *, timeout: float = 45, stall: float = 10) -> None:
        """Wait until every one of `urls`, and every stored share, is stored and carded — or
        until nothing has been stored or carded for `stall` seconds, or `timeout`."""
        wanted = set(urls)
        began = time.monotonic()
        last, changed = None, began
        while time.monotonic() - began < timeout and time.monotonic() - changed < stall:
            stored, cards = self.stored(), self.cards()
            if wanted <= stored.keys() and stored.keys() <= cards.keys():
                return
            seen = (stored.total(), cards.total())
            if seen != last:
                last, changed = seen, time.monotonic()
            await asyncio.sleep(0.2)

    async def eventually(self, condition: Callable[[], bool], *, timeout: float) -> bool:
        """Poll `condition` until it holds (True) or `timeout` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def until(self, condition: Callable[[], bool], *, timeout: float, what: str) -> None:
        """As `eventually`, but a timeout fails the test (with the serve logs' tails)."""
        if not await self.eventually(condition, timeout=timeout):
            logs = "\n".join(f"--- {p.name}:\n{p.log_tail(10)}" for p in self.processes)
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
