"""Helpers for THRIVE+ tests: real calls (signed telephony events), real alerts, the broker."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from app.history import alerts as alert_store
from app.realtime.envelope import SUPERVISORS, handler_channel
from app.rules.facts import PlannedAlert
from app.thrive.schemas import Element
from tests.support.servers import ServiceProcess
from tests.telephony.support import event, post_signed

_numbers = itertools.count(100)


def new_number() -> str:
    """A fresh UK mobile number per call, so tests do not share a caller's history."""
    return f"07700 900{next(_numbers):03d}"


async def answered_call(
    client: httpx.AsyncClient,
    handler: str = "H1",
    number: str | None = None,
    external: str | None = None,
) -> int:
    """A call offered, ringing at `handler` and answered: the service's call id."""
    external = external or f"t-{uuid.uuid4().hex[:12]}"
    start = datetime.now(UTC) - timedelta(seconds=30)
    caller = {"number": number or new_number(), "presentation": "allowed"}
    call_id = None
    for body in (
        event(external, "offered", start, caller=caller, called="999", queue="emergency"),
        event(external, "ringing", start + timedelta(seconds=2), handler_id=handler),
        event(external, "answered", start + timedelta(seconds=5), handler_id=handler),
    ):
        response = await post_signed(client, body)
        assert response.status_code == 202, response.text
        call_id = response.json()["call_id"]
    assert call_id is not None
    return int(call_id)


async def transfer(client: httpx.AsyncClient, external: str, to: str) -> None:
    """The platform transfers the call (by its own id) to another handler."""
    response = await post_signed(client, event(external, "transferred", handler_id=to))
    assert response.status_code == 202, response.text


async def raise_alerts(app: FastAPI, call_id: int, *alerts: tuple[str, str]) -> None:
    """Store alerts on a call as the history step does (kind, severity)."""
    planned = [
        PlannedAlert(
            kind=kind,
            severity=severity,  # type: ignore[arg-type]
            title=f"{kind} (test)",
            reasons=["set up by the test"],
            rule=f"{kind}@test",
        )
        for kind, severity in alerts
    ]
    async with app.state.resources.sessions() as session, session.begin():
        alert_store.store(session, call_id, planned)


async def messages(app: FastAPI, channel: str, *types: str) -> list[dict[str, Any]]:
    """Every retained message on `channel` (of `types`, if given), read from the broker."""
    broker = app.state.resources.broker
    found = []
    for delivered in await broker.read_after(channel, (0, 0)):
        message = json.loads(delivered.text)
        if not types or message["type"] in types:
            found.append(message)
    return found


def handler_messages(app: FastAPI, handler: str, *types: str) -> Any:
    return messages(app, handler_channel(handler), *types)


def supervisor_messages(app: FastAPI, *types: str) -> Any:
    return messages(app, SUPERVISORS, *types)


async def send(service: ServiceProcess, method: str, path: str, token: str, body: Any) -> Any:
    """A request to a live service as `token`, on a fresh connection (with several workers,
    requests spread out), expected to succeed: its JSON."""
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        response = await http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200, response.text
    return response.json()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def untouched_form(incident_type: str) -> dict[str, Any]:
    """What an untouched assessment form sends: an incident type, no grade, every element
    not applicable with no text, no repeat-victim check, nothing ticked."""
    return {
        "incident_type": incident_type,
        "grade": None,
        "grade_reason": None,
        "elements": {e.value: {"risk": "not_applicable", "text": ""} for e in Element},
        "advice_given": [],
        "prompts_answered": [],
        "repeat_victim_check": None,
        "victim": False,
    }


def full_assessment(**overrides: Any) -> dict[str, Any]:
    """A complete, valid assessment body for a burglary (the caller a victim, so the
    repeat-victim check answered); override what a test is about."""
    body: dict[str, Any] = {
        "incident_type": "burglary",
        "grade": "scheduled",
        "elements": {
            e.value: {"risk": "low", "text": f"{e.value} considered with the caller"}
            for e in Element
        },
        "advice_given": ["burglary.dont_touch_entry", "burglary.lock_up"],
        "repeat_victim_check": "no",
        "victim": True,
    }
    body.update(overrides)
    return body
