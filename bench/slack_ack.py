"""Time-to-ack for signed Slack requests: `plnbot serve` against a bare Bolt app.

In one run, on the same aiohttp server stack and machine, this measures throughput and
p50/p99 time-to-ack (the full HTTP response Slack waits for) for signed `/pln share`
slash commands and `message.im` events at 32 concurrent connections:

* **bare**: a Bolt `AsyncApp` with default settings whose listeners only `await ack()`,
  mounted on an aiohttp app the way `plnbot serve` mounts ours (POST /slack/events);
* **plnbot**: the real `plnbot serve --no-scheduler`, which acks and then does the real
  work (database, replies to the Slack Web API) after the ack.

Every process is separate: the fake Slack Web API (`tests.slack_fakes.FakeSlackAPI`),
each server under test, and the load generator (aiohttp, one connection pool of
`--concurrency`). Everything listens on 127.0.0.1. Per kind: the bare app, then a fresh
`plnbot serve` process (same database; the community is set up once with `/pln setup`),
each warmed up with `--warmup` requests that are not counted. After the load against
plnbot it waits up to `--drain` seconds for the work done after the acks and reports what
was committed, stored and posted; then it stops that server and counts what had been
acked but was never done. CPU columns show how busy each process (and the rest of the
machine) was, so a disturbed run can be told from a slow one.

Targets (from the issue): plnbot throughput at least 0.9x the bare app's, p99 ack < 30 ms.

    .venv/bin/python bench/slack_ack.py --requests 2000
    .venv/bin/python bench/slack_ack.py --postgres postgresql+psycopg://user@127.0.0.1/empty_db
    .venv/bin/python bench/slack_ack.py --py-spy /tmp/prof   # needs `pip install py-spy`

It always exits 0 (it is a benchmark); read the printed PASS/FAIL lines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import math
import multiprocessing as mp
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"
SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
ADMIN = "U_ADMIN"
CHANNEL = "C_PLN"
USERS = [f"U_T{n}" for n in range(1, 51)]
KINDS = ("share", "im")
TARGET_RATIO = 0.9
TARGET_P99_MS = 30.0
MAX_FAKE_COMMANDS = 1_000_000  # the fake's control loop ends by count (or on "stop"/EOF)
POLL = 0.05


# --------------------------------------------------------------------------------------
# Fake Slack Web API, in its own process
# --------------------------------------------------------------------------------------


def fake_main(conn: Connection) -> None:
    """Serve FakeSlackAPI; answer "counts" on the pipe with calls per method until "stop"."""
    asyncio.run(_fake(conn))


async def _fake(conn: Connection) -> None:
    from tests.slack_fakes import DEFAULT_USERS, FakeSlackAPI

    users: dict[str, dict[str, Any]] = dict(DEFAULT_USERS)
    for user in USERS:
        users[user] = {
            "name": user.lower(),
            "real_name": f"Teacher {user[3:]}",
            "tz": "America/New_York",
        }
    fake = FakeSlackAPI(users=users, channel_members={CHANNEL: [ADMIN, *USERS, "UBOT"]})
    await fake.start()
    conn.send({"base_url": fake.base_url, "root_url": fake.root_url})
    loop = asyncio.get_running_loop()
    try:
        for _ in range(MAX_FAKE_COMMANDS):
            try:
                command = await loop.run_in_executor(None, conn.recv)
            except (EOFError, OSError):
                break
            if command != "counts":
                break
            counts = Counter(method for method, _ in fake.calls)
            counts["(response_url)"] = len(fake.responses)
            counts["(failed)"] = len(fake.failed_calls)
            conn.send(dict(counts))
    finally:
        await fake.stop()


class FakeProcess:
    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=fake_main, args=(child,), name="fake-slack", daemon=True)
        self.process.start()
        child.close()
        if not self.conn.poll(30):
            raise RuntimeError("the fake Slack API did not start within 30 s")
        urls = self.conn.recv()
        self.base_url: str = urls["base_url"]
        self.root_url: str = urls["root_url"]

    def counts(self) -> dict[str, int]:
        self.conn.send("counts")
        if not self.conn.poll(30):
            raise RuntimeError("the fake Slack API stopped answering")
        return self.conn.recv()

    def stop(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self.conn.send("stop")
        self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


# --------------------------------------------------------------------------------------
# Bare Bolt app (server B), run as `python bench/slack_ack.py --serve-bare PORT FAKE_URL`
# --------------------------------------------------------------------------------------


def serve_bare(port: int, fake_base_url: str) -> None:
    """A default-settings Bolt AsyncApp whose listeners only ack, on an aiohttp app."""
    import logging

    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The token goes on the client (Bolt ignores `token=`, and warns, when `client=` is given;
    # it also reads SLACK_BOT_TOKEN by itself, hence the pop).
    bolt = AsyncApp(
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        client=AsyncWebClient(token=os.environ.pop("SLACK_BOT_TOKEN"), base_url=fake_base_url),
    )

    @bolt.command("/pln")
    async def command(ack: AsyncAck) -> None:
        await ack()

    @bolt.event("message")
    async def message(ack: AsyncAck) -> None:
        await ack()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    application = web.Application(client_max_size=2 * 1024 * 1024)
    application.router.add_post("/slack/events", events)
    web.run_app(application, host=HOST, port=port, print=None, access_log=None)


# --------------------------------------------------------------------------------------
# Request bodies
# --------------------------------------------------------------------------------------


def share_request(i: int, root_url: str, run: str) -> tuple[str, str]:
    from tests.slack_fakes import slash_command_body

    user = USERS[i % len(USERS)]
    tail = hashlib.md5(f"{run}-{i}".encode(), usedforsecurity=False).hexdigest()
    body = slash_command_body(
        f"share https://example.org/lesson-{i} Lesson {i}",
        user_id=user,
        user_name=user.lower(),
        channel_id=CHANNEL,
        channel_name="pln-bench",
        response_url=f"{root_url}/response/share-{i}",
        trigger_id=f"{7400000000000 + i}.738474920.{tail}",
    )
    return body, "application/x-www-form-urlencoded"


def im_request(i: int, root_url: str, run: str) -> tuple[str, str]:
    from tests.slack_fakes import event_body

    user = USERS[i % len(USERS)]
    ts = f"{1700000000 + i // 1000}.{(i % 1000) * 1000 + 1:06d}"
    event = {
        "client_msg_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run}-{i}")),
        "type": "message",
        "text": "7 - tried exit tickets",
        "user": user,
        "ts": ts,
        "team": "T0001",
        "channel": f"D_{user}",
        "event_ts": ts,
        "channel_type": "im",
    }
    body = event_body(event, event_id=f"Ev{run}{i:08d}", event_time=int(time.time()))
    return body, "application/json"


BUILDERS = {"share": share_request, "im": im_request}


# --------------------------------------------------------------------------------------
# Load generator, in its own process
# --------------------------------------------------------------------------------------


def loadgen_main(conn: Connection, spec: dict[str, Any]) -> None:
    """Warm up, report, wait for "go", measure, report. Talks to the parent over `conn`."""
    asyncio.run(_loadgen(conn, spec))


async def _loadgen(conn: Connection, spec: dict[str, Any]) -> None:
    import aiohttp

    build = BUILDERS[spec["kind"]]
    url = spec["url"]
    concurrency = spec["concurrency"]
    start, warmup, count = spec["start"], spec["warmup"], spec["requests"]
    warm = [build(i, spec["root_url"], spec["run"]) for i in range(start, start + warmup)]
    timed = [
        build(i, spec["root_url"], spec["run"])
        for i in range(start + warmup, start + warmup + count)
    ]
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        conn.send(("warmed", await _burst(http, url, warm, concurrency)))
        go = await loop.run_in_executor(None, conn.recv)
        if go != "go":
            return
        conn.send(("done", await _burst(http, url, timed, concurrency)))


async def _burst(
    http: Any, url: str, items: list[tuple[str, str]], concurrency: int
) -> dict[str, Any]:
    import aiohttp

    from tests.slack_fakes import sign

    n = len(items)
    latency = [0.0] * n
    status = [0] * n
    indexes = iter(range(n))  # shared by the workers: every request is sent exactly once

    async def worker() -> None:
        for i in indexes:
            body, content_type = items[i]
            headers = {"Content-Type": content_type, **sign(body, SECRET)}
            data = body.encode()
            began = time.perf_counter()
            try:
                async with http.post(url, data=data, headers=headers) as response:
                    await response.read()
                    status[i] = response.status
            except (aiohttp.ClientError, TimeoutError):
                status[i] = -1
            latency[i] = time.perf_counter() - began

    began, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - began
    cpu = time.process_time() - cpu
    return {"latency": latency, "status": status, "wall": wall, "cpu": cpu, "ended": time.time()}


@dataclass
class Result:
    server: str
    kind: str
    requests: int
    wall: float
    latency_ms: list[float]
    errors: int
    error_statuses: dict[int, int] = field(default_factory=dict)
    drain: str = ""
    cpu: dict[str, float] = field(default_factory=dict)  # % of one CPU while measuring
    acked: int = 0  # warm-up + measured requests answered 200

    @property
    def rate(self) -> float:
        return self.requests / self.wall if self.wall else 0.0

    def pct(self, p: float) -> float:
        ordered = sorted(self.latency_ms)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summarise(server: str, kind: str, raw: dict[str, Any]) -> Result:
    statuses = Counter(s for s in raw["status"] if s != 200)
    return Result(
        server=server,
        kind=kind,
        requests=len(raw["status"]),
        wall=raw["wall"],
        latency_ms=[x * 1000 for x in raw["latency"]],
        errors=sum(statuses.values()),
        error_statuses=dict(statuses),
    )


# --------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_listening(
    port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 60
) -> None:
    for _ in range(int(timeout / POLL)):
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(POLL)
    raise RuntimeError(f"{what} did not listen on {HOST}:{port} within {timeout:.0f} s")


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def die_with_parent() -> None:
    """In a child before exec: get SIGINT when the benchmark dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG


TUNING = ("PLNBOT_WORKERS", "PLNBOT_SEND_CONCURRENCY")  # passed through, to compare settings


def clean_env(**extra: str) -> dict[str, str]:
    """The parent's environment without any bot settings (but the runtime's tuning), plus
    `extra`."""
    prefixes = ("SLACK_", "PLNBOT_", "MICROSOFT_", "OPENAI_", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) or k in TUNING}
    env.update(extra)
    return env


def process_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of a process and of the processes it started (`serve
    --processes N`: the supervisor's children), from Linux's /proc; None when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            for child in task.read_text().split():
                total += process_cpu(int(child)) or 0.0
    return total


def system_cpu() -> float | None:
    """Busy CPU seconds of the whole machine, all cores (Linux /proc/stat), or None."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class Store:
    """Counts in plnbot's database, read from this process while the server runs."""

    def __init__(self, database_url: str) -> None:
        import sqlalchemy as sa

        self._sa = sa
        self.engine = sa.create_engine(database_url)

    def _count(self, model: Any) -> int:
        with self.engine.connect() as conn:
            query = self._sa.select(self._sa.func.count()).select_from(model)
            return int(conn.execute(query).scalar_one())

    def receipts(self) -> int:
        """Inbound events whose unit of work has committed (one receipt each)."""
        from storage.models import InboundReceipt

        return self._count(InboundReceipt)

    def artifacts(self) -> int:
        from storage.models import Artifact

        return self._count(Artifact)

    def dispose(self) -> None:
        self.engine.dispose()


def wait_until(
    read: Callable[[], int], target: int, *, timeout: float, stall: float = 10.0
) -> tuple[float, int, bool]:
    """Poll `read()` until it reaches `target`, `timeout` passes or it stalls for `stall` s."""
    began = time.perf_counter()
    last, last_change = -1, began
    value = 0
    for _ in range(max(1, int(timeout / POLL))):
        value = read()
        now = time.perf_counter()
        if value >= target:
            return now - began, value, True
        if value != last:
            last, last_change = value, now
        elif now - last_change > stall:
            break
        time.sleep(POLL)
    return time.perf_counter() - began, value, False


def post_signed(url: str, body: str, content_type: str) -> int:
    from tests.slack_fakes import sign

    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": content_type, **sign(body, SECRET)}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


class Profiler:
    """Optional py-spy recording of the server under test during a measured run."""

    def __init__(self, out_dir: Path | None) -> None:
        self.out_dir = out_dir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, pid: int, name: str) -> None:
        if self.out_dir is None:
            return
        py_spy = Path(sys.executable).parent / "py-spy"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        command = [str(py_spy), "record", "--pid", str(pid), "--rate", "250", "--format", "raw"]
        command += ["--output", str(self.out_dir / f"{name}.txt"), "--nonblocking"]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        time.sleep(0.5)  # let it attach

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


def run_kind(
    ctx: Any,
    server: str,
    kind: str,
    url: str,
    fake: FakeProcess,
    args: argparse.Namespace,
    start: int,
    run: str,
    *,
    store: Store | None,
    profiler: Profiler,
    server_pid: int,
) -> Result:
    """Warm up, measure, and (for plnbot, with `store`) wait for the work after the acks."""
    spec = {
        "kind": kind,
        "url": url,
        "root_url": fake.root_url,
        "concurrency": args.concurrency,
        "start": start,
        "warmup": args.warmup,
        "requests": args.requests,
        "run": run,
    }

    def posts() -> int:
        return fake.counts().get("chat.postMessage", 0)

    conn, child = ctx.Pipe()
    loadgen = ctx.Process(
        target=loadgen_main, args=(child, spec), name=f"loadgen-{kind}", daemon=True
    )
    if store is not None:
        receipts_before, artifacts_before, posts_before = (
            store.receipts(),
            store.artifacts(),
            posts(),
        )
    loadgen.start()
    child.close()
    try:
        if not conn.poll(args.timeout):
            raise RuntimeError(
                f"{server}/{kind}: warm-up did not finish within {args.timeout:.0f} s"
            )
        _, warmed = conn.recv()
        warm_ok = sum(1 for s in warmed["status"] if s == 200)
        backlog = 0
        if store is not None:  # let the warm-up's database work finish first, if it can
            _, committed, _ = wait_until(
                store.receipts, receipts_before + warm_ok, timeout=args.drain, stall=args.drain
            )
            backlog = receipts_before + warm_ok - committed
        profiler.start(server_pid, f"{server}-{kind}")
        pids = {"server": server_pid, "fake": fake.process.pid}
        cpu_before = {name: process_cpu(pid) for name, pid in pids.items()}
        machine_before = system_cpu()
        began = time.perf_counter()
        conn.send("go")
        if not conn.poll(args.timeout):
            raise RuntimeError(f"{server}/{kind}: load did not finish within {args.timeout:.0f} s")
        _, raw = conn.recv()
        elapsed = time.perf_counter() - began
        machine_after = system_cpu()
        profiler.stop()
        result = summarise(server, kind, raw)
        result.cpu["gen"] = 100 * raw["cpu"] / raw["wall"]
        for name, pid in pids.items():
            after, before = process_cpu(pid), cpu_before[name]
            if after is not None and before is not None:
                result.cpu[name] = 100 * (after - before) / elapsed
        if machine_before is not None and machine_after is not None and len(result.cpu) == 3:
            busy = 100 * (machine_after - machine_before) / elapsed
            result.cpu["other"] = max(0.0, busy - sum(result.cpu.values()))
        result.acked = warm_ok + sum(1 for s in raw["status"] if s == 200)
        if store is not None:
            ok = result.acked
            deadline = time.monotonic() + args.drain
            _, receipts, db_done = wait_until(
                store.receipts, receipts_before + ok, timeout=args.drain, stall=args.drain
            )
            db_after = time.time() - raw["ended"]
            left = max(POLL, deadline - time.monotonic())
            _, posted, posts_done = wait_until(posts, posts_before + ok, timeout=left, stall=left)
            posts_after = time.time() - raw["ended"]
            committed = receipts - receipts_before
            parts = []
            if backlog:
                parts.append(f"{backlog} warm-up events were still queued when measuring; ")
            if db_done:
                parts.append(f"database work done {db_after:.2f} s after the last ack (")
            else:
                parts.append(f"database work by {db_after:.1f} s after the last ack: ")
            parts.append(f"{committed}/{ok} events committed")
            if kind == "share":
                parts.append(f", {store.artifacts() - artifacts_before}/{ok} artifacts stored")
            parts.append(")" if db_done else "")
            parts.append(f"; replies posted {posted - posts_before}/{ok}")
            parts.append(
                f", the last {posts_after:.1f} s after the last ack"
                if posts_done
                else f" by {posts_after:.1f} s after the last ack"
            )
            result.drain = "".join(parts)
        return result
    finally:
        profiler.stop()
        with contextlib.suppress(OSError, BrokenPipeError):
            conn.send("stop")
        loadgen.join(5)
        if loadgen.is_alive():
            loadgen.terminate()
            loadgen.join(5)


def start_server(
    command: list[str], env: dict[str, str], tmp: str, name: str
) -> subprocess.Popen[bytes]:
    with open(Path(tmp) / f"{name}.log", "wb") as log:
        return subprocess.Popen(
            command,
            env=env,
            cwd=tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )


def setup_community(url: str, fake: FakeProcess, run: str, notes: list[str]) -> None:
    """`/pln setup Bench` as a coach in C_PLN; wait for the community's announcement."""
    from tests.slack_fakes import slash_command_body

    posts_before = fake.counts().get("chat.postMessage", 0)
    setup = slash_command_body(
        "setup Bench",
        user_id=ADMIN,
        user_name="pln.admin",
        channel_id=CHANNEL,
        channel_name="pln-bench",
        response_url=f"{fake.root_url}/response/setup",
        trigger_id=f"7399999999999.738474920.{run}",
    )
    status = post_signed(url, setup, "application/x-www-form-urlencoded")
    _, _, done = wait_until(
        lambda: fake.counts().get("chat.postMessage", 0), posts_before + 1, timeout=15
    )
    if status != 200 or not done:
        notes.append(f"`/pln setup Bench` answered {status}; community post seen: {done}")


def bench(args: argparse.Namespace) -> None:
    ctx = mp.get_context("spawn")
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for kind in kinds:
        if kind not in KINDS:
            raise SystemExit(f"--kinds: unknown kind {kind!r} (use {','.join(KINDS)})")
    run = uuid.uuid4().hex[:8]
    # `timeout`/`kill` send SIGTERM: unwind through the `finally` that stops the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: list[Result] = []
    notes: list[str] = []
    profiler = Profiler(Path(args.py_spy) if args.py_spy else None)
    fake: FakeProcess | None = None
    servers: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="plnbot-bench-") as tmp:
        try:
            fake = FakeProcess(ctx)
            base_env = clean_env(
                SLACK_SIGNING_SECRET=SECRET, SLACK_BOT_TOKEN=TOKEN, PYTHONUNBUFFERED="1"
            )

            # B: the bare Bolt app.
            bare_port = free_port()
            me = [sys.executable, str(Path(__file__).resolve())]
            bare = start_server(
                [*me, "--serve-bare", str(bare_port), fake.base_url], base_env, tmp, "bare"
            )
            servers.append(bare)

            # A: plnbot serve, with a community set up in C_PLN.
            database_url = args.postgres or f"sqlite:///{tmp}/bench.db"
            env = dict(
                base_env,
                SLACK_API_URL=fake.base_url,
                PLNBOT_COACHES=ADMIN,
                DATABASE_URL=database_url,
                PLNBOT_LOG_LEVEL="WARNING",
                PLNBOT_LLM="off",
            )
            plnbot = shlex.split(args.plnbot_command) or [
                str(Path(sys.executable).parent / "plnbot")
            ]
            if args.postgres:
                subprocess.run(
                    [*plnbot, "db", "upgrade"], env=env, cwd=tmp, check=True, capture_output=True
                )
            wait_listening(bare_port, bare, "the bare Bolt app")
            bare_url = f"http://{HOST}:{bare_port}/slack/events"
            store: Store | None = None
            log_lines: list[str] = []

            def start_plnbot(part: int) -> tuple[subprocess.Popen[bytes], str]:
                port = free_port()
                command = [*plnbot, "serve", "--port", str(port), "--no-scheduler"]
                if args.processes > 1:
                    command += ["--processes", str(args.processes)]
                process = start_server(command, env, tmp, f"plnbot-{part}")
                servers.append(process)
                wait_listening(port, process, "plnbot serve")
                return process, f"http://{HOST}:{port}/slack/events"

            # One plnbot process per kind, so each kind starts without the other's backlog;
            # what a process had acked but not done when it was stopped is counted as lost.
            index = 0
            for part, kind in enumerate(kinds):
                results.append(
                    run_kind(
                        ctx,
                        "bare",
                        kind,
                        bare_url,
                        fake,
                        args,
                        index,
                        run,
                        store=None,
                        profiler=profiler,
                        server_pid=bare.pid,
                    )
                )
                index += args.warmup + args.requests
                ours, url = start_plnbot(part)
                if store is None:
                    store = Store(database_url)
                    setup_community(url, fake, run, notes)
                receipts_before = store.receipts()
                posts_before = fake.counts().get("chat.postMessage", 0)
                result = run_kind(
                    ctx,
                    "plnbot",
                    kind,
                    url,
                    fake,
                    args,
                    index,
                    run,
                    store=store,
                    profiler=profiler,
                    server_pid=ours.pid,
                )
                index += args.warmup + args.requests
                stop_process(ours)
                time.sleep(0.2)
                lost_events = result.acked - (store.receipts() - receipts_before)
                lost_replies = result.acked - (
                    fake.counts().get("chat.postMessage", 0) - posts_before
                )
                if lost_events or lost_replies:
                    result.drain += (
                        f"; when the server was stopped: {lost_events} acked events never "
                        f"committed, {lost_replies} replies never posted"
                    )
                results.append(result)
                log_text = (Path(tmp) / f"plnbot-{part}.log").read_text(errors="replace")
                log_lines += log_text.splitlines()
            if store is not None:
                store.dispose()
            calls = fake.counts()
            notes.append(
                "fake Slack Web API calls in total (both servers): "
                + ", ".join(f"{k} {v}" for k, v in sorted(calls.items()) if v)
            )
            problems = [line for line in log_lines if " ERROR " in line or "Traceback" in line]
            warnings = [line for line in log_lines if " WARNING " in line]
            notes.append(f"plnbot logs: {len(problems)} error lines, {len(warnings)} warning lines")
            distinct = dict.fromkeys(line.split(" ", 2)[-1] for line in problems or warnings)
            notes.extend(f"  {line[:200]}" for line in list(distinct)[:5])
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            notes.append(f"benchmark stopped early: {exc}")
            for path in sorted(Path(tmp).glob("*.log")):
                tail = path.read_text(errors="replace").splitlines()[-15:]
                notes.extend([f"--- last lines of {path.name}:", *(f"  {t}" for t in tail)])
        finally:
            profiler.stop()
            for server in servers:
                stop_process(server)
            if fake is not None:
                fake.stop()
    report(results, notes, args)


def source_version() -> str:
    """The commit measured, and whether the work tree had changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}" + (f" + {len(changed)} changed files" if changed else "")


def report(results: list[Result], notes: list[str], args: argparse.Namespace) -> None:
    import aiohttp
    import slack_bolt.version

    db = "PostgreSQL" if args.postgres else "SQLite"
    print()
    print(
        f"Slack time-to-ack: {args.requests} requests per kind (+{args.warmup} warm-up), "
        f"{args.concurrency} connections, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"slack_bolt {slack_bolt.version.__version__}, aiohttp {aiohttp.__version__}, plnbot on {db}, "
        f"source {source_version()}"
    )
    header = (
        f"{'server':<14}{'kind':<7}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
        f"{'errors':>8}   CPU%: {'server':>6}{'loadgen':>8}{'fake':>6}{'other':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        name = "bare Bolt" if r.server == "bare" else "plnbot serve"
        cpu = "".join(
            f"{r.cpu[key]:>{width}.0f}" if key in r.cpu else f"{'?':>{width}}"
            for key, width in (("server", 6), ("gen", 8), ("fake", 6), ("other", 7))
        )
        print(
            f"{name:<14}{r.kind:<7}{r.rate:>8.0f}{r.pct(50):>8.1f}{r.pct(99):>8.1f}"
            f"{max(r.latency_ms, default=math.nan):>8.1f}{r.errors:>8}         {cpu}"
            + (f"  {r.error_statuses}" if r.errors else "")
        )
    print(
        "CPU%: of one core during the measured requests; 'other' is the rest of the machine "
        "(other processes; well above 0 means the numbers are disturbed)."
    )
    print()
    by = {(r.server, r.kind): r for r in results}
    for kind in dict.fromkeys(r.kind for r in results):
        bare, ours = by.get(("bare", kind)), by.get(("plnbot", kind))
        if bare is None or ours is None:
            continue
        ratio = ours.rate / bare.rate if bare.rate else math.nan
        p99 = ours.pct(99)
        ok_ratio = ratio >= TARGET_RATIO
        ok_p99 = p99 < TARGET_P99_MS and ours.errors == 0
        print(
            f"{kind:<6} throughput plnbot/bare = {ours.rate:.0f}/{bare.rate:.0f} = {ratio:.2f}x "
            f"(target >= {TARGET_RATIO}x) {'PASS' if ok_ratio else 'FAIL'}; "
            f"plnbot p99 {p99:.1f} ms (target < {TARGET_P99_MS:.0f} ms, no errors) "
            f"{'PASS' if ok_p99 else 'FAIL'}"
        )
        if ours.drain:
            print(f"{'':<6} work after the acks: {ours.drain}")
    for note in notes:
        print(note)
    if args.py_spy:
        print(f"py-spy profiles (collapsed stacks) in {args.py_spy}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=3000, help="measured requests per kind (default 3000)"
    )
    parser.add_argument(
        "--warmup", type=int, default=200, help="warm-up requests per kind, not counted"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="concurrent connections (default 32)"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="plnbot as `serve --processes N` (needs --postgres): N processes sharing the port",
    )
    parser.add_argument("--kinds", default="share,im", help="comma-separated: share,im")
    parser.add_argument(
        "--postgres", metavar="URL", help="run plnbot on this (empty) PostgreSQL database"
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=60,
        help="seconds plnbot's work may take after the last ack before the server is stopped "
        "(default 60)",
    )
    parser.add_argument(
        "--plnbot-command",
        default="",
        metavar="CMD",
        help="command to run instead of .venv/bin/plnbot (e.g. another checkout's)",
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds any one phase may take")
    parser.add_argument(
        "--py-spy", metavar="DIR", help="record the servers with py-spy during the measured runs"
    )
    parser.add_argument(
        "--serve-bare", nargs=2, metavar=("PORT", "FAKE_URL"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(int(args.serve_bare[0]), args.serve_bare[1])
        return
    if args.requests < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--requests and --concurrency must be positive, --warmup not negative")
    bench(args)


if __name__ == "__main__":
    main()
