"""What Slack was told it received is never lost: real `plnbot serve` processes, killed with
SIGKILL or stopped with SIGTERM in the middle of a burst, restarted on the same database; two
replicas on one PostgreSQL database.

Black-box: signed Slack requests over HTTP into `plnbot serve` subprocesses, a fake Slack Web
API in the test's event loop (tests/serve_rig.py), an SQLite file in the test's folder.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.serve_rig import ServeRig, by_number, postgres_rig

SHARES = 120
CONCURRENCY = 16


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[ServeRig]:
    rig = ServeRig(workdir=tmp_path, database_url=f"sqlite:///{tmp_path / 'plnbot.db'}")
    try:
        yield rig
    finally:
        await rig.close()


def assert_nothing_answered_was_lost(rig: ServeRig, answered: set[str], *, crashes: int) -> None:
    """Every answered share stored exactly once; every stored share carded; a card posted
    twice only where it was in flight when a process died: at most one per channel per
    crash (one message per destination is in flight at a time)."""
    stored, cards = rig.stored(), rig.cards()
    assert answered, "no share was answered 200 before the signal: the test measured nothing"
    lost = by_number(answered - stored.keys())
    assert not lost, f"{len(lost)} of {len(answered)} answered shares were never stored: {lost[:5]}"
    twice = by_number(url for url, rows in stored.items() if rows > 1)
    assert not twice, f"stored more than once: {twice[:5]}"
    uncarded = by_number(stored.keys() - cards.keys())
    assert not uncarded, f"{len(uncarded)} stored shares never got their card: {uncarded[:5]}"
    extra = rig.extra_cards_per_channel()
    assert all(count <= crashes for count in extra.values()), (
        f"cards posted more than once: {extra.most_common(3)}"
    )


async def test_kill_9_in_the_middle_of_a_burst_loses_nothing_that_was_answered(
    rig: ServeRig,
) -> None:
    first = await rig.serve("first")
    await rig.setup(first)

    # kill -9 as soon as half the burst has been answered; the rest finds no server.
    burst = await rig.burst(
        first, rig.shares(SHARES), concurrency=CONCURRENCY, when_half_answered=first.kill
    )
    assert await first.exited(within=10) is not None

    await rig.serve("after the crash")
    await rig.settle(burst.answered)
    assert_nothing_answered_was_lost(rig, burst.answered, crashes=1)


async def test_sigterm_drains_and_exits_0(rig: ServeRig) -> None:
    first = await rig.serve("first")
    await rig.setup(first)

    # A deploy: SIGTERM as soon as half the burst has been answered; the burst goes on.
    burst = await rig.burst(
        first, rig.shares(SHARES), concurrency=CONCURRENCY, when_half_answered=first.terminate
    )
    assert burst.signalled_at is not None
    code = await first.exited(within=30 - (time.monotonic() - burst.signalled_at))
    assert code == 0, f"exit code {code} after SIGTERM (None: still running 30 s after it)"

    await rig.serve("after the deploy")
    await rig.settle(burst.answered)
    assert_nothing_answered_was_lost(rig, burst.answered, crashes=0)
    # What was sent after the signal was either answered 200 and then stored, or refused (an
    # error status or no connection) — never answered and dropped.
    late = {url: burst.status[url] for url in burst.sent_after_signal}
    late_answered = {url for url, status in late.items() if status == 200}
    assert late_answered <= rig.stored().keys()


async def test_the_card_of_a_share_stored_just_before_a_crash_is_posted_after_restart(
    rig: ServeRig,
) -> None:
    first = await rig.serve("first")
    await rig.setup(first, ["C_PLN"])
    rig.fake.fail_next("chat.postMessage", status=500, times=1_000_000)  # Slack is down

    [share] = rig.shares(1)
    body = rig.command(f"share {share.url} {share.title}", user=share.user, channel="C_PLN")
    assert await rig.post(first, body) == 200
    await rig.until(lambda: share.url in rig.stored(), timeout=20, what="the share stored")
    first.kill()
    assert await first.exited(within=10) is not None

    await rig.start_fake()  # Slack is back
    await rig.serve("after the crash")  # the card is still owed: it goes out now, once
    await rig.settle({share.url}, timeout=30, stall=30)
    assert rig.stored()[share.url] == 1
    assert rig.cards()[share.url] == 1, "the stored share's card was never posted (or twice)"


# --------------------------------------------------------------------------------------
# Two replicas on PostgreSQL
# --------------------------------------------------------------------------------------

REPLICAS_DATABASE = "plnbot_replicas"  # a scratch database: other tests truncate `test`


@pytest.fixture
async def replicas_rig(tmp_path: Path) -> AsyncIterator[ServeRig]:
    async with postgres_rig(tmp_path, REPLICAS_DATABASE, why="two replicas need it") as rig:
        yield rig


async def test_two_replicas_share_the_work_and_nothing_runs_twice(replicas_rig: ServeRig) -> None:
    rig = replicas_rig
    a, b = await rig.serve("replica a"), await rig.serve("replica b")
    await rig.setup(a)

    # Requests alternate between the replicas, as a load balancer would send them.
    burst = await rig.burst([a, b], rig.shares(100, users=20), concurrency=8)
    assert burst.answered == set(burst.status), f"not all answered: {burst.status}"
    await rig.settle(burst.answered)
    assert rig.stored() == dict.fromkeys(burst.answered, 1)
    assert rig.cards() == dict.fromkeys(burst.answered, 1)

    # One person's commands run in the order they were sent, whichever replica took them:
    # each is sent as soon as the previous one was answered.
    teacher = rig.users[0]
    for n in range(1, 21):
        body = rig.command(f"goal add Goal {n:02d}", user=teacher, channel="C_PLN")
        assert await rig.post((a, b)[n % 2], body) == 200
    await rig.eventually(lambda: len(rig.goals(teacher)) >= 20, timeout=20)
    assert rig.goals(teacher) == [f"Goal {n:02d}" for n in range(1, 21)]
