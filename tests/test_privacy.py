"""Transparency and choice: a member sees what is stored (`me`, `export`), can delete all of it
(`forget`), and can pause check-ins."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

from storage.db import Database
from storage.models import (
    Artifact,
    CheckIn,
    Community,
    Digest,
    Endorsement,
    FlowState,
    Goal,
    Member,
    OutboxMessage,
    PostedMessage,
    Reflection,
    Workspace,
)
from tests.steps import artifact_id, only, public, rows, setup_community, share
from tests.story import CHANNEL, Story

ZELDA = "U_ZELDA"  # her display name is "Zelda"


def member_id(db: Database, user_id: str) -> int:
    [member] = rows(db, Member, Member.user_id == user_id)
    assert member.id is not None
    return member.id


async def zelda_takes_part(story: Story, db: Database) -> dict[str, Any]:
    """Zelda does everything a member can: profile, goals, check-ins, reflections, shares that
    peers endorse, endorsements of her own, and a digest that lists her share."""
    await setup_community(story)
    story.platform.members[CHANNEL] = ["U_COACH", ZELDA, "U_BEN"]
    profile = {
        "role": "teacher",
        "school": "Hill School",
        "strengths": "Exit tickets",
        "timezone": "Europe/Paris",
    }
    await story.press(ZELDA, "profile_save", values=profile, channel=None)
    await story.command(ZELDA, "goal add Use exit tickets daily", channel=None)
    await story.command(ZELDA, "goal add Run a gallery walk", channel=None)
    await story.command(ZELDA, "goal done 2", channel=None)

    # A scheduled check-in (through the outbox), answered privately, and one she shares.
    await story.command("U_COACH", "checkins send")
    await story.deliver()
    await story.say(ZELDA, "4 - my private worry about pacing")
    await story.command(ZELDA, "checkin")
    saved = only(await story.say(ZELDA, "7 - students led the exit ticket review"))
    assert saved.message.card is not None
    await story.press(ZELDA, "checkin_share", saved.message.card.buttons[0].value, channel=None)

    # Reflections: one in the prompt's thread, one private in the DM.
    prompt = public(await story.command("U_COACH", "prompt"))
    await story.reply_in_thread(
        ZELDA, prompt.ref.message_id, "Students chose their own exit question"
    )
    assert prompt.message.card is not None
    await story.press(ZELDA, "reflect_private", prompt.message.card.buttons[0].value)
    await story.say(ZELDA, "Privately: I'm not sure it's working for everyone")

    # Her share, endorsed by two peers (one with a note, one with a star) ...
    hers = await share(story, ZELDA, "https://example.org/zelda-exit", "Exit ticket bank")
    await story.press("U_BEN", "endorse_note", artifact_id(hers), values={"note": "Borrowing this"})
    await story.react("U_COACH", hers.ref)
    # ... and endorsements she gives.
    bens = await share(story, "U_BEN", "https://example.org/gallery", "Gallery walk protocol")
    await story.press(ZELDA, "endorse_note", artifact_id(bens), values={"note": "Lovely routine"})
    await story.react(ZELDA, bens.ref)

    # The week's digest lists her share first.
    await story.command("U_COACH", "digest post")
    digest = only(await story.deliver())
    assert "Exit ticket bank" in digest.text and "by Zelda" in digest.text
    await story.command(ZELDA, "pause 14")
    # She became a coach and started a second community of her own.
    await story.command("U_COACH", "coach add <@U_ZELDA>")
    await story.command(ZELDA, "setup Science PLN", channel="C_SCIENCE")
    with db.session() as session:  # she installed the app, too
        for workspace in session.exec(sa.select(Workspace)).scalars():
            workspace.installed_by = ZELDA
            session.add(workspace)
    return {"hers": int(artifact_id(hers)), "bens": int(artifact_id(bens))}


def traces_of(db: Database, user_id: str, name: str, mid: int, artifact_ids: set[int]) -> list[str]:
    """Every place, in every table, that still points at or mentions the member."""
    found: list[str] = []
    needles = (user_id.lower(), name.lower(), f"checkin:{mid}:")
    owned = {"member": {mid}, "artifact": artifact_ids}
    with db.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            pointers = {
                column.name: fk.column.table.name
                for column in table.columns
                for fk in column.foreign_keys
                if fk.column.table.name in owned
            }
            for row in conn.execute(sa.select(table)).mappings():
                for column, value in row.items():
                    if column in pointers and value in owned[pointers[column]]:
                        found.append(f"{table.name}.{column} -> {pointers[column]} {value}")
                    if isinstance(value, str) and any(n in value.lower() for n in needles):
                        found.append(f"{table.name}.{column} = {value[:60]!r}")
                kind = row.get("kind") if table.name == "postedmessage" else None
                if kind == "artifact" and row["object_id"] in artifact_ids:
                    found.append(f"postedmessage.object_id -> artifact {row['object_id']}")
                if table.name == "digest":
                    listed = {int(i) for i in row["artifact_ids"].split(",") if i}
                    if listed & artifact_ids:
                        found.append(f"digest.artifact_ids lists {listed & artifact_ids}")
    return found


async def test_forget_deletes_every_row_that_mentions_the_member(
    story: Story, db: Database
) -> None:
    ids = await zelda_takes_part(story, db)
    zelda = member_id(db, ZELDA)
    before = traces_of(db, ZELDA, "Zelda", zelda, {ids["hers"]})
    for table in ("member.user_id", "goal.member_id", "checkin.member_id", "reflection.member_id",
                  "artifact.author_id", "endorsement.endorser_id", "endorsement.artifact_id", "digest.rendered",
                  "outboxmessage.member_id", "membership.member_id", "workspace.installed_by",
                  "postedmessage.object_id", "digest.artifact_ids", "community.created_by"):  # fmt: skip
        assert any(trace.startswith(table) for trace in before), (table, before)

    asked = only(await story.command(ZELDA, "forget"))
    assert "Type `forget confirm`" in asked.text
    assert asked.message.card is not None
    assert [b.action_id for b in asked.message.card.buttons] == ["forget_confirm", "forget_cancel"]
    assert member_id(db, ZELDA) == zelda  # nothing deleted yet

    done = only(await story.command(ZELDA, "forget confirm"))
    assert done.text.startswith("Done: everything I stored about you is deleted.")
    assert traces_of(db, ZELDA, "Zelda", zelda, {ids["hers"]}) == []

    # Everyone else's work stays; Ben's share loses the endorsement Zelda gave it.
    assert [a.title for a in rows(db, Artifact)] == ["Gallery walk protocol"]
    assert [e.artifact_id for e in rows(db, Endorsement)] == []
    [digest] = rows(db, Digest)
    assert "Exit ticket bank" not in digest.rendered
    assert rows(db, PostedMessage, PostedMessage.kind == "artifact")[0].object_id == ids["bens"]
    assert {m.user_id for m in rows(db, Member)} == {"U_COACH", "U_BEN"}
    assert [(c.name, c.created_by) for c in rows(db, Community)][1] == ("Science PLN", None)

    # Zelda can come back as a new member with nothing attached.
    me = only(await story.command(ZELDA, "me"))
    assert "No goals yet" in me.text and "Shares: 0" in me.text


async def test_forget_asks_first_and_anything_else_keeps_the_data(
    story: Story, db: Database
) -> None:
    await story.command("U_ANA", "goal add Keep me", channel=None)
    await story.command("U_ANA", "forget", channel=None)
    assert [(f.flow, f.step) for f in rows(db, FlowState)] == [("forget", "confirm")]
    kept = only(await story.say("U_ANA", "no wait"))
    assert kept.text == "Kept. Nothing was deleted."
    assert [g.text for g in rows(db, Goal)] == ["Keep me"]

    await story.command("U_ANA", "forget", channel=None)
    assert (
        only(await story.press("U_ANA", "forget_cancel", channel=None)).text
        == "Kept. Nothing was deleted."
    )
    await story.command("U_ANA", "forget", channel=None)
    assert "deleted" in only(await story.say("U_ANA", "yes")).text
    assert rows(db, Goal) == [] and rows(db, Member) == []


async def test_forget_confirm_button(story: Story, db: Database) -> None:
    await story.command("U_ANA", "goal add Delete me", channel=None)
    await story.command("U_ANA", "forget", channel=None)
    assert "deleted" in only(await story.press("U_ANA", "forget_confirm", channel=None)).text
    assert rows(db, Goal) == [] and rows(db, FlowState) == [] and rows(db, Member) == []


async def test_export_sends_everything_about_the_member_as_json(story: Story, db: Database) -> None:
    ids = await zelda_takes_part(story, db)
    sent = await story.command(ZELDA, "export")
    assert [s.conversation.channel_id for s in sent] == ["D-U_ZELDA", CHANNEL]
    assert sent[1].ephemeral and "direct message" in sent[1].text
    attachment = sent[0].message.attachment
    assert attachment is not None
    assert (attachment.filename, attachment.mime_type) == ("plnbot-export.json", "application/json")
    data = json.loads(attachment.content.decode("utf-8"))

    assert data["profile"]["user_id"] == ZELDA and data["profile"]["school"] == "Hill School"
    assert [g["text"] for g in data["goals"]] == ["Use exit tickets daily", "Run a gallery walk"]
    assert sorted(c["rating"] for c in data["checkins"]) == [4, 7]
    assert any("private worry" in c["reflection"] for c in data["checkins"])
    assert sorted(r["is_private"] for r in data["reflections"]) == [False, True]
    assert [a["id"] for a in data["shares"]] == [ids["hers"]]
    assert sorted(e["note"] for e in data["endorsements_given"]) == ["Lovely routine"]
    assert sorted((e["endorser"], e["note"]) for e in data["endorsements_received"]) == [
        ("Ben", "Borrowing this"),
        ("Coach", ""),
    ]
    assert [c["name"] for c in data["communities"]] == ["Math PLN", "Science PLN"]
    # Other people's private words are not in Zelda's export.
    assert (
        "Lovely routine" in attachment.content.decode()
        and "Privately" in attachment.content.decode()
    )


async def test_me_shows_goals_progress_and_activity(story: Story) -> None:
    await setup_community(story)
    await story.command("U_ANA", "goal add Use exit tickets", channel=None)
    await story.command("U_ANA", "checkin", channel=None)
    await story.say("U_ANA", "8 - students run it now")
    card = await share(story, "U_ANA", "https://example.org/a", "Exit tickets")
    await story.press("U_BEN", "endorse", artifact_id(card))
    me = only(await story.command("U_ANA", "me"))
    assert me.ephemeral
    assert "1. Use exit tickets — 8/10 Staging" in me.text
    assert (
        "Check-ins answered (30 days): 1 · Shares: 1 · Endorsements received: 1 · given: 0"
        in me.text
    )


async def test_pause_and_resume_and_paused_members_get_no_checkins(
    story: Story, db: Database
) -> None:
    await setup_community(story)
    story.platform.members[CHANNEL] = ["U_COACH", "U_ANA", "U_BEN"]
    paused = only(await story.command("U_ANA", "pause 14"))
    assert paused.text.startswith("Paused: no check-ins or nudges until Tuesday 08 Dec")
    assert "paused until 07 Dec 2026" in only(await story.command("U_ANA", "me")).text

    sent = only(await story.command("U_COACH", "checkins send"))
    assert sent.text == "Check-ins are on their way to 2 members. 1 paused."
    delivered = await story.deliver()
    assert sorted(s.conversation.channel_id for s in delivered) == ["D-U_BEN", "D-U_COACH"]

    assert "check-ins are on again" in only(await story.command("U_ANA", "resume")).text
    again = only(await story.command("U_COACH", "checkins send"))
    assert again.text == "Check-ins are on their way to 1 member. 2 already had today's check-in."
    assert [s.conversation.channel_id for s in await story.deliver()] == ["D-U_ANA"]


async def test_a_pause_that_starts_after_queueing_still_stops_the_checkin(
    story: Story, db: Database
) -> None:
    await setup_community(story)
    story.platform.members[CHANNEL] = ["U_ANA"]
    await story.command("U_COACH", "checkins send")
    await story.command("U_ANA", "pause 3")
    assert [s.conversation.channel_id for s in await story.deliver()] == ["D-U_COACH"]
    ana = member_id(db, "U_ANA")
    assert [r.status for r in rows(db, OutboxMessage, OutboxMessage.member_id == ana)] == [
        "skipped"
    ]
    assert rows(db, CheckIn, CheckIn.member_id == ana) == []
    story.clock.advance(timedelta(days=3))
    assert only(await story.command("U_ANA", "me")).text.count("paused") == 0


async def test_private_reflections_stay_private(story: Story, db: Database) -> None:
    story.bot.settings = story.bot.settings.model_copy(update={"min_group": 3})
    await setup_community(story)
    prompt = public(await story.command("U_COACH", "prompt"))
    assert prompt.message.card is not None
    sent = await story.press("U_ANA", "reflect_private", prompt.message.card.buttons[0].value)
    assert [s.conversation.channel_id for s in sent] == ["D-U_ANA", CHANNEL]
    assert "only you will see it" in sent[0].text
    saved = only(await story.say("U_ANA", "Just for me"))
    assert "private to you" in saved.text
    [reflection] = rows(db, Reflection)
    assert (reflection.text, reflection.is_private) == ("Just for me", True)
    report = only(await story.command("U_COACH", "report"))
    assert "Just for me" not in report.text
    assert "Reflections (4 weeks): fewer than 3 people" in report.text  # one person's
    # Private reflections are counted, never shown, once enough people have written one.
    for user in ("U_BEN", "U_CARA"):
        await story.press(user, "reflect_private", prompt.message.card.buttons[0].value)
        await story.say(user, f"Just for me too, {user}")
    report = only(await story.command("U_COACH", "report"))
    assert "Just for me" not in report.text
    assert "Reflections (4 weeks): 3 in the 1 week with 3 or more people reflecting" in report.text


def zelda_is_evaluated(db: Database, ids: dict[str, Any]) -> None:
    """Zelda's participative evaluation: an indicator with a value on her goal, a coaching
    cycle with the coach (feedback included), Ben's share she plans to try, and Ben's answer
    after trying hers."""
    from datetime import UTC, date, datetime

    from storage.models import CoachingCycle, CycleNote, Enactment, Goal, Indicator, IndicatorValue

    now = datetime(2026, 12, 1, 15, tzinfo=UTC)
    with db.session() as session:
        zelda = session.exec(sa.select(Member).where(Member.user_id == ZELDA)).scalar_one()
        coach = session.exec(sa.select(Member).where(Member.user_id == "U_COACH")).scalar_one()
        goal = session.exec(sa.select(Goal).where(Goal.member_id == zelda.id)).scalars().first()
        indicator = Indicator(goal_id=goal.id, number=1, kind="achievement", text="Exit-ticket %")
        session.add(indicator)
        session.flush()
        session.add(IndicatorValue(indicator_id=indicator.id, value=72, logged_at=now))
        cycle = CoachingCycle(
            workspace_id=zelda.workspace_id,
            member_id=zelda.id,
            coach_id=coach.id,
            coach_name="Coach",
            goal_id=goal.id,
            status="active",
            offered_at=now,
        )
        session.add(cycle)
        session.flush()
        session.add(CycleNote(cycle_id=cycle.id, text="Strong questioning", created_at=now))
        session.add(
            Enactment(artifact_id=ids["bens"], member_id=zelda.id, due_on=date(2026, 12, 8))
        )
        ben = session.exec(sa.select(Member).where(Member.user_id == "U_BEN")).scalar_one()
        session.add(
            Enactment(
                artifact_id=ids["hers"],
                member_id=ben.id,
                due_on=date(2026, 11, 27),
                status="answered",
                answer="They wrote their own exit questions",
                answered_at=now,
            )
        )
        session.commit()


async def test_export_and_forget_cover_indicators_cycles_and_enactments(
    story: Story, db: Database
) -> None:
    ids = await zelda_takes_part(story, db)
    zelda_is_evaluated(db, ids)
    sent = await story.command(ZELDA, "export")
    attachment = sent[0].message.attachment
    assert attachment is not None
    data = json.loads(attachment.content.decode("utf-8"))
    [indicator] = data["indicators"]
    assert indicator["text"] == "Exit-ticket %" and [v["value"] for v in indicator["values"]] == [
        72
    ]
    [cycle] = data["coaching_cycles"]
    assert cycle["status"] == "active" and [n["text"] for n in cycle["feedback"]] == [
        "Strong questioning"
    ]
    assert [e["artifact_id"] for e in data["enactments"]] == [ids["bens"]]
    # Ben's plan and answer on her share: about her work, and told to her already.
    assert data["enactments_received"] == [
        {
            "artifact_id": ids["hers"],
            "share": "Exit ticket bank",
            "peer": "Ben",
            "due_on": "2026-11-27",
            "status": "answered",
            "answer": "They wrote their own exit questions",
            "answered_at": "2026-12-01T15:00:00+00:00",
        }
    ]
    coach_data = json.loads(
        (await story.command("U_COACH", "export"))[0].message.attachment.content  # type: ignore[union-attr]
    )
    [coached] = coach_data["cycles_coached"]
    assert coached["status"] == "active" and "member_id" not in coached
    assert [n["text"] for n in coached["feedback_given"]] == ["Strong questioning"]
    assert "in_portfolio" not in coached["feedback_given"][0]  # Zelda's choice, not the coach's
    assert coach_data["enactments_received"] == []

    zelda = member_id(db, ZELDA)
    await story.command(ZELDA, "forget")
    await story.command(ZELDA, "forget confirm")
    assert traces_of(db, ZELDA, "Zelda", zelda, {ids["hers"]}) == []
    from storage.models import CoachingCycle, CycleNote, Enactment, Indicator, IndicatorValue

    for model in (Indicator, IndicatorValue, CoachingCycle, CycleNote, Enactment):
        assert rows(db, model) == [], model.__name__


async def test_forget_counts_what_it_deletes_on_and_around_her_shares_and_cycles(
    story: Story, db: Database
) -> None:
    """Peers' plans on her shares and the notes in her cycles go with them, and are counted
    (not left to the foreign keys' cascades), so the summary says what was deleted."""
    from bot.features.privacy import forget_member

    ids = await zelda_takes_part(story, db)
    zelda_is_evaluated(db, ids)
    with db.session() as session:
        zelda = session.exec(sa.select(Member).where(Member.user_id == ZELDA)).scalar_one()
        counts = forget_member(session, story.bot.prompts, zelda).counts
    assert counts["enactment"] == 2  # her plan on Ben's share, Ben's on hers
    assert counts["cyclenote"] == 1 and counts["coachingcycle"] == 1
    assert counts["indicatorvalue"] == 1 and counts["indicator"] == 1
