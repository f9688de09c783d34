"""Sustained-rate benchmark: open-loop Slack traffic into a real `plnbot serve`.

What it measures. A load generator (its own process) sends signed Slack requests on a fixed
timetable — request i leaves at start + i/rate whether or not earlier ones were answered
(open loop, `--connections` pooled connections) — for `--seconds`: about half `/pln share
https://example.org/<run>/<i> Title <i>` slash commands from `--users` teachers, a quarter
channel chatter (`message` events outside any thread, which the bot ignores) and a quarter
`reaction_added` (:thumbsup: on a chatter message), each event with its own event_id. It
reports:

* requests sent, answered 200, and every other outcome;
* ack latency p50/p99 — from the moment the timetable said the request should leave until the
  whole response arrived (so a stalled server cannot hide its queue; the generator's own lag
  is shown beside it);
* event-to-commit p50/p99 for shares — the artifact row's `created_at` (naive UTC) minus the
  wall-clock time the request left;
* max backlog — `inbox` rows `pending` or `claimed`, polled every 0.25 s from this process
  (`backlog: n/a (no inbox table)` when the runtime has no inbox);
* after the load, up to `--drain` seconds for every answered share to be stored and carded (a
  card is a `chat.postMessage` whose text carries the share's URL): stored / carded / lost
  (answered but not stored) / duplicated (stored twice, or carded twice).

Targets: ack p99 < 30 ms, event-to-commit p99 < 1 s, backlog bounded (max backlog below what
2 seconds of traffic would queue: rate x 2), 0 lost.

Processes, all on 127.0.0.1: the fake Slack Web API (`python -m bench.common fake-slack`,
i.e. `tests.slack_fakes.FakeSlackAPI` knowing the teachers), `plnbot serve --no-scheduler`
(SQLite file in a temp dir, or `--postgres URL`: its public schema is dropped and recreated,
then `plnbot db upgrade`), the load generator, and this script polling the database.

Shares are spread over `--channels` community channels (each set up with a signed `/pln
setup` from the coach U_COACH; the first is C_PLN): Slack allows about one message per second
per channel and the bot paces itself to that, so one channel could card only 1 share a
second. The default is enough channels for the share rate (`--channels 1` puts everything in
C_PLN); `PLNBOT_SLACK_RATE` is raised to `--slack-rate` for the same reason.

    .venv/bin/python bench/steady.py                      # 200 req/s for 60 s, SQLite
    .venv/bin/python bench/steady.py --rate 100 --seconds 20 --drain 30
    .venv/bin/python bench/steady.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/bench_pg

It always exits 0 (it is a benchmark); read the PASS/FAIL lines.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import os
import platform
import re
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
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
    message_body,
    percentile,
    prepare_database,
    reaction_body,
    setup_communities,
    share_body,
    user_ids,
)
from bench.slack_ack import process_cpu, source_version, system_cpu  # noqa: E402

TARGET_ACK_P99_MS = 30.0
TARGET_COMMIT_P99_S = 1.0
BACKLOG_SECONDS = 2.0  # "bounded": never more queued than this much traffic
POLL = 0.25
PATTERN = ("share", "message", "share", "reaction")  # 50% / 25% / 25%
CONNECTION_FAILED, TIMED_OUT = -1, -2
OUTCOMES = {CONNECTION_FAILED: "connection failed", TIMED_OUT: "timed out"}
SLACK_PATIENCE_MS = 3000.0  # Slack retries a request not answered within 3 s


# --------------------------------------------------------------------------------------
# The timetable and the load generator (its own process)
# --------------------------------------------------------------------------------------


def plan(spec: dict[str, Any]) -> list[tuple[str, int, str, str]]:
    """(kind, share number or -1, body, content type) for every request, in send order."""
    users, channels = user_ids(spec["users"]), channel_ids(spec["channels"])
    run, root_url = spec["run"], spec["root_url"]
    base = int(time.time()) - 3600
    counts: Counter[str] = Counter()
    items: list[tuple[str, int, str, str]] = []
    for i in range(spec["requests"]):
        kind = PATTERN[i % len(PATTERN)]
        n = counts[kind]
        counts[kind] += 1
        if kind == "share":
            body, content_type = share_body(
                url=f"https://example.org/{run}/{n}",
                title=f"Title {n}",
                user=users[n % len(users)],
                channel=channels[n % len(channels)],
                root_url=root_url,
                key=f"share-{run}-{n}",
            )
            items.append((kind, n, body, content_type))
        elif kind == "message":
            body, content_type = message_body(
                user=users[(n * 7 + 3) % len(users)],
                channel=channels[n % len(channels)],
                ts=chatter_ts(base, n),
                text=f"Chatter {n}: anyone tried exit tickets this week?",
                event_id=f"Ev{run}M{n:07d}",
            )
            items.append((kind, -1, body, content_type))
        else:
            body, content_type = reaction_body(
                user=users[(n * 11 + 5) % len(users)],
                channel=channels[n % len(channels)],
                item_ts=chatter_ts(base, n),
                event_ts=chatter_ts(base + 1800, n),
                event_id=f"Ev{run}R{n:07d}",
                reaction="thumbsup",
            )
            items.append((kind, -1, body, content_type))
    return items


def chatter_ts(base: int, n: int) -> str:
    return f"{base + n // 1000}.{(n % 1000) * 1000 + 1:06d}"


def loadgen_main(conn: Connection, spec: dict[str, Any]) -> None:
    """Build the timetable, say "ready", wait for "go", send, report the results."""
    asyncio.run(_loadgen(conn, spec))


async def _loadgen(conn: Connection, spec: dict[str, Any]) -> None:
    import aiohttp

    from tests.slack_fakes import sign

    items = plan(spec)
    n = len(items)
    status = [0] * n
    latency = [math.nan] * n  # seconds from the timetable's moment to the whole response
    lag = [math.nan] * n  # seconds the generator was late sending it
    sent = [math.nan] * n  # wall clock when it left
    url, rate = spec["url"], spec["rate"]
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=spec["connections"], limit_per_host=spec["connections"])
    timeout = aiohttp.ClientTimeout(total=spec["request_timeout"])
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        conn.send(("ready", n))
        if await loop.run_in_executor(None, conn.recv) != "go":
            return

        async def send(i: int, due: float) -> None:
            _, _, body, content_type = items[i]
            lag[i] = loop.time() - due
            sent[i] = time.time()
            headers = {"Content-Type": content_type, **sign(body, SECRET)}
            try:
                async with http.post(url, data=body.encode(), headers=headers) as response:
                    await response.read()
                    status[i] = response.status
            except TimeoutError:
                status[i] = TIMED_OUT
            except aiohttp.ClientError:
                status[i] = CONNECTION_FAILED
            latency[i] = loop.time() - due

        began = loop.time() + 0.05
        cpu = time.process_time()
        in_flight: set[asyncio.Task[None]] = set()
        i = 0
        while i < n:
            now = loop.time()
            while i < n and began + i / rate <= now:
                task = loop.create_task(send(i, began + i / rate))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                i += 1
            if i < n:
                await asyncio.sleep(max(0.0, began + i / rate - loop.time()))
        sending = loop.time() - began
        await asyncio.gather(*list(in_flight))
        wall = loop.time() - began
        cpu = time.process_time() - cpu
    records = [
        (kind, share, status[i], latency[i], lag[i], sent[i])
        for i, (kind, share, _, _) in enumerate(items)
    ]
    conn.send(("done", {"records": records, "sending": sending, "wall": wall, "cpu": cpu}))


@dataclass(frozen=True)
class Sent:
    """One request of the timetable and what became of it."""

    kind: str
    share: int  # the share's number (its URL ends with it), -1 for other kinds
    status: int  # HTTP status, or CONNECTION_FAILED / TIMED_OUT
    latency: float  # seconds from the timetable's moment to the whole response
    lag: float  # seconds the generator was late sending it
    sent: float  # wall clock (epoch seconds) when it left

    @property
    def answered(self) -> bool:
        return self.status == 200


@dataclass
class Outcome:
    """The load's requests, and what the database and the fake held after the drain."""

    sent: list[Sent]
    prefix: str
    stored: dict[str, list[datetime]] = field(default_factory=dict)
    cards: Counter[str] = field(default_factory=Counter)

    def url(self, share: int) -> str:
        return f"{self.prefix}{share}"

    @property
    def answered(self) -> set[str]:
        """URLs of the shares answered 200."""
        return {self.url(r.share) for r in self.sent if r.kind == "share" and r.answered}

    @property
    def drained(self) -> bool:
        answered = self.answered
        return answered <= self.stored.keys() and answered <= self.cards.keys()

    def ack_ms(self, kind: str | None = None) -> list[float]:
        return [
            r.latency * 1000 for r in self.sent if r.answered and (kind is None or r.kind == kind)
        ]

    def commit_seconds(self) -> list[float]:
        """created_at of each answered share's first row minus the moment its request left."""
        return [seconds for _, seconds in self.commits()]

    def commits(self) -> list[tuple[float, float]]:
        """(when the request left, event-to-commit seconds) of each stored answered share."""
        out = []
        for r in self.sent:
            rows = self.stored.get(self.url(r.share)) if r.kind == "share" and r.answered else None
            if rows:
                out.append((r.sent, min(rows).timestamp() - r.sent))
        return out

    @property
    def lost(self) -> set[str]:
        return self.answered - self.stored.keys()


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


def bench(args: argparse.Namespace) -> None:
    run = uuid.uuid4().hex[:8]
    requests = int(args.rate * args.seconds)
    share_rate = args.rate * PATTERN.count("share") / len(PATTERN)
    channels = args.channels or max(1, math.ceil(share_rate * 1.25))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind through the finally
    lines: list[str] = []
    fake: FakeSlack | None = None
    serve: Serve | None = None
    helpers: list[Serve] = []  # `--workers`: `plnbot worker` processes beside serve
    store: Store | None = None
    loadgen: Any = None
    with tempfile.TemporaryDirectory(prefix="plnbot-steady-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            fake = FakeSlack(users=args.users, channels=channels, log=tmp / "fake.log")
            database_url = prepare_database(args.postgres, tmp, "steady")
            serve = Serve(
                database_url=database_url,
                fake=fake,
                tmp=tmp,
                name="serve",
                slack_rate=args.slack_rate,
                tuning={"PLNBOT_WORKERS": str(args.serve_workers)} if args.serve_workers else None,
                processes=args.processes,
            )
            for n in range(args.workers):
                helpers.append(
                    Serve(
                        database_url=database_url,
                        fake=fake,
                        tmp=tmp,
                        name=f"worker{n + 1}",
                        slack_rate=args.slack_rate,
                        worker=True,
                    )
                )
            store = Store(database_url)
            problem = setup_communities(serve, fake, store, channel_ids(channels), run)
            if problem:
                lines.append(f"set-up: {problem}")
            has_inbox = store.has_inbox()
            posts_before = len(fake.calls("chat.postMessage"))
            spec = {
                "url": serve.url,
                "root_url": fake.root_url,
                "run": run,
                "rate": args.rate,
                "requests": requests,
                "users": args.users,
                "channels": channels,
                "connections": args.connections,
                "request_timeout": args.request_timeout,
            }
            ctx = mp.get_context("spawn")
            conn, child = ctx.Pipe()
            loadgen = ctx.Process(target=loadgen_main, args=(child, spec), name="loadgen")
            loadgen.start()
            child.close()
            if not conn.poll(120):
                raise RuntimeError("the load generator did not get ready within 120 s")
            conn.recv()

            # The load: sample the backlog every POLL seconds until the generator reports.
            backlog: list[int] = []
            cpu_before, machine_before = process_cpu(serve.pid), system_cpu()
            helpers_before = [process_cpu(h.pid) or 0.0 for h in helpers]
            began = time.monotonic()
            conn.send("go")
            limit = args.seconds + args.request_timeout + 60
            while not conn.poll(POLL):
                if has_inbox:
                    backlog.append(store.backlog())
                if time.monotonic() - began > limit:
                    raise RuntimeError(f"the load did not finish within {limit:.0f} s")
            _, raw = conn.recv()
            elapsed = time.monotonic() - began
            cpu_after, machine_after = process_cpu(serve.pid), system_cpu()
            helpers_cpu = [
                (process_cpu(h.pid) or 0.0) - before
                for h, before in zip(helpers, helpers_before, strict=True)
            ]
            backlog_at_end = store.backlog() if has_inbox else 0

            # The drain: every answered share stored and carded, or --drain seconds.
            outcome = Outcome(
                sent=[Sent(*record) for record in raw["records"]],
                prefix=f"https://example.org/{run}/",
            )
            pattern = re.compile(re.escape(outcome.prefix) + r"\d+")
            drain_backlog: list[int] = []
            drain_began = time.monotonic()
            while True:
                outcome.stored = store.shares(outcome.prefix)
                outcome.cards = card_counts(fake.calls("chat.postMessage"), pattern)
                if outcome.drained or time.monotonic() - drain_began > args.drain:
                    break
                if has_inbox:
                    drain_backlog.append(store.backlog())
                time.sleep(0.5)
            drained = time.monotonic() - drain_began

            lines += report(outcome, raw, args)
            lines.append(
                f"drain: {'all stored and carded' if outcome.drained else 'gave up'} "
                f"{drained:.1f} s after the load (--drain {args.drain:g} s)"
            )
            if has_inbox:
                lines.append(
                    f"max backlog: {max(backlog, default=0)} inbox rows pending or claimed during "
                    f"the load ({len(backlog)} samples, every {POLL} s); {backlog_at_end} when it "
                    f"ended; max {max(drain_backlog, default=backlog_at_end)} while draining"
                )
            else:
                lines.append("backlog: n/a (no inbox table)")
            if cpu_before is not None and cpu_after is not None:
                text = (
                    f"CPU during the load (% of one core): plnbot serve "
                    f"{100 * (cpu_after - cpu_before) / elapsed:.0f}, load generator "
                    f"{100 * raw['cpu'] / raw['wall']:.0f}"
                )
                for n, used in enumerate(helpers_cpu):
                    text += f", plnbot worker {n + 1} {100 * used / elapsed:.0f}"
                if machine_before is not None and machine_after is not None:
                    text += (
                        f", whole machine {100 * (machine_after - machine_before) / elapsed:.0f}"
                    )
                lines.append(text)
            lines.append(
                f"fake Slack: {len(fake.calls('chat.postMessage')) - posts_before} "
                "chat.postMessage calls during the load and the drain"
            )
            lines += verdicts(outcome, backlog, has_inbox, args)
            lines += [f"plnbot log: {line}" for line in serve.log_problems()]
        except (RuntimeError, OSError) as exc:
            lines.append(f"benchmark stopped early: {exc}")
            for log in sorted(tmp.glob("*.log")):
                tail = log.read_text(errors="replace").splitlines()[-15:]
                lines += [f"--- last lines of {log.name}:", *(f"  {t}" for t in tail)]
        finally:
            if loadgen is not None:
                loadgen.join(5)
                if loadgen.is_alive():
                    loadgen.terminate()
            for helper in helpers:
                helper.stop()
            if serve is not None:
                serve.stop()
            if store is not None:
                store.dispose()
            if fake is not None:
                fake.stop()
    db = "PostgreSQL" if args.postgres else "SQLite"
    print()
    print(
        f"Steady load: {args.rate:g} requests/s for {args.seconds:g} s ({requests} requests: "
        f"50% shares, 25% channel chatter, 25% reactions) from {args.users} users in "
        f"{channels} community channels, {args.connections} connections; plnbot serve"
        f"{f' --processes {args.processes}' if args.processes > 1 else ''}"
        f"{f' and {args.workers} plnbot worker' if args.workers else ''} on {db}; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; source {source_version()}"
    )
    for line in lines:
        print(line)


def report(outcome: Outcome, raw: dict[str, Any], args: argparse.Namespace) -> list[str]:
    sent = outcome.sent
    others = Counter(r.status for r in sent if not r.answered)
    other_text = (
        ", ".join(f"{OUTCOMES.get(s, f'HTTP {s}')}: {c}" for s, c in sorted(others.items()))
        or "none"
    )
    ack = outcome.ack_ms()
    lag_ms = [r.lag * 1000 for r in sent if not math.isnan(r.lag)]
    late = sum(1 for x in ack if x > SLACK_PATIENCE_MS)
    out = [
        f"requests sent {len(sent)} in {raw['sending']:.1f} s (the last answered at "
        f"{raw['wall']:.1f} s); answered 200: {sum(r.answered for r in sent)}; other: {other_text}",
        f"ack latency (timetable to response, answered): p50 {percentile(ack, 50):.1f} ms, "
        f"p99 {percentile(ack, 99):.1f} ms, max {max(ack, default=math.nan):.1f} ms; "
        f"{late} answered after Slack's 3 s; generator lag p99 {percentile(lag_ms, 99):.1f} ms",
    ]
    for kind in dict.fromkeys(r.kind for r in sent):
        values = outcome.ack_ms(kind)
        out.append(
            f"  {kind:<9}{sum(r.kind == kind for r in sent):>7} sent, ack p50 "
            f"{percentile(values, 50):6.1f} ms, p99 {percentile(values, 99):6.1f} ms"
        )
    commit_ms = [x * 1000 for x in outcome.commit_seconds()]
    out.append(
        f"event-to-commit (shares: created_at minus sent): p50 {percentile(commit_ms, 50):.0f} ms, "
        f"p99 {percentile(commit_ms, 99):.0f} ms, max {max(commit_ms, default=math.nan):.0f} ms "
        f"over {len(commit_ms)} stored answered shares"
    )
    # A queue that grows shows as event-to-commit growing over the run.
    commits, start = outcome.commits(), min((r.sent for r in sent), default=0.0)
    width = max(1.0, args.seconds / 6)
    windows = []
    for w in range(math.ceil(args.seconds / width)):
        values = [x * 1000 for t, x in commits if w * width <= t - start < (w + 1) * width]
        windows.append(f"{w * width:.0f}-{(w + 1) * width:.0f} s {percentile(values, 99):.0f}")
    out.append(f"  p99 ms by when the share was sent: {', '.join(windows)}")
    answered, stored, cards = outcome.answered, outcome.stored, outcome.cards
    out.append(
        f"shares answered 200: {len(answered)}; stored {len(answered & stored.keys())}, "
        f"carded {len(answered & cards.keys())}, lost (answered, not stored) {len(outcome.lost)}, "
        f"duplicated: stored twice {sum(len(v) > 1 for v in stored.values())}, carded twice "
        f"{sum(v > 1 for v in cards.values())}; stored though not answered 200: "
        f"{len(stored.keys() - answered)}"
    )
    return out


def verdicts(
    outcome: Outcome, backlog: list[int], has_inbox: bool, args: argparse.Namespace
) -> list[str]:
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    p99 = percentile(outcome.ack_ms(), 99)
    commit_p99 = percentile(outcome.commit_seconds(), 99)
    lost = len(outcome.lost)
    bound = args.rate * BACKLOG_SECONDS
    out = [
        f"{verdict(p99 < TARGET_ACK_P99_MS)} ack p99 {p99:.1f} ms "
        f"(target < {TARGET_ACK_P99_MS:.0f} ms)",
        f"{verdict(commit_p99 < TARGET_COMMIT_P99_S)} event-to-commit p99 "
        f"{commit_p99 * 1000:.0f} ms (target < {TARGET_COMMIT_P99_S * 1000:.0f} ms)",
    ]
    if has_inbox:
        peak = max(backlog, default=0)
        out.append(
            f"{verdict(peak < bound)} max backlog {peak} (bounded: below {bound:.0f}, what "
            f"{BACKLOG_SECONDS:g} s of traffic at {args.rate:g}/s would queue)"
        )
    else:
        out.append("n/a  backlog bounded: not measurable (no inbox table)")
    out.append(f"{verdict(lost == 0)} lost {lost} (target: no answered share unstored)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200, help="requests per second (200)")
    parser.add_argument("--seconds", type=float, default=60, help="seconds of load (60)")
    parser.add_argument(
        "--drain", type=float, default=30, help="seconds to wait after the load for shares (30)"
    )
    parser.add_argument("--users", type=int, default=200, help="different teachers (200)")
    parser.add_argument(
        "--channels",
        type=int,
        default=0,
        help="community channels the traffic is spread over (default: shares/s x 1.25, so "
        "Slack's one message per second per channel can card them all)",
    )
    parser.add_argument(
        "--connections", type=int, default=256, help="the generator's connection pool (256)"
    )
    parser.add_argument(
        "--request-timeout", type=float, default=10, help="seconds one request may take (10)"
    )
    parser.add_argument(
        "--slack-rate",
        type=float,
        default=1000,
        help="PLNBOT_SLACK_RATE for serve, messages/s per workspace (1000; Slack's default 20 "
        "would hold 100 cards/s back)",
    )
    parser.add_argument(
        "--postgres", metavar="URL", help="run on this PostgreSQL database (its schema is dropped)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="also run N `plnbot worker` processes on the database (PostgreSQL: replicas "
        "sharing the work; default 0)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="plnbot as `serve --processes N` (needs --postgres): N processes sharing the port",
    )
    parser.add_argument(
        "--serve-workers",
        type=int,
        default=0,
        metavar="N",
        help="PLNBOT_WORKERS for the serve process only (with --workers: leave the work to them)",
    )
    args = parser.parse_args()
    if args.rate <= 0 or args.seconds <= 0 or args.users < 1 or args.connections < 1:
        parser.error("--rate, --seconds, --users and --connections must be positive")
    if args.processes < 1 or (args.processes > 1 and not args.postgres):
        parser.error("--processes needs --postgres (SQLite has one writer)")
    if args.workers < 0 or (args.workers and not args.postgres):
        parser.error("--workers needs --postgres (SQLite has one writer: replicas would queue)")
    bench(args)


if __name__ == "__main__":
    main()
