"""The incident types and advice kind added by issue 14, through the call-time API: each new
type is accepted, brings ranked prompts (a short list shown, the rest folded) and its advice;
support advice (a referral, medical help) is ticked and assessed under its own kind."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from app.auth.models import Role
from tests.conftest import MakeStaff
from tests.thrive.support import answered_call, auth, full_assessment

NEW_TYPES = [
    "concern_for_welfare", "suicide_self_harm", "child_abuse", "adult_at_risk",
    "honour_based_abuse", "modern_slavery", "child_sexual_exploitation",
]  # fmt: skip


async def typed(client: httpx.AsyncClient, token: str, base: str, itype: str) -> dict[str, Any]:
    """The call's THRIVE+ state once its incident type is set to `itype` (200 expected)."""
    response = await client.put(
        f"{base}/incident-type", json={"incident_type": itype}, headers=auth(token)
    )
    assert response.status_code == 200, (itype, response.text)
    body: dict[str, Any] = response.json()
    return body


async def test_each_new_incident_type_is_accepted_with_ranked_prompts_and_advice(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    base = f"/api/v1/calls/{await answered_call(client, 'H1')}"
    for itype in NEW_TYPES:
        body = await typed(client, token, base, itype)
        prompts = body["prompts"]
        shown = [p for p in prompts if not p["folded"]]
        assert 0 < len(shown) <= 10, itype
        assert prompts[: len(shown)] == shown  # must-ask first, folded after
        assert any(p["reason"] == "incident_type" for p in shown), itype
        assert all("source" not in p for p in prompts)  # not on the handler's screen
        assert body["advice"] and all("source" not in a for a in body["advice"]), itype


async def test_support_advice_is_ticked_and_assessed_under_its_own_kind(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    base = f"/api/v1/calls/{await answered_call(client, 'H1')}"
    kinds = {
        a["id"]: a["kind"] for a in (await typed(client, token, base, "sexual_offence"))["advice"]
    }
    assert kinds["sexual.sarc"] == "support" and kinds["sexual.avoid_toilet"] == "preservation"
    ticked = await client.post(
        f"{base}/advice/given", json={"ids": ["sexual.sarc"]}, headers=auth(token)
    )
    assert ticked.status_code == 200, ticked.text
    body = full_assessment(
        incident_type="sexual_offence",
        advice_given=["sexual.avoid_toilet", "sexual.avoid_suspect", "sexual.sarc"],
    )
    submitted = await client.put(f"{base}/assessment", json=body, headers=auth(token))
    assert submitted.status_code in (200, 201), submitted.text
    assert submitted.json()["advice_given"] == {
        "preservation": ["sexual.avoid_toilet"],
        "prevention": ["sexual.avoid_suspect"],
        "support": ["sexual.sarc"],
    }
