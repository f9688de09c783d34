"""What the durability benchmarks (`steady.py`, `crash.py`) share: the processes they run, the
signed requests they send and what they count afterwards.

* The fake Slack Web API runs as its own process: `python -m bench.common fake-slack --port P`,
  `tests.fake_slack_server` with the benchmark's people registered (`users.info` answers for
  every teacher and the coach, as real Slack does; unknown people would make the bot ask again
  on every event) and every community channel listed. Recorded calls: GET /_calls/<method>.
* `plnbot serve --no-scheduler` runs as its own process too, with a clean environment.
* Counts come from the database (`artifact`, `inbox`) and from the fake (`chat.postMessage`).

Everything listens on, and talks to, 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.slack_ack import (  # noqa: E402  (needs ROOT on sys.path first)
    HOST,
    SECRET,
    TOKEN,
    clean_env,
    die_with_parent,
    free_port,
    post_signed,
    wait_listening,
)

COACH = "U_COACH"
TEAM = "T0001"
BOT_USER = "UBOT"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def user_ids(count: int) -> list[str]:
    """U_T0001, U_T0002, …"""
    return [f"U_T{n:04d}" for n in range(1, count + 1)]


def channel_ids(count: int) -> list[str]:
    """C_PLN, then C_PLN002, C_PLN003, … (one community each).

    Slack lets an app post about one message per second in a channel (the bot paces itself
    to 1/s with bursts of 4), so a benchmark that wants every share's card posted within
    seconds spreads its shares over enough channels."""
    return ["C_PLN", *(f"C_PLN{n:03d}" for n in range(2, count + 1))]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))
    return ordered[rank]


def plnbot_command() -> list[str]:
    """The venv's `plnbot` console script (`python -m plnbot.cli` has no `__main__` guard)."""
    return [str(Path(sys.executable).with_name("plnbot"))]


# --------------------------------------------------------------------------------------
# Request bodies, shaped and signed like Slack's (tests.slack_fakes)
# --------------------------------------------------------------------------------------


def command_body(text: str, *, user: str, channel: str, root_url: str, key: str) -> tuple[str, str]:
    """A `/pln <text>` slash command; `key` makes its trigger id (the dedupe key) unique and
    names its response_url on the fake."""
    from tests.slack_fakes import slash_command_body

    digest = uuid.uuid5(uuid.NAMESPACE_URL, key)
    return slash_command_body(
        text,
        user_id=user,
        user_name=user.lower(),
        channel_id=channel,
        channel_name=channel.lower(),
        response_url=f"{root_url}/response/{key}",
        trigger_id=f"{7400000000000 + digest.int % 10**12}.738474920.{digest.hex}",
    ), FORM


def share_body(
    *, url: str, title: str, user: str, channel: str, root_url: str, key: str
) -> tuple[str, str]:
    """`/pln share <url> <title>`."""
    return command_body(
        f"share {url} {title}", user=user, channel=channel, root_url=root_url, key=key
    )


def message_body(*, user: str, channel: str, ts: str, text: str, event_id: str) -> tuple[str, str]:
    """A channel message that is not in a thread (chatter the bot ignores)."""
    from tests.slack_fakes import event_body

    event = {
        "user": user,
        "type": "message",
        "ts": ts,
        "client_msg_id": str(uuid.uuid5(uuid.NAMESPACE_URL, event_id)),
        "text": text,
        "team": TEAM,
        "channel": channel,
        "event_ts": ts,
        "channel_type": "channel",
    }
    return event_body(event, event_id=event_id, event_time=int(float(ts))), JSON


def reaction_body(
    *, user: str, channel: str, item_ts: str, event_ts: str, event_id: str, reaction: str
) -> tuple[str, str]:
    """`reaction_added` on a message (`item_ts`) in a channel."""
    from tests.slack_fakes import event_body

    event = {
        "type": "reaction_added",
        "user": user,
        "reaction": reaction,
        "item_user": user,
        "item": {"type": "message", "channel": channel, "ts": item_ts},
        "event_ts": event_ts,
    }
    return event_body(event, event_id=event_id, event_time=int(float(event_ts))), JSON


# --------------------------------------------------------------------------------------
# The fake Slack Web API, as a process
# --------------------------------------------------------------------------------------


async def _serve_fake(port: int, users: int, channels: int, seconds: float) -> None:
    from tests.slack_fakes import FakeSlackAPI

    people: dict[str, dict[str, Any]] = {
        COACH: {"name": "pln.coach", "real_name": "Casey Coach", "tz": "America/New_York"}
    }
    for user in user_ids(users):
        people[user] = {
            "name": user.lower(),
            "real_name": f"Teacher {user[3:]}",
            "tz": "America/New_York",
        }
    members = {channel: [COACH, BOT_USER] for channel in channel_ids(channels)}
    fake = FakeSlackAPI(port=port, users=people, channel_members=members)
    await fake.start()
    print(f"fake Slack Web API on {fake.base_url}", flush=True)
    try:
        await asyncio.sleep(seconds)  # bounded: a forgotten fake stops by itself
    finally:
        await fake.stop()


class FakeSlack:
    """`python -m bench.common fake-slack` in its own process; reads what the bot posted."""

    def __init__(self, *, users: int, channels: int, log: Path, seconds: float = 3600) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "bench.common", "fake-slack", "--port", str(self.port)]
        command += ["--users", str(users), "--channels", str(channels), "--seconds", str(seconds)]
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
            )
        wait_listening(self.port, self.process, "the fake Slack Web API", timeout=30)
        self.root_url = f"http://{HOST}:{self.port}"
        self.base_url = f"{self.root_url}/api/"

    def calls(self, method: str) -> list[dict[str, Any]]:
        """`channel`, `text`, `ts`, `user` of every recorded call to `method`."""
        with urllib.request.urlopen(f"{self.root_url}/_calls/{method}", timeout=30) as response:
            return json.load(response)["calls"]

    def stop(self) -> None:
        stop(self.process)


def card_counts(posts: list[dict[str, Any]], url_pattern: re.Pattern[str]) -> Counter[str]:
    """How many `chat.postMessage` calls carried each shared URL (a share's card)."""
    cards: Counter[str] = Counter()
    for post in posts:
        cards.update(set(url_pattern.findall(str(post.get("text") or ""))))
    return cards


# --------------------------------------------------------------------------------------
# plnbot serve, as a process
# --------------------------------------------------------------------------------------


def stop(process: subprocess.Popen[bytes] | None, grace: float = 15) -> None:
    """SIGINT, then SIGKILL after `grace` seconds; reaps the process."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


class Serve:
    """`plnbot serve --no-scheduler` on a free port, logging to `<tmp>/<name>.log`; with
    `worker=True`, `plnbot worker` instead (no endpoints: it works stored requests and sends
    replies beside a `serve` on the same PostgreSQL database, as a replica would)."""

    def __init__(
        self,
        *,
        database_url: str,
        fake: FakeSlack,
        tmp: Path,
        name: str,
        slack_rate: float,
        worker: bool = False,
        tuning: dict[str, str] | None = None,
        processes: int = 1,
    ) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}/slack/events"
        self.log = tmp / f"{name}.log"
        env = clean_env(
            DATABASE_URL=database_url,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_API_URL=fake.base_url,
            PLNBOT_COACHES=COACH,
            PLNBOT_SLACK_RATE=str(slack_rate),
            PLNBOT_LOG_LEVEL="WARNING",
            PLNBOT_LLM="off",
            PYTHONUNBUFFERED="1",
            **(tuning or {}),
        )
        command = [*plnbot_command(), "serve", "--no-scheduler", "--port", str(self.port)]
        command += ["--host", HOST]
        if processes > 1:
            command += ["--processes", str(processes)]
        if worker:
            command = [*plnbot_command(), "worker"]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=tmp,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        self.started = time.monotonic()
        if worker:
            self._wait_for_line("PLN Bot worker running", timeout=90)
        else:
            wait_listening(self.port, self.process, "plnbot serve", timeout=90)
        self.ready_after = time.monotonic() - self.started

    def _wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"plnbot worker did not start: see {self.log}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_problems(self, limit: int = 5) -> list[str]:
        """Distinct ERROR lines and tracebacks' last lines from the log, at most `limit`."""
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        found = [line for line in lines if " ERROR " in line or line.startswith("Traceback")]
        errors = sum(1 for line in lines if " ERROR " in line)
        distinct = list(dict.fromkeys(line.split(" ", 2)[-1][:160] for line in found))
        return [f"{errors} ERROR lines", *distinct[:limit]] if found else []

    def stop(self) -> None:
        stop(self.process)


# --------------------------------------------------------------------------------------
# The database
# --------------------------------------------------------------------------------------


def prepare_database(postgres: str | None, tmp: Path, name: str) -> str:
    """A fresh database URL: a new SQLite file in `tmp`, or PostgreSQL with its public schema
    dropped, recreated and upgraded (`plnbot db upgrade`). SQLite is upgraded by serve."""
    if not postgres:
        return f"sqlite:///{tmp / f'{name}.db'}"
    import sqlalchemy as sa

    engine = sa.create_engine(postgres, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()
    subprocess.run(
        [*plnbot_command(), "db", "upgrade"],
        env=clean_env(DATABASE_URL=postgres),
        cwd=tmp,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return postgres


@dataclass
class Store:
    """Reads what `plnbot serve` committed (its own engine; SQLite is in WAL mode)."""

    url: str

    def __post_init__(self) -> None:
        import sqlalchemy as sa

        connect_args = {"timeout": 30} if self.url.startswith("sqlite") else {}
        self._sa = sa
        self.engine = sa.create_engine(self.url, connect_args=connect_args)
        self._artifact = sa.table(
            "artifact", sa.column("url", sa.String), sa.column("created_at", sa.DateTime)
        )

    def has_inbox(self) -> bool:
        return self._sa.inspect(self.engine).has_table("inbox")

    def backlog(self) -> int:
        """Inbox rows still to be done: `pending` or `claimed`."""
        with self.engine.connect() as conn:
            return int(
                conn.exec_driver_sql(
                    "SELECT count(*) FROM inbox WHERE status IN ('pending', 'claimed')"
                ).scalar_one()
            )

    def shares(self, prefix: str) -> dict[str, list[datetime]]:
        """Stored artifacts whose URL starts with `prefix`: url -> created_at (aware UTC) of
        each row (more than one means it was stored twice)."""
        sa, artifact = self._sa, self._artifact
        found: dict[str, list[datetime]] = {}
        query = sa.select(artifact.c.url, artifact.c.created_at).where(
            artifact.c.url.like(f"{prefix}%")
        )
        with self.engine.connect() as conn:
            for url, created in conn.execute(query):
                found.setdefault(url, []).append(created.replace(tzinfo=UTC))
        return found

    def communities(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM community").scalar_one())

    def dispose(self) -> None:
        self.engine.dispose()


def setup_communities(
    serve: Serve, fake: FakeSlack, store: Store, channels: list[str], run: str, timeout: float = 120
) -> str | None:
    """`/pln setup` by the coach in every channel; wait for each community's row and its
    announcement. Returns what went wrong, or None."""
    posts_before = len(fake.calls("chat.postMessage"))
    before = store.communities()
    for channel in channels:
        body, content_type = command_body(
            f"setup Bench {channel}",
            user=COACH,
            channel=channel,
            root_url=fake.root_url,
            key=f"setup-{run}-{channel}",
        )
        status = post_signed(serve.url, body, content_type)
        if status != 200:
            return f"`/pln setup` in {channel} answered {status}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        made = store.communities() - before
        posted = len(fake.calls("chat.postMessage")) - posts_before
        if made >= len(channels) and posted >= len(channels):
            return None
        time.sleep(0.1)
    return (
        f"after {timeout:.0f} s only {store.communities() - before}/{len(channels)} communities "
        f"were set up ({len(fake.calls('chat.postMessage')) - posts_before} announcements)"
    )


def wait_for(
    check: Callable[[], bool], *, timeout: float, stall: float, progress: Callable[[], object]
) -> tuple[bool, float]:
    """Poll `check()` until it holds, `timeout` passes, or `progress()` stops changing for
    `stall` seconds. Returns (held, seconds waited)."""
    began = time.monotonic()
    last, changed = progress(), began
    while True:
        if check():
            return True, time.monotonic() - began
        now = time.monotonic()
        if now - began > timeout or now - changed > stall:
            return False, now - began
        time.sleep(0.25)
        current = progress()
        if current != last:
            last, changed = current, time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description="Helpers for the durability benchmarks.")
    sub = parser.add_subparsers(dest="command", required=True)
    fake = sub.add_parser("fake-slack", help="run the fake Slack Web API with the bench's people")
    fake.add_argument("--port", type=int, required=True)
    fake.add_argument("--users", type=int, default=200)
    fake.add_argument("--channels", type=int, default=1)
    fake.add_argument("--seconds", type=float, default=3600)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_fake(args.port, args.users, args.channels, args.seconds))


if __name__ == "__main__":
    main()
