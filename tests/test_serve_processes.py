"""`plnbot serve --processes N`: one host's cores for one PostgreSQL database.

Black-box over HTTP, as an operator runs it: the supervisor and its children are real
processes, Slack requests are signed, the fake Slack Web API counts what was posted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack.platform import SlackPlatform
from adapters.teams.connector import CONVERSATION_LIMITS, TENANT_LIMITS, shared_limits
from tests.serve_rig import PLNBOT, ServeRig, postgres_rig

PROCESSES_DATABASE = "plnbot_processes"  # a scratch database: other tests truncate `test`


def children(pid: int) -> list[int]:
    """The serve processes a supervisor started (Linux's /proc; not multiprocessing's
    resource tracker)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            with contextlib.suppress(OSError):
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[ServeRig]:
    why = "several serve processes need it"
    async with postgres_rig(tmp_path, PROCESSES_DATABASE, why=why) as rig:
        try:
            yield rig
        finally:  # every serve process gone before the next test drops the schema
            for serve in rig.processes:
                left = children(serve.process.pid)
                if serve.process.poll() is None:
                    serve.terminate()
                    await serve.exited(within=30)
                await rig.eventually(lambda left=left: not any(map(alive, left)), timeout=30)


async def test_two_processes_share_one_port_and_every_share_is_stored_and_carded_once(
    rig: ServeRig,
) -> None:
    serve = await rig.serve("two processes", "--processes", "2")
    workers = children(serve.process.pid)
    assert len(workers) == 2, f"expected two serve processes, found {workers}"
    await rig.setup(serve)

    burst = await rig.burst(serve, rig.shares(120, users=30), concurrency=16)
    assert burst.answered == set(burst.status), f"not all answered: {burst.status}"
    await rig.settle(burst.answered)
    assert rig.stored() == dict.fromkeys(burst.answered, 1)
    assert rig.cards() == dict.fromkeys(burst.answered, 1)
    # The kernel spread the connections: both processes worked stored requests.
    holders = rig.count("SELECT count(DISTINCT claimed_by) FROM inbox WHERE claimed_by IS NOT NULL")
    assert holders == 2, f"work was done by {holders} process(es), not both"

    # A deploy's SIGTERM: the supervisor passes it on, each child drains, all exit 0.
    serve.terminate()
    assert await serve.exited(within=30) == 0, serve.log_tail()
    assert not [pid for pid in workers if alive(pid)], "a serve process outlived the supervisor"


async def test_a_child_killed_mid_burst_is_started_again_and_nothing_answered_is_lost(
    rig: ServeRig,
) -> None:
    serve = await rig.serve("two processes", "--processes", "2")
    await rig.setup(serve)
    victim = children(serve.process.pid)[0]

    burst = await rig.burst(
        serve,
        rig.shares(160, users=30),
        concurrency=16,
        when_half_answered=lambda: os.kill(victim, signal.SIGKILL),
    )
    await rig.until(
        lambda: (
            len([pid for pid in children(serve.process.pid) if alive(pid)]) == 2
            and victim not in children(serve.process.pid)
        ),
        timeout=30,
        what="the killed process started again",
    )
    await rig.settle(burst.answered, timeout=60)
    stored, cards = rig.stored(), rig.cards()
    assert burst.answered <= stored.keys(), "an answered share was lost"
    assert all(rows == 1 for rows in stored.values()), "a share was stored twice"
    assert stored.keys() <= cards.keys(), "a stored share never got its card"
    assert all(extra <= 1 for extra in rig.extra_cards_per_channel().values())
    assert "starting it again" in serve.log.read_text()


async def test_the_children_stop_when_the_supervisor_is_killed(rig: ServeRig) -> None:
    serve = await rig.serve("two processes", "--processes", "2")
    workers = children(serve.process.pid)
    serve.kill()
    await rig.until(
        lambda: not [pid for pid in workers if alive(pid)],
        timeout=30,
        what="the serve processes stopped after their supervisor's kill -9",
    )


async def test_a_configuration_the_processes_cannot_use_stops_them_all_with_exit_2(
    rig: ServeRig,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLNBOT_", "DATABASE_URL"))}
    done = subprocess.run(
        [PLNBOT, "serve", "--processes", "2", "--port", "0"],
        env={**env, "DATABASE_URL": rig.database_url, "MICROSOFT_APP_ID": "an-app-id"},
        cwd=rig.workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "MICROSOFT_APP_PASSWORD" in done.stderr  # what is wrong, not a restart loop
    assert "starting it again" not in done.stderr


def test_several_processes_on_sqlite_are_refused_with_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLNBOT_", "DATABASE_URL"))}
    done = subprocess.run(
        [PLNBOT, "serve", "--processes", "2", "--port", "0"],
        env={**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'plnbot.db'}"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "PostgreSQL" in done.stderr and "--processes 2" in done.stderr


def test_each_process_paces_itself_to_its_share_of_the_platforms_limits() -> None:
    # Teams: per conversation 7/s, 8 in 2 s, 60 in 30 s, 1,800 an hour; 50/s per tenant.
    assert shared_limits(CONVERSATION_LIMITS, 2) == ((1, 3), (2, 4), (30, 30), (3600, 900))
    assert shared_limits(TENANT_LIMITS, 2) == ((1, 25),)
    assert shared_limits(CONVERSATION_LIMITS, 1) == CONVERSATION_LIMITS
    assert min(count for _, count in shared_limits(CONVERSATION_LIMITS, 64)) == 1
    # Slack: the workspace's rate and each channel's one a second, split between processes.
    platform = SlackPlatform(base_url="http://127.0.0.1:9/api/", token="xoxb-x", rate=20, share=2)
    assert platform._workspace_pace.rate == 10
    assert (platform._channel_pace.rate, platform._channel_pace.burst) == (0.5, 2.0)
