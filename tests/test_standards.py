"""The living standard: per element (and tag) the community's best share; when a share
surpasses it, the channel hears "a new best for …" once — through the outbox, however many
endorsements arrive, and even when they arrive at the same time."""

from __future__ import annotations

import asyncio
import itertools
import threading
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlmodel import select

from bot.core.dispatch import Bot
from bot.core.events import ActionEvent
from storage.db import Database
from storage.models import Enactment, OutboxMessage
from storage.standard_tables import Standard, StandardChange
from tests.doubles import RecordingPlatform
from tests.steps import artifact_id, only, rows, setup_community, share, text_of
from tests.story import CHANNEL, Story

ELEMENT = "participative_evaluation"


async def endorse(story: Story, artifact: str, *users: str) -> None:
    for user in users:
        sent = await story.press(user, "endorse", artifact)
        assert "You endorsed" in only(sent).text


def announcements(db: Database) -> list[OutboxMessage]:
    return rows(db, OutboxMessage, OutboxMessage.kind == "standard")


def holder(db: Database, key: str = ELEMENT) -> int | None:
    [standard] = rows(db, Standard, Standard.key == key)
    return standard.artifact_id


async def test_a_new_best_is_announced_once(story: Story, db: Database) -> None:
    await setup_community(story)
    ana = artifact_id(
        await share(story, "U_ANA", "https://example.org/a", "Exit tickets #assessment")
    )
    await endorse(story, ana, "U_BEN")
    assert await story.deliver() == []  # one peer is not yet a standard

    await endorse(story, ana, "U_CARA")
    message = only(await story.deliver())
    assert message.conversation.channel_id == CHANNEL and not message.ephemeral
    assert message.text.startswith(
        "A new best for Participative evaluation: “Exit tickets #assessment” by Ana, "
        "endorsed by 2 peers — the first standard here."
    )
    assert message.message.card is not None
    assert message.message.card.title == "A new best for Participative evaluation"
    assert await story.deliver() == []
    assert holder(db) == int(ana)

    # Cara withdraws (the standard empties: one peer left) and endorses again (it is Ana's
    # again): the channel already heard about this share, so it hears nothing new.
    story.clock.advance(timedelta(seconds=10))
    await story.press("U_CARA", "endorse", ana)
    assert holder(db) is None
    story.clock.advance(timedelta(seconds=10))
    await endorse(story, ana, "U_CARA")
    assert holder(db) == int(ana)
    assert await story.deliver() == []

    # Dan's rubric ties Ana's at two peers (the holder keeps a tie), then surpasses it.
    dan = artifact_id(
        await share(story, "U_DAN", "https://example.org/d", "Peer feedback rubric #feedback")
    )
    await endorse(story, dan, "U_ANA", "U_BEN")
    assert holder(db) == int(ana) and await story.deliver() == []
    await endorse(story, dan, "U_EVE")
    message = only(await story.deliver())
    assert message.text.startswith(
        "A new best for Participative evaluation: “Peer feedback rubric #feedback” by Dan, "
        "endorsed by 3 peers — it surpasses “Exit tickets #assessment”."
    )
    assert "Surpasses “Exit tickets #assessment” by Ana" in text_of([message])
    assert await story.deliver() == []
    assert [r.key for r in announcements(db)] == [
        f"standard:1:{ELEMENT}:{ana}",
        f"standard:1:{ELEMENT}:{dan}",
    ]
    changes = rows(db, StandardChange)
    assert [(c.artifact_id, c.previous_id) for c in changes] == [
        (int(ana), None),
        (int(ana), None),  # retaken after it emptied
        (int(dan), int(ana)),
    ]


async def test_a_share_a_peer_tried_in_class_takes_the_standard_from_a_tie(
    story: Story, db: Database
) -> None:
    await setup_community(story)
    ana = artifact_id(
        await share(story, "U_ANA", "https://example.org/a", "Exit tickets #assessment")
    )
    await endorse(story, ana, "U_BEN", "U_CARA")
    only(await story.deliver())
    dan = artifact_id(await share(story, "U_DAN", "https://example.org/d", "Rubric #assessment"))
    await endorse(story, dan, "U_BEN", "U_CARA")
    assert holder(db) == int(ana) and await story.deliver() == []  # a tie: Ana keeps it

    # Ben tries Dan's rubric in class; when asked, he says what students did.
    when = only(await story.press("U_BEN", "try_this", dan))
    this_week = next(b.value for b in when.message.card.buttons if b.label == "This week")
    await story.press("U_BEN", "try_when", this_week)
    [enactment] = rows(db, Enactment)
    story.clock.set(datetime.combine(enactment.due_on, time(15, 1), UTC))
    assert "what did students do?" in only(await story.deliver()).text
    assert holder(db) == int(ana)
    await story.say("U_BEN", "Every pair used the rubric on each other's draft.")
    message = only(await story.deliver())
    assert message.text.startswith(
        "A new best for Participative evaluation: “Rubric #assessment” by Dan, "
        "endorsed by 2 peers — it surpasses “Exit tickets #assessment”."
    )
    assert holder(db) == int(dan)


async def test_one_message_names_every_standard_a_share_takes(story: Story, db: Database) -> None:
    await setup_community(story)
    ana = artifact_id(
        await share(
            story, "U_ANA", "https://example.org/a", "Exit tickets #assessment #exit-tickets #year8"
        )
    )
    await endorse(story, ana, "U_BEN", "U_CARA")
    message = only(await story.deliver())
    assert message.text.startswith("A new best for Participative evaluation:")
    assert "Also the best for #exit-tickets, #year8" in text_of([message])
    assert holder(db, "#year8") == holder(db, "#exit-tickets") == int(ana)

    # A share tagged #year8 only takes that tag's standard: its own message.
    ben = artifact_id(await share(story, "U_BEN", "https://example.org/b", "Seating plan #year8"))
    await endorse(story, ben, "U_ANA", "U_CARA", "U_DAN")
    message = only(await story.deliver())
    assert message.text.startswith("A new best for #year8: “Seating plan #year8” by Ben")
    assert holder(db, "#year8") == int(ben) and holder(db) == int(ana)


async def test_a_share_surpassed_before_its_message_went_out_is_not_announced(
    story: Story, db: Database
) -> None:
    await setup_community(story)
    ana = artifact_id(
        await share(story, "U_ANA", "https://example.org/a", "Exit tickets #assessment")
    )
    await endorse(story, ana, "U_BEN", "U_CARA")
    dan = artifact_id(await share(story, "U_DAN", "https://example.org/d", "Rubric #assessment"))
    await endorse(story, dan, "U_BEN", "U_CARA", "U_EVE")
    message = only(await story.deliver())  # only the current best is announced
    assert "“Rubric #assessment” by Dan" in message.text
    assert [r.status for r in announcements(db)] == ["skipped", "sent"]


async def test_the_author_forgetting_their_data_empties_the_standard(
    story: Story, db: Database
) -> None:
    await setup_community(story)
    ana = artifact_id(
        await share(story, "U_ANA", "https://example.org/a", "Exit tickets #assessment")
    )
    await endorse(story, ana, "U_BEN", "U_CARA")
    await story.command("U_ANA", "forget confirm", channel=None)
    assert holder(db) is None and rows(db, StandardChange) == []
    assert await story.deliver() == []  # the queued announcement no longer applies


async def test_a_standard_whose_endorsers_left_is_not_shown(story: Story, db: Database) -> None:
    await setup_community(story)
    ana = artifact_id(
        await share(story, "U_ANA", "https://example.org/a", "Exit tickets #assessment")
    )
    await endorse(story, ana, "U_BEN", "U_CARA")
    await story.command("U_CARA", "forget confirm", channel=None)
    preview = only(await story.command("U_COACH", "digest preview"))
    assert "Standard ·" not in text_of([preview])
    # The next share two peers endorse takes it.
    dan = artifact_id(await share(story, "U_DAN", "https://example.org/d", "Rubric #feedback"))
    await endorse(story, dan, "U_ANA", "U_BEN")
    assert holder(db) == int(dan)


async def test_a_digest_shows_the_standard_per_element(story: Story, db: Database) -> None:
    await setup_community(story)
    ana = artifact_id(
        await share(story, "U_ANA", "https://example.org/a", "Exit tickets #assessment")
    )
    await endorse(story, ana, "U_BEN", "U_CARA")
    card = only(await story.command("U_COACH", "digest preview")).message.card
    assert card is not None
    fields = {f.label: f.value for f in card.fields}
    assert fields["Standard · Participative evaluation"] == (
        "“Exit tickets #assessment” by Ana · 2 endorsements — new this week"
    )
    story.clock.advance(timedelta(days=7))  # next week: still the standard, no longer new
    card = only(await story.command("U_COACH", "digest preview")).message.card
    assert card is not None
    assert [(f.label, f.value) for f in card.fields] == [
        (
            "Standard · Participative evaluation",
            "“Exit tickets #assessment” by Ana · 2 endorsements",
        )
    ]


async def test_concurrent_endorsements_announce_each_new_best_once(
    story: Story, db: Database
) -> None:
    """Twelve people endorse two competing shares at the same moment, each in its own thread
    and database connection: the standard ends with the best share, every change of hands
    follows the one before, and no share is announced twice."""
    if db.is_sqlite:
        pytest.skip("SQLite has one writer at a time; concurrent writers are PostgreSQL's case")
    await setup_community(story)
    ana = artifact_id(
        await share(story, "U_ANA", "https://example.org/a", "Exit tickets #assessment")
    )
    ben = artifact_id(await share(story, "U_BEN", "https://example.org/b", "Rubric #feedback"))
    peers = [f"U_P{i:02d}" for i in range(12)]
    jobs = [(peer, ana) for peer in peers] + [(peer, ben) for peer in peers[:9]]
    barrier = threading.Barrier(len(jobs))
    failures: list[str] = []

    def press(user: str, artifact: str) -> None:
        bot = Bot(db=db, settings=story.bot.settings, clock=story.clock, prompts=story.bot.prompts)
        platform = RecordingPlatform()
        event = ActionEvent(
            user=story.user(user), conversation=story.channel(), action_id="endorse", value=artifact
        )
        barrier.wait()
        asyncio.run(bot.handle(event, platform))
        failures.extend(s.text for s in platform.sent if "You endorsed" not in s.text)

    threads = [threading.Thread(target=press, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert holder(db) == int(ana)  # 12 peers against 9
    changes = rows(db, StandardChange)
    for before, after in itertools.pairwise(changes):
        assert after.previous_id == before.artifact_id, "a change of hands was lost"
    keys = [r.key for r in announcements(db)]
    assert len(keys) == len(set(keys)) == len({c.artifact_id for c in changes})
    # Rendered when sent: only the share that holds the standard then is announced.
    assert (
        "A new best for Participative evaluation: “Exit tickets" in only(await story.deliver()).text
    )
    with db.session() as session:
        standard = session.exec(select(Standard).where(Standard.key == ELEMENT)).one()
        assert standard.endorsers == 12
