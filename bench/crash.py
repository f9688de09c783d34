"""kill -9 and SIGTERM in the middle of a burst of shares: is anything answered lost?

For each mode — `kill` (SIGKILL) and `term` (SIGTERM, what a deploy sends):

1. a fresh database (an SQLite file in a temp dir, or `--postgres URL` with its public schema
   dropped, recreated and upgraded), a fake Slack Web API process (`python -m bench.common
   fake-slack`) and a `plnbot serve --no-scheduler` process;
2. `/pln setup` by the coach U_COACH in each of `--channels` channels (C_PLN first);
3. a burst of `--shares` signed `/pln share https://example.org/<run>/<i> Title <i>` commands
   (distinct URLs, `--users` teachers, spread over the channels) at `--concurrency` from a
   load-generator process, which sends the signal to serve itself as soon as half the shares
   have been answered 200, and goes on sending the rest (each one's outcome is recorded);
4. for SIGTERM: the exit code and how long serve took to exit after the signal;
5. `plnbot serve` again on the same database (the same fake Slack, which kept running), and
   up to `--settle` seconds for every answered share to be stored and carded (it stops
   waiting earlier once nothing has changed for `--stall` seconds);
6. the count: answered (200), stored (artifact rows with those URLs), carded (a
   `chat.postMessage` whose text carries the URL, counted on the fake over both lifetimes),
   lost = answered but not stored, uncarded = stored but not carded, duplicated stores and
   cards.

PASS when lost == 0, uncarded == 0 and no share is stored twice. A card may be posted twice
only where it was in flight when the process died (sent, but not yet marked sent): the sender
keeps at most one message in flight per destination, so after a kill -9 at most one card per
channel may be doubled; after SIGTERM (which lets what is in flight finish), none.

Shares are spread over channels because Slack lets an app post about one message a second
per channel (the bot paces itself to that): 500 cards in one channel would take 8 minutes.
`PLNBOT_SLACK_RATE` is raised to `--slack-rate` for the same reason.

    .venv/bin/python bench/crash.py
    .venv/bin/python bench/crash.py --modes term --shares 200
    .venv/bin/python bench/crash.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/durable_a

It always exits 0 (it is a benchmark); read the PASS/FAIL lines.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402  (needs ROOT on sys.path first)
    SECRET,
    FakeSlack,
    Serve,
    Store,
    card_counts,
    channel_ids,
    prepare_database,
    setup_communities,
    share_body,
    user_ids,
    wait_for,
)
from bench.slack_ack import source_version  # noqa: E402

SIGNALS = {"kill": signal.SIGKILL, "term": signal.SIGTERM}
CONNECTION_FAILED, TIMED_OUT = -1, -2
OUTCOMES = {CONNECTION_FAILED: "connection failed", TIMED_OUT: "timed out"}


# --------------------------------------------------------------------------------------
# The burst (its own process)
# --------------------------------------------------------------------------------------


def burst_main(conn: Connection, spec: dict[str, Any]) -> None:
    """Send the burst; signal serve at half answered; report ("signalled", …) then ("done", …)."""
    asyncio.run(_burst(conn, spec))


async def _burst(conn: Connection, spec: dict[str, Any]) -> None:
    import aiohttp

    from tests.slack_fakes import sign

    users, channels = user_ids(spec["users"]), channel_ids(spec["channels"])
    bodies = [
        share_body(
            url=f"{spec['prefix']}{i}",
            title=f"Title {i}",
            user=users[i % len(users)],
            channel=channels[i % len(channels)],
            root_url=spec["root_url"],
            key=f"share-{spec['run']}-{i}",
        )
        for i in range(spec["shares"])
    ]
    n = len(bodies)
    status = [0] * n
    after_signal = [False] * n  # sent once the signal had gone
    answered = 0
    signalled_at: float | None = None
    indexes = iter(range(n))  # shared by the workers: each request is sent once

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal answered, signalled_at
        for i in indexes:
            body, content_type = bodies[i]
            after_signal[i] = signalled_at is not None
            headers = {"Content-Type": content_type, **sign(body, SECRET)}
            try:
                async with http.post(spec["url"], data=body.encode(), headers=headers) as response:
                    await response.read()
                    status[i] = response.status
            except TimeoutError:
                status[i] = TIMED_OUT
            except aiohttp.ClientError:
                status[i] = CONNECTION_FAILED
            if status[i] == 200:
                answered += 1
            if signalled_at is None and answered >= spec["signal_after"]:
                os.kill(spec["pid"], spec["signal"])
                signalled_at = time.time()
                conn.send(("signalled", {"at": signalled_at, "answered": answered}))

    connector = aiohttp.TCPConnector(limit=spec["concurrency"])
    timeout = aiohttp.ClientTimeout(total=spec["request_timeout"])
    began = time.monotonic()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await asyncio.gather(*(worker(http) for _ in range(spec["concurrency"])))
    if signalled_at is None:
        os.kill(spec["pid"], spec["signal"])  # the burst ended before half was answered
        signalled_at = time.time()
        conn.send(("signalled", {"at": signalled_at, "answered": answered}))
    conn.send(
        (
            "done",
            {"status": status, "after_signal": after_signal, "wall": time.monotonic() - began},
        )
    )


# --------------------------------------------------------------------------------------
# One mode
# --------------------------------------------------------------------------------------


@dataclass
class ModeResult:
    mode: str
    shares: int = 0
    status: list[int] = field(default_factory=list)
    after_signal: list[bool] = field(default_factory=list)
    answered_before_signal: int = 0
    burst_seconds: float = 0.0
    exit_code: int | None = None
    exit_seconds: float | None = None
    exited: bool = True
    settled: bool = False
    settle_seconds: float = 0.0
    restart_ready: float = 0.0
    prefix: str = ""
    stored: dict[str, list[Any]] = field(default_factory=dict)
    cards: Counter[str] = field(default_factory=Counter)
    cards_by_channel: Counter[tuple[str, str]] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def url(self, i: int) -> str:
        return f"{self.prefix}{i}"

    @property
    def answered(self) -> set[str]:
        return {self.url(i) for i, s in enumerate(self.status) if s == 200}

    @property
    def lost(self) -> set[str]:
        return self.answered - self.stored.keys()

    @property
    def uncarded(self) -> set[str]:
        return self.stored.keys() - self.cards.keys()

    @property
    def stored_twice(self) -> int:
        return sum(len(rows) > 1 for rows in self.stored.values())

    @property
    def extra_cards(self) -> int:
        return sum(count - 1 for count in self.cards.values() if count > 1)

    @property
    def most_extra_in_a_channel(self) -> int:
        extra: Counter[str] = Counter()
        for (channel, _), count in self.cards_by_channel.items():
            extra[channel] += max(0, count - 1)
        return max(extra.values(), default=0)

    @property
    def passed(self) -> bool:
        return (
            not self.problems
            and not self.lost
            and not self.uncarded
            and self.stored_twice == 0
            and self.most_extra_in_a_channel <= (1 if self.mode == "kill" else 0)
        )


def run_mode(mode: str, args: argparse.Namespace, tmp: Path) -> ModeResult:
    run = f"{mode}{uuid.uuid4().hex[:6]}"
    result = ModeResult(mode=mode, shares=args.shares, prefix=f"https://example.org/{run}/")
    pattern = re.compile(re.escape(result.prefix) + r"\d+")
    fake: FakeSlack | None = None
    first: Serve | None = None
    second: Serve | None = None
    store: Store | None = None
    burst: Any = None
    try:
        fake = FakeSlack(users=args.users, channels=args.channels, log=tmp / f"{mode}-fake.log")
        database_url = prepare_database(args.postgres, tmp, mode)
        first = Serve(
            database_url=database_url,
            fake=fake,
            tmp=tmp,
            name=f"{mode}-serve-1",
            slack_rate=args.slack_rate,
        )
        store = Store(database_url)
        problem = setup_communities(first, fake, store, channel_ids(args.channels), run)
        if problem:
            result.problems.append(f"set-up: {problem}")
        spec = {
            "url": first.url,
            "root_url": fake.root_url,
            "prefix": result.prefix,
            "run": run,
            "shares": args.shares,
            "users": args.users,
            "channels": args.channels,
            "concurrency": args.concurrency,
            "request_timeout": args.request_timeout,
            "pid": first.pid,
            "signal": SIGNALS[mode],
            "signal_after": args.shares // 2,
        }
        ctx = mp.get_context("spawn")
        conn, child = ctx.Pipe()
        burst = ctx.Process(target=burst_main, args=(child, spec), name=f"burst-{mode}")
        burst.start()
        child.close()
        if not conn.poll(args.request_timeout * args.shares + 60):
            raise RuntimeError("the burst never reached half answered")
        _, signalled = conn.recv()
        result.answered_before_signal = signalled["answered"]

        # The signalled process: how long it takes to go, and how it goes.
        try:
            first.process.wait(args.exit_wait)
        except subprocess.TimeoutExpired:
            result.exited = False
            first.process.kill()
            first.process.wait(10)
        result.exit_seconds = time.time() - signalled["at"]
        result.exit_code = first.process.returncode

        if not conn.poll(args.request_timeout * args.shares + 60):
            raise RuntimeError("the burst did not finish")
        _, done = conn.recv()
        result.status, result.after_signal = done["status"], done["after_signal"]
        result.burst_seconds = done["wall"]

        # The same database, a new process: wait until everything answered is done.
        second = Serve(
            database_url=database_url,
            fake=fake,
            tmp=tmp,
            name=f"{mode}-serve-2",
            slack_rate=args.slack_rate,
        )
        result.restart_ready = second.ready_after

        seen: list[tuple[int, int]] = []

        def look() -> None:
            result.stored = store.shares(result.prefix)
            posts = fake.calls("chat.postMessage")
            result.cards = card_counts(posts, pattern)
            result.cards_by_channel = Counter(
                (str(post.get("channel")), url)
                for post in posts
                for url in set(pattern.findall(str(post.get("text") or "")))
            )
            seen.append((sum(len(rows) for rows in result.stored.values()), result.cards.total()))

        def settled() -> bool:
            look()
            return not result.lost and not result.uncarded

        look()
        result.settled, result.settle_seconds = wait_for(
            settled, timeout=args.settle, stall=args.stall, progress=lambda: seen[-1]
        )
        second.stop()  # SIGINT; then the last look, with nothing running
        look()
        for serve in (first, second):
            result.problems += [f"{serve.log.name}: {line}" for line in serve.log_problems(3)]
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        result.problems.append(f"stopped early: {exc}")
        for log in sorted(tmp.glob(f"{mode}-*.log")):
            tail = log.read_text(errors="replace").splitlines()[-10:]
            result.problems += [f"--- last lines of {log.name}:", *(f"  {t}" for t in tail)]
    finally:
        if burst is not None:
            burst.join(10)
            if burst.is_alive():
                burst.terminate()
        for serve in (first, second):
            if serve is not None:
                serve.stop()
        if store is not None:
            store.dispose()
        if fake is not None:
            fake.stop()
    return result


def describe(result: ModeResult) -> list[str]:
    status = Counter(result.status)
    others = ", ".join(
        f"{OUTCOMES.get(s, f'HTTP {s}')}: {c}" for s, c in sorted(status.items()) if s != 200
    )
    sent_after = [s for s, late in zip(result.status, result.after_signal, strict=True) if late]
    name = {"kill": "SIGKILL (kill -9)", "term": "SIGTERM"}[result.mode]
    lines = [
        f"{result.mode}: {name} after {result.answered_before_signal} of {result.shares} shares "
        f"were answered",
        f"  requests: {status[200]} answered 200"
        + (f", {others}" if others else "")
        + f"; {len(sent_after)} sent after the signal, {sent_after.count(200)} of them answered 200",
    ]
    if result.exit_code is not None:
        exit_text = (
            f"exited with code {result.exit_code} {result.exit_seconds:.2f} s after the signal"
            if result.exited
            else f"had not exited {result.exit_seconds:.0f} s after the signal (then killed)"
        )
        lines.append(f"  signalled process {exit_text}")
    lines.append(
        f"  restarted (ready in {result.restart_ready:.1f} s); "
        + ("everything answered was stored and carded" if result.settled else "gave up waiting")
        + f" after {result.settle_seconds:.1f} s"
    )
    answered = result.answered
    lines.append(
        f"  answered {len(answered)}, stored {len(result.stored)} "
        f"({len(result.stored.keys() - answered)} not answered 200), "
        f"carded {len(result.cards)}; lost {len(result.lost)}, uncarded {len(result.uncarded)}, "
        f"stored twice {result.stored_twice}, extra cards {result.extra_cards}"
    )
    if result.lost:
        sample = sorted(result.lost, key=lambda url: int(url.rsplit("/", 1)[1]))[:5]
        lines.append(f"  lost, e.g.: {', '.join(sample)}")
    lines += [f"  {problem}" for problem in result.problems]
    lines.append(
        f"  {'PASS' if result.passed else 'FAIL'} {result.mode}: lost {len(result.lost)}, "
        f"uncarded {len(result.uncarded)}, stored twice {result.stored_twice} (all must be 0); "
        f"extra cards {result.extra_cards}, at most {result.most_extra_in_a_channel} in one "
        "channel (allowed: 1 after kill -9, the message in flight there; 0 after SIGTERM)"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="kill,term", help="comma-separated: kill,term")
    parser.add_argument("--shares", type=int, default=500, help="shares in the burst (500)")
    parser.add_argument("--users", type=int, default=50, help="different teachers (50)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections (16)")
    parser.add_argument(
        "--channels",
        type=int,
        default=50,
        help="community channels the shares are spread over (50: 10 cards each)",
    )
    parser.add_argument(
        "--settle", type=float, default=60, help="seconds to wait after the restart (60)"
    )
    parser.add_argument(
        "--stall",
        type=float,
        default=20,
        help="stop waiting once nothing was stored or carded for this long (20)",
    )
    parser.add_argument(
        "--exit-wait",
        type=float,
        default=90,
        help="seconds the signalled process may take to exit before it is killed (90)",
    )
    parser.add_argument(
        "--request-timeout", type=float, default=10, help="seconds one request may take (10)"
    )
    parser.add_argument(
        "--slack-rate", type=float, default=1000, help="PLNBOT_SLACK_RATE for serve (1000)"
    )
    parser.add_argument(
        "--postgres", metavar="URL", help="run on this PostgreSQL database (its schema is dropped)"
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in SIGNALS for m in modes):
        parser.error(f"--modes: use {','.join(SIGNALS)}")
    if args.shares < 2 or args.concurrency < 1 or args.users < 1 or args.channels < 1:
        parser.error("--shares must be at least 2; --concurrency, --users, --channels positive")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind through the finally
    with tempfile.TemporaryDirectory(prefix="plnbot-crash-") as tmp:
        results = [run_mode(mode, args, Path(tmp)) for mode in modes]
    db = "PostgreSQL" if args.postgres else "SQLite"
    print()
    print(
        f"Crash mid-burst: {args.shares} shares from {args.users} users in {args.channels} "
        f"channels at {args.concurrency} connections, signal at half answered; plnbot serve on "
        f"{db}; {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"source {source_version()}"
    )
    for result in results:
        for line in describe(result):
            print(line)


if __name__ == "__main__":
    main()
