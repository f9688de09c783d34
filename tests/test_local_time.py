"""Communities keep local time (#14), over signed Slack requests: `setup` starts from the
coach's Slack timezone, `schedule timezone` changes it, and every time shown says whose."""

from __future__ import annotations

from storage.models import Community
from tests.slack_rig import SlackRig, rows


async def test_a_community_runs_on_its_coachs_clock(slack: SlackRig) -> None:
    # U_ADMIN's Slack profile says America/Los_Angeles (tests/slack_fakes.py DEFAULT_USERS).
    await slack.command("setup Math PLN", user_id="U_ADMIN", response_token="setup")
    await slack.settle()
    assert [c.timezone for c in rows(slack.db, Community)] == ["America/Los_Angeles"]
    said = [r.get("text", "") for r in slack.fake.responses_to("setup")]
    assert any("in America/Los_Angeles time" in text for text in said), said

    await slack.command(
        "schedule timezone America/Chicago", user_id="U_ADMIN", response_token="zone"
    )
    await slack.command("schedule", user_id="U_ADMIN", response_token="show")
    await slack.command("schedule timezone Nowhere/Land", user_id="U_ADMIN", response_token="bad")
    await slack.settle()
    assert [c.timezone for c in rows(slack.db, Community)] == ["America/Chicago"]
    (moved,) = [r["text"] for r in slack.fake.responses_to("zone")]
    assert moved.startswith("Math PLN now keeps America/Chicago time: prompt: Monday 09:00")
    (shown,) = [r["text"] for r in slack.fake.responses_to("show")]
    assert shown.startswith("Schedule for Math PLN, in America/Chicago time:")
    (bad,) = [r["text"] for r in slack.fake.responses_to("bad")]
    assert "unknown timezone" in bad and "Nothing was changed" in bad
