"""Story steps the dialogue tests share: set up a community, share, read what was sent."""

from __future__ import annotations

import csv
import io
from typing import Any, TypeVar

from sqlmodel import SQLModel, select

from storage.db import Database
from tests.doubles import Sent
from tests.story import CHANNEL, Story

T = TypeVar("T", bound=SQLModel)


async def setup_community(story: Story, name: str = "Math PLN", coach: str = "U_COACH") -> None:
    sent = await story.command(coach, f"setup {name}")
    assert any("is now the PLN community" in s.text for s in sent), text_of(sent)


async def share(story: Story, user: str, url: str, title: str) -> Sent:
    """`share <url> <title>` in the community channel; returns the posted artifact card."""
    sent = await story.command(user, f"share {url} {title}")
    cards = [s for s in sent if not s.ephemeral]
    assert len(cards) == 1, text_of(sent)
    assert cards[0].conversation.channel_id == CHANNEL
    return cards[0]


def artifact_id(card: Sent) -> str:
    """The artifact id carried by a card's Endorse button."""
    assert card.message.card is not None
    return card.message.card.buttons[0].value


def only(sent: list[Sent]) -> Sent:
    assert len(sent) == 1, text_of(sent)
    return sent[0]


def public(sent: list[Sent]) -> Sent:
    """The one message everyone in the conversation sees."""
    return only([s for s in sent if not s.ephemeral])


def text_of(sent: list[Sent]) -> str:
    """Everything a list of messages says: text, card title, body, fields, footer."""
    parts: list[str] = []
    for item in sent:
        parts.append(item.text)
        card = item.message.card
        if card is not None:
            parts += [card.title, card.body, card.footer]
            parts += [f"{f.label} {f.value}" for f in card.fields]
    return "\n".join(parts)


def rows(db: Database, model: type[T], *where: Any) -> list[T]:
    with db.session() as session:
        key = model.__table__.primary_key.columns  # type: ignore[attr-defined]
        return list(session.exec(select(model).where(*where).order_by(*key)).all())


def credited_csv(content: bytes, *, code: str, tried_by: str) -> list[dict[str, str]]:
    """The portfolio CSV after the whole participative-evaluation story (indicator values 64
    then 72, one acknowledged 6-hour cycle with kept feedback, a peer who tried the share):
    its rows, once what every platform must carry is checked."""
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    [acknowledged] = [r for r in rows if r["record"] == "coaching cycle"]
    assert acknowledged["code"] == code and acknowledged["hours"] == "6"
    assert acknowledged["text"] == "Lovely plenary today"  # she chose to keep it
    assert [r["value"] for r in rows if r["record"] == "indicator"] == ["64", "72"]
    [tried] = [r for r in rows if r["record"] == "tried by a peer"]
    assert tried["person"] == tried_by and tried["text"].startswith("[student] and [student]")
    assert "Maria" not in content.decode()
    return rows
