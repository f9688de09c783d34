"""A reply waits in the outbox as JSON: read back by another process (after a crash, or a
replica), it is the message that was queued, field for field."""

from __future__ import annotations

import json

from bot.core import codec
from bot.core.codec import message_from_json, message_to_json
from bot.core.events import ConversationRef, MessageRef, UserRef
from bot.core.messages import (
    Attachment,
    Button,
    Card,
    Field,
    Input,
    Link,
    Message,
    Option,
    Visibility,
)

CHANNEL = ConversationRef(
    platform="teams",
    workspace_id="tenant-1",
    channel_id="19:abc@thread.tacv2",
    name="PLN",
    raw={"conversation": {"id": "19:abc@thread.tacv2"}, "serviceUrl": "https://smba.example/"},
)


def queued_reply() -> Message:
    return Message(
        text="Ana shared evidence: Station rotation",
        card=Card(
            title="Station rotation",
            body="notes — “quoted” 🎯",
            fields=(Field(label="Shared by", value="Ana"),),
            inputs=(
                Input(
                    id="goal",
                    label="Goal",
                    kind="select",
                    options=(Option(label="Goal 1", value="1"),),
                    max_length=None,
                ),
            ),
            buttons=(Button(label="Endorse (0)", action_id="endorse", value="7", style="primary"),),
            submit=Button(label="Send", action_id="send"),
            footer="",
        ),
        visibility=Visibility.EPHEMERAL,
        to=UserRef(platform="teams", workspace_id="tenant-1", user_id="29:1ana"),
        conversation=CHANNEL,
        replace=MessageRef(conversation=CHANNEL, message_id="1765000000000"),
        attachment=Attachment(filename="export.json", content=b"\x00\xffbytes", mime_type="a/b"),
        link=Link(kind="artifact", object_id=7),
        live=True,
    )


def test_a_reply_read_back_in_another_process_is_the_one_queued() -> None:
    message = queued_reply()
    text = message_to_json(message)
    # What another process does with the row: decode the text, knowing nothing of it.
    again = codec.load(Message, json.loads(text))
    assert again == message
    assert again.link == message.link  # fields left out of == are kept too
    assert again.conversation is not None and again.conversation.raw == CHANNEL.raw
    assert again.conversation.name == "PLN"
    assert again.attachment is not None and again.attachment.content == b"\x00\xffbytes"


def test_a_reply_this_process_queued_is_not_decoded_again() -> None:
    message = queued_reply()
    text = message_to_json(message)
    assert message_from_json(text) is message
    # Read once: a second read (the row sent again after a failure) decodes the text.
    later = message_from_json(text)
    assert later == message and later is not message
