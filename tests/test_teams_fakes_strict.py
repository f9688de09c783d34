"""The fake Bot Framework connector is as strict as Teams: each rule in tests/adaptive_cards.py
refuses a payload broken in that one way, over HTTP, with the connector's own answer (400
`BadArgument`, 413 `MessageSizeTooBig`, 404 `NotFound`, 403 `Forbidden`), while a card like
the bot's is taken."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tests.adaptive_cards import SIZE_LIMIT, activity_size, card_problems
from tests.teams_fakes import CHANNEL, TENANT, FakeConnector

PERSONAL = "a:1personal-chat"
GOOD_CARD: dict[str, Any] = {
    "type": "AdaptiveCard",
    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
    "version": "1.5",
    "body": [
        {"type": "TextBlock", "text": "Exit tickets", "wrap": True, "weight": "Bolder"},
        {"type": "FactSet", "facts": [{"title": "By", "value": "Ana"}]},
        {
            "type": "Input.ChoiceSet",
            "id": "role",
            "label": "Role",
            "style": "compact",
            "choices": [{"title": "Teacher", "value": "teacher"}],
        },
        {"type": "Input.Text", "id": "note", "label": "Why", "isMultiline": True, "maxLength": 9},
    ],
    "actions": [
        {
            "type": "Action.Execute",
            "title": "Endorse",
            "verb": "endorse",
            "data": {"pln": {"a": "endorse"}},
            "fallback": {"type": "Action.Submit", "title": "Endorse", "data": {"pln": {}}},
        },
        {"type": "Action.OpenUrl", "title": "Open", "url": "https://example.org/a"},
    ],
}


def message(card: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    activity: dict[str, Any] = {"type": "message", "channelData": {"tenant": {"id": TENANT}}}
    if card is not None:
        activity["summary"] = "Ana shared evidence"
        activity["attachments"] = [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ]
    activity.update(extra)
    return activity


def broken(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    card = copy.deepcopy(GOOD_CARD)
    change(card)
    return card


def body(card: dict[str, Any]) -> list[dict[str, Any]]:
    return card["body"]  # type: ignore[no-any-return]


# (what is broken, the change, what the refusal says)
CARD_RULES: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("an element type Adaptive Cards lack", lambda c: body(c).append({"type": "Marquee"}), "unknown element type 'Marquee'"),
    ("an action type Adaptive Cards lack", lambda c: c["actions"].append({"type": "Action.Call", "title": "x"}), "unknown action type"),
    ("a property an element doesn't have", lambda c: body(c)[0].update(colour="red"), "has no property 'colour'"),
    ("a TextBlock without text", lambda c: body(c)[0].pop("text"), "TextBlock needs 'text'"),
    ("text that is no string", lambda c: body(c)[0].update(text=7), "must be a string"),
    ("an input without an id", lambda c: body(c)[3].pop("id"), "needs a non-empty id"),
    ("two inputs with one id", lambda c: body(c)[3].update(id="role"), "is used twice"),
    ("a choice set without choices", lambda c: body(c)[2].update(choices=[]), "needs choices"),
    ("a choice without a value", lambda c: body(c)[2]["choices"][0].pop("value"), "needs a string 'value'"),
    ("a choice without a title", lambda c: body(c)[2]["choices"][0].pop("title"), "needs a string 'title'"),
    ("a fact without a value", lambda c: body(c)[1]["facts"][0].pop("value"), "a fact needs a string 'value'"),
    ("a fact without a title", lambda c: body(c)[1]["facts"][0].update(title=None), "a fact needs a string 'title'"),
    ("a fact set without facts", lambda c: body(c)[1].pop("facts"), "FactSet needs 'facts'"),
    ("an Action.Execute without a verb", lambda c: c["actions"][0].pop("verb"), "Action.Execute needs a verb"),
    ("an Action.Execute with an empty verb", lambda c: c["actions"][0].update(verb=""), "needs a verb (Teams"),
    ("an action without a title", lambda c: c["actions"][0].pop("title"), "a button needs a title"),
    ("a fallback without a title", lambda c: c["actions"][0]["fallback"].pop("title"), "fallback<Action.Submit>: a button needs a title"),
    ("an Action.Submit whose data is a number", lambda c: c["actions"][0]["fallback"].update(data=3), "must be an object or a string"),
    ("an Action.OpenUrl without a url", lambda c: c["actions"][1].pop("url"), "Action.OpenUrl needs 'url'"),
    ("an Action.OpenUrl with a relative url", lambda c: c["actions"][1].update(url="/dashboard/me"), "is not an absolute http(s) URL"),
    ("an Action.OpenUrl with a script url", lambda c: c["actions"][1].update(url="javascript:alert(1)"), "is not an absolute http(s) URL"),
    ("a version Teams doesn't render", lambda c: c.update(version="1.6"), "newer than Teams renders"),
    ("no version", lambda c: c.pop("version"), "needs a version"),
    ("a version that is no version", lambda c: c.update(version="1.5.0"), "needs a version"),
    ("seven actions", lambda c: c["actions"].extend([c["actions"][1]] * 5), "Teams shows at most 6"),
    ("a size that isn't one", lambda c: body(c)[0].update(size="huge"), "'huge' is not one of"),
    ("wrap that is no boolean", lambda c: body(c)[0].update(wrap="yes"), "must be true or false"),
    ("an action style that isn't one", lambda c: c["actions"][0].update(style="primary"), "'primary' is not one of"),
    ("a card that is no AdaptiveCard", lambda c: c.update(type="HeroCard"), "type must be 'AdaptiveCard'"),
    ("a property a card doesn't have", lambda c: c.update(title="x"), "has no property 'title'"),
]  # fmt: skip


@pytest.fixture
async def connector() -> AsyncIterator[tuple[FakeConnector, aiohttp.ClientSession]]:
    fake = FakeConnector(refusals_expected=True)
    await fake.start()
    async with aiohttp.ClientSession() as http:
        yield fake, http
    await fake.stop()


async def send(
    http: aiohttp.ClientSession,
    fake: FakeConnector,
    activity: Any,
    conversation: str = CHANNEL,
    *,
    method: str = "POST",
    activity_id: str = "",
) -> tuple[int, Any]:
    url = f"{fake.base_url}/v3/conversations/{conversation}/activities"
    if activity_id:
        url += f"/{activity_id}"
    async with http.request(method, url, json=activity) as response:
        return response.status, await response.json()


async def test_a_card_like_the_bots_is_taken(connector: Any) -> None:
    fake, http = connector
    assert card_problems(GOOD_CARD) == []
    status, answer = await send(http, fake, message(GOOD_CARD))
    assert status == 200 and answer["id"]
    assert fake.refused == [] and len(fake.sent()) == 1


@pytest.mark.parametrize("case", [case for case, _, _ in CARD_RULES])
async def test_each_card_rule_bites(connector: Any, case: str) -> None:
    fake, http = connector
    _, change, says = next(rule for rule in CARD_RULES if rule[0] == case)
    card = broken(change)
    assert any(says in problem for problem in card_problems(card)), card_problems(card)
    status, answer = await send(http, fake, message(card))
    assert status == 400
    assert answer["error"]["code"] == "BadArgument" and says in answer["error"]["message"]
    assert fake.sent() == []  # nothing was posted
    # An update carrying the same card is refused the same way.
    status, posted = await send(http, fake, message(GOOD_CARD))
    status, answer = await send(http, fake, message(card), method="PUT", activity_id=posted["id"])
    assert status == 400 and says in answer["error"]["message"]


async def test_nested_cards_and_containers_are_checked_too(connector: Any) -> None:
    inner = broken(lambda c: body(c).append({"type": "Marquee"}))
    inner.pop("version")  # a card inside Action.ShowCard needs none
    card = broken(
        lambda c: c["actions"].append({"type": "Action.ShowCard", "title": "More", "card": inner})
    )
    assert any("actions[2]<Action.ShowCard>.card.body[4]" in p for p in card_problems(card))
    container = broken(
        lambda c: body(c).append({"type": "Container", "items": [{"type": "TextBlock"}]})
    )
    assert any(
        "Container>.items[0]<TextBlock>: TextBlock needs 'text'" in p
        for p in card_problems(container)
    )


@pytest.mark.parametrize(
    ("activity", "says"),
    [
        (message(), "needs text or an attachment"),
        (message(text="   "), "needs text or an attachment"),
        ({"type": "typing", "text": "hi"}, "a bot posts messages"),
        (message(text="hi", textFormat="html"), "is not a text format"),
        (message(text="hi", summary=["a"]), "activity.summary: must be a string"),
        (
            message(attachments=[{"contentType": "application/vnd.example.card", "content": {}}]),
            "doesn't render attachments of type",
        ),
        (
            message(
                text="Your export",
                attachments=[
                    {
                        "contentType": "application/vnd.microsoft.teams.card.file.consent",
                        "name": "plnbot-export.json",
                        "content": {"sizeInBytes": 10, "acceptContext": {}, "declineContext": {}},
                    }
                ],
            ),
            "only be sent in a 1:1 chat",
        ),
    ],
)
async def test_each_message_rule_bites(connector: Any, activity: Any, says: str) -> None:
    fake, http = connector
    status, answer = await send(http, fake, activity)
    assert status == 400
    assert answer["error"]["code"] == "BadArgument" and says in answer["error"]["message"]


async def test_a_file_consent_card_is_taken_in_a_1_1_chat(connector: Any) -> None:
    fake, http = connector
    consent = message(
        text="Your export",
        attachments=[
            {
                "contentType": "application/vnd.microsoft.teams.card.file.consent",
                "name": "plnbot-export.json",
                "content": {"sizeInBytes": 10, "acceptContext": {}, "declineContext": {}},
            }
        ],
    )
    status, _ = await send(http, fake, consent, PERSONAL)
    assert status == 200


async def test_the_size_limit_counts_utf16_as_teams_does(connector: Any) -> None:
    """28 KB of the payload as UTF-16: an ASCII character is 2 bytes, an emoji 4 (two UTF-16
    units); not Python's len (1 each), nor UTF-8 (1 and 4), nor the \\u escapes on the wire
    (12 bytes for an emoji)."""
    fake, http = connector
    overhead = activity_size(message(text=""))
    fits_ascii = message(text="x" * ((SIZE_LIMIT - overhead) // 2))
    assert activity_size(fits_ascii) == SIZE_LIMIT
    assert (await send(http, fake, fits_ascii))[0] == 200
    over_ascii = message(text="x" * ((SIZE_LIMIT - overhead) // 2 + 1))
    status, answer = await send(http, fake, over_ascii)
    assert status == 413
    assert answer["error"]["code"] == "MessageSizeTooBig"

    emoji = "\U0001f600"  # 😀: one code point, two UTF-16 units
    fits = message(text=emoji * ((SIZE_LIMIT - overhead) // 4))
    assert (await send(http, fake, fits))[0] == 200
    over = message(text=emoji * ((SIZE_LIMIT - overhead) // 4 + 1))
    assert len(json.dumps(over, ensure_ascii=False).encode()) < SIZE_LIMIT + 100  # UTF-8: ~same
    assert len(over["text"]) < SIZE_LIMIT // 3  # Python's len: a third of the limit
    assert (await send(http, fake, over))[0] == 413  # but Teams counts two units each
    # a card is measured the same way, with everything around it
    big_card = broken(lambda c: body(c)[0].update(text=emoji * (SIZE_LIMIT // 4)))
    status, answer = await send(http, fake, message(big_card))
    assert status == 413 and "UTF-16" in answer["error"]["message"]


async def test_updates_need_a_message_posted_in_that_conversation(connector: Any) -> None:
    fake, http = connector
    status, answer = await send(http, fake, message(text="hi"), method="PUT", activity_id="17")
    assert status == 404 and answer["error"]["code"] == "NotFound"
    _, posted = await send(http, fake, message(text="hi"))
    elsewhere = "19:another@thread.tacv2"
    status, _ = await send(
        http, fake, message(text="hi"), elsewhere, method="PUT", activity_id=posted["id"]
    )
    assert status == 404
    # in its own channel (or a thread of it) it is taken
    status, _ = await send(
        http,
        fake,
        message(text="edited"),
        f"{CHANNEL};messageid=1764000000000",
        method="PUT",
        activity_id=posted["id"],
    )
    assert status == 200 and fake.updates()[-1].body["text"] == "edited"


async def test_a_1_1_chat_with_someone_of_another_tenant_is_refused(connector: Any) -> None:
    fake, http = connector
    fake.home_tenants["29:guest"] = "another-tenant"
    request = {
        "bot": {"id": "28:bot"},
        "members": [{"id": "29:guest"}],
        "tenantId": TENANT,
        "channelData": {"tenant": {"id": TENANT}},
    }
    async with http.post(f"{fake.base_url}/v3/conversations", json=request) as response:
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "Forbidden"
    request["members"] = [{"id": "29:colleague"}]
    async with http.post(f"{fake.base_url}/v3/conversations", json=request) as response:
        assert response.status == 201


async def test_a_refusal_fails_the_test_that_caused_it() -> None:
    fake = FakeConnector()
    await fake.start()
    async with aiohttp.ClientSession() as http:
        status, _ = await send(http, fake, message(broken(lambda c: c.pop("version"))))
    assert status == 400
    with pytest.raises(AssertionError, match="Teams would have refused what the bot sent"):
        await fake.stop()
