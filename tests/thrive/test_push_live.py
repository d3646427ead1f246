"""Acceptance 1 and 3 end to end: real uvicorn workers, a real handler socket.

With Redis (production backend) the service runs two workers, so the keystroke posts land on
either one: each cue must still reach the socket exactly once (the workers agree through the
store, not their memory). The embedded backend has one process by design (in-process broker).
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


async def test_pushes_reach_the_handlers_socket_once_each(
    settings: Settings, live_service: Live, make_staff: MakeStaff
) -> None:
    service = live_service(workers=2 if settings.redis_url else 1)
    token = await make_staff("H1", Role.handler)
    async with open_socket(service, token) as ws:
        call_id = await ring(service, "th-live-1", "H1")
        await post(service, event("th-live-1", "answered", handler_id="H1"))
        await until(ws, "call.answered", call_id)

        base = f"/api/v1/calls/{call_id}"
        await send(service, "PUT", f"{base}/incident-type", token, {"incident_type": "burglary"})
        prompts = await until(ws, "prompts.updated", call_id)
        advice = await until(ws, "advice.updated", call_id)
        assert prompts["data"]["incident_type"] == "burglary"
        assert "burglary.dont_touch_entry" in {a["id"] for a in advice["data"]["advice"]}

        text = "She says the kids are upstairs and her partner won't let her leave the house"
        words = text.split(" ")
        returned: list[str] = []
        for end in range(1, len(words) + 1):
            body = await send(service, "POST", f"{base}/narrative", token,
                               {"text": " ".join(words[:end])})  # fmt: skip
            returned += [c["cue_id"] for c in body["new_cues"]]
        # A last change of incident type marks the end: the channel is ordered, so every
        # cue pushed before it has arrived by the time it does.
        await send(service, "PUT", f"{base}/incident-type", token,
                    {"incident_type": "domestic_abuse"})  # fmt: skip

        cues: list[dict[str, Any]] = []
        while True:
            got = await message(ws)
            if got["type"] == "cue.detected":
                cues.append(got)
            elif got["type"] == "prompts.updated":
                # Cues with effects push the prompts too (issue 14); the end is the one
                # the incident type brings.
                if got["data"]["incident_type"] == "domestic_abuse":
                    break
        assert [c["data"]["cue_id"] for c in cues] == returned
        assert len(returned) == len(set(returned)) >= 2
        assert {"children_present", "controlling_third_party"} <= {
            c["data"]["strand"] for c in cues
        }
        assert all(c["call_id"] == call_id for c in cues)
        da_prompts = await until(ws, "advice.updated", call_id)
        assert da_prompts["data"]["incident_type"] == "domestic_abuse"
