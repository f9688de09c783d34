"""The Slack app manifest an admin pastes when creating the app (`plnbot slack-manifest`).

Every bot scope is the least needed for one feature; README.md lists why each is there.
"""

from __future__ import annotations

from typing import Any

from adapters.slack.app import BOT_SCOPES, SHARE_SHORTCUT

BOT_EVENTS = [
    "app_mention",  # `@PLN Bot <words>` in a channel runs the words as a command
    "app_home_opened",  # the App Home tab
    "member_joined_channel",  # welcome DM in community channels
    "message.im",  # check-in answers and reflections in DMs
    "message.channels",  # replies in threads under reflection prompts (public channels)
    "message.groups",  # the same in private channels
    "reaction_added",  # the star reaction endorses
    "reaction_removed",  # removing it withdraws
    "app_uninstalled",  # answered in every mode; with OAuth the installation is deleted
    "tokens_revoked",
]

DESCRIPTION = "Goal check-ins, shared evidence and peer endorsement for teachers' PLNs."
LONG_DESCRIPTION = (
    "PLN Bot runs a Professional Learning Network inside Slack. Teachers answer short goal "
    "check-ins in a DM (a 0-10 self-rating on the Future Ready scale and a reflection), share "
    "evidence of their practice in community channels, and endorse the peer work they would "
    "borrow. Coaches post reflection prompts, send check-ins and see participation, and every "
    "week the community's most endorsed work is posted as a digest. Reflections stay private "
    "unless a member shares them, and every member can export or delete their data."
)


def build_manifest(url: str, *, socket_mode: bool = False) -> dict[str, Any]:
    base = url.rstrip("/")
    events_url = f"{base}/slack/events"
    command: dict[str, Any] = {
        "command": "/pln",
        "description": "Your PLN: goals, check-ins, sharing evidence, digests",
        "usage_hint": "help · goal add <text> · checkin · share <url> [title] · me",
        "should_escape": True,
    }
    settings: dict[str, Any] = {
        "event_subscriptions": {"bot_events": BOT_EVENTS},
        "interactivity": {"is_enabled": True},
        "org_deploy_enabled": False,
        "socket_mode_enabled": socket_mode,
        "token_rotation_enabled": False,
    }
    if not socket_mode:
        command["url"] = events_url
        settings["event_subscriptions"]["request_url"] = events_url
        settings["interactivity"]["request_url"] = events_url
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": "PLN Bot",
            "description": DESCRIPTION,
            "long_description": LONG_DESCRIPTION,
            "background_color": "#1d4f6e",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": False,
            },
            "bot_user": {"display_name": "PLN Bot", "always_online": True},
            "shortcuts": [
                {
                    "name": "Share as evidence",
                    "type": "message",
                    "callback_id": SHARE_SHORTCUT,
                    "description": "Share this message's link or file with your PLN community",
                }
            ],
            "slash_commands": [command],
        },
        "oauth_config": {
            "redirect_urls": [f"{base}/slack/oauth_redirect"],
            "scopes": {"bot": list(BOT_SCOPES)},
        },
        "settings": settings,
    }
