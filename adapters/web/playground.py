"""The playground: try the bot in a browser as a coach and three teachers, with no workspace.

The page (`GET /playground`) polls `GET /playground/api/view` and posts what a persona types,
presses or stars to the JSON API; each becomes a neutral event handled by the real core,
exactly as a Slack or Teams request would be. The fast-forward buttons run what the scheduler
would run now (post the reflection prompt, send check-ins, post the week's digest, ask the
teachers who pressed "I'll try this" what students did, which would wait for Friday) and
deliver it through the outbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlmodel import select

from adapters.web import inbound
from adapters.web.pages import render_page
from adapters.web.platform import (
    BOT,
    CHANNEL,
    CHANNEL_NAME,
    PERSONA_BY_ID,
    PERSONAS,
    WORKSPACE,
    StoredMessage,
    WebPlatform,
    dm_channel,
)
from adapters.web.render import card_html, text_html
from adapters.web.security import API_CSP, PLAYGROUND_CSP, same_origin, secure
from bot.core.clock import week_of
from bot.core.events import CommandEvent
from bot.delivery.rows import queue_checkins
from bot.features.digests import current_week, schedule_digest
from bot.features.reflections import queue_prompt
from storage.models import Community, OutboxMessage, Workspace
from storage.queries import add_membership, get_or_create_member

if TYPE_CHECKING:
    from plnbot.runtime import Runtime

log = logging.getLogger(__name__)

JOBS = ("prompt", "checkins", "digest", "tries")
SUGGESTIONS = {
    "coach_channel": [
        "setup Math PLN",
        "prompt assessment",
        "checkins send",
        "digest preview",
        "digest post",
        "report",
        "schedule",
        "help",
    ],
    "channel": [
        "share https://example.org/exit-tickets Exit tickets that worked #assessment",
        "share https://example.org/choice-board Choice board for reading #voice",
        "checkin",
        "me",
        "help",
    ],
    "dm": [
        "goal add Use exit tickets every day",
        "checkin",
        "7 - students wrote their own exit questions",
        "me",
        "profile",
        "export portfolio",
        "help",
    ],
}
NAMES = {p.user_id: p.name for p in PERSONAS} | {BOT: "PLN Bot"}


def _json(data: Any, status: int = 200) -> web.StreamResponse:
    return secure(web.json_response(data, status=status), API_CSP)


def _error(message: str, status: int = 400) -> web.StreamResponse:
    return _json({"error": message}, status)


def message_html(message: StoredMessage, replies: list[StoredMessage], viewer: str) -> str:
    """One message (with its thread replies) as an <article> for the page."""
    author = NAMES.get(message.author, message.author)
    kind = "bot" if message.author == BOT else "person"
    classes = f"msg {kind} who-{escape(message.author)}"
    if message.visible_to:
        classes += " ephemeral"
    head = [
        f'<span class="avatar" aria-hidden="true">{escape(author[:1])}</span>',
        f'<span class="author">{escape(author)}</span>',
        f'<time datetime="{message.at.isoformat()}">{message.at:%H:%M}</time>',
    ]
    if message.visible_to:
        head.append('<span class="only-you">Only visible to you</span>')
    if message.edited:
        head.append('<span class="edited">(updated)</span>')
    if message.card is not None:
        content = card_html(message.card, form_id=f"f-{message.id}", names=NAMES)
    else:
        content = f'<div class="text">{text_html(message.text, NAMES)}</div>'
    parts = [
        f'<article class="{classes}" id="msg-{message.id}" data-message="{message.id}">',
        f'<div class="meta">{"".join(head)}</div>',
        f'<div class="content">{content}</div>',
    ]
    if message.file_id:
        parts.append(
            f'<div class="file"><a class="btn" href="/playground/files/{escape(message.file_id)}" '
            f'download="{escape(message.file_name)}">Download {escape(message.file_name)}</a></div>'
        )
    if message.channel_id == CHANNEL and not message.visible_to and message.thread_id is None:
        stars = message.reactions.get("star", set())
        pressed = "true" if viewer in stars else "false"
        label = f"★ {len(stars)}" if stars else "☆ Star"
        parts.append(
            '<div class="msg-tools">'
            f'<button type="button" class="tool" data-react="{message.id}" '
            f'aria-pressed="{pressed}" title="Star this message (stars endorse a share)">'
            f"{label}</button>"
            f'<button type="button" class="tool" data-thread="{message.id}">Reply in thread'
            f"{f' ({len(replies)})' if replies else ''}</button></div>"
        )
    if replies:
        parts.append('<div class="thread">')
        parts += [message_html(reply, [], viewer) for reply in replies]
        parts.append("</div>")
    parts.append("</article>")
    return "".join(parts)


class Playground:
    """The playground's HTTP handlers around one WebPlatform and the runtime's bot."""

    def __init__(self, runtime: Runtime, platform: WebPlatform) -> None:
        self.runtime = runtime
        self.platform = platform
        self.bot = runtime.bot
        self._lock = asyncio.Lock()  # one event at a time: the page is a single-user toy

    # --- pages ----------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.StreamResponse:
        config = {
            "personas": [
                {"id": p.user_id, "name": p.name, "role": p.role, "coach": p.is_coach}
                for p in PERSONAS
            ],
            "channel": CHANNEL_NAME,
            "suggestions": SUGGESTIONS,
        }
        html = render_page(
            "playground.html",
            personas=PERSONAS,
            channel=CHANNEL_NAME,
            config=json.dumps(config).replace("</", "<\\/"),
        )
        return secure(web.Response(text=html, content_type="text/html"), PLAYGROUND_CSP)

    async def view(self, request: web.Request) -> web.StreamResponse:
        persona = PERSONA_BY_ID.get(request.query.get("as", ""))
        where = request.query.get("where", "channel")
        if persona is None or where not in ("channel", "dm"):
            return _error("unknown persona or conversation")
        log_ = self.platform.log
        channel_id = CHANNEL if where == "channel" else dm_channel(persona.user_id)
        visible = log_.visible(channel_id, persona.user_id)
        replies: dict[str, list[StoredMessage]] = {}
        for message in visible:
            if message.thread_id:
                replies.setdefault(message.thread_id, []).append(message)
        items = []
        known = {m.id for m in visible}
        for message in visible:
            if message.thread_id and message.thread_id in known:
                continue
            html = message_html(message, replies.get(message.id, []), persona.user_id)
            items.append(
                {
                    "id": message.id,
                    "sig": hashlib.sha1(html.encode(), usedforsecurity=False).hexdigest()[:16],
                    "html": html,
                }
            )
        community = await asyncio.to_thread(self._community_name)
        return _json(
            {
                "version": log_.version,
                "persona": persona.user_id,
                "where": where,
                "community": community,
                "messages": items,
                "dm_counts": {
                    p.user_id: len(log_.visible(dm_channel(p.user_id), p.user_id)) for p in PERSONAS
                },
            }
        )

    def _community_name(self) -> str | None:
        with self.runtime.db.session() as session:
            community = self._community(session)
            return community.name if community else None

    @staticmethod
    def _community(session: Any) -> Community | None:
        return session.exec(
            select(Community)
            .join(Workspace, Workspace.id == Community.workspace_id)  # type: ignore[arg-type]
            .where(
                Workspace.platform == "web",
                Workspace.external_id == WORKSPACE,
                Community.channel_id == CHANNEL,
            )
        ).first()

    async def file(self, request: web.Request) -> web.StreamResponse:
        stored = self.platform.log.files.get(request.match_info["file_id"])
        if stored is None:
            raise web.HTTPNotFound(text="That file is no longer kept by the playground.")
        response = web.Response(body=stored.content, content_type=stored.mime_type)
        safe_name = "".join(c for c in stored.filename if c.isalnum() or c in "._-") or "file"
        response.headers["Content-Disposition"] = f'attachment; filename="{safe_name}"'
        return secure(response, API_CSP)

    # --- what people do ---------------------------------------------------------------------

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if not same_origin(request):
            raise web.HTTPForbidden(text="cross-site or non-JSON request refused")
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise web.HTTPBadRequest(text="the body is not JSON") from exc
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="the body must be a JSON object")
        return body

    async def say(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        try:
            persona, conversation, event = inbound.typed_event(body)
        except inbound.BadRequest as exc:
            return _error(str(exc))
        async with self._lock:
            self.platform.record_typed(
                persona,
                conversation,
                str(body.get("text", "")).strip(),
                command=isinstance(event, CommandEvent),
            )
            await self.bot.handle(event, self.platform)
        return _json({"ok": True})

    async def act(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        try:
            event = inbound.action_event(body)
        except inbound.BadRequest as exc:
            return _error(str(exc))
        async with self._lock:
            await self.bot.handle(event, self.platform)
        return _json({"ok": True})

    async def react(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        try:
            persona = inbound.persona_of(body)
        except inbound.BadRequest as exc:
            return _error(str(exc))
        message = self.platform.log.by_id.get(str(body.get("message", "")))
        if message is None or message.channel_id != CHANNEL:
            return _error("no such channel message")
        reaction = self.runtime.settings.slack_endorse_reaction
        async with self._lock:
            stars = message.reactions.setdefault("star", set())
            added = persona.user_id not in stars
            event = inbound.reaction_event(body, reaction=reaction, added=added)
            if added:
                stars.add(persona.user_id)
            else:
                stars.discard(persona.user_id)
            self.platform.log.touch()
            await self.bot.handle(event, self.platform)
        return _json({"ok": True, "starred": added})

    async def run(self, request: web.Request) -> web.StreamResponse:
        """Fast-forward: do now what the scheduler would do at its time, then deliver."""
        body = await self._body(request)
        job = body.get("job")
        if job not in JOBS:
            return _error(f"job must be one of {', '.join(JOBS)}")
        async with self._lock:
            message = await asyncio.to_thread(self._enqueue, str(job))
            delivered = await self.runtime.sender.deliver_due()
            # The running sender may have claimed some of them first: wait for those too.
            await self.runtime.idle()
        log.info("playground fast-forward %s: %s (%d delivered)", job, message, delivered)
        return _json({"ok": True, "message": message, "delivered": delivered})

    def _enqueue(self, job: str) -> str:
        now = self.runtime.clock.now()
        with self.runtime.db.session() as session:
            community = self._community(session)
            if community is None:
                return (
                    "There's no community yet: as Casey (the coach), type `setup Math PLN` "
                    f"in #{CHANNEL_NAME} first."
                )
            if job == "digest":
                week = current_week(community, now)
                if schedule_digest(session, community, week, now):
                    return f"This week's digest ({week_of(week)}) is posted in #{CHANNEL_NAME}."
                return (
                    f"The digest for the {week_of(week)} was already posted: one per week, as in a real "
                    "community. `digest preview` shows the ranking now."
                )
            if job == "tries":
                return self._ask_tries_now(session, community, now)
            if job == "prompt":
                today = now.astimezone(ZoneInfo(community.timezone)).date().isoformat()
                if queue_prompt(
                    session,
                    self.bot.prompts,
                    community,
                    now=now,
                    key=f"prompt:{community.id}:{today}",
                ):
                    return f"Today's reflection prompt is posted in #{CHANNEL_NAME}."
                return (
                    "Today's scheduled prompt was already posted. The coach can post another "
                    "with `prompt <element or topic>`."
                )
            for persona in PERSONAS:
                member = get_or_create_member(
                    session,
                    workspace_id=community.workspace_id,
                    user_id=persona.user_id,
                    name=persona.name,
                    now=now,
                )
                add_membership(
                    session, community_id=community.id or 0, member_id=member.id or 0, now=now
                )
            result = queue_checkins(
                session, community, now=now, default_tz=self.runtime.settings.timezone
            )
        self.bot.outbox_wakeup.set()
        parts = [f"Check-ins sent to {result.queued} member{'s' if result.queued != 1 else ''}"]
        if result.already:
            parts.append(f"{result.already} already had today's")
        if result.paused:
            parts.append(f"{result.paused} paused")
        return ", ".join(parts) + ". Open each person's DM to answer."

    def _ask_tries_now(self, session: Any, community: Community, now: datetime) -> str:
        """The "what did students do?" questions of plans made with *I'll try this*, due now
        instead of on the Friday (the outbox rows bot/features/enactments.py queued)."""
        waiting = session.exec(
            select(OutboxMessage).where(
                OutboxMessage.workspace_id == community.workspace_id,
                OutboxMessage.kind == "enactment",
                OutboxMessage.status == "pending",
                OutboxMessage.not_before > now,
            )
        ).all()
        for row in waiting:
            row.not_before = now
            session.add(row)
        if not waiting:
            return (
                "Nobody is waiting to be asked: as a teacher, press “I'll try this” on a peer's "
                "share and choose when first."
            )
        self.bot.outbox_wakeup.set()
        people = len({row.member_id for row in waiting})
        return (
            f"Asked {people} teacher{'s' if people != 1 else ''} what students did with what "
            "they planned to try. Open their DMs to answer."
        )

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/playground", self.page)
        app.router.add_get("/playground/api/view", self.view)
        app.router.add_post("/playground/api/say", self.say)
        app.router.add_post("/playground/api/act", self.act)
        app.router.add_post("/playground/api/react", self.react)
        app.router.add_post("/playground/api/run", self.run)
        app.router.add_get("/playground/files/{file_id}", self.file)
