"""Sharing evidence of practice: links, files and notes, posted as artifact cards.

A share's notes are stored whole, however long. Its card shows the first `CARD_NOTES`
characters (cut at a word boundary) and, when there is more, a *Read all* button that sends
the person who presses it the whole text privately, in parts every platform shows whole.

A share may name one of its author's goals (`goal:<n>` anywhere in the words, or the form's
goal choice) and say what students did (`students: …` to the end of the words, or the form's
"What did students do?"): that student evidence is stored with students' names and ids
replaced by "[student]" (bot/services/students.py), and the card says it carries it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.core.context import Context, UsageError
from bot.core.events import ActionEvent
from bot.core.messages import Button, Card, Field, Input, Link, Option
from bot.core.port import FormCheck
from bot.core.router import Router
from bot.services.prompts import PromptLibrary
from bot.services.students import without_students
from storage.columns import saved_id
from storage.models import Artifact, Enactment, Endorsement, Goal, Member
from storage.queries import add_membership, community_for_channel, numbered_goal

MAX_URL = 2000
MAX_TITLE = 200
FORM_NOTES = 3000  # a form's text box: Slack's plain_text_input holds at most 3,000
CARD_NOTES = 2000  # what a card shows of the notes; the rest is one click away
READ_PART = 3000  # one part of *Read all*: whole in a Slack section and a Teams text block
CARD_STUDENTS = 500  # what a card shows of what students did
SHARE_USAGE = "share <url> [title and notes]"  # goal:<n> and students: … are in `help`
WITH_STUDENT_EVIDENCE = "with student evidence"
NO_GOAL = "none"  # the form's "No goal" choice
_SPACE = re.compile(r"\s")
_GOAL_TAG = re.compile(r"(?<!\S)goal:\s*(\S*)", re.I)
_STUDENTS_TAG = re.compile(r"(?<!\S)students:", re.I)


def shorten(text: str, limit: int) -> str:
    """`text` within `limit` characters: cut at the last space in its second half (else at
    the limit) with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = max((m.start() for m in _SPACE.finditer(text, limit // 2, limit)), default=limit - 1)
    return text[:cut].rstrip() + "…"


def split_parts(text: str, size: int = READ_PART) -> list[str]:
    """`text` in parts of at most `size` characters, split at a paragraph, a line or a
    space in the second half of each part when there is one; nothing is dropped."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > size:
        window = rest[:size]
        cut = next(
            (at for mark in ("\n\n", "\n", " ") if (at := window.rfind(mark, size // 2)) > 0),
            size,
        )
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def validate_url(raw: str) -> str:
    """An http(s) link with a real host, or UsageError saying what a link looks like."""
    url = raw.strip().strip("<>")
    parts = urlsplit(url) if len(url) <= MAX_URL and not re.search(r"\s", url) else None
    host = parts.hostname if parts else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not host
        or ("." not in host and host != "localhost")
        or host.startswith(".")
        or host.endswith(".")
    ):
        shown = raw[:60] + ("…" if len(raw) > 60 else "")
        raise UsageError(
            f"“{shown}” doesn't look like a link. Usage: `{SHARE_USAGE}`, "
            "for example `share https://example.org/lesson Exit tickets that worked`."
        )
    return url


def split_title(notes: str, fallback: str) -> tuple[str, str]:
    """First line (or sentence) is the title; the rest is the description."""
    notes = notes.strip()
    if not notes:
        return fallback[:MAX_TITLE], ""
    first, _, rest = notes.partition("\n")
    if len(first) > MAX_TITLE:
        cut = first.rfind(" ", 0, MAX_TITLE)
        cut = cut if cut > 40 else MAX_TITLE
        return first[:cut].rstrip() + "…", notes
    return first, rest.strip()


def detect_element(prompts: PromptLibrary, text: str) -> tuple[str | None, str]:
    """Hashtags in the notes become tags; one naming an element sets the element."""
    tags = [t.lower() for t in re.findall(r"#([\w-]{2,40})", text)]
    element = None
    for tag in tags:
        found = prompts.element_for(tag)
        if found is not None:
            element = found.key
            break
    return element, ",".join(dict.fromkeys(tags))


def endorsers_of(session: Session, artifact_id: int) -> list[tuple[Member, Endorsement]]:
    return list(
        session.exec(
            select(Member, Endorsement)
            .join(Endorsement, Endorsement.endorser_id == Member.id)  # type: ignore[arg-type]
            .where(Endorsement.artifact_id == artifact_id)
            .order_by(Endorsement.created_at, Endorsement.id)  # type: ignore[arg-type]
        ).all()
    )


def artifact_card(
    session: Session, prompts: PromptLibrary, artifact: Artifact, *, new: bool = False
) -> tuple[str, Card]:
    """The card for an artifact (`new`: just shared, so nobody has endorsed it yet)."""
    assert artifact.id is not None
    author = session.get(Member, artifact.author_id)
    author_name = author.display_name if author and author.display_name else "a member"
    endorsed = [] if new else endorsers_of(session, artifact.id)
    names = ", ".join(m.display_name or "a peer" for m, _ in endorsed[:10])
    if len(endorsed) > 10:
        names += f" and {len(endorsed) - 10} more"
    fields = [Field(label="Shared by", value=author_name)]
    if artifact.element:
        fields.append(Field(label="Element", value=prompts.element_name(artifact.element)))
    goal = session.get(Goal, artifact.goal_id) if artifact.goal_id else None
    if goal is not None:
        fields.append(Field(label="Evidence for", value=f"Goal {goal.number}: {goal.text}"))
    if artifact.student_evidence:
        fields.append(
            Field(
                label="What students did", value=shorten(artifact.student_evidence, CARD_STUDENTS)
            )
        )
    count = len(endorsed)  # shown once, on the Endorse button; the field says who
    if names:
        fields.append(Field(label="Endorsed by", value=names))
    tried = [] if new else tried_by(session, artifact.id)
    if tried:
        shown = ", ".join(tried[:10]) + (f" and {len(tried) - 10} more" if len(tried) > 10 else "")
        fields.append(Field(label="Tried in class by", value=shown))
    link = artifact.url or artifact.file_ref or ""
    body = shorten(artifact.description, CARD_NOTES)
    # A share just made has no peer's answer yet: only its own words can carry evidence.
    carries = bool(artifact.student_evidence) if new else has_student_evidence(session, artifact)
    text = (
        f"{author_name} shared evidence: {artifact.title}"
        + (f" ({WITH_STUDENT_EVIDENCE})" if carries else "")
        + (f" {link}" if link else "")
    )
    buttons = [
        Button(
            label=f"Endorse ({count})",
            action_id="endorse",
            value=str(artifact.id),
            style="primary",
        ),
        Button(label="Endorse with a note", action_id="endorse_note_open", value=str(artifact.id)),
        Button(label="I'll try this", action_id="try_this", value=str(artifact.id)),
    ]
    if body != artifact.description:
        buttons.append(Button(label="Read all", action_id="share_read", value=str(artifact.id)))
    card = Card(
        title=artifact.title,
        body=(f"{link}\n{body}" if link else body).strip(),
        fields=tuple(fields),
        buttons=tuple(buttons),
        footer=f"Shared {WITH_STUDENT_EVIDENCE}" if carries else "",
    )
    return text, card


def tried_by(session: Session, artifact_id: int) -> list[str]:
    """Who has tried a share in class and said what students did, first answer first."""
    return [
        name or "a peer"
        for name in session.exec(
            select(Member.display_name)
            .join(Enactment, Enactment.member_id == Member.id)  # type: ignore[arg-type]
            .where(Enactment.artifact_id == artifact_id, Enactment.status == "answered")
            .order_by(Enactment.answered_at, Enactment.id)  # type: ignore[arg-type]
        )
    ]


def has_student_evidence(session: Session, artifact: Artifact) -> bool:
    """Whether a share carries student evidence: its author's, or a peer's who tried it."""
    if artifact.student_evidence:
        return True
    if artifact.id is None:
        return False
    return (
        session.exec(
            select(Enactment.id).where(
                Enactment.artifact_id == artifact.id,
                Enactment.status == "answered",
                Enactment.answer != "",
            )
        ).first()
        is not None
    )


def read_all(ctx: Context, artifact: Artifact) -> None:
    """The whole of a share's notes, privately to the person who asked, in parts."""
    parts = split_parts(artifact.description)
    link = artifact.url or artifact.file_ref or ""
    for number, part in enumerate(parts, 1):
        of = f" ({number} of {len(parts)})" if len(parts) > 1 else ""
        body = f"{link}\n{part}" if link and number == 1 else part
        ctx.reply(
            f"“{shorten(artifact.title, 100)}”, all of it{of}",
            Card(title=f"{artifact.title}{of}", body=body),
        )


def goal_choice(goals: Sequence[Goal]) -> Input:
    """The form's choice of the author's goal this is evidence for ("No goal" first)."""
    options = [Option(label="No goal", value=NO_GOAL)]
    options += [Option(label=f"{g.number}. {g.text}", value=str(g.number)) for g in goals[:99]]
    return Input(id="goal", label="Evidence for which goal?", kind="select", options=tuple(options))


def share_form(goals: Sequence[Goal] = ()) -> Card:
    """The share form's fields; with `goals`, it also asks which one this is for. The form
    a member sees is `member_share_form`'s: every way the form opens goes through it."""
    return Card(
        title="Share evidence of your practice",
        body="A link to a lesson, student work, a photo or a resource — and what it shows.",
        inputs=(
            Input(
                id="url", label="Link", placeholder="https://…", optional=False, max_length=MAX_URL
            ),
            Input(id="title", label="Title", optional=False, max_length=MAX_TITLE),
            Input(
                id="description",
                label="What it shows",  # each platform marks a field optional its own way
                kind="multiline",
                max_length=FORM_NOTES,
            ),
            *((goal_choice(goals),) if goals else ()),
            Input(
                id="students",
                label="What did students do?",
                kind="multiline",
                placeholder="What students made, said or did — no names, please.",
                max_length=FORM_NOTES,
            ),
        ),
        submit=Button(label="Share", action_id="share_submit", style="primary"),
    )


def member_share_form(
    session: Session,
    member: Member,
    *,
    channel_id: str = "",
    prefill: Mapping[str, str] | None = None,
) -> Card:
    """The share form as `member` sees it, however it opens (`share` with no words, the
    home tab's *Share evidence*, Slack's message shortcut): their active goals to choose
    from. `channel_id`: the community's channel the share goes to when the form is sent in
    from elsewhere (the home tab, a modal); `prefill`: boxes filled in (the shortcut's
    message), by input id."""
    form = share_form(active_goals(session, member))
    assert form.submit is not None
    filled = prefill or {}
    return replace(
        form,
        inputs=tuple(
            replace(field, initial=filled[field.id]) if filled.get(field.id) else field
            for field in form.inputs
        ),
        submit=replace(form.submit, value=channel_id),
    )


_ARTIFACT: sa.Table = Artifact.__table__  # type: ignore[attr-defined]
# Built once, run in Core on the session's connection: they run on every share, and the ORM's
# statement machinery would cost more than the statements.
_SHARED_BEFORE = sa.select(_ARTIFACT.c.created_at, _ARTIFACT.c.title).where(
    _ARTIFACT.c.community_id == sa.bindparam("community"),
    _ARTIFACT.c.author_id == sa.bindparam("author"),
    _ARTIFACT.c.url == sa.bindparam("url"),
)
_NEW_ARTIFACT = _ARTIFACT.insert().returning(_ARTIFACT.c.id)


def active_goals(session: Session, member: Member) -> list[Goal]:
    """The member's active goals, by number (the form's goal choice)."""
    return list(
        session.exec(
            select(Goal)
            .where(Goal.member_id == member.id, Goal.status == "active")
            .order_by(Goal.number)  # type: ignore[arg-type]
        )
    )


def own_goal(ctx: Context, number: str) -> Goal:
    """The member's goal `number`, or a refusal saying what to type instead."""
    if not number.isdigit() or len(number) > 6:
        raise UsageError(
            "`goal:` takes the number of one of your goals, like `goal:2` "
            "(`goal list` shows them). Nothing was shared."
        )
    goal = numbered_goal(ctx.session, ctx.member.id, int(number))
    if goal is None:
        raise UsageError(
            f"You have no goal {int(number)}, so I can't file this share under it. "
            "`goal list` shows your goals' numbers. Nothing was shared."
        )
    return goal


def student_evidence(raw: str) -> str:
    """What students did, names and ids removed; a refusal when it is too long."""
    text = raw.strip()
    if len(text) > FORM_NOTES:
        raise UsageError(
            f"Please keep what students did under {FORM_NOTES:,} characters. Nothing was shared."
        )
    return without_students(text)


def share_words(words: str) -> tuple[str, str | None, str]:
    """A share's words after its link: (title and notes, the goal number named, what
    students did). `goal:<n>` may stand anywhere and is taken out; `students:` runs to the
    end."""
    goals = _GOAL_TAG.findall(words)
    if len(goals) > 1:
        raise UsageError(
            "A share can be evidence for one goal: name one `goal:<n>`. Nothing was shared."
        )
    words = _GOAL_TAG.sub("", words)
    notes, students = words, ""
    if (found := _STUDENTS_TAG.search(words)) is not None:
        notes, students = words[: found.start()], words[found.end() :]
    notes = re.sub(r"[ \t]{2,}", " ", notes).strip()
    return notes, (goals[0] if goals else None), students.strip()


def create_artifact(
    ctx: Context,
    *,
    url: str | None,
    title: str,
    description: str,
    file_ref: str | None = None,
    goal: Goal | None = None,
    students: str = "",
) -> None:
    community = ctx.community
    if community is None:
        raise UsageError(
            "Share evidence in a PLN community channel, so peers can see it. "
            "(A coach turns a channel into a community with `setup`.)"
        )
    if ctx.session.new:  # the person, met just now: their row goes first (Core skips autoflush)
        ctx.session.flush()
    connection = ctx.session.connection()
    if url:
        existing = connection.execute(
            _SHARED_BEFORE, {"community": community.id, "author": ctx.member.id, "url": url}
        ).first()
        if existing is not None:
            ctx.reply(
                f"You already shared this link here on {existing.created_at:%d %b %Y} "
                f"(“{existing.title}”), so I didn't post it twice."
            )
            return
    element, tags = detect_element(ctx.prompts, f"{title} {description}")
    values: dict[str, Any] = {
        "community_id": saved_id(community),
        "author_id": saved_id(ctx.member),
        "url": url,
        "file_ref": file_ref,
        "title": title,
        "description": description,
        "element": element,
        "tags": tags,
        "created_at": ctx.now,
        "goal_id": goal.id if goal is not None else None,
        "student_evidence": students,
    }
    artifact = Artifact(id=connection.execute(_NEW_ARTIFACT, values).scalar_one(), **values)
    assert artifact.id is not None and community.id is not None and ctx.member.id is not None
    add_membership(ctx.session, community_id=community.id, member_id=ctx.member.id, now=ctx.now)
    text, card = artifact_card(ctx.session, ctx.prompts, artifact, new=True)
    # A form sent in from outside the channel (the home tab) still posts to the community.
    elsewhere = ctx.conversation.channel_id != community.channel_id
    ctx.post(
        text,
        card,
        link=Link(kind="artifact", object_id=artifact.id),
        live=True,
        conversation=ctx.channel(community.channel_id) if elsewhere else None,
    )


async def share_evidence(ctx: Context, args: str) -> None:
    """`share <url> [title and notes]`, or the share form when there are no words."""
    if not args:
        if ctx.community is None:
            raise UsageError(f"Usage: `{SHARE_USAGE}` in a community channel.")
        if not isinstance(ctx.platform, FormCheck) or ctx.platform.shows_forms(ctx.conversation):
            ctx.reply(
                f"Usage: `{SHARE_USAGE}` — or fill in this form.",
                member_share_form(ctx.session, ctx.member, channel_id=ctx.community.channel_id),
            )
            return
        # No form can open from here (a Slack @mention): a button opens it.
        text = f"Usage: `{SHARE_USAGE}` — or open the form."
        ctx.reply(
            text,
            Card(
                body=text,
                buttons=(
                    Button(label="Open the share form", action_id="share_open", style="primary"),
                ),
            ),
        )
        return
    first, _, rest = args.partition(" ")
    url = validate_url(first)
    notes, goal_number, students = share_words(rest)
    goal = own_goal(ctx, goal_number) if goal_number is not None else None
    title, description = split_title(notes, fallback=url)
    create_artifact(
        ctx,
        url=url,
        title=title,
        description=description,
        goal=goal,
        students=student_evidence(students),
    )


async def read_share(ctx: Context) -> None:
    """*Read all*: the whole of a share's notes, privately to whoever pressed it."""
    event = ctx.event
    assert isinstance(event, ActionEvent)
    artifact = ctx.owned(Artifact, event.value)
    if artifact is None:
        raise UsageError("That share isn't here any more, so there is nothing to read.")
    read_all(ctx, artifact)


async def submit_share_form(ctx: Context) -> None:
    """The share form's *Share*: post the artifact to its community."""
    event = ctx.event
    assert isinstance(event, ActionEvent)
    values = event.values
    file_ref = (values.get("file_ref") or "").strip() or None
    raw_url = (values.get("url") or "").strip()
    if not raw_url and not file_ref:
        raise UsageError("Please add a link to your evidence, then share again.")
    url = validate_url(raw_url) if raw_url else None
    title = (values.get("title") or "").strip()[:MAX_TITLE] or (url or file_ref or "Evidence")
    if ctx.community is None and event.value:
        ctx.community = community_for_channel(
            ctx.session, workspace_id=ctx.workspace.id or 0, channel_id=event.value
        )
    chosen = (values.get("goal") or "").strip()
    goal = own_goal(ctx, chosen) if chosen and chosen != NO_GOAL else None
    create_artifact(
        ctx,
        url=url,
        title=title,
        description=(values.get("description") or "").strip(),
        file_ref=file_ref,
        goal=goal,
        students=student_evidence(values.get("students") or ""),
    )


def draw_artifact(
    session: Session, prompts: PromptLibrary, artifact_id: int
) -> tuple[str, Card] | None:
    """A share's card as it is now (its endorsements counted); None once it is gone."""
    artifact = session.get(Artifact, artifact_id)
    return artifact_card(session, prompts, artifact) if artifact is not None else None


def register(router: Router) -> None:
    router.command(
        "share",
        share_evidence,
        usage=SHARE_USAGE,
        summary="share evidence of your practice with this community; `goal:<n>` names "
        "the goal it is for, `students: …` says what students did (no names, please)",
    )
    # "share_open" (the *Open the share form* button) is home.py's: it also finds the
    # member's community when pressed outside one (the home tab).
    router.action("share_read", read_share)
    router.action("share_submit", submit_share_form)
    router.outbox.live("artifact", draw_artifact)
