"""Reflection prompts: a coach posts one, members reply in its thread; the wording lives in
`prompts/` as data and every template renders with strict placeholders."""

from __future__ import annotations

from collections import Counter

import jinja2
import jinja2.meta
import pytest

from bot.services.prompts import PromptLibrary, render
from storage.db import Database
from storage.models import Membership, Reflection, ReflectionPrompt
from tests.doubles import Sent
from tests.steps import rows, setup_community
from tests.story import CHANNEL, Story

ELEMENTS = {
    "shared_ownership",
    "21st_century_skills",
    "diverse_opportunities",
    "participative_evaluation",
}
ROLES = ("teacher", "instructional_coach", "principal", "district_leader")


@pytest.fixture(scope="module")
def library() -> PromptLibrary:
    return PromptLibrary.load()


async def post_prompt(story: Story, words: str = "prompt") -> Sent:
    sent = await story.command("U_COACH", words)
    cards = [s for s in sent if not s.ephemeral]
    assert len(cards) == 1, [s.text for s in sent]
    assert cards[0].conversation.channel_id == CHANNEL
    return cards[0]


async def test_a_coach_posts_a_prompt_and_thread_replies_become_shared_reflections(
    story: Story, db: Database
) -> None:
    await setup_community(story)
    card = await post_prompt(story)
    assert card.message.card is not None
    assert card.message.card.title.startswith("Reflection prompt · ")
    [button] = card.message.card.buttons
    assert button.action_id == "reflect_private"
    [record] = rows(db, ReflectionPrompt)
    assert button.value == str(record.id) and record.text in card.text

    assert (
        await story.reply_in_thread(
            "U_ANA", card.ref.message_id, "We tried student-led exit tickets"
        )
        == []
    )
    await story.reply_in_thread("U_BEN", card.ref.message_id, "Gallery walk 🎨")
    reflections = rows(db, Reflection)
    assert [(r.text, r.is_private, r.prompt_id) for r in reflections] == [
        ("We tried student-led exit tickets", False, record.id),
        ("Gallery walk 🎨", False, record.id),
    ]
    # Replying makes them members of the community.
    assert len(rows(db, Membership)) == 3


async def test_replies_in_other_threads_are_not_reflections(story: Story, db: Database) -> None:
    await setup_community(story)
    card = await post_prompt(story)
    shared = [
        s
        for s in await story.command("U_ANA", "share https://example.org/a Lesson")
        if not s.ephemeral
    ]
    await story.reply_in_thread("U_BEN", shared[0].ref.message_id, "Nice one")
    await story.reply_in_thread("U_BEN", "m-unknown", "Chatter")
    await story.reply_in_thread("U_BEN", card.ref.message_id, "   ")
    assert rows(db, Reflection) == []


async def test_prompt_for_an_element(story: Story, db: Database, library: PromptLibrary) -> None:
    await setup_community(story)
    card = await post_prompt(story, "prompt 21st-century skills")
    assert card.message.card is not None
    assert card.message.card.title == "Reflection prompt · 21st-century skills"
    [record] = rows(db, ReflectionPrompt)
    assert record.element == "21st_century_skills"
    assert record.text in {
        p.text for p in library.reflection_prompts if p.element == "21st_century_skills"
    }

    # Aliases work, and the next prompt of that element is a different one.
    await post_prompt(story, "prompt collaboration")
    keys = [r.prompt_key for r in rows(db, ReflectionPrompt)]
    assert len(set(keys)) == 2
    assert {r.element for r in rows(db, ReflectionPrompt)} == {"21st_century_skills"}


async def test_prompt_for_a_free_topic_uses_the_topic_template(story: Story, db: Database) -> None:
    await setup_community(story)
    card = await post_prompt(story, "prompt peer feedback on lab reports")
    assert card.message.card is not None
    assert card.message.card.title == "Reflection prompt"
    assert card.message.card.body.startswith("Let's reflect on peer feedback on lab reports.")
    [record] = rows(db, ReflectionPrompt)
    assert (record.prompt_key, record.element) == ("topic", None)


async def test_prompts_rotate_through_the_library(
    story: Story, db: Database, library: PromptLibrary
) -> None:
    await setup_community(story)
    for _ in range(len(library.reflection_prompts)):
        await post_prompt(story)
    keys = [r.prompt_key for r in rows(db, ReflectionPrompt)]
    assert sorted(keys) == sorted(p.id for p in library.reflection_prompts)


async def test_reflect_privately_uses_the_wording_for_the_members_role(
    story: Story, db: Database, library: PromptLibrary
) -> None:
    await setup_community(story)
    await story.press("U_PIA", "profile_save", values={"role": "principal"}, channel=None)
    card = await post_prompt(story)
    [record] = rows(db, ReflectionPrompt)
    template = next(p for p in library.reflection_prompts if p.id == record.prompt_key)
    assert card.message.card is not None
    sent = await story.press("U_PIA", "reflect_private", card.message.card.buttons[0].value)
    dm = next(s for s in sent if s.conversation.channel_id == "D-U_PIA")
    assert dm.text.startswith(template.roles["principal"])


def test_the_library_has_enough_prompts_for_every_element_and_role(library: PromptLibrary) -> None:
    prompts = library.reflection_prompts
    assert len(prompts) >= 24
    assert set(library.elements) == ELEMENTS
    per_element = Counter(p.element for p in prompts)
    assert set(per_element) == ELEMENTS
    assert min(per_element.values()) >= 6
    assert len({p.id for p in prompts}) == len(prompts)
    for prompt in prompts:
        for role in ROLES:
            wording = prompt.for_role(role)
            assert wording != prompt.text and len(wording) > 40, (prompt.id, role)
        assert prompt.for_role(None) == prompt.text
        assert prompt.for_role("other") in (prompt.text, prompt.roles.get("other"))
    for role in (*ROLES, "other"):
        assert library.topic_text("exit tickets", role).count("exit tickets") >= 1


def test_every_template_renders(library: PromptLibrary) -> None:
    # Reflection prompts are posted as written, so they must hold no placeholders at all.
    as_written = {prompt.id: prompt.text for prompt in library.reflection_prompts}
    for prompt in library.reflection_prompts:
        as_written |= {f"{prompt.id}:{role}": text for role, text in prompt.roles.items()}
    filled = {"topic": library.topic_prompt["text"]}
    filled |= {f"topic:{r}": t for r, t in library.topic_prompt.get("roles", {}).items()}
    filled |= {f"checkin:{name}": text for name, text in library.checkin.items()}

    env = jinja2.Environment()
    for name, template in (as_written | filled).items():
        placeholders = jinja2.meta.find_undeclared_variables(env.parse(template))
        if name in as_written:
            assert placeholders == set(), name
        rendered = render(template, **{p: f"<{p}>" for p in placeholders})
        assert rendered and "{{" not in rendered and "{%" not in rendered, name
        for placeholder in placeholders:
            assert f"<{placeholder}>" in rendered
            with pytest.raises(jinja2.UndefinedError):  # a missing placeholder fails loudly
                render(template, **{p: "x" for p in placeholders - {placeholder}})

    assert library.checkin_text("saved", rating=7, band="Planning", goal="exit tickets").startswith(
        "Saved: 7 (Planning)"
    )
    with pytest.raises(jinja2.UndefinedError):
        library.checkin_text("saved", rating=7, band="Planning")
    with pytest.raises(jinja2.UndefinedError):
        render("Hello {{ name }}")


def test_element_names_and_aliases(library: PromptLibrary) -> None:
    for words, key in [
        ("21st-century skills", "21st_century_skills"),
        ("21st century skills", "21st_century_skills"),
        ("Shared ownership", "shared_ownership"),
        ("voice", "shared_ownership"),
        ("tech", "diverse_opportunities"),
        ("assessment", "participative_evaluation"),
        ("PARTICIPATIVE_EVALUATION", "participative_evaluation"),
    ]:
        element = library.element_for(words)
        assert element is not None and element.key == key, words
    assert library.element_for("lab reports") is None
