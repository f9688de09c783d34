"""Signed, expiring dashboard links: a person's own dashboard, or a coach's community view.

A link carries what it opens (`m` a member's dashboard, `c` a community's), the member it was
made for, and when it expires, signed with HMAC-SHA256 under PLNBOT_SECRET_KEY (generated and
kept in the database on first run). The signature also covers who the rows *are* (platform user
id, channel id, creation time), not only their numbers, so a link never opens a different
person's data if a deleted member's number is ever reused.

    /dashboard/v1.m.<member>.<member>.<expires>.<signature>
    /dashboard/v1.c.<community>.<coach>.<expires>.<signature>
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from bot.core.clock import Clock
from bot.core.messages import Button
from storage.models import Community, Member

LINK_LIFETIME = timedelta(days=7)
VERSION = "v1"
OPEN_LINK = "open_dashboard"  # the action id of link buttons (Slack reports their clicks too)


class LinkRefused(Exception):
    """The link is malformed, tampered with, for rows that are gone, or expired."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


@dataclass(frozen=True, kw_only=True)
class Grant:
    """What a verified link opens."""

    kind: str  # "m": a member's own dashboard · "c": a community's aggregates
    member: Member  # the person the link was made for
    community: Community | None
    expires: datetime


def _fingerprint(member: Member) -> str:
    return f"{member.workspace_id}:{member.user_id}:{int(member.created_at.timestamp())}"


def _community_fingerprint(community: Community) -> str:
    return (
        f"{community.workspace_id}:{community.channel_id}:{int(community.created_at.timestamp())}"
    )


def _coach_binding(community: Community, coach: Member) -> str:
    """A community link is bound to the coach's granted role as it was when it was made:
    `coach remove` changes it, so a demoted coach's links stop opening at once."""
    return f"{_community_fingerprint(community)}|{_fingerprint(coach)}|coach={int(coach.is_coach)}"


class DashboardLinks:
    """Makes and checks dashboard links; the composition root builds one per process."""

    def __init__(
        self,
        *,
        key: str,
        base_url: str | Callable[[], str],
        clock: Clock,
        lifetime: timedelta = LINK_LIFETIME,
    ) -> None:
        if not key:
            raise ValueError("a dashboard link key is needed")
        self._key = hashlib.sha256(f"plnbot-dashboard:{key}".encode()).digest()
        self._base_url = base_url
        self.clock = clock
        self.lifetime = lifetime

    @property
    def base_url(self) -> str:
        """Where `plnbot serve` is reached (PLNBOT_PUBLIC_URL, else the address it serves at)."""
        base = self._base_url() if callable(self._base_url) else self._base_url
        return base.rstrip("/")

    def _sign(self, fields: str, bound: str) -> str:
        digest = hmac.new(self._key, f"{fields}|{bound}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def _token(self, kind: str, subject: int, viewer: Member, bound: str) -> str:
        expires = int((self.clock.now() + self.lifetime).timestamp())
        fields = f"{VERSION}.{kind}.{subject}.{viewer.id}.{expires}"
        return f"{fields}.{self._sign(fields, bound)}"

    def member_token(self, member: Member) -> str:
        assert member.id is not None
        return self._token("m", member.id, member, _fingerprint(member))

    def community_token(self, community: Community, coach: Member) -> str:
        assert community.id is not None
        bound = _coach_binding(community, coach)
        return self._token("c", community.id, coach, bound)

    def member_url(self, member: Member) -> str:
        return f"{self.base_url}/dashboard/{self.member_token(member)}"

    def community_url(self, community: Community, coach: Member) -> str:
        return f"{self.base_url}/dashboard/{self.community_token(community, coach)}"

    def verify(self, session: Session, token: str) -> Grant:
        """The grant a token carries, or LinkRefused. Tampering with any part fails the
        signature; a genuine link past its time fails as expired."""
        parts = token.split(".")
        if len(parts) != 6 or parts[0] != VERSION or parts[1] not in ("m", "c"):
            raise LinkRefused("malformed link")
        _, kind, subject_text, viewer_text, expires_text, signature = parts
        if not (subject_text.isdigit() and viewer_text.isdigit() and expires_text.isdigit()):
            raise LinkRefused("malformed link")
        if len(subject_text) > 18 or len(viewer_text) > 18 or len(expires_text) > 12:
            raise LinkRefused("malformed link")
        viewer = session.get(Member, int(viewer_text))
        if viewer is None:
            raise LinkRefused("unknown member")
        community = None
        if kind == "m":
            if subject_text != viewer_text:
                raise LinkRefused("a member link opens only its own member")
            bound = _fingerprint(viewer)
        else:
            community = session.get(Community, int(subject_text))
            if community is None:
                raise LinkRefused("unknown community")
            if community.workspace_id != viewer.workspace_id:
                raise LinkRefused("coach and community are in different workspaces")
            bound = _coach_binding(community, viewer)
        fields = ".".join(parts[:5])
        # compare_digest: the time taken must not tell how much of a forged signature matched
        if not hmac.compare_digest(self._sign(fields, bound), signature):
            raise LinkRefused("bad signature")
        expires = datetime.fromtimestamp(int(expires_text), UTC)
        if expires <= self.clock.now():
            raise LinkRefused("expired", expired=True)
        return Grant(kind=kind, member=viewer, community=community, expires=expires)


def member_dashboard_button(links: DashboardLinks | None, member: Member) -> tuple[Button, ...]:
    """The "Open dashboard" link button for `me` (none when no web side is wired)."""
    if links is None or member.id is None:
        return ()
    return (Button(label="Open dashboard", action_id=OPEN_LINK, url=links.member_url(member)),)


def community_dashboard_button(
    links: DashboardLinks | None, community: Community, coach: Member
) -> tuple[Button, ...]:
    """The "Open dashboard" link button for a coach's `report`."""
    if links is None or community.id is None or coach.id is None:
        return ()
    return (
        Button(
            label="Open dashboard", action_id=OPEN_LINK, url=links.community_url(community, coach)
        ),
    )
