"""`GET /verify/<code>` over real HTTP on the running `plnbot serve` app: a district officer
holding a teacher's portfolio code sees what was acknowledged and that it is genuine; a code
changed by one character, made up, or for a record changed after it was signed does not
verify."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from storage.models import CoachingCycle
from tests.web_rig import ANA, CASEY, WebRig, web_fixture  # noqa: F401 (the web rig)

FEEDBACK = "Private-feedback-only-for-Ana"
ANSWER = "Private-answer-only-for-Casey"
NOT_VERIFIED = "This code does not verify"


async def closed_cycle(web: WebRig) -> str:
    """Casey coaches Ana through a cycle on her goal and acknowledges 7.5 hours."""
    await web.say(CASEY, "channel", "setup Math PLN")
    await web.say(ANA, "dm", "goal add Use exit tickets every day")
    await web.say(CASEY, "channel", f"cycle start <@{ANA}> 1")
    message, cycle = await web.button_value(ANA, "dm", "coaching cycle offer", "cycle_accept")
    await web.press(ANA, "dm", message, "cycle_accept", cycle)
    web.clock.advance(timedelta(days=14))
    await web.say(CASEY, "channel", f"feedback <@{ANA}> {FEEDBACK}")
    message, note = await web.button_value(ANA, "dm", FEEDBACK, "cycle_note_answer")
    await web.press(ANA, "dm", message, "cycle_note_answer", note)
    await web.say(ANA, "dm", ANSWER)
    web.clock.advance(timedelta(days=14))
    await web.say(CASEY, "channel", f"cycle close <@{ANA}> 7.5")
    with web.db.session() as session:
        row = session.exec(select(CoachingCycle)).one()
        assert row.status == "closed" and row.code
        code = row.code
    told = await web.last(ANA, "dm", "acknowledged")
    assert code in told["html"] and f"/verify/{code}" in told["html"]
    return code


async def get(web: WebRig, path: str) -> tuple[int, str, dict[str, str]]:
    async with web.http.get(f"{web.url}{path}") as response:
        return response.status, await response.text(), dict(response.headers)


async def test_a_closed_cycles_code_verifies_and_shows_nothing_private(web: WebRig) -> None:
    code = await closed_cycle(web)
    status, html, headers = await get(web, f"/verify/{code}")
    assert status == 200
    assert "Genuine" in html and "genuine" in html
    for fact in ("Ana", "Use exit tickets every day", "Casey", "7.5", "24 Nov 2026", "22 Dec 2026"):
        assert fact in html, fact
    assert FEEDBACK not in html and ANSWER not in html and "/10" not in html
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["Referrer-Policy"] == "no-referrer"
    # Typed in lower case, it still verifies.
    assert (await get(web, f"/verify/{code.lower()}"))[0] == 200


async def test_an_altered_made_up_or_malformed_code_does_not_verify(web: WebRig) -> None:
    code = await closed_cycle(web)
    cycle_id, signature = code.split("-")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    for wrong in (
        f"{cycle_id}-{flipped}",
        f"{int(cycle_id) + 1}-{signature}",
        "42-AAAAAAAAAAAAAAAA",
        "nonsense",
        "<script>alert(1)</script>",
        "9" * 200,
    ):
        status, html, headers = await get(web, f"/verify/{wrong}")
        assert status == 404, wrong
        assert NOT_VERIFIED in html and "<script>" not in html
        assert "Ana" not in html and "Casey" not in html
        assert "default-src 'none'" in headers["Content-Security-Policy"]


async def test_a_record_changed_after_closing_no_longer_verifies(web: WebRig) -> None:
    code = await closed_cycle(web)
    assert (await get(web, f"/verify/{code}"))[0] == 200
    with web.db.session() as session:
        row = session.exec(select(CoachingCycle)).one()
        row.hours = 75
        session.add(row)
    status, html, _ = await get(web, f"/verify/{code}")
    assert status == 404 and NOT_VERIFIED in html and "75" not in html
    with web.db.session() as session:
        row = session.exec(select(CoachingCycle)).one()
        row.hours = 7.5
        row.goal_text = "A goal nobody acknowledged"
        session.add(row)
    assert (await get(web, f"/verify/{code}"))[0] == 404
