"""The fake Slack Web API is as strict as Slack: each rule of tests/block_kit.py bites.

Every case sends a payload that is good but for one thing, through the real slack_sdk
client, and expects the error Slack documents for that method (chat.*: `invalid_blocks`
with `errors`, `msg_too_long`, `no_text`, `message_not_found`; views.*: `invalid_arguments`
with `response_metadata.messages`, `invalid_trigger_id`, `exchanged_trigger_id`,
`expired_trigger_id`), with a pointer at the field. The same payload without its one fault
is accepted, so it is the rule that bites and nothing else.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests import block_kit
from tests.slack_fakes import FakeSlackAPI

Blocks = list[dict[str, Any]]
View = dict[str, Any]
# Some cases leave `text` out on purpose; slack_sdk warns about that before sending.
pytestmark = pytest.mark.filterwarnings("ignore:The top-level `text` argument:UserWarning")


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def option(n: int) -> dict[str, Any]:
    return {"text": plain(f"Option {n}"), "value": f"v{n}"}


def good_blocks() -> Blocks:
    """A message using every block and element PLN Bot sends, each within its limits."""
    return [
        {"type": "header", "block_id": "head", "text": plain("A share")},
        {"type": "section", "block_id": "body", "text": mrkdwn("Exit tickets that worked")},
        {"type": "section", "block_id": "facts", "fields": [mrkdwn("*Shared by*\nAna")]},
        {
            "type": "actions",
            "block_id": "acts",
            "elements": [
                {
                    "type": "button",
                    "action_id": "endorse#0",
                    "text": plain("Endorse"),
                    "value": "1",
                },
                {
                    "type": "static_select",
                    "action_id": "pick",
                    "placeholder": plain("Choose"),
                    "options": [option(1), option(2)],
                },
            ],
        },
        {"type": "context", "block_id": "foot", "elements": [mrkdwn("week 47")]},
        {"type": "divider"},
    ]


def good_modal() -> View:
    return {
        "type": "modal",
        "callback_id": "share_submit",
        "title": plain("Share evidence"),
        "submit": plain("Share"),
        "close": plain("Cancel"),
        "private_metadata": '{"channel": "C_PLN"}',
        "blocks": [
            {"type": "section", "block_id": "intro", "text": mrkdwn("What it shows")},
            {
                "type": "input",
                "block_id": "description",
                "label": plain("What it shows"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "description",
                    "multiline": True,
                    "max_length": 3000,
                    "initial_value": "We tried it",
                    "placeholder": plain("A few words"),
                },
            },
        ],
    }


def good_home() -> View:
    return {"type": "home", "blocks": good_blocks()}


def input_element(view: View) -> dict[str, Any]:
    return view["blocks"][1]["element"]


def button(blocks: Blocks) -> dict[str, Any]:
    return blocks[3]["elements"][0]


def select(blocks: Blocks) -> dict[str, Any]:
    return blocks[3]["elements"][1]


# (rule, how the message breaks it, where Slack points)
MESSAGE_RULES: list[tuple[str, Callable[[Blocks], object], str]] = [
    (
        "section mrkdwn text over 3,000",
        lambda b: b[1]["text"].update(text="x" * 3001),
        "/blocks/1/text/text",
    ),
    (
        "section plain_text over 3,000",
        lambda b: b[1].update(text=plain("x" * 3001)),
        "/blocks/1/text/text",
    ),
    ("section text empty", lambda b: b[1]["text"].update(text=""), "/blocks/1/text/text"),
    (
        "section with neither text nor fields",
        lambda b: b[1].pop("text"),
        "/blocks/1]",
    ),
    (
        "more than 10 fields",
        lambda b: b[2].update(fields=[mrkdwn(f"f{n}") for n in range(11)]),
        "/blocks/2/fields",
    ),
    (
        "a field over 2,000",
        lambda b: b[2]["fields"][0].update(text="x" * 2001),
        "/blocks/2/fields/0",
    ),
    ("51 blocks", lambda b: b.extend({"type": "divider"} for _ in range(45)), "/blocks]"),
    ("header in mrkdwn", lambda b: b[0].update(text=mrkdwn("A share")), "/blocks/0/text/type"),
    ("header over 150", lambda b: b[0].update(text=plain("x" * 151)), "/blocks/0/text/text"),
    ("button text over 75", lambda b: button(b).update(text=plain("x" * 76)), "/elements/0/text"),
    ("button text in mrkdwn", lambda b: button(b).update(text=mrkdwn("Go")), "/elements/0/text"),
    ("button value over 2,000", lambda b: button(b).update(value="1" * 2001), "/elements/0/value"),
    (
        "button url over 3,000",
        lambda b: button(b).update(url="https://e.org/" + "a" * 2990),
        "/elements/0/url",
    ),
    ("button style", lambda b: button(b).update(style="green"), "/elements/0/style"),
    (
        "action_id over 255",
        lambda b: button(b).update(action_id="a" * 256),
        "/elements/0/action_id",
    ),
    (
        "action_id twice in a message",
        lambda b: select(b).update(action_id="endorse#0"),
        "/elements/1/action_id",
    ),
    ("block_id over 255", lambda b: b[1].update(block_id="b" * 256), "/blocks/1/block_id"),
    ("block_id twice", lambda b: b[2].update(block_id="body"), "/blocks/2/block_id"),
    (
        "more than 25 elements in actions",
        lambda b: b[3].update(
            elements=[
                {"type": "button", "action_id": f"b{n}", "text": plain("Go"), "value": "1"}
                for n in range(26)
            ]
        ),
        "/blocks/3/elements",
    ),
    (
        "more than 10 elements in context",
        lambda b: b[4].update(elements=[mrkdwn(f"c{n}") for n in range(11)]),
        "/blocks/4/elements",
    ),
    (
        "option text over 75",
        lambda b: select(b)["options"][0].update(text=plain("x" * 76)),
        "/options/0/text",
    ),
    (
        "option value over 150",
        lambda b: select(b)["options"][0].update(value="v" * 151),
        "/options/0/value",
    ),
    (
        "more than 100 options",
        lambda b: select(b).update(options=[option(n) for n in range(101)]),
        "/elements/1/options",
    ),
    (
        "initial_option not among the options",
        lambda b: select(b).update(initial_option=option(9)),
        "/initial_option",
    ),
    ("an unknown block type", lambda b: b.append({"type": "sparkles"}), "/blocks/6/type"),
]

VIEW_RULES: list[tuple[str, Callable[[View], object], str]] = [
    ("modal title over 24", lambda v: v.update(title=plain("x" * 25)), "/view/title/text"),
    ("modal title in mrkdwn", lambda v: v.update(title=mrkdwn("Share")), "/view/title/type"),
    ("modal without a title", lambda v: v.pop("title"), "/view]"),
    ("submit over 24", lambda v: v.update(submit=plain("x" * 25)), "/view/submit/text"),
    ("close over 24", lambda v: v.update(close=plain("x" * 25)), "/view/close/text"),
    ("inputs without submit", lambda v: v.pop("submit"), "/view]"),
    (
        "max_length over 3,000",
        lambda v: input_element(v).update(max_length=4000),
        "/element/max_length",
    ),
    ("max_length 0", lambda v: input_element(v).update(max_length=0), "/element/max_length"),
    (
        "min_length over 3,000",
        lambda v: input_element(v).update(min_length=3001, max_length=3000),
        "/element/min_length",
    ),
    (
        "initial_value longer than max_length",
        lambda v: input_element(v).update(max_length=5, initial_value="longer than five"),
        "/element/initial_value",
    ),
    (
        "input label over 2,000",
        lambda v: v["blocks"][1].update(label=plain("x" * 2001)),
        "/view/blocks/1/label/text",
    ),
    (
        "placeholder over 150",
        lambda v: input_element(v).update(placeholder=plain("x" * 151)),
        "/element/placeholder/text",
    ),
    (
        "private_metadata over 3,000",
        lambda v: v.update(private_metadata="m" * 3001),
        "/view/private_metadata",
    ),
    ("callback_id over 255", lambda v: v.update(callback_id="c" * 256), "/view/callback_id"),
    (
        "101 blocks in a modal",
        lambda v: v["blocks"].extend({"type": "divider"} for _ in range(99)),
        "/view/blocks]",
    ),
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackAPI]:
    api = FakeSlackAPI()
    await api.start()
    yield api
    await api.stop()  # fails the test if a refusal was left untaken


@pytest.fixture
def client(fake: FakeSlackAPI) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=fake.base_url)


async def refused(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as raised:
        await call
    return dict(raised.value.response.data)


def pointed(answer: dict[str, Any], where: str) -> bool:
    found = answer.get("errors") or answer.get("response_metadata", {}).get("messages", [])
    return any(where in f for f in found)


async def test_the_good_payloads_are_accepted(fake: FakeSlackAPI, client: AsyncWebClient) -> None:
    assert block_kit.problems(good_blocks()) == []
    assert block_kit.problems(good_modal()) == []
    assert block_kit.problems(good_home()) == []
    posted = await client.chat_postMessage(channel="C_PLN", text="A share", blocks=good_blocks())
    await client.chat_update(channel="C_PLN", ts=posted["ts"], text="Edited", blocks=good_blocks())
    await client.chat_postEphemeral(channel="C_PLN", user="U_TEACHER1", text="Only you")
    await client.views_open(trigger_id="1.2.abc", view=good_modal())
    await client.views_publish(user_id="U_TEACHER1", view=good_home())
    assert fake.rejected == []


@pytest.mark.parametrize("rule, breaks, where", MESSAGE_RULES, ids=[r[0] for r in MESSAGE_RULES])
async def test_each_message_rule_bites(
    fake: FakeSlackAPI,
    client: AsyncWebClient,
    rule: str,
    breaks: Callable[[Blocks], object],
    where: str,
) -> None:
    blocks = copy.deepcopy(good_blocks())
    breaks(blocks)
    answer = await refused(client.chat_postMessage(channel="C_PLN", text="x", blocks=blocks))
    assert answer["error"] == "invalid_blocks", answer
    assert pointed(answer, where.rstrip("]")), (rule, answer)
    assert answer["response_metadata"]["messages"][0].startswith("[ERROR] ")
    # The same rule for ephemeral messages and updates.
    answer = await refused(
        client.chat_postEphemeral(channel="C_PLN", user="U_TEACHER1", text="x", blocks=blocks)
    )
    assert answer["error"] == "invalid_blocks"
    posted = await client.chat_postMessage(channel="C_PLN", text="fine")
    answer = await refused(
        client.chat_update(channel="C_PLN", ts=posted["ts"], text="x", blocks=blocks)
    )
    assert answer["error"] == "invalid_blocks"
    # ...and for the Home tab (views.publish), unless the rule is about a message's 50.
    if rule != "51 blocks":
        answer = await refused(
            client.views_publish(user_id="U_TEACHER1", view={"type": "home", "blocks": blocks})
        )
        assert answer["error"] == "invalid_arguments"
    assert [r.answer["error"] for r in fake.take_rejections()].count("invalid_blocks") == 3


@pytest.mark.parametrize("rule, breaks, where", VIEW_RULES, ids=[r[0] for r in VIEW_RULES])
async def test_each_view_rule_bites(
    fake: FakeSlackAPI,
    client: AsyncWebClient,
    rule: str,
    breaks: Callable[[View], object],
    where: str,
) -> None:
    view = copy.deepcopy(good_modal())
    breaks(view)
    answer = await refused(client.views_open(trigger_id="1.2.abc", view=view))
    assert answer["error"] == "invalid_arguments", answer
    assert pointed(answer, where.rstrip("]")), (rule, answer)
    assert len(fake.take_rejections()) == 1
    # A refused view leaves the trigger unused: the good view still opens with it.
    await client.views_open(trigger_id="1.2.abc", view=good_modal())


async def test_a_home_tab_holds_100_blocks_and_no_more(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    blocks: Blocks = [{"type": "divider"} for _ in range(100)]
    await client.views_publish(user_id="U_TEACHER1", view={"type": "home", "blocks": blocks})
    answer = await refused(
        client.views_publish(
            user_id="U_TEACHER1", view={"type": "home", "blocks": [*blocks, {"type": "divider"}]}
        )
    )
    assert answer["error"] == "invalid_arguments" and pointed(answer, "/view/blocks")
    fake.take_rejections()


async def test_views_open_needs_a_modal_and_views_publish_a_home(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    answer = await refused(client.views_open(trigger_id="1.2.abc", view=good_home()))
    assert answer["error"] == "invalid_arguments" and pointed(answer, "/view/type")
    answer = await refused(client.views_publish(user_id="U_TEACHER1", view=good_modal()))
    assert answer["error"] == "invalid_arguments" and pointed(answer, "/view/type")
    answer = await refused(client.api_call("views.publish", json={"view": good_home()}))
    assert answer["error"] == "invalid_arguments"  # no user_id
    assert len(fake.take_rejections()) == 3


async def test_triggers_are_checked_used_once_and_expire(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    answer = await refused(client.api_call("views.open", json={"view": good_modal()}))
    assert answer["error"] == "invalid_arguments"  # no trigger_id at all
    answer = await refused(client.views_open(trigger_id="not-a-trigger", view=good_modal()))
    assert answer["error"] == "invalid_trigger_id"
    await client.views_open(trigger_id="12345.98765.abcd2358fdea", view=good_modal())
    answer = await refused(
        client.views_open(trigger_id="12345.98765.abcd2358fdea", view=good_modal())
    )
    assert answer["error"] == "exchanged_trigger_id"
    assert [r.answer["error"] for r in fake.take_rejections()] == [
        "invalid_arguments",
        "invalid_trigger_id",
        "exchanged_trigger_id",
    ]
    # An expired trigger is Slack's clock, not the bot's fault: answered, not a rejection.
    fake.expire_trigger("222.333.feed")
    answer = await refused(client.views_open(trigger_id="222.333.feed", view=good_modal()))
    assert answer["error"] == "expired_trigger_id" and fake.rejected == []


async def test_text_is_required_without_blocks_and_refused_past_40000(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    answer = await refused(client.chat_postMessage(channel="C_PLN", text=""))
    assert answer["error"] == "no_text"
    answer = await refused(client.chat_postMessage(channel="C_PLN", text="", blocks=[]))
    assert answer["error"] == "no_text"
    await client.chat_postMessage(channel="C_PLN", text="", blocks=good_blocks())  # blocks alone
    await client.chat_postMessage(channel="C_PLN", text="x" * block_kit.MESSAGE_TEXT)
    answer = await refused(
        client.chat_postMessage(channel="C_PLN", text="x" * (block_kit.MESSAGE_TEXT + 1))
    )
    assert answer["error"] == "msg_too_long"
    answer = await refused(
        client.chat_postEphemeral(channel="C_PLN", user="U_TEACHER1", text="x" * 40_001)
    )
    assert answer["error"] == "msg_too_long"
    answer = await refused(
        client.api_call("chat.postMessage", data={"channel": "C_PLN", "blocks": "{not json"})
    )
    assert answer["error"] == "invalid_blocks_format"
    assert [r.answer["error"] for r in fake.take_rejections()] == [
        "no_text",
        "no_text",
        "msg_too_long",
        "msg_too_long",
        "invalid_blocks_format",
    ]


async def test_the_fallback_text_helper_holds_slacks_advice(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    block_kit.assert_fallback("x" * 4000)
    with pytest.raises(AssertionError, match="4,001 characters"):
        block_kit.assert_fallback("x" * 4001)
    await client.chat_postMessage(channel="C_PLN", text="x" * 4000, blocks=good_blocks())
    fake.assert_fallbacks()
    await client.chat_postMessage(channel="C_PLN", text="x" * 4001, blocks=good_blocks())
    with pytest.raises(AssertionError, match=r"chat\.postMessage"):
        fake.assert_fallbacks()  # accepted by Slack, but past what it advises


async def test_chat_update_needs_a_posted_message(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    answer = await refused(client.chat_update(channel="C_PLN", ts="1700000000.999999", text="x"))
    assert answer["error"] == "message_not_found"
    posted = await client.chat_postMessage(channel="C_PLN", text="first")
    answer = await refused(client.chat_update(channel="C_OTHER", ts=posted["ts"], text="x"))
    assert answer["error"] == "message_not_found"  # the right ts in the wrong channel
    await client.chat_update(channel="C_PLN", ts=posted["ts"], text="second")
    await client.chat_delete(channel="C_PLN", ts=posted["ts"])
    answer = await refused(client.chat_update(channel="C_PLN", ts=posted["ts"], text="third"))
    assert answer["error"] == "message_not_found"
    answer = await refused(client.chat_update(channel="C_PLN", ts="", text="x"))
    assert answer["error"] == "message_not_found"
    assert len(fake.take_rejections()) == 4


async def test_a_response_url_refuses_what_chat_postmessage_would(fake: FakeSlackAPI) -> None:
    bad = good_blocks()
    bad[0]["text"] = plain("x" * 151)
    async with aiohttp.ClientSession() as http:
        async with http.post(fake.response_url("r"), json={"text": "x", "blocks": bad}) as response:
            assert (response.status, await response.text()) == (400, "invalid_blocks")
        async with http.post(fake.response_url("r"), json={"blocks": []}) as response:
            assert (response.status, await response.text()) == (400, "no_text")
        async with http.post(fake.response_url("r"), json={"text": "fine"}) as response:
            assert response.status == 200
        fake.expire_response_url("old")
        async with http.post(fake.response_url("old"), json={"text": "late"}) as response:
            assert (response.status, await response.text()) == (404, "expired_url")
    assert [r["text"] for r in fake.responses] == ["fine"]  # refused bodies are not recorded
    assert [r.answer["error"] for r in fake.take_rejections()] == ["invalid_blocks", "no_text"]


async def test_a_refusal_left_behind_fails_the_test_that_caused_it() -> None:
    api = FakeSlackAPI()
    await api.start()
    client = AsyncWebClient(token="xoxb-test", base_url=api.base_url)
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="C_PLN", text="x" * 40_001)
    with pytest.raises(AssertionError, match="msg_too_long"):
        await api.stop()
    lenient = FakeSlackAPI(strict=False)  # for benchmarks that only count
    await lenient.start()
    client = AsyncWebClient(token="xoxb-test", base_url=lenient.base_url)
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="C_PLN", text="")
    await lenient.stop()
    assert len(lenient.rejected) == 1
