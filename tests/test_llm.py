"""The optional model over real HTTP: the real `openai` client against a local
OpenAI-compatible server (tests/llm_fake.py). A normal answer personalises; a slow one, a 500,
malformed JSON or an empty answer give the template wording, quickly; nothing sent names a
member or carries an id; answers are cached per member and week; the weekly budget holds."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.config import Settings
from bot.core.dispatch import Bot
from bot.delivery.sender import OutboxSender
from bot.services.llm import ModelClient, Scrubber
from bot.services.prompts import PromptLibrary
from storage.db import Database
from storage.model_tables import ModelCache, ModelUsage
from storage.models import Member, ReflectionPrompt
from tests.doubles import FrozenClock, RecordingPlatform, Sent
from tests.llm_fake import FakeModel
from tests.steps import artifact_id, only, rows, setup_community, share, text_of
from tests.story import CHANNEL, Story

TIMEOUT = 0.5  # seconds: the hard deadline in these tests (10 s by default)
PERSONAL = "What small routine already helps your students say what they need next?"


@pytest.fixture
async def fake() -> AsyncIterator[FakeModel]:
    model = FakeModel(reply=PERSONAL)
    await model.start()
    yield model
    await model.stop()


def model_settings(fake: FakeModel, **extra: object) -> Settings:
    values: dict[str, object] = {
        "PLNBOT_COACHES": "U_COACH",
        "DATABASE_URL": "sqlite:///unused.db",
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake.url,
        "PLNBOT_LLM_MODEL": "fake-model",
        "PLNBOT_LLM_TIMEOUT": TIMEOUT,
    }
    return Settings(**(values | extra))  # type: ignore[arg-type]


def story_with(settings: Settings, db: Database, clock: FrozenClock) -> Story:
    platform = RecordingPlatform()
    bot = Bot(db=db, settings=settings, clock=clock)
    sender = OutboxSender(
        db=db,
        platforms={platform.name: platform},
        prompts=bot.prompts,
        kinds=bot.router.outbox,
        clock=clock,
        default_tz=settings.timezone,
        llm=bot.llm,
    )
    return Story(bot=bot, platform=platform, clock=clock, sender=sender)


@pytest.fixture
def model_story(fake: FakeModel, db: Database, clock: FrozenClock) -> Story:
    return story_with(model_settings(fake), db, clock)


def set_profile(db: Database, user_id: str, **values: str) -> None:
    with db.session() as session:
        member = only_member(session, user_id)
        for key, value in values.items():
            setattr(member, key, value)
        session.add(member)


def only_member(session, user_id: str) -> Member:  # type: ignore[no-untyped-def]
    from sqlmodel import select

    return session.exec(select(Member).where(Member.user_id == user_id)).one()


async def prompt_card(story: Story) -> Sent:
    sent = await story.command("U_COACH", "prompt")
    return only([s for s in sent if not s.ephemeral])


async def reflect_privately(story: Story, user: str, card: Sent) -> Sent:
    assert card.message.card is not None
    sent = await story.press(user, "reflect_private", card.message.card.buttons[0].value)
    return next(s for s in sent if s.conversation.channel_id == f"D-{user}")


def base_wording(db: Database, library: PromptLibrary, role: str | None = None) -> str:
    [record] = rows(db, ReflectionPrompt)
    template = next(p for p in library.reflection_prompts if p.id == record.prompt_key)
    return template.for_role(role)


async def test_a_normal_answer_personalises_the_private_prompt(
    model_story: Story, fake: FakeModel, db: Database
) -> None:
    await setup_community(model_story)
    await model_story.join("U_ANA")
    set_profile(
        db, "U_ANA", role="teacher", strengths="Warm routines", needs="Time to plan together"
    )
    await model_story.command("U_ANA", "goal add Use exit tickets daily", channel=None)
    dm = await reflect_privately(model_story, "U_ANA", await prompt_card(model_story))
    assert dm.text.startswith(PERSONAL) and "only you will see it" in dm.text
    [request] = fake.requests
    assert request["model"] == "fake-model" and request["max_tokens"] == 300
    system, user = request["messages"]
    assert "inquiry stance" in system["content"] and "one open question" in system["content"]
    assert base_wording(db, model_story.bot.prompts, "teacher") in user["content"]
    for detail in ("role: teacher", "strengths: Warm routines", "goal: Use exit tickets daily"):
        assert detail in user["content"]


@pytest.mark.parametrize("mode", ["slow", "error", "malformed", "empty"])
async def test_a_slow_failing_or_malformed_model_gives_the_template_quickly(
    model_story: Story, fake: FakeModel, db: Database, mode: str
) -> None:
    await setup_community(model_story)
    card = await prompt_card(model_story)
    fake.mode, fake.delay = mode, 2.0
    started = time.monotonic()
    dm = await reflect_privately(model_story, "U_ANA", card)
    took = time.monotonic() - started
    assert dm.text.startswith(base_wording(db, model_story.bot.prompts))
    assert "error" not in dm.text.lower() and "model" not in dm.text.lower()
    assert took < TIMEOUT + 1.0, f"the teacher waited {took:.2f}s"
    # A failure is retried once within the deadline; a timeout already spent it.
    assert len(fake.requests) == (1 if mode == "slow" else 2)
    [usage] = rows(db, ModelUsage)
    assert usage.failures == 1 and usage.requests == 1
    assert rows(db, ModelCache) == []  # nothing to cache: next time the model is asked again


async def test_a_failed_attempt_is_retried_once(
    model_story: Story, fake: FakeModel, db: Database
) -> None:
    await setup_community(model_story)
    card = await prompt_card(model_story)
    fake.then = ["error"]  # the first attempt gets a 500, the retry an answer
    dm = await reflect_privately(model_story, "U_ANA", card)
    assert dm.text.startswith(PERSONAL)
    assert len(fake.requests) == 2


async def test_no_names_ids_or_private_words_reach_the_model(
    model_story: Story, fake: FakeModel, db: Database
) -> None:
    """The member, their peers and the bot's ids never appear in any request: not from the
    profile, not from endorsement notes, not from titles; private check-in words stay home."""
    await setup_community(model_story)
    for user in ("U_XIMENA", "U_BENEDIKT", "U_CORDELIA"):
        await model_story.join(user)
    set_profile(
        db,
        "U_XIMENA",
        role="teacher",
        strengths="Ximena's station rotations; co-teaching with Benedikt (<@U_BENEDIKT>)",
        interests="Feedback loops; write to ximena@example.org",
    )
    await model_story.command("U_XIMENA", "goal add Run student-led conferences", channel=None)
    await model_story.command("U_XIMENA", "checkin", channel=None)
    secret = "PRIVATE: anxious about my observation"
    await model_story.say("U_XIMENA", f"4 - {secret}")
    await reflect_privately(model_story, "U_XIMENA", await prompt_card(model_story))

    card = await share(
        model_story, "U_XIMENA", "https://example.org/conf", "Cordelia-approved conference script"
    )
    note = "Borrowing this tomorrow with <@U_BENEDIKT> — thanks Ximena, and Cordelia said so too"
    await model_story.press("U_BENEDIKT", "endorse_note", artifact_id(card), values={"note": note})
    await model_story.press("U_CORDELIA", "endorse", artifact_id(card))
    await model_story.command("U_COACH", "digest post")
    await model_story.deliver()

    assert len(fake.requests) == 2  # the private prompt, and the digest introduction
    sent = fake.texts()
    for word in ("Ximena", "Benedikt", "Cordelia", "U_XIMENA", "U_BENEDIKT", "U_CORDELIA"):
        assert word.lower() not in sent.lower(), word
    assert "ximena@example.org" not in sent and secret not in sent and "anxious" not in sent
    assert "4/10 (Envisioning)" in sent  # the private answer's rating and band, not its words
    assert "conference script" in sent and "Borrowing this tomorrow" in sent


async def test_the_personalised_prompt_is_cached_per_member_and_week(
    model_story: Story, fake: FakeModel, db: Database
) -> None:
    await setup_community(model_story)
    card = await prompt_card(model_story)
    assert (await reflect_privately(model_story, "U_ANA", card)).text.startswith(PERSONAL)
    assert (await reflect_privately(model_story, "U_ANA", card)).text.startswith(PERSONAL)
    assert len(fake.requests) == 1  # the same member, week and prompt: from the cache
    await reflect_privately(model_story, "U_BEN", card)
    assert len(fake.requests) == 2  # another member
    model_story.clock.advance(timedelta(days=7))
    await reflect_privately(model_story, "U_ANA", card)
    assert len(fake.requests) == 3  # another week
    [usage_w48, usage_w49] = rows(db, ModelUsage)
    assert (usage_w48.iso_week, usage_w48.tokens, usage_w48.requests) == ("2026-W48", 300, 2)
    assert (usage_w49.iso_week, usage_w49.tokens) == ("2026-W49", 150)


async def test_the_weekly_token_budget_per_community_holds(
    fake: FakeModel, db: Database, clock: FrozenClock
) -> None:
    fake.usage_tokens = 400  # what the server reports each request used
    settings = model_settings(fake, PLNBOT_LLM_WEEKLY_TOKENS=1000, PLNBOT_LLM_MAX_TOKENS=100)
    story = story_with(settings, db, clock)
    await setup_community(story)
    card = await prompt_card(story)
    library = story.bot.prompts
    answers = [await reflect_privately(story, user, card) for user in ("U_A1", "U_A2", "U_A3")]
    # A request is only made when its estimate (~330 tokens: its text and 100 to answer)
    # still fits: 0 + 330 and 400 + 330 do, 800 + 330 doesn't.
    assert len(fake.requests) == 2
    assert [a.text.startswith(PERSONAL) for a in answers] == [True, True, False]
    assert answers[2].text.startswith(base_wording(db, library))
    clock.advance(timedelta(days=7))
    assert (await reflect_privately(story, "U_A3", card)).text.startswith(PERSONAL)


async def test_llm_off_sends_nothing_even_with_a_server(
    fake: FakeModel, db: Database, clock: FrozenClock
) -> None:
    story = story_with(model_settings(fake, PLNBOT_LLM="off"), db, clock)
    assert not story.bot.llm.enabled
    await setup_community(story)
    dm = await reflect_privately(story, "U_ANA", await prompt_card(story))
    assert dm.text.startswith(base_wording(db, story.bot.prompts))
    assert fake.requests == []


async def test_the_digest_introduction_comes_from_the_notes(
    model_story: Story, fake: FakeModel, db: Database
) -> None:
    intro = (
        "Peers valued exit tickets that take two minutes. Several want to borrow the "
        "three-question format. Try one this week and say what you'd keep."
    )
    fake.reply = intro + " A fourth sentence is dropped."
    await setup_community(model_story)
    card = await share(model_story, "U_ANA", "https://example.org/a", "Two-minute exit tickets")
    await model_story.press(
        "U_BEN", "endorse_note", artifact_id(card), values={"note": "The three-question format"}
    )
    preview = only(await model_story.command("U_COACH", "digest preview"))
    assert preview.message.card is not None and preview.message.card.body == intro
    [request] = fake.requests
    system, user = request["messages"]
    assert "exactly three short sentences" in system["content"]
    assert "Two-minute exit tickets" in user["content"]
    assert "The three-question format" in user["content"]

    # Posting the same digest reuses the cached introduction: no second request.
    await model_story.command("U_COACH", "digest post")
    [posted] = await model_story.deliver()
    assert posted.message.card is not None and posted.message.card.body == intro
    assert intro in posted.text and len(fake.requests) == 1


async def test_a_failing_model_leaves_the_digest_with_the_template_intro(
    model_story: Story, fake: FakeModel
) -> None:
    fake.mode = "error"
    await setup_community(model_story)
    card = await share(model_story, "U_ANA", "https://example.org/a", "Two-minute exit tickets")
    await model_story.press("U_BEN", "endorse", artifact_id(card))
    await model_story.command("U_COACH", "digest post")
    [posted] = await model_story.deliver()
    assert posted.conversation.channel_id == CHANNEL
    assert posted.message.card is not None
    assert posted.message.card.body.startswith("This week's one share drew peers' endorsements.")
    assert "Two-minute exit tickets" in text_of([posted])
    assert len(fake.requests) == 2


async def test_a_slow_model_does_not_stall_other_people(
    fake: FakeModel, db: Database, clock: FrozenClock
) -> None:
    """While one teacher's prompt waits on the model, others' events are handled and
    committed; the waiting one still completes."""
    story = story_with(model_settings(fake, PLNBOT_LLM_TIMEOUT=1.0), db, clock)
    await setup_community(story)
    card = await prompt_card(story)
    fake.mode, fake.delay = "slow", 0.3
    assert card.message.card is not None
    waiting = asyncio.create_task(
        story.press("U_ANA", "reflect_private", card.message.card.buttons[0].value)
    )
    await asyncio.sleep(0.1)
    started = time.monotonic()
    ben = only(await story.command("U_BEN", "goal add Try gallery walks", channel=None))
    assert ben.text.startswith("Goal 1") and time.monotonic() - started < 0.2
    sent = await waiting
    assert any(s.text.startswith(PERSONAL) for s in sent), text_of(sent)


def test_the_scrubber_removes_names_ids_mentions_and_addresses() -> None:
    scrub = Scrubber(["Ana María López", "U0123ABCD", "Ben"])
    text = scrub(
        "Ana María López and ana said <@U0123ABCD|ana> <@W777> <at>Ben Smith</at> "
        "U0123ABCD mailed ana.lopez@school.org; Bennett @ben.s benefits"
    )
    for gone in ("Ana", "María", "López", "U0123ABCD", "W777", "Smith", "@school", "@ben"):
        assert gone.lower() not in text.lower(), (gone, text)
    assert "Bennett" in text and "benefits" in text  # whole words only


def test_the_model_client_is_off_without_a_key_or_url(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(DATABASE_URL="sqlite:///unused.db")  # type: ignore[call-arg]
    assert not ModelClient.from_settings(settings).enabled
    assert json.dumps(ModelClient().prompts["templates"])  # the wording is data in prompts/
