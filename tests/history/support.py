"""Helpers for history tests: write history the way the service does, ring a call through
the real signed webhook, and read back what the history step stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from app.history import stored_context, writes
from app.history.models import Household, Person, PersonHousehold, Phone
from tests.telephony.support import event, post_signed


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


async def add_people(
    app: FastAPI,
    persons: dict[str, list[str]],
    households: dict[str, list[str]] | None = None,
) -> None:
    """persons: id -> E.164 numbers; households: id -> member person ids (current)."""
    async with app.state.resources.sessions() as session, session.begin():
        for pid, numbers in persons.items():
            session.add(Person(id=pid, name=f"Test {pid}"))
            await session.flush()
            for number in numbers:
                session.add(Phone(e164=number, person_id=pid))
        for hid, members in (households or {}).items():
            session.add(Household(id=hid, uprn=str(100 + len(hid)), address=f"{hid} Test Street"))
            await session.flush()
            for pid in members:
                session.add(PersonHousehold(person_id=pid, household_id=hid))
        await writes.invalidate(
            session, person_ids=list(persons), household_ids=list(households or {})
        )


async def add_contact(app: FastAPI, contact_id: str, **fields: Any) -> None:
    fields.setdefault("occurred_at", days_ago(10))
    async with app.state.resources.sessions() as session, session.begin():
        await writes.record_contact(session, contact_id=contact_id, **fields)


async def add_marker(app: FastAPI, marker_id: str, **fields: Any) -> None:
    fields.setdefault("set_at", days_ago(30))
    async with app.state.resources.sessions() as session, session.begin():
        await writes.set_marker(session, marker_id=marker_id, **fields)


async def ring(
    app: FastAPI,
    client: httpx.AsyncClient,
    call_id: str,
    number: str | None,
    presentation: str = "allowed",
    types: tuple[str, ...] = ("offered",),
) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    """Post signed events for a call, let the pipeline process them, return what history
    stored: (service call id, context, alerts)."""
    caller = {"number": number, "presentation": presentation}
    service_id = 0
    for type_ in types:
        extra: dict[str, Any] = {"caller": caller, "called": "999"}
        if type_ in ("ringing", "answered"):
            extra["handler_id"] = "H1001"
        if type_ == "ended":
            extra["cause"] = "normal_clearing"
        response = await post_signed(client, event(call_id, type_, **extra))
        assert response.status_code == 202, response.text
        service_id = response.json()["call_id"]
    async with app.state.resources.sessions() as session:
        stored = await stored_context.stored_context(session, service_id)
    context, alerts = stored if stored is not None else ({}, [])
    return service_id, context, alerts


def kinds(alerts: list[dict[str, Any]]) -> list[str]:
    return sorted(a["kind"] for a in alerts)
