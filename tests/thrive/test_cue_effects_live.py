"""Issue 14 acceptance 3 end to end: real uvicorn workers, a handler's and a supervisor's
sockets. On a live domestic-abuse call the narrative "he has a knife and says he will kill
her" proposes the weapons qualifier (the handler confirms it; it is not set), raises the
suggested grade to emergency, adds the officer-safety prompts, and the supervisor's socket
gets the cue. Waits are on the condition (each socket read has a timeout), never on time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.auth.models import Role
from app.config import Settings
from tests.conftest import MakeStaff
from tests.realtime.support import event, message, open_socket, post, ring, until
from tests.support.servers import ServiceProcess
from tests.thrive.support import send

Live = Callable[..., ServiceProcess]
OFFICER_SAFETY = {"cue.officer_safety", "weapons.what_where"}


async def _cue_frames(ws: Any, call_id: int, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """`cue.detected` messages for the call until every wanted cue id has arrived."""
    seen: dict[str, dict[str, Any]] = {}
    while not wanted <= set(seen):
        got = await message(ws)
        if got["type"] == "cue.detected" and got["call_id"] == call_id:
            seen[got["data"]["cue_id"]] = got["data"]
    return seen


async def test_a_threat_and_a_knife_act_on_a_live_da_call(
    settings: Settings, live_service: Live, make_staff: MakeStaff
) -> None:
    service = live_service(workers=2 if settings.redis_url else 1)
    handler = await make_staff("H1", Role.handler)
    supervisor = await make_staff("S1", Role.supervisor)
    async with open_socket(service, handler) as desk, open_socket(service, supervisor) as board:
        call_id = await ring(service, "cue-live-1", "H1")
        await post(service, event("cue-live-1", "answered", handler_id="H1"))
        await until(desk, "call.answered", call_id)
        base = f"/api/v1/calls/{call_id}"
        await send(service, "PUT", f"{base}/incident-type", handler,
                    {"incident_type": "domestic_abuse"})  # fmt: skip
        before = await send(service, "GET", f"{base}/thrive", handler, None)
        assert before["suggested_grade"] != "emergency"
        assert not OFFICER_SAFETY & {p["id"] for p in before["prompts"]}

        result = await send(service, "POST", f"{base}/narrative", handler,
                             {"text": "he has a knife and says he will kill her"})  # fmt: skip
        new = {c["cue_id"]: c for c in result["new_cues"]}
        assert set(new) == {"weapons.present", "da.threats_to_kill"}
        assert new["weapons.present"]["qualifiers_proposed"] == ["weapons"]
        assert new["weapons.present"]["grade_floor"] == "emergency"

        # The handler's screen: the prompts pushed once the cues have acted.
        while True:
            pushed = await until(desk, "prompts.updated", call_id)
            if pushed["data"]["suggested_grade"] == "emergency":
                break
        assert OFFICER_SAFETY <= {p["id"] for p in pushed["data"]["prompts"]}
        assert "weapons" in pushed["data"]["proposed_qualifiers"]
        reasons = {p["id"]: p["reason"] for p in pushed["data"]["prompts"]}
        assert reasons["cue.officer_safety"] == "cue"

        # The supervisor's socket gets the cues, with what they do.
        frames = await _cue_frames(board, call_id, {"weapons.present", "da.threats_to_kill"})
        assert frames["weapons.present"]["grade_floor"] == "emergency"
        assert frames["da.threats_to_kill"]["strand"] == "da_high_risk_indicators"

        # The call's state says the same; the qualifier is proposed, not set.
        after = await send(service, "GET", f"{base}/thrive", handler, None)
        assert after["suggested_grade"] == "emergency"
        assert after["proposed_qualifiers"] == ["weapons"]
        assert "weapons" not in after["qualifiers"]
        assert OFFICER_SAFETY <= {p["id"] for p in after["prompts"]}

        # The handler confirms the proposal: it is carried and no longer proposed.
        confirmed = await send(service, "PUT", f"{base}/qualifiers", handler,
                                {"qualifiers": ["domestic_abuse", "weapons"]})  # fmt: skip
        assert "weapons" in confirmed["qualifiers"]
        assert confirmed["proposed_qualifiers"] == []
        # A prompt a cue added can be marked answered.
        marked = await send(service, "POST", f"{base}/prompts/answered", handler,
                             {"ids": ["cue.officer_safety"]})  # fmt: skip
        assert {p["id"]: p["answered"] for p in marked["prompts"]}["cue.officer_safety"]
