"""The event runtime, as an operator relies on it: every request Slack was answered for is in
the database first, one person's events run in the order they came however many arrive at
once, a full backlog is pushed back instead of queued without end, a card is never drawn
with an older count than the one it shows, the scheduler's wake-up reaches the sender at
once, and old bookkeeping is pruned."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot.core.inbox import Intake, Refused
from plnbot.runtime import build_runtime, start_workers, stop_workers
from storage.db import Database
from storage.inbox import NewEvent, prune
from storage.models import Goal, InboundReceipt, InboxEvent, Member, OutboxMessage, Workspace
from tests.slack_rig import SlackRig, rows


def goals_of(db: Database, user_id: str) -> list[str]:
    with db.session() as session:
        member = session.exec(select(Member).where(Member.user_id == user_id)).one()
        goals = session.exec(
            select(Goal).where(Goal.member_id == member.id).order_by(Goal.id)  # type: ignore[arg-type]
        ).all()
        return [goal.text for goal in goals]


async def test_a_request_is_stored_before_slack_hears_200(slack: SlackRig) -> None:
    runtime = slack.runtime
    assert runtime.inbox is not None
    runtime.inbox._stopping = True  # the workers take nothing: what is stored stays visible
    runtime.inbox.wake()
    await asyncio.sleep(0.05)
    response = await slack.command("goal add Exit tickets daily")
    assert response.status == 200
    [stored] = rows(slack.db, InboxEvent)
    assert stored.status == "pending" and stored.kind == "command"
    assert "goal add Exit tickets daily" in stored.payload


async def test_a_retry_of_a_stored_request_is_acknowledged_and_handled_once(
    slack: SlackRig,
) -> None:
    trigger = "77.88.dupe"
    first, again = await asyncio.gather(
        slack.command("goal add Once only", trigger_id=trigger),
        slack.command("goal add Once only", trigger_id=trigger),
    )
    assert first.status == again.status == 200
    await slack.settle()
    assert goals_of(slack.db, "U_TEACHER1") == ["Once only"]
    assert len(rows(slack.db, InboxEvent)) == 1


async def test_one_persons_events_run_in_the_order_they_came_while_others_crowd_in(
    slack: SlackRig,
) -> None:
    async def ana() -> None:  # each next command as soon as Slack got its 200
        for n in range(1, 21):
            response = await slack.command(f"goal add Goal {n:02d}", user_id="U_ANA")
            assert response.status == 200

    async def crowd(i: int) -> None:
        for n in range(5):
            await slack.command(f"goal add Crowd {n}", user_id=f"U_CROWD{i}")

    await asyncio.gather(ana(), *(crowd(i) for i in range(8)))
    await slack.settle()
    assert goals_of(slack.db, "U_ANA") == [f"Goal {n:02d}" for n in range(1, 21)]


async def test_endorsements_arriving_together_leave_the_card_with_the_final_count(
    slack: SlackRig,
) -> None:
    await slack.command("setup Math PLN", user_id="U_ADMIN", user_name="pln.admin")
    await slack.fake.wait_for("chat.postMessage")  # the community exists
    await slack.command("share https://example.org/ladder A ladder of questions")
    cards = await slack.fake.wait_for("chat.postMessage", count=2)
    card = cards[1]
    ts = next(ts for (c, ts), m in slack.fake.messages.items() if "ladder" in m["text"])
    endorse = next(
        e
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"].startswith("endorse#")
    )
    from tests.slack_fakes import block_actions_payload

    await asyncio.gather(
        *(
            slack.interact(
                block_actions_payload(
                    action_id=endorse["action_id"],
                    value=endorse["value"],
                    user_id=f"U_PEER{i}",
                    channel_id="C_PLN",
                    message_ts=ts,
                    response_url=slack.fake.response_url(f"peer{i}"),
                )
            )
            for i in range(6)
        )
    )
    await slack.settle()
    updates = [c for c in slack.fake.calls_to("chat.update") if c.get("ts") == ts]
    assert updates, "the card was never updated"
    assert "Endorse (6)" in str(updates[-1]["blocks"])  # the last one drawn is the newest


async def test_a_full_backlog_is_pushed_back_with_503_and_nothing_is_lost(
    slack: SlackRig,
) -> None:
    inbox = slack.runtime.inbox
    assert inbox is not None
    inbox._stopping = True  # the workers count no more (and take nothing)
    inbox.wake()
    await asyncio.sleep(0.05)
    intake = slack.runtime.accept()
    intake.limit, intake.wait = 1, 0.1
    intake.backlog = 1  # as if the workers had counted a full inbox
    response = await slack.command("goal add Too much at once")
    assert response.status == 503 and response.headers["Retry-After"] == "1"
    assert rows(slack.db, InboxEvent) == []  # refused: nothing half-stored either


async def test_intake_refuses_once_the_process_is_stopping(db: Database, clock) -> None:  # type: ignore[no-untyped-def]
    intake = Intake(db, clock, limit=10)
    intake.close()
    with pytest.raises(Refused):
        await intake.put(
            NewEvent(key="k", platform="slack", lane="l", kind="command", payload="{}")
        )


async def test_the_schedulers_wake_up_from_its_own_thread_reaches_the_sender_at_once(
    db: Database,
) -> None:
    from bot.config import Settings
    from tests.doubles import RecordingPlatform

    settings = Settings(DATABASE_URL=db.url)  # type: ignore[call-arg]
    runtime = build_runtime(settings, playground=False)
    platform = RecordingPlatform()
    runtime.platforms[platform.name] = platform
    start_workers(runtime, scheduler=True)
    try:
        await asyncio.sleep(0.3)  # the sender's first pass found nothing; it now sleeps 2 s
        now = datetime.now(UTC)
        with db.session() as session:
            workspace = Workspace(platform=platform.name, external_id="W1", created_at=now)
            session.add(workspace)
            session.flush()
            member = Member(workspace_id=workspace.id, user_id="U_ANA", created_at=now)
            session.add(member)
            session.flush()
            session.add(
                OutboxMessage(
                    key="checkin:wake",
                    workspace_id=workspace.id,
                    kind="checkin",
                    member_id=member.id,
                    not_before=now,
                    created_at=now,
                )
            )
        assert runtime.scheduler is not None
        woken = time.perf_counter()
        threading.Thread(target=runtime.scheduler.wake).start()  # as APScheduler's jobs do
        while not platform.sent and time.perf_counter() - woken < 1.5:
            await asyncio.sleep(0.01)
        assert platform.sent, "the sender did not wake"
        assert time.perf_counter() - woken < 0.5
    finally:
        await stop_workers(runtime)
        runtime.db.dispose()


def test_old_bookkeeping_is_pruned_and_what_still_matters_is_kept(db: Database) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=40)
    with db.session() as session:
        workspace = Workspace(platform="slack", external_id="T1", created_at=now)
        session.add(workspace)
        session.flush()
        for key, status, at in (
            ("old-done", "done", old),
            ("old-waiting", "pending", None),
            ("new-done", "done", now),
        ):
            session.add(
                InboxEvent(
                    key=key,
                    platform="slack",
                    lane="l",
                    kind="command",
                    payload="{}",
                    status=status,
                    received_at=old,
                    handled_at=at,
                )
            )
        for key, status, created in (
            ("sent-old", "sent", old),
            ("pending-old", "pending", old),
            ("sent-new", "sent", now),
        ):
            session.add(
                OutboxMessage(
                    key=key,
                    workspace_id=workspace.id,
                    kind="reply",
                    status=status,
                    created_at=created,
                )
            )
        for key, at in (
            ("slack:T1:C1:evt:Ev1", old),
            ("slack:T1:C1:evt:Ev2", now),
            ("teams:welcomed:tenant:ana", old),
        ):
            session.add(InboundReceipt(key=key, received_at=at))
    with db.session() as session:
        counts = prune(session, before=now - timedelta(days=30))
    assert counts == {"inbox": 1, "outbox": 1, "receipts": 1}
    assert {r.key for r in rows(db, InboxEvent)} == {"old-waiting", "new-done"}
    assert {r.key for r in rows(db, OutboxMessage)} == {"pending-old", "sent-new"}
    assert {r.key for r in rows(db, InboundReceipt)} == {
        "slack:T1:C1:evt:Ev2",
        "teams:welcomed:tenant:ana",  # "welcome once" is for good
    }


async def test_a_card_on_its_way_at_shutdown_is_sent_once_and_marked_sent(
    slack: SlackRig, caplog: pytest.LogCaptureFixture
) -> None:
    """A deploy while Slack is slow: the card already on its way finishes before the Slack
    session is closed, and is marked sent, so the next process does not post it again."""
    await slack.command("setup Math PLN", user_id="U_ADMIN", user_name="pln.admin")
    await slack.settle()
    slack.fake.latency = {"chat.postMessage": 1.0}
    await slack.command("share https://example.org/slow A slow afternoon")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the card is claimed: on its way to Slack
        if any(r.status == "claimed" for r in rows(slack.db, OutboxMessage)):
            break
        await asyncio.sleep(0.02)
    assert slack.server is not None
    await slack.server.close()  # SIGTERM's path: stop taking, drain, then close the platforms
    cards = [c for c in slack.fake.calls_to("chat.postMessage") if "example.org/slow" in str(c)]
    assert len(cards) == 1
    assert {r.status for r in rows(slack.db, OutboxMessage)} == {"sent"}
    assert "Session is closed" not in caplog.text
