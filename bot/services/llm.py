"""The optional model (any OpenAI-compatible server). The bot works fully without it.

A teacher never waits on or sees a model error: each request has a hard deadline
(`PLNBOT_LLM_TIMEOUT`, 10 s by default) that covers one retry of a failed attempt; whatever
goes wrong — a timeout, a 500, a malformed answer, the weekly budget spent — the caller gets
the template wording. Every request is scrubbed of names, user ids, mentions and e-mail
addresses; tokens are capped per request (`PLNBOT_LLM_MAX_TOKENS`) and per community per ISO
week (`PLNBOT_LLM_WEEKLY_TOKENS`, counted in the database); answers are cached per member (or
community), week and input, so a member's personalised prompt is asked for once a week.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import sqlalchemy as sa
import yaml
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.services.prompts import render
from storage.model_tables import ModelCache, ModelUsage

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4  # a safe over-estimate for English before the server reports usage
MAX_FIELD = 300  # characters of any one profile field or note sent to the model
MAX_PROMPT = 500  # characters of a personalised question we accept back
MAX_INTRO = 700


class Scrubber:
    """Removes what identifies people before text leaves for the model."""

    _mention = re.compile(r"<[@!#][^>]*>")  # Slack <@U123>, <@U123|ana>, <!here>, <#C1|x>
    _teams_at = re.compile(r"<at[^>]*>.*?</at>", re.IGNORECASE | re.DOTALL)
    _email = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
    _platform_id = re.compile(r"\b(?:[UW][A-Z0-9]{7,}|29:[\w-]+|[0-9a-f]{8}-[0-9a-f-]{27})\b")
    _handle = re.compile(r"(?<!\w)@[\w.-]{2,}")

    def __init__(self, names: Iterable[str] = ()) -> None:
        exact: set[str] = set()
        parts: set[str] = set()
        for name in names:
            name = (name or "").strip()
            if len(name) < 2:
                continue
            exact.add(name)
            parts.update(p for p in re.split(r"[\s._-]+", name) if len(p) >= 3)
        words = sorted(exact | parts, key=len, reverse=True)
        self._names = (
            re.compile(
                r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE
            )
            if words
            else None
        )

    def __call__(self, text: str, limit: int = MAX_FIELD) -> str:
        text = self._teams_at.sub("a colleague", text or "")
        text = self._mention.sub("a colleague", text)
        text = self._email.sub("[e-mail]", text)
        text = self._platform_id.sub("[id]", text)
        if self._names is not None:
            text = self._names.sub("a colleague", text)
        text = self._handle.sub("a colleague", text)
        text = re.sub(r"\s+", " ", text).strip()
        return text[:limit]


@lru_cache(maxsize=1)
def _wording() -> dict[str, Any]:
    """prompts/llm.yaml: the system prompts and the template wording used without a model."""
    return dict(yaml.safe_load(resources.files("prompts").joinpath("llm.yaml").read_text("utf-8")))


def template(name: str, **values: Any) -> str:
    """A template wording from prompts/llm.yaml (placeholders are strict)."""
    return render(_wording()["templates"][name], **values)


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def cached_answer(
    session: Session, *, purpose: str, owner: str, week: str, input_hash: str
) -> str | None:
    return session.exec(
        select(ModelCache.text).where(
            ModelCache.purpose == purpose,
            ModelCache.owner == owner,
            ModelCache.iso_week == week,
            ModelCache.input_hash == input_hash,
        )
    ).first()


def _store_answer(
    session: Session,
    *,
    purpose: str,
    owner: str,
    week: str,
    input_hash: str,
    text: str,
    member_id: int | None,
    community_id: int | None,
) -> None:
    try:
        with session.begin_nested():
            session.add(
                ModelCache(
                    purpose=purpose,
                    owner=owner,
                    member_id=member_id,
                    community_id=community_id,
                    iso_week=week,
                    input_hash=input_hash,
                    text=text,
                )
            )
            session.flush()
    except sa.exc.IntegrityError:
        pass  # another worker cached the same answer first


def tokens_used(session: Session, *, community_id: int, week: str) -> int:
    used = session.exec(
        select(ModelUsage.tokens).where(
            ModelUsage.community_id == community_id, ModelUsage.iso_week == week
        )
    ).first()
    return int(used or 0)


def _record_usage(
    session: Session, *, community_id: int, week: str, tokens: int, failed: bool
) -> None:
    """Add to the week's count with one UPDATE, so concurrent requests never lose tokens."""
    where = (col(ModelUsage.community_id) == community_id, col(ModelUsage.iso_week) == week)
    if session.exec(select(ModelUsage.id).where(*where)).first() is None:
        try:
            with session.begin_nested():
                session.add(ModelUsage(community_id=community_id, iso_week=week))
                session.flush()
        except sa.exc.IntegrityError:
            pass
    session.exec(
        sa.update(ModelUsage)  # type: ignore[call-overload]
        .where(*where)
        .values(
            tokens=ModelUsage.tokens + tokens,
            requests=ModelUsage.requests + 1,
            failures=ModelUsage.failures + int(failed),
        )
    )


@dataclass(frozen=True)
class Answer:
    text: str
    tokens: int


@dataclass(frozen=True, kw_only=True)
class IntroItem:
    """What the digest introduction may draw on for one share (already scrubbed)."""

    title: str
    element: str
    endorsers: int
    notes: tuple[str, ...]


def intro_request(items: Iterable[IntroItem]) -> str:
    """The user message for the digest introduction (already-scrubbed items)."""
    lines = []
    for place, item in enumerate(items, 1):
        head = f"{place}. “{item.title}”"
        if item.element:
            head += f" ({item.element})"
        lines.append(f"{head}, endorsed by {item.endorsers} peers.")
        lines += [f"   Why: {note}" for note in item.notes]
    return "\n".join(lines)


def intros_cached(session: Session, community_id: int, week: str) -> bool:
    """Whether any digest introduction was prepared for this community and week (a cheap
    check before building the exact request to look one up)."""
    found = session.exec(
        select(ModelCache.id).where(
            ModelCache.purpose == "digest_intro",
            ModelCache.owner == f"community:{community_id}",
            ModelCache.iso_week == week,
        )
    ).first()
    return found is not None


def cached_intro(
    session: Session, *, community_id: int, week: str, items: list[IntroItem]
) -> str | None:
    """The model's introduction prepared earlier for exactly these items, if any."""
    return cached_answer(
        session,
        purpose="digest_intro",
        owner=f"community:{community_id}",
        week=week,
        input_hash=_hash("digest_intro", intro_request(items)),
    )


# How the model gets asked with no transaction open, the caller's choice since the caller
# owns the transaction: in a handler `Context.ask` (the unit of work is rolled back, the
# model asked with nothing open, and the unit run again with the answer); elsewhere one that
# commits the caller's session first (the outbox's `prepare_row`, the `digest` command).
Asker = Callable[[Hashable, Callable[[], Awaitable[Any]]], Awaitable[Any]]


class ModelClient:
    """Personalises wording when a model is configured; otherwise returns the template."""

    def __init__(
        self,
        client: Any | None = None,
        *,
        model: str = "",
        timeout: float = 10.0,
        max_tokens: int = 300,
        weekly_tokens: int = 50_000,
    ) -> None:
        self._client = client
        self.model = model
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.weekly_tokens = weekly_tokens
        self.prompts = _wording()

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelClient:
        options = {
            "timeout": settings.llm_timeout,
            "max_tokens": settings.llm_max_tokens,
            "weekly_tokens": settings.llm_weekly_tokens,
        }
        if not settings.llm_enabled:
            return cls(**options)  # type: ignore[arg-type]
        from openai import AsyncOpenAI

        client = AsyncOpenAI(
            # A local OpenAI-compatible server may need no key; the client insists on one.
            api_key=settings.openai_api_key or "unused",
            base_url=settings.openai_base_url,
            timeout=settings.llm_timeout,
            max_retries=0,  # our own single retry, inside our own deadline
        )
        return cls(client, model=settings.llm_model, **options)  # type: ignore[arg-type]

    @property
    def enabled(self) -> bool:
        return self._client is not None

    async def ask(self, system: str, user: str) -> Answer | None:
        """One chat completion within the deadline (a failed attempt is retried once while
        time remains; a timeout is not, it already spent the time); None on any failure."""
        assert self._client is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        for attempt in (1, 2):
            remaining = deadline - loop.time()
            if remaining <= 0.05:
                break
            try:
                response = await asyncio.wait_for(
                    self._client.chat.completions.create(
                        model=self.model,
                        max_tokens=self.max_tokens,
                        temperature=0.4,
                        messages=[
                            {"role": "system", "content": system},
                            {"role": "user", "content": user},
                        ],
                        timeout=remaining,
                    ),
                    timeout=remaining,
                )
                text = (response.choices[0].message.content or "").strip()
                if not text:
                    raise ValueError("an empty answer")
                usage = getattr(response, "usage", None)
                tokens = int(getattr(usage, "total_tokens", 0) or 0) or self.estimate(system, user)
                return Answer(text=text, tokens=tokens)
            except Exception as exc:  # any failure means the template wording
                timed_out = isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__
                log.warning(
                    "model attempt %d failed (%s)%s",
                    attempt,
                    type(exc).__name__,
                    "" if timed_out or attempt == 2 else "; retrying once",
                )
                if timed_out:
                    break
        return None

    def estimate(self, system: str, user: str) -> int:
        return (len(system) + len(user)) // CHARS_PER_TOKEN + self.max_tokens

    async def _cached_ask(
        self,
        session: Session,
        *,
        purpose: str,
        owner: str,
        week: str,
        input_hash: str,
        system: str,
        user: str,
        community_id: int | None,
        asker: Asker,
    ) -> tuple[str, bool] | None:
        """(answer, came from the cache), or None when the model is over budget or failed.

        Nothing may stay locked while we wait (SQLite has one writer: a transaction held open
        across a model call would stall every other event), and this never commits: the
        model is asked through `asker`, which ends the caller's transaction its own way
        (`Asker`), and what is written after continues in the caller's next one."""
        cached = cached_answer(
            session, purpose=purpose, owner=owner, week=week, input_hash=input_hash
        )
        if cached is not None:
            return cached, True
        estimate = self.estimate(system, user)
        if community_id is not None and (
            tokens_used(session, community_id=community_id, week=week) + estimate
            > self.weekly_tokens
        ):
            log.info("model budget of community %s for %s is spent", community_id, week)
            return None
        # Keyed by what is asked, not by row ids: a retried unit may get new ids.
        answer = await asker(("model", _hash(system, user)), lambda: self.ask(system, user))
        if community_id is not None:
            _record_usage(
                session,
                community_id=community_id,
                week=week,
                tokens=answer.tokens if answer else estimate,
                failed=answer is None,
            )
        return (answer.text, False) if answer else None

    async def personalise_prompt(
        self,
        session: Session,
        template: str,
        *,
        profile: Mapping[str, str],
        member_id: int,
        community_id: int | None,
        week: str,
        names: Iterable[str] = (),
        asker: Asker,
    ) -> str:
        """Adapt `template` to an anonymous profile (role, SNIC, goal, last answer); the
        template itself whenever the model is off, slow, failing or over budget. See
        `_cached_ask` for how nothing stays locked while the model is asked."""
        if self._client is None:
            return template
        scrub = Scrubber(names)
        details = "\n".join(f"{key}: {scrub(value)}" for key, value in profile.items() if value)
        user = f"Base question: {scrub(template, 1000)}\n{details}"
        key = {
            "purpose": "reflection",
            "owner": f"member:{member_id}",
            "week": week,
            "input_hash": _hash("reflection", template),  # per member, week and base prompt
        }
        try:
            found = await self._cached_ask(
                session,
                **key,
                system=self.prompts["personalise_prompt"],
                user=user,
                community_id=community_id,
                asker=asker,
            )
            question = _one_question(found[0]) if found else None
            if question is None:
                return template
            if found and not found[1]:
                _store_answer(
                    session, **key, text=question, member_id=member_id, community_id=community_id
                )
        except Exception:
            log.exception("personalising a prompt failed; template used")
            return template
        return question

    async def digest_intro(
        self,
        session: Session,
        *,
        community_id: int,
        week: str,
        items: list[IntroItem],
        asker: Asker,
    ) -> str | None:
        """A three-sentence introduction from the week's endorsement notes, or None (see
        `_cached_ask` for how nothing stays locked while the model is asked)."""
        if self._client is None or not items:
            return None
        user = intro_request(items)
        key = {
            "purpose": "digest_intro",
            "owner": f"community:{community_id}",
            "week": week,
            "input_hash": _hash("digest_intro", user),
        }
        try:
            found = await self._cached_ask(
                session,
                **key,
                system=self.prompts["digest_intro"],
                user=user,
                community_id=community_id,
                asker=asker,
            )
            intro = _sentences(found[0], 3) if found else ""
            if not intro:
                return None
            if found and not found[1]:
                _store_answer(session, **key, text=intro, member_id=None, community_id=community_id)
        except Exception:
            log.exception("the digest introduction failed; template used")
            return None
        return intro


def _split_sentences(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text.strip().strip('"“”')).strip()
    return [p.strip() for p in re.findall(r"[^.!?]+[.!?]+[\"”’)]*", text)] or (
        [text] if text else []
    )


def _one_question(text: str) -> str | None:
    """The first question in the model's answer, or None when it asked none."""
    question = next((s for s in _split_sentences(text) if s.rstrip('"”’)').endswith("?")), None)
    if question is None or not 15 <= len(question) <= MAX_PROMPT:
        return None
    return question


def _sentences(text: str, most: int) -> str:
    return " ".join(_split_sentences(text)[:most])[:MAX_INTRO]
