"""Fan-out benchmark: 10,000 members' check-ins through the fake Slack Web API, which enforces
a workspace-wide rate limit. Prints the wall time against the limit-bound minimum
(messages / rate), duplicates, losses, 429s and the sender's peak memory; then the same with a
`kill -9` of the sender at 50% and a restart.

    python bench/fanout.py [--members 10000] [--rate 50] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.db import Database  # noqa: E402
from storage.models import Community, Member, Membership, OutboxMessage, Workspace  # noqa: E402

PLNBOT = str(Path(sys.executable).with_name("plnbot"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_fake(rate: float) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fake_slack_server",
            "--port",
            str(port),
            "--rate-limit",
            str(rate),
            "--seconds",
            "3600",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.readline()
    return process, f"http://127.0.0.1:{port}"


def prepare(url: str, members: int) -> Database:
    db = Database(url)
    if db.is_sqlite:
        db.upgrade()
    else:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
        db.upgrade()
    now = datetime.now(UTC)
    with db.session() as session:
        workspace = Workspace(platform="slack", external_id="T0001", created_at=now)
        session.add(workspace)
        session.flush()
        community = Community(
            workspace_id=workspace.id, channel_id="C_PLN", name="Bench", created_at=now
        )
        session.add(community)
        session.flush()
        # cadence "off": the worker's planner queues nothing of its own during the run
        session.execute(
            sa.insert(Member),
            [
                {
                    "workspace_id": workspace.id,
                    "user_id": f"U{i:06d}",
                    "display_name": f"Teacher {i}",
                    "cadence": "off",
                    "created_at": now,
                }
                for i in range(members)
            ],
        )
        ids = session.execute(sa.select(Member.id).order_by(Member.id)).scalars().all()
        session.execute(
            sa.insert(Membership),
            [{"community_id": community.id, "member_id": mid, "joined_at": now} for mid in ids],
        )
        session.execute(
            sa.insert(OutboxMessage),
            [
                {
                    "key": f"checkin:{mid}:{now.date().isoformat()}",
                    "workspace_id": workspace.id,
                    "kind": "checkin",
                    "member_id": mid,
                    "object_id": community.id,
                    "not_before": now,
                    "created_at": now,
                    "status": "pending",
                    "attempts": 0,
                    "error": "",
                }
                for mid in ids
            ],
        )
    return db


def sent(db: Database) -> int:
    with db.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == "sent")
        ).scalar_one()


def start_worker(db_url: str, api: str, rate: float) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_API_URL": f"{api}/api/",
        "PLNBOT_SLACK_RATE": str(rate),
        "PLNBOT_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([PLNBOT, "worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def recorded(api: str) -> tuple[Counter[str], int]:
    with urllib.request.urlopen(f"{api}/_calls/chat.postMessage", timeout=30) as response:
        data = json.load(response)
    return Counter(c["channel"] for c in data["calls"]), int(data["rate_limited"])


def run(
    db_url: str, members: int, rate: float, pace: float, kill_at: float | None, timeout: float
) -> dict[str, float]:
    fake, api = start_fake(rate)
    db = prepare(db_url, members)
    peaks = []
    started = time.monotonic()
    worker = start_worker(db_url, api, pace)
    restarted = False
    try:
        deadline = started + timeout
        while sent(db) < members and time.monotonic() < deadline:
            time.sleep(0.2)
            if kill_at is not None and not restarted and sent(db) >= members * kill_at:
                peaks.append(peak_rss_mb(worker.pid))
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                worker = start_worker(db_url, api, pace)
                restarted = True
        wall = time.monotonic() - started
        peaks.append(peak_rss_mb(worker.pid))
    finally:
        worker.terminate()
        worker.wait(10)
    counts, limited = recorded(api)
    fake.kill()
    fake.wait()
    db.dispose()
    expected = {f"U{i:06d}" for i in range(members)}
    return {
        "wall_s": wall,
        "minimum_s": members / rate,
        "ratio": wall / (members / rate),
        "delivered": len(set(counts) & expected),
        "lost": len(expected - set(counts)),
        "duplicates": sum(counts.values()) - len(counts),
        "http_429": limited,
        "peak_rss_mb": max(peaks),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument(
        "--rate", type=float, default=50.0, help="the fake's workspace-wide limit (messages/s)"
    )
    parser.add_argument(
        "--pace",
        type=float,
        default=None,
        help="PLNBOT_SLACK_RATE for the sender (default 0.97 x rate)",
    )
    parser.add_argument(
        "--postgres", default=None, help="run on this PostgreSQL URL (its schema is dropped!)"
    )
    args = parser.parse_args()
    pace = args.pace or args.rate * 0.97
    with tempfile.TemporaryDirectory() as folder:
        print(
            f"{args.members} check-ins, fake Slack limit {args.rate:g} msg/s, sender pacing {pace:g} msg/s, {'PostgreSQL' if args.postgres else 'SQLite'}",
            flush=True,
        )
        timeout = args.members / args.rate * 3 + 60
        for label, kill_at in (("steady", None), ("kill -9 at 50% + restart", 0.5)):
            db_url = args.postgres or f"sqlite:///{folder}/fanout-{kill_at}.db"
            result = run(db_url, args.members, args.rate, pace, kill_at, timeout)
            print(
                f"{label:26} wall {result['wall_s']:7.1f} s | limit-bound {result['minimum_s']:6.1f} s | "
                f"ratio {result['ratio']:.3f} (target <= 1.15) | lost {result['lost']} | "
                f"duplicates {result['duplicates']} | 429s {result['http_429']} | "
                f"sender peak RSS {result['peak_rss_mb']:.0f} MB",
                flush=True,
            )


if __name__ == "__main__":
    main()
