"""Profiles: role, school, SNIC (Strengths, Needs, Interests, Constraints), timezone, cadence.

Editing is a named-step flow saved in the database (`FlowState`), so a restart or another
replica picks up where the member left off. Platforms with forms submit all fields at once.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any

from bot.config import check_timezone
from bot.core.context import Context, UsageError
from bot.core.messages import Button, Card, Field, Input, Option
from bot.core.port import FormCheck
from bot.core.router import Router
from storage.models import Member
from storage.queries import add_membership

ROLE_NAMES = {
    "teacher": "Teacher",
    "instructional_coach": "Instructional coach",
    "principal": "Principal",
    "district_leader": "District leader",
    "other": "Other",
}
_ROLE_WORDS = {
    "teacher": "teacher",
    "educator": "teacher",
    "coach": "instructional_coach",
    "instructional coach": "instructional_coach",
    "principal": "principal",
    "assistant principal": "principal",
    "head": "principal",
    "district leader": "district_leader",
    "district": "district_leader",
    "leader": "district_leader",
    "other": "other",
}
CADENCES = ("weekly", "biweekly", "monthly", "off")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SKIP = ("skip", "-", "none", "n/a")
MAX_FIELD = 2000


@dataclass(frozen=True)
class Step:
    key: str
    question: str


STEPS = (
    Step(
        "role",
        "What's your role? teacher, instructional coach, principal, district leader, or other.",
    ),
    Step("school", "Which school or site are you at? (or `skip`)"),
    Step("strengths", "What are your *strengths* — what do colleagues come to you for?"),
    Step("needs", "What do you *need* right now to grow your practice?"),
    Step("interests", "What are you *interested* in exploring this year?"),
    Step("constraints", "Any *constraints* we should respect (time, schedule, tools)? (or `skip`)"),
    Step("timezone", "Your timezone, as a city name like `America/Chicago` or `Europe/London`?"),
    Step(
        "cadence",
        "How often should I check in? `weekly`, `biweekly`, `monthly` or `off`, "
        "optionally with a day and time, like `weekly wed 15:30`.",
    ),
)
STEP_KEYS = [step.key for step in STEPS]


def parse_role(text: str) -> str:
    key = " ".join(text.lower().replace("_", " ").split())
    if key in _ROLE_WORDS:
        return _ROLE_WORDS[key]
    raise UsageError(
        "I didn't recognise that role. Please answer teacher, instructional coach, principal, "
        "district leader, or other."
    )


def parse_cadence(text: str) -> tuple[str, int | None, str | None]:
    """`weekly wed 15:30` -> ("weekly", 2, "15:30")."""
    words = text.lower().replace(",", " ").split()
    if not words or words[0] not in CADENCES:
        raise UsageError(
            "Please answer `weekly`, `biweekly`, `monthly` or `off`, optionally with a day "
            "and time, like `weekly wed 15:30`."
        )
    weekday: int | None = None
    at: str | None = None
    for word in words[1:]:
        if word == "at":
            continue
        matches = [i for i, day in enumerate(WEEKDAYS) if day.startswith(word) and len(word) >= 2]
        if matches:
            weekday = matches[0]
        elif re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", word):
            hour, minute = word.split(":")
            at = f"{int(hour):02d}:{minute}"
        else:
            raise UsageError(f"I couldn't read “{word[:30]}”. Try `weekly wed 15:30`.")
    return words[0], weekday, at


def apply_field(member: Member, key: str, value: str) -> None:
    """Validate and store one profile answer on `member` (raises UsageError when invalid)."""
    value = value.strip()
    if key == "role":
        member.role = parse_role(value)
    elif key == "school":
        member.school = None if value.lower() in SKIP else value[:200]
    elif key in ("strengths", "needs", "interests", "constraints"):
        setattr(member, key, "" if value.lower() in SKIP else value[:MAX_FIELD])
    elif key == "timezone":
        if not value or value.lower() in SKIP:  # a form sends a blank optional input as ""
            return
        try:
            member.timezone = check_timezone(value.replace(" ", "_"))
        except ValueError as exc:
            raise UsageError(
                f"“{value[:40]}” isn't a timezone I know. Use a name like `America/New_York`, "
                "`Europe/London` or `Pacific/Auckland`."
            ) from exc
    elif key == "cadence":
        if not value:
            return
        cadence, weekday, at = parse_cadence(value)
        member.cadence = cadence
        if weekday is not None:
            member.checkin_weekday = weekday
        if at is not None:
            member.checkin_time = at
    else:  # pragma: no cover - programming error
        raise KeyError(key)


def profile_summary(member: Member) -> list[Field]:
    cadence = member.cadence
    if cadence != "off":
        cadence += f", {WEEKDAYS[member.checkin_weekday].title()} {member.checkin_time}"
    return [
        Field(label="Role", value=ROLE_NAMES.get(member.role or "", "not set")),
        Field(label="School or site", value=member.school or "—"),
        Field(label="Strengths", value=member.strengths or "—"),
        Field(label="Needs", value=member.needs or "—"),
        Field(label="Interests", value=member.interests or "—"),
        Field(label="Constraints", value=member.constraints or "—"),
        Field(label="Timezone", value=member.timezone or "not set (using the default)"),
        Field(label="Check-ins", value=cadence),
    ]


def profile_form(member: Member) -> Card:
    cadence_initial = (
        f"{member.cadence} {WEEKDAYS[member.checkin_weekday][:3]} {member.checkin_time}"
    )
    return Card(
        title="Your profile",
        body="Your profile shapes the prompts you get. Only you and the bot see it.",
        inputs=(
            Input(
                id="role",
                label="Role",
                kind="select",
                options=tuple(Option(label=n, value=k) for k, n in ROLE_NAMES.items()),
                initial=member.role or "",
                optional=False,
            ),
            Input(id="school", label="School or site", initial=member.school or ""),
            Input(id="strengths", label="Strengths", kind="multiline", initial=member.strengths),
            Input(id="needs", label="Needs", kind="multiline", initial=member.needs),
            Input(id="interests", label="Interests", kind="multiline", initial=member.interests),
            Input(
                id="constraints", label="Constraints", kind="multiline", initial=member.constraints
            ),
            Input(
                id="timezone",
                label="Timezone",
                initial=member.timezone or "",
                placeholder="America/Chicago",
            ),
            Input(
                id="cadence",
                label="Check-ins",
                initial=cadence_initial,
                placeholder="weekly wed 15:30",
            ),
        ),
        submit=Button(label="Save profile", action_id="profile_save", style="primary"),
    )


async def start_profile(ctx: Context) -> None:
    """Offer the form and start the step-by-step flow in the DM."""
    member = ctx.member
    if not member.timezone:
        info = await ctx.user_info()
        if info.timezone:
            with contextlib.suppress(ValueError):
                member.timezone = check_timezone(info.timezone)
    form = profile_form(member)
    if not isinstance(ctx.platform, FormCheck) or ctx.platform.shows_forms(ctx.conversation):
        # The form is the whole conversation: no questions wait behind it for the next
        # thing typed (that would read "me" as a role).
        ctx.clear_flow()
        ctx.reply("Here is your profile form. Save it when you're ready.", form)
        return
    ctx.set_flow("profile", "role")
    first = STEPS[0].question
    where = "" if ctx.conversation.is_dm else " Answer in our direct messages,"
    text = (
        "Let's set up your profile — 8 short questions." + where + " `skip` any, `cancel` to stop."
        f"\n(1/8) {first}"
    )
    ctx.reply(
        text,
        Card(
            title="Your profile",
            body=text,
            buttons=(Button(label="Use the form instead", action_id="profile_open"),),
        ),
    )


async def profile_step(ctx: Context, step: str, text: str, data: dict[str, Any]) -> None:
    """One typed answer of the profile questions: store it, then ask the next or finish."""
    if step not in STEP_KEYS:
        ctx.clear_flow()
        return
    apply_field(ctx.member, step, text)
    ctx.session.add(ctx.member)
    index = STEP_KEYS.index(step) + 1
    if index < len(STEPS):
        ctx.set_flow("profile", STEPS[index].key)
        ctx.reply(f"({index + 1}/8) {STEPS[index].question}")
        return
    ctx.member.onboarded = True
    ctx.clear_flow()
    ctx.reply(
        "Thanks — your profile is saved. `profile show` to see it, `goal add <text>` to set a goal.",
        Card(title="Your profile", fields=tuple(profile_summary(ctx.member))),
    )


async def save_profile_form(ctx: Context) -> None:
    """The profile form's *Save profile*: every answer at once."""
    from bot.core.events import ActionEvent

    event = ctx.event
    assert isinstance(event, ActionEvent)
    values = {k: v for k, v in event.values.items() if k in STEP_KEYS and isinstance(v, str)}
    if "role" not in values or not values["role"].strip():
        raise UsageError("Please choose a role, then save again.")
    for key in STEP_KEYS:
        if key in values:
            apply_field(ctx.member, key, values[key])
    ctx.member.onboarded = True
    ctx.session.add(ctx.member)
    ctx.clear_flow()
    ctx.reply(
        "Your profile is saved.",
        Card(title="Your profile", fields=tuple(profile_summary(ctx.member))),
    )


async def edit_profile(ctx: Context, args: str) -> None:
    """`profile`: the form, or the questions one by one where no form shows."""
    if args:
        raise UsageError("Usage: `profile` to edit, `profile show` to see it.")
    await start_profile(ctx)


async def show_profile(ctx: Context, args: str) -> None:
    """`profile show`: the member's profile as it stands."""
    member = ctx.member
    fields = tuple(profile_summary(member))
    text = "\n".join(f"*{f.label}:* {f.value}" for f in fields)
    if not member.onboarded:
        text += "\nYou haven't finished your profile yet — type `profile` to set it up."
    ctx.reply(text, Card(title="Your profile", fields=fields))


async def open_profile(ctx: Context) -> None:
    """The *Set up my profile* / *Use the form instead* buttons."""
    await start_profile(ctx)


async def welcome_member(ctx: Context) -> None:
    """Someone joined a community channel: add them and welcome them in a DM."""
    if ctx.community is None:
        return
    assert ctx.community.id is not None and ctx.member.id is not None
    add_membership(ctx.session, community_id=ctx.community.id, member_id=ctx.member.id, now=ctx.now)
    text = ctx.prompts.checkin_text("welcome", community=ctx.community.name)
    form = profile_form(ctx.member)  # shown inline where cards hold forms (Teams, web)
    ctx.dm(
        text,
        Card(
            title=f"Welcome to {ctx.community.name}",
            body=text,
            inputs=form.inputs,
            submit=form.submit,
            buttons=(Button(label="Set up my profile", action_id="profile_open", style="primary"),),
        ),
    )


def register(router: Router) -> None:
    router.command(
        "profile",
        edit_profile,
        summary="edit your role, strengths, needs, interests, timezone, check-in cadence",
    )
    router.command("profile show", show_profile, summary="see your profile")
    router.action("profile_save", save_profile_form)
    router.action("profile_open", open_profile)
    router.flow("profile", profile_step, waiting="your profile questions")
    router.on("joined", welcome_member)
