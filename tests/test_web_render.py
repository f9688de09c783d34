"""The web adapter's pure functions: cards -> HTML, the page's JSON -> events, SVG charts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from adapters.web import inbound
from adapters.web.charts import (
    BAND_COLOURS,
    OKABE_ITO,
    bands_chart,
    participation_chart,
    rating_chart,
)
from adapters.web.render import card_html, safe_url, text_html
from bot.core.events import CommandEvent, MessageEvent
from bot.core.messages import Button, Card, Field, Input, Option
from bot.scoring.bands import summarise
from bot.scoring.progress import RatingPoint, WeekStats
from bot.scoring.small_groups import count_of


def test_text_is_escaped_and_marked_up() -> None:
    html = text_html(
        "*Your goals*\n> a quote <script>alert(1)</script>\nsee https://example.org/a?b=1&c=2. "
        "and `help`, ask <@W_BEN>",
        {"W_BEN": "Ben"},
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<strong>Your goals</strong>" in html and "<q>" in html and "<code>help</code>" in html
    assert 'href="https://example.org/a?b=1&amp;c=2"' in html and "c=2</a>." in html
    assert '<span class="mention">@Ben</span>' in html


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,hi", "//evil.example", "ftp://x.org/a", ""]
)
def test_only_http_links_are_ever_rendered(url: str) -> None:
    assert safe_url(url) is None
    html = card_html(Card(title="t", buttons=(Button(label="Open", action_id="x", url=url),)))
    assert "href" not in html


def test_a_card_becomes_html_with_an_inline_form_and_buttons() -> None:
    card = Card(
        title='Share <b>"evidence"</b>',
        body="A link and what it shows.",
        fields=(Field(label="Shared by", value="Ana"),),
        inputs=(
            Input(id="url", label="Link", optional=False, max_length=2000),
            Input(id="notes", label="Notes", kind="multiline", initial="</textarea><script>"),
            Input(
                id="role",
                label="Role",
                kind="select",
                options=(Option(label="Teacher", value="teacher"),),
                initial="teacher",
            ),
        ),
        submit=Button(label="Share", action_id="share_submit", value='C"1'),
        buttons=(
            Button(label="Endorse (1)", action_id="endorse", value="7", style="primary"),
            Button(label="Open dashboard", action_id="open_dashboard", url="https://x.org/d/1"),
        ),
        footer="only you",
    )
    html = card_html(card, form_id="f-m1")
    assert "<b>" not in html and "Share &lt;b&gt;&quot;evidence&quot;&lt;/b&gt;" in html
    assert 'data-submit="share_submit" data-value="C&quot;1"' in html
    assert 'name="url" type="text" value="" required maxlength="2000"' in html
    assert "&lt;/textarea&gt;&lt;script&gt;</textarea>" in html
    assert '<option value="teacher" selected>Teacher</option>' in html
    assert 'data-action="endorse" data-value="7"' in html and "btn primary" in html
    assert 'href="https://x.org/d/1"' in html and 'rel="noopener noreferrer"' in html
    assert " style=" not in html and "<script" not in html


def test_what_a_persona_types_becomes_the_right_event() -> None:
    _, _, command = inbound.typed_event(
        {"as": "W_CASEY", "where": "channel", "text": "/pln setup Math"}
    )
    assert isinstance(command, CommandEvent) and command.text == "setup Math"
    assert command.conversation.channel_id == "C_PLAYGROUND" and not command.conversation.is_dm
    _, _, mention = inbound.typed_event(
        {"as": "W_CASEY", "where": "channel", "text": "coach add @ben"}
    )
    assert isinstance(mention, CommandEvent) and mention.text == "coach add <@W_BEN>"
    _, _, dm = inbound.typed_event({"as": "W_ANA", "where": "dm", "text": "7 - tried it"})
    assert isinstance(dm, MessageEvent) and dm.conversation.is_dm
    assert dm.conversation.channel_id == "D_W_ANA" and dm.user.name == "Ana"
    _, _, slash_in_dm = inbound.typed_event({"as": "W_ANA", "where": "dm", "text": "/pln me"})
    assert isinstance(slash_in_dm, CommandEvent) and slash_in_dm.text == "me"
    _, conversation, reply = inbound.typed_event(
        {
            "as": "W_BEN",
            "where": "channel",
            "text": "my reflection",
            "thread": "m4",
            "nonce": "abcdef123456",
        }
    )
    assert isinstance(reply, MessageEvent) and conversation.thread_id == "m4"
    assert reply.dedupe_key == "say:abcdef123456"
    for bad in (
        {"as": "W_NOBODY", "where": "dm", "text": "hi"},
        {"as": "W_ANA", "where": "elsewhere", "text": "hi"},
        {"as": "W_ANA", "where": "dm", "text": "   "},
        {"as": "W_ANA", "where": "dm", "text": 42},
        {"as": "W_ANA", "where": "dm", "text": "x" * 9000},
    ):
        with pytest.raises(inbound.BadRequest):
            inbound.typed_event(bad)


def test_a_button_press_and_a_form_submit_become_action_events() -> None:
    event = inbound.action_event(
        {
            "as": "W_BEN",
            "where": "channel",
            "message": "m3",
            "action": "endorse_note",
            "value": "7",
            "values": {"note": "Borrowing this", "ignored": 5},
            "nonce": "0123456789ab",
        }
    )
    assert event.action_id == "endorse_note" and event.value == "7"
    assert dict(event.values) == {"note": "Borrowing this"}
    assert event.message is not None and event.message.message_id == "m3"
    assert event.dedupe_key == "act:0123456789ab"
    with pytest.raises(inbound.BadRequest):
        inbound.action_event({"as": "W_BEN", "where": "channel", "action": "", "value": ""})


def test_the_rating_chart_places_each_point_at_its_rating_with_bands_and_a_description() -> None:
    start = datetime(2026, 11, 2, 15, tzinfo=UTC)
    points = [
        RatingPoint(checkin_id=1, at=start, rating=2),
        RatingPoint(checkin_id=2, at=start + timedelta(days=7), rating=5),
        RatingPoint(checkin_id=3, at=start + timedelta(days=21), rating=9),
    ]
    svg = rating_chart("g1", "Goal 1: exit tickets", points)
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert 'aria-labelledby="g1-title g1-desc"' in svg
    assert '<title id="g1-title">Goal 1: exit tickets</title>' in svg
    assert "02 Nov 2026: 2 out of 10, Investigating" in svg and "9 out of 10, Staging" in svg
    for name in ("Investigating", "Envisioning", "Planning", "Staging"):
        assert f'data-band="{name}"' in svg and BAND_COLOURS[name] in svg
    found = re.findall(
        r'data-rating="(\d+)" data-date="([\d-]+)".*?cx="([\d.]+)" cy="([\d.]+)"', svg
    )
    assert [(int(r), d) for r, d, _, _ in found] == [
        (2, "2026-11-02"),
        (5, "2026-11-09"),
        (9, "2026-11-23"),
    ]
    top, plot_h = 18, 260 - 18 - 40
    for rating, _, _, cy in found:
        assert abs(float(cy) - (top + plot_h - int(rating) / 10 * plot_h)) < 0.2
    xs = [float(cx) for _, _, cx, _ in found]
    assert xs[0] < xs[1] < xs[2] and abs((xs[1] - xs[0]) * 2 - (xs[2] - xs[1])) < 0.5  # time-true
    assert " style=" not in svg and "<script" not in svg
    assert "No check-ins yet" in rating_chart("g2", "Goal 2", [])


def test_community_charts_use_the_okabe_ito_palette_and_describe_their_data() -> None:
    weeks = [
        WeekStats(
            week="2026-W47",
            shares=2,
            endorsements=3,
            reflections=count_of([1, 2, 3, 4, 5], min_group=5),
            checkins_sent=4,
            checkins_answered=count_of([1, 2, 3, 4, 5, 5], min_group=5),
        ),
        WeekStats(
            week="2026-W48",
            reflections=count_of([], min_group=5),
            checkins_answered=count_of([], min_group=5, asked=0),
        ),
    ]
    svg = participation_chart("p", weeks)
    assert "week of 16 Nov: 2 shares, 3 endorsements, 5 reflections, 6 check-ins answered" in svg
    assert 'data-week="2026-W47" data-series="endorsements" data-value="3"' in svg
    assert "week of 23 Nov: 0 shares, 0 endorsements, reflections: fewer than 5 people" in svg
    assert 'data-week="2026-W48" data-series="reflections"' not in svg  # held back: no bar
    assert set(re.findall(r'fill="(#[0-9A-F]{6})"', svg)) <= set(OKABE_ITO.values())
    bands = bands_chart("b", summarise([2, 6, 7]), week="2026-W47")
    assert "Planning: 2 of 3 people" in bands and 'data-band="Planning" data-value="2"' in bands
    assert "average 5.0 out of 10" in bands and "Self-ratings in the week of 16 Nov" in bands


def test_slack_renders_a_link_button_with_its_url() -> None:
    from adapters.slack.render import card_blocks

    card = Card(
        buttons=(Button(label="Open dashboard", action_id="open_dashboard", url="https://x.org/d"),)
    )
    [actions] = card_blocks(card)
    assert actions["elements"][0]["url"] == "https://x.org/d"


def test_a_restarted_playground_never_reuses_a_message_id() -> None:
    """The database maps message ids to shares and prompts (for stars and thread replies), so
    ids from a new process must not collide with the last one's."""
    from adapters.web.platform import MessageLog

    before, after = MessageLog(), MessageLog()
    first = {before.next_id() for _ in range(50)}
    assert not first & {after.next_id() for _ in range(50)}
    _, conversation, _ = inbound.typed_event(
        {"as": "W_BEN", "where": "channel", "text": "hi", "thread": sorted(first)[0]}
    )
    assert conversation.thread_id in first
    with pytest.raises(inbound.BadRequest):
        inbound.typed_event({"as": "W_BEN", "where": "channel", "text": "hi", "thread": "x<1>"})
