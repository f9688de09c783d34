"""Handlers are plain module-level functions, registered once each: a second registration
under the same command, action id, flow name or listener kind fails loudly instead of
silently replacing the first."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from bot.core.context import Context
from bot.core.dispatch import build_router
from bot.core.router import Router
from bot.features import goals
from bot.features.endorsements import endorsable, endorse_by_reaction, press_endorse
from bot.features.goals import add_goal


async def first(ctx: Context) -> None:
    return None


async def second(ctx: Context) -> None:
    return None


async def first_step(ctx: Context, step: str, text: str, data: dict[str, Any]) -> None:
    return None


async def second_step(ctx: Context, step: str, text: str, data: dict[str, Any]) -> None:
    return None


def test_a_button_registered_twice_fails_and_the_first_stays() -> None:
    router = Router()
    router.action("endorse", first)
    with pytest.raises(ValueError, match="action 'endorse' registered twice"):
        router.action("endorse", second)
    assert router.actions["endorse"] is first


def test_the_decorator_form_fails_the_same_way() -> None:
    router = Router()

    @router.action("endorse")
    async def endorse(ctx: Context) -> None:
        return None

    with pytest.raises(ValueError, match="registered twice"):

        @router.action("endorse")
        async def endorse_again(ctx: Context) -> None:
            return None

    assert router.actions["endorse"] is endorse


def test_a_flow_registered_twice_fails_and_keeps_its_waiting_words() -> None:
    router = Router()
    router.flow("checkin", first_step, waiting="your check-in")
    with pytest.raises(ValueError, match="flow 'checkin' registered twice"):
        router.flow("checkin", second_step, waiting="something else")
    assert router.flows["checkin"] is first_step
    assert router.waiting["checkin"] == "your check-in"


def test_a_listener_registered_twice_fails_and_keeps_its_filter() -> None:
    router = Router()
    router.on("reaction", first, wanted=endorsable)
    with pytest.raises(ValueError, match="listener 'reaction' registered twice"):
        router.on("reaction", second, wanted=lambda session, settings, event: True)
    assert router.listeners["reaction"] is first
    assert router.wanted["reaction"] is endorsable


def test_a_command_registered_twice_still_fails() -> None:
    router = Router()
    goals.register(router)
    with pytest.raises(ValueError, match="command 'goal add' registered twice"):
        router.command("goal add", add_goal, summary="again")


def test_goal_add_runs_the_importable_add_goal() -> None:
    router = Router()
    goals.register(router)
    assert router.commands["goal add"].handler is add_goal
    assert list(router.commands) == ["goal add", "goal list", "goal done"]


def test_the_whole_bot_builds_with_every_name_registered_once() -> None:
    router = build_router()  # a duplicate anywhere raises here
    assert list(router.commands)[:3] == ["help", "profile", "profile show"]
    assert router.actions["endorse"] is press_endorse
    assert router.listeners["reaction"] is endorse_by_reaction
    # The *Open the share form* button is the home tab's: it also finds the member's
    # community when pressed outside one.
    assert router.actions["share_open"].__module__ == "bot.features.home"


def test_every_outbox_kind_is_declared_by_its_feature_once() -> None:
    """Delivery draws a row by asking the registry; the features fill it in."""
    router = build_router()
    assert router.outbox.kinds == {"checkin", "nudge", "digest", "prompt", "standard", "enactment"}
    assert router.outbox.preparer("digest") is not None  # the model's intro, asked first
    assert router.outbox.live_drawer("artifact") is not None  # share cards redrawn on send
    with pytest.raises(ValueError, match="outbox kind 'digest' registered twice"):
        router.outbox.add("digest", lambda due: None)
    with pytest.raises(ValueError, match="live link kind 'artifact' registered twice"):
        router.outbox.live("artifact", lambda session, prompts, object_id: None)


async def test_a_row_of_a_kind_nobody_declared_fails_and_is_logged(story, db, caplog) -> None:  # type: ignore[no-untyped-def]
    """A row no feature declared is not guessed at: it fails, once, with the reason kept."""
    from storage.models import OutboxMessage, Workspace

    await story.command("U_COACH", "help")
    with db.session() as session:
        workspace = session.exec(select(Workspace)).first()
        assert workspace is not None
        session.add(
            OutboxMessage(
                key="mystery:1",
                workspace_id=workspace.id,
                kind="mystery",
                lane="chan:x",
                not_before=story.clock.now(),
                created_at=story.clock.now(),
            )
        )
        session.commit()
    story.platform.pop()
    await story.deliver()
    with db.session() as session:
        row = session.exec(select(OutboxMessage).where(OutboxMessage.key == "mystery:1")).one()
    assert row.status == "failed" and "ValueError" in row.error
    assert "rendering outbox row" in caplog.text
