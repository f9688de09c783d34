"""A handler that needs the platform (who is in this channel, is this person an admin) asks
with no transaction open: a slow or failing platform holds up nobody else's work, on SQLite
as on PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass

import pytest
from sqlmodel import select

from bot.core.context import Context
from bot.core.dispatch import MAX_QUESTIONS, SOMETHING_WENT_WRONG
from bot.core.events import CommandEvent, ConversationRef, UserRef
from bot.core.port import UserInfo
from storage.db import Database
from storage.models import Artifact, Community, Member
from tests.doubles import RecordingPlatform
from tests.slack_rig import SlackRig
from tests.steps import only, rows, setup_community, text_of
from tests.story import CHANNEL, Story

SLOW = 0.4  # seconds the platform takes to answer


@dataclass
class SlowPlatform(RecordingPlatform):
    """Answers look-ups slowly, the way a busy Slack or Teams API does."""

    asked: int = 0

    async def user_info(self, user: UserRef) -> UserInfo:
        self.asked += 1
        await asyncio.sleep(SLOW)
        return await super().user_info(user)

    async def channel_members(self, conversation: ConversationRef) -> list[str]:
        self.asked += 1
        await asyncio.sleep(SLOW)
        return await super().channel_members(conversation)


@pytest.fixture
def platform() -> RecordingPlatform:
    return SlowPlatform()


async def test_a_slow_platform_answer_holds_up_no_one_elses_share(
    story: Story, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await setup_community(story)
    platform = story.platform
    assert isinstance(platform, SlowPlatform)
    platform.admins.add("U_PRINCIPAL")  # a new person: the bot must ask whether they're an admin
    platform.members["C_SCIENCE"] = ["U_PRINCIPAL", "U_ANA", "U_BEN"]
    platform.pop()

    async def command(user_id: str, text: str, channel: str = CHANNEL) -> None:
        # straight to the bot: Story.command reads replies one command at a time
        event = CommandEvent(
            user=story.user(user_id), conversation=story.channel(channel), text=text
        )
        await story.bot.handle(event, platform)

    async def principal_sets_up_science() -> None:
        await command("U_PRINCIPAL", "setup Science PLN", channel="C_SCIENCE")

    async def teacher_shares(n: int) -> None:
        await command(f"U_T{n}", f"share https://example.org/{n} Lesson {n}")

    caplog.set_level(logging.WARNING)
    began = asyncio.get_running_loop().time()
    await asyncio.gather(principal_sets_up_science(), *(teacher_shares(n) for n in range(10)))
    took = asyncio.get_running_loop().time() - began

    texts = [s.text for s in platform.sent]
    cards = [i for i, t in enumerate(texts) if "shared evidence" in t]
    setup_done = next(i for i, t in enumerate(texts) if "now the PLN community “Science" in t)
    assert len(cards) == 10 and max(cards) < setup_done, texts  # nobody waited for the platform
    assert took < 2 * SLOW + 1, took  # asked once each (admin?, members), never stalled
    assert len(rows(db, Artifact)) == 10
    with db.session() as session:
        science = session.exec(select(Community).where(Community.channel_id == "C_SCIENCE")).one()
        people = session.exec(select(Member.user_id)).all()
    assert science.name == "Science PLN"
    assert {"U_PRINCIPAL", "U_ANA", "U_BEN"} <= set(people)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_a_failing_platform_answer_is_raised_where_it_was_asked(
    story: Story, db: Database
) -> None:
    async def broken(conversation: ConversationRef) -> list[str]:
        raise ConnectionError("platform down")

    story.platform.channel_members = broken  # type: ignore[method-assign]
    await setup_community(story)  # the members list is simply missing; setup still works
    with db.session() as session:
        assert session.exec(select(Community.channel_id)).all() == [CHANNEL]


async def test_a_handler_that_keeps_asking_gets_a_clear_answer_and_stores_nothing(
    story: Story, db: Database
) -> None:
    questions = itertools.count()

    async def ask_forever(ctx: Context, args: str) -> None:
        ctx.member.display_name = "changed"
        ctx.session.add(ctx.member)
        await ctx.ask(("question", next(questions)), lambda: asyncio.sleep(0))

    story.bot.router.command("ask forever", summary="asks the platform without end")(ask_forever)
    reply = only(await story.command("U_ANA", "ask forever"))
    assert reply.text == SOMETHING_WENT_WRONG, text_of([reply])
    assert next(questions) == MAX_QUESTIONS
    assert rows(db, Member) == []  # every try was rolled back


async def test_through_the_inbox_a_slow_slack_holds_up_no_one_elses_share(
    slack: SlackRig,
) -> None:
    """The same story as operators run it: signed requests into `plnbot serve`'s app, each
    stored in the inbox and worked by its workers, Slack's Web API slow to answer who is an
    admin and who is in a channel. The teachers' cards go out while the principal's setup
    still waits on Slack."""
    await slack.command("setup Math PLN", user_id="U_ADMIN", user_name="pln.admin")
    for n in range(10):  # teachers the bot already knows: their shares need nothing of Slack
        await slack.command("goal add Questioning", user_id=teacher(n), user_name=teacher(n))
    await slack.settle()
    fake = slack.fake
    fake.users["U_PRINCIPAL"] = {"name": "principal", "real_name": "Dana Reyes", "is_admin": True}
    fake.channel_members["C_SCIENCE"] = ["U_PRINCIPAL", "U_TEACHER1", "UBOT"]
    fake.latency = {"users.info": SLOW, "conversations.members": SLOW, "conversations.info": SLOW}
    fake.calls.clear()

    async def principal_sets_up_science() -> None:
        response = await slack.command(
            "setup Science PLN",
            user_id="U_PRINCIPAL",
            user_name="principal",
            channel_id="C_SCIENCE",
            channel_name="science",
        )
        assert response.status == 200

    async def teacher_shares(n: int) -> None:
        response = await slack.command(
            f"share https://example.org/{n} Lesson {n}", user_id=teacher(n), user_name=teacher(n)
        )
        assert response.status == 200

    await asyncio.gather(principal_sets_up_science(), *(teacher_shares(n) for n in range(10)))
    await slack.settle(timeout=60)  # ten cards in one channel: paced as Slack allows

    assert fake.calls_to("users.info") or fake.calls_to("conversations.members")  # it was asked
    with slack.db.session() as session:
        science = session.exec(select(Community).where(Community.channel_id == "C_SCIENCE")).one()
        shares = session.exec(select(Artifact)).all()
    assert science.name == "Science PLN"
    assert len(shares) == 10
    # Every share was stored while the setup still waited on Slack (none queued behind it).
    assert max(a.created_at for a in shares) < science.created_at
    cards = [p for p in fake.calls_to("chat.postMessage") if "shared evidence" in str(p)]
    assert len(cards) == 10


def teacher(n: int) -> str:
    return f"U_T{n}"
