"""The product story through the neutral layer: coach, teachers, endorsements, digest."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from storage.models import Artifact, Endorsement
from tests.story import CHANNEL, Story


async def share(story: Story, user: str, url: str, title: str) -> str:
    sent = await story.command(user, f"share {url} {title}")
    card = [s for s in sent if not s.ephemeral]
    assert len(card) == 1, [s.text for s in sent]
    return card[0].message.card.buttons[0].value  # the artifact id on the Endorse button


async def test_coach_sets_up_teachers_share_peers_endorse_digest_ranks(story: Story, db) -> None:
    sent = await story.command("U_COACH", "setup Math PLN")
    assert any("now the PLN community “Math PLN”" in s.text for s in sent)

    ana = await share(
        story, "U_ANA", "https://example.org/exit-tickets", "Exit tickets that worked"
    )
    story.clock.advance(timedelta(minutes=5))
    ben = await share(story, "U_BEN", "https://example.org/gallery-walk", "Gallery walk protocol")
    story.clock.advance(timedelta(minutes=5))
    cara = await share(story, "U_CARA", "https://example.org/choice-board", "Choice board")

    # Ana tries to endorse her own share: a kind refusal, nothing stored.
    own = await story.press("U_ANA", "endorse", ana)
    assert "your own share" in own[0].text and own[0].ephemeral
    # Ana's share: two peers; Ben's: one; Cara's: two (newer than Ana's, so it wins the tie).
    for user, artifact in [
        ("U_BEN", ana),
        ("U_CARA", ana),
        ("U_ANA", ben),
        ("U_ANA", cara),
        ("U_BEN", cara),
    ]:
        sent = await story.press(user, "endorse", artifact)
        assert "You endorsed" in sent[0].text
        assert sent[0].ephemeral
    # A withdrawn endorsement no longer counts.
    await story.press("U_DAN", "endorse", ben)
    story.clock.advance(timedelta(seconds=10))
    await story.press("U_DAN", "endorse", ben)

    preview = await story.command("U_COACH", "digest preview")
    assert len(preview) == 1 and preview[0].ephemeral
    titles = [f.label for f in preview[0].message.card.fields]
    assert titles == ["1. Choice board", "2. Exit tickets that worked", "3. Gallery walk protocol"]

    with db.session() as session:
        assert len(session.exec(select(Endorsement)).all()) == 5
        assert len(session.exec(select(Artifact)).all()) == 3


async def test_digest_post_goes_out_once(story: Story) -> None:
    await story.command("U_COACH", "setup")
    artifact = await share(story, "U_ANA", "https://example.org/a", "Peer feedback rubric")
    await story.press("U_BEN", "endorse", artifact)
    sent = await story.command("U_COACH", "digest post")
    assert "on its way" in sent[0].text
    again = await story.command("U_COACH", "digest post")
    assert "won't post it twice" in again[0].text
    delivered = await story.deliver()
    assert len(delivered) == 1 and delivered[0].conversation.channel_id == CHANNEL
    assert "Peer feedback rubric" in delivered[0].text
    assert await story.deliver() == []


async def test_forget_redraws_cards_that_showed_the_member(story: Story) -> None:
    await story.command("U_COACH", "setup")
    ana = await share(story, "U_ANA", "https://example.org/a", "Peer feedback rubric")
    await story.press("U_BEN", "endorse", ana)
    story.platform.updates.clear()
    await story.command("U_BEN", "forget confirm", channel=None)
    redrawn = story.platform.updates[-1][1]
    assert "Endorse (0)" in [b.label for b in redrawn.card.buttons] and "Ben" not in redrawn.text
    await story.command("U_ANA", "forget confirm", channel=None)
    removed = story.platform.updates[-1][1]
    assert removed.card is None and "removed at its author's request" in removed.text


async def test_setup_makes_everyone_already_in_the_channel_a_member(story: Story, db) -> None:  # type: ignore[no-untyped-def]
    from storage.queries import community_members

    story.platform.members["C_PLN"] = ["U_ANA", "U_BEN", "U_CARA"]
    await story.command("U_COACH", "setup")
    with db.session() as session:
        people = {m.user_id for m in community_members(session, community_id=1)}
    assert people == {"U_COACH", "U_ANA", "U_BEN", "U_CARA"}  # so scheduled check-ins reach them
