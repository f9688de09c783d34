"""Real processes on the PostgreSQL test database: two `plnbot worker`s share one outbox and
send every message exactly once; a worker killed with SIGKILL mid-fan-out loses nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel, select

from storage.db import Database
from storage.models import Community, Member, Membership, OutboxMessage, Workspace
from storage.queries import enqueue

ROOT = Path(__file__).resolve().parent.parent
PLNBOT = str(Path(sys.executable).with_name("plnbot"))
MEMBERS = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def pg(postgres_db: Database | None) -> Database:
    if postgres_db is None:
        pytest.skip("set PLNBOT_TEST_POSTGRES_URL to run the multi-process PostgreSQL tests")
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with postgres_db.engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return postgres_db


@pytest.fixture
def fake_slack() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_slack_server", "--port", str(port), "--seconds", "300"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.readline()  # "fake Slack Web API on ..."
    yield f"http://127.0.0.1:{port}"
    process.kill()
    process.wait()


def seed(db: Database) -> None:
    now = datetime.now(UTC)
    with db.session() as session:
        workspace = Workspace(platform="slack", external_id="T0001", created_at=now)
        session.add(workspace)
        session.flush()
        community = Community(
            workspace_id=workspace.id, channel_id="C_PLN", name="PLN", created_at=now
        )
        session.add(community)
        session.flush()
        for i in range(MEMBERS):
            member = Member(
                workspace_id=workspace.id, user_id=f"U{i:05d}", display_name=f"T{i}", created_at=now
            )
            session.add(member)
            session.flush()
            session.add(Membership(community_id=community.id, member_id=member.id, joined_at=now))
            enqueue(
                session,
                key=f"checkin:{member.id}:{now.date().isoformat()}",
                workspace_id=workspace.id,
                kind="checkin",
                member_id=member.id,
                object_id=community.id,
                now=now,
            )


def start_worker(db: Database, api: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": db.url,
        "SLACK_BOT_TOKEN": "xoxb-workers",
        "SLACK_API_URL": f"{api}/api/",
        "PLNBOT_SLACK_RATE": "400",
        # One message in flight: then a crash can send at most that one twice (with N in
        # flight, at most N; README "Crashes, restarts, replicas").
        "PLNBOT_SEND_CONCURRENCY": "1",
        "PLNBOT_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([PLNBOT, "worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def sent_count(db: Database) -> int:
    with db.session() as session:
        return session.exec(
            select(sa.func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent")
        ).one()


def wait_until(condition, seconds: float = 90) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def posts(api: str) -> Counter[str]:
    with urllib.request.urlopen(f"{api}/_calls/chat.postMessage", timeout=5) as response:
        calls = json.load(response)["calls"]
    return Counter(call["channel"] for call in calls)


def test_two_workers_send_every_checkin_exactly_once(pg: Database, fake_slack: str) -> None:
    seed(pg)
    workers = [start_worker(pg, fake_slack) for _ in range(2)]
    try:
        wait_until(lambda: sent_count(pg) >= MEMBERS)
        time.sleep(0.5)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(10)
    counts = posts(fake_slack)
    assert len(counts) == MEMBERS and set(counts.values()) == {1}


def test_a_worker_killed_mid_fanout_loses_nothing(pg: Database, fake_slack: str) -> None:
    seed(pg)
    first = start_worker(pg, fake_slack)
    try:
        wait_until(lambda: sent_count(pg) >= MEMBERS // 2)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    second = start_worker(pg, fake_slack)
    try:
        wait_until(lambda: sent_count(pg) >= MEMBERS)
        time.sleep(0.5)
    finally:
        second.terminate()
        second.wait(10)
    counts = posts(fake_slack)
    assert len(counts) == MEMBERS  # nothing lost
    assert sum(counts.values()) - MEMBERS <= 1  # at most the one in-flight message twice
