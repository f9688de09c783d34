"""`plnbot slack-manifest`: the manifest an admin pastes when creating the Slack app."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PLNBOT = str(Path(sys.executable).with_name("plnbot"))


def manifest(*args: str) -> dict:
    out = subprocess.run(
        [PLNBOT, "slack-manifest", *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_http_manifest_points_every_url_at_slack_events() -> None:
    data = manifest("--url", "https://bot.example.org/")
    command = data["features"]["slash_commands"][0]
    assert command["command"] == "/pln" and command["url"] == "https://bot.example.org/slack/events"
    assert command["should_escape"] is True  # mentions arrive as <@U…> for `coach add`
    settings = data["settings"]
    assert settings["event_subscriptions"]["request_url"] == "https://bot.example.org/slack/events"
    assert settings["interactivity"]["request_url"] == "https://bot.example.org/slack/events"
    assert settings["socket_mode_enabled"] is False
    assert data["oauth_config"]["redirect_urls"] == ["https://bot.example.org/slack/oauth_redirect"]
    shortcut = data["features"]["shortcuts"][0]
    assert (shortcut["type"], shortcut["callback_id"]) == ("message", "share_evidence")
    assert data["features"]["app_home"]["home_tab_enabled"] is True
    events = set(settings["event_subscriptions"]["bot_events"])
    assert {"message.im", "app_home_opened", "reaction_added", "member_joined_channel"} <= events


def test_least_privilege_scopes_are_each_explained_in_the_readme() -> None:
    scopes = manifest()["oauth_config"]["scopes"]["bot"]
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "admin" not in " ".join(scopes) and "chat:write.public" not in scopes
    for scope in scopes:
        assert f"`{scope}`" in readme, scope


def test_socket_mode_manifest_has_no_request_urls() -> None:
    data = manifest("--socket-mode")
    assert data["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in data["settings"]["event_subscriptions"]
    assert "url" not in data["features"]["slash_commands"][0]


def test_a_bad_url_is_a_usage_error() -> None:
    out = subprocess.run(
        [PLNBOT, "slack-manifest", "--url", "bot.example.org"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "--url" in out.stderr and out.stdout == ""
