"""The Teams app package (`plnbot teams-manifest`): manifest.json and two icons in a zip.

Manifest schema 1.29 (the newest Teams publishes; nothing in it that this bot uses needs
more than 1.25): one bot in personal, team and group-chat scope, with the commands people see
when they type `@PLN Bot` (Teams shows at most ten per scope), file support for `export`, and
resource-specific consent to read channel messages, so replies in a prompt's thread arrive
without an @mention.

Shared and private channels (`supportsChannelFeatures: tier1`, schema 1.25, and
`supportedChannelTypes`): the app can be added to them — a shared channel is how districts
run one PLN across organisations, each teacher in their own tenant's Teams — and
`ChannelMember.Read.Group` lets Teams tell the bot who joins one (directly or through a team
it is shared with). The bot then works there as in any channel (adapters/teams/inbound.py:
the community belongs to the host tenant; someone from another tenant gets public answers,
never a private chat, which Teams doesn't allow across tenants).

Icons are drawn here and written as PNG with zlib — no downloads, no image library.
"""

from __future__ import annotations

import io
import json
import math
import struct
import uuid
import zipfile
import zlib
from typing import Any
from urllib.parse import urlsplit

MANIFEST_VERSION = "1.29"
SCHEMA = "https://developer.microsoft.com/en-us/json-schemas/teams/v1.29/MicrosoftTeams.schema.json"
ACCENT = (0x1D, 0x4F, 0x6E)
SHORT_DESCRIPTION = "Goal check-ins, shared evidence and peer endorsement for teachers' PLNs."
FULL_DESCRIPTION = (
    "PLN Bot runs a Professional Learning Network inside Microsoft Teams. Teachers answer short "
    "goal check-ins in a 1:1 chat (a 0-10 self-rating on the Future Ready scale and a "
    "reflection), share evidence of their practice in community channels, and endorse the peer "
    "work they would borrow. Coaches post reflection prompts, send check-ins and see "
    "participation, and every week the community's most endorsed work is posted as a digest. "
    "Reflections stay private unless a member shares them, and every member can export or "
    "delete their data."
)
PERSONAL_COMMANDS = (
    ("help", "What I do and every command"),
    ("profile", "Edit your role, strengths, needs, interests and check-in cadence"),
    ("goal add", "Add a professional goal: goal add <text>"),
    ("goal list", "Your goals, numbered"),
    ("checkin", "Check in on a goal now"),
    ("me", "Your goals, progress and recent activity"),
    ("export", "Everything stored about you, as a file"),
    ("pause", "No check-ins or nudges for a while: pause <days>"),
    ("resume", "Start check-ins again"),
    ("forget", "Delete all your data (asks to confirm)"),
)
CHANNEL_COMMANDS = (
    ("help", "What I do and every command"),
    ("share", "Share evidence: share <url> [title and notes]"),
    ("setup", "Coaches: make this channel a PLN community"),
    ("prompt", "Coaches: post a reflection prompt now"),
    ("checkins send", "Coaches: send check-ins to this community now"),
    ("digest preview", "Coaches: see this week's digest (only you)"),
    ("digest post", "Coaches: post this week's digest"),
    ("schedule", "Coaches: show or change the schedule"),
    ("report", "Coaches: participation and progress"),
    ("coach add", "Coaches: make someone a coach: coach add @member"),
)


def valid_app_id(app_id: str) -> bool:
    try:
        uuid.UUID(app_id)
    except ValueError:
        return False
    return len(app_id) == 36


def build_manifest(app_id: str, url: str, *, version: str = "1.0.0") -> dict[str, Any]:
    base = url.rstrip("/")
    host = urlsplit(base).hostname or "bot.example.org"
    commands = [
        {
            "scopes": ["personal"],
            "commands": [{"title": t, "description": d} for t, d in PERSONAL_COMMANDS],
        },
        {
            "scopes": ["team", "groupChat"],
            "commands": [{"title": t, "description": d} for t, d in CHANNEL_COMMANDS],
        },
    ]
    return {
        "$schema": SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        # The package id is the bot's id: one app per bot registration, and updates keep it.
        "id": app_id,
        "developer": {
            "name": "PLN Bot",
            "websiteUrl": base,
            "privacyUrl": f"{base}/privacy",
            "termsOfUseUrl": f"{base}/terms",
        },
        "name": {"short": "PLN Bot", "full": "PLN Bot for professional learning networks"},
        "description": {"short": SHORT_DESCRIPTION, "full": FULL_DESCRIPTION},
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": "#{:02X}{:02X}{:02X}".format(*ACCENT),
        "bots": [
            {
                "botId": app_id,
                "scopes": ["personal", "team", "groupChat"],
                "supportsFiles": True,
                "isNotificationOnly": False,
                "commandLists": commands,
            }
        ],
        "permissions": ["identity", "messageTeamMembers"],
        "supportsChannelFeatures": "tier1",
        "supportedChannelTypes": ["sharedChannels", "privateChannels"],
        "validDomains": [host],
        "webApplicationInfo": {"id": app_id, "resource": f"api://{host}/botid-{app_id}"},
        "authorization": {
            "permissions": {
                "resourceSpecific": [
                    {"name": "ChannelMessage.Read.Group", "type": "Application"},
                    {"name": "ChatMessage.Read.Chat", "type": "Application"},
                    {"name": "ChannelMember.Read.Group", "type": "Application"},
                ]
            }
        },
    }


# -- icons ---------------------------------------------------------------------------------
def png(width: int, height: int, pixels: list[tuple[int, int, int, int]]) -> bytes:
    """An RGBA PNG (8 bits per channel, no interlace) from row-major pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = bytearray()
    for y in range(height):
        raw.append(0)  # filter: none
        for x in range(width):
            raw.extend(pixels[y * width + x])
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )


def _mark(x: float, y: float) -> float:
    """How much of the PLN mark covers the point (x, y) in a unit square: three linked
    circles (a small network), 0 (none) to 1 (all), with soft edges."""
    nodes = ((0.5, 0.3), (0.3, 0.66), (0.7, 0.66))
    cover = 0.0
    for cx, cy in nodes:
        distance = math.hypot(x - cx, y - cy)
        cover = max(cover, min(1.0, max(0.0, (0.13 - distance) / 0.02)))
    for (ax, ay), (bx, by) in ((nodes[0], nodes[1]), (nodes[0], nodes[2]), (nodes[1], nodes[2])):
        length = math.hypot(bx - ax, by - ay)
        t = max(0.0, min(1.0, ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / length**2))
        distance = math.hypot(x - (ax + t * (bx - ax)), y - (ay + t * (by - ay)))
        cover = max(cover, min(1.0, max(0.0, (0.035 - distance) / 0.02)))
    return cover


def color_icon(size: int = 192) -> bytes:
    """Full-colour icon: the white mark on the accent colour (Teams: 192x192)."""
    red, green, blue = ACCENT
    pixels: list[tuple[int, int, int, int]] = []
    for y in range(size):
        for x in range(size):
            cover = _mark((x + 0.5) / size, (y + 0.5) / size)
            pixels.append(
                (
                    round(red + (255 - red) * cover),
                    round(green + (255 - green) * cover),
                    round(blue + (255 - blue) * cover),
                    255,
                )
            )
    return png(size, size, pixels)


def outline_icon(size: int = 32) -> bytes:
    """Outline icon: the white mark on transparency (Teams: 32x32, white and transparent only)."""
    pixels = []
    for y in range(size):
        for x in range(size):
            cover = _mark((x + 0.5) / size, (y + 0.5) / size)
            pixels.append((255, 255, 255, round(255 * cover)))
    return png(size, size, pixels)


def build_package(app_id: str, url: str) -> bytes:
    """The zip to upload in Teams (Apps → Manage your apps → Upload an app)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", json.dumps(build_manifest(app_id, url), indent=2))
        package.writestr("color.png", color_icon())
        package.writestr("outline.png", outline_icon())
    return buffer.getvalue()
