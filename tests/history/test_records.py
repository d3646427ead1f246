"""Records kept current (issue 13 point 7, acceptance 5), on both backends:
`POST /api/v1/history/records` upserts persons, households, memberships, contacts and markers
(the CSV import's shapes, as JSON), all or nothing, idempotent by id, and invalidates the
summaries it changes, so a marker posted there is on the next ring of that number."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.auth.models import Role
from app.history import geo
from app.history.models import Contact, Household, Marker, Person, PersonHousehold, Phone
from tests.conftest import MakeStaff
from tests.history.support import days_ago, kinds, ring
from tests.realtime.support import event, open_socket, post, until
from tests.support.servers import ServiceProcess

URL = "/api/v1/history/records"
NUMBER = "+441134960201"
LOCAL = "0113 496 0201"

Live = Callable[..., ServiceProcess]


def person(pid: str = "P1", phones: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    return {"type": "person", "person_id": pid, "name": "Jo Demo",
            "date_of_birth": "1985-02-01", "phones": phones or [LOCAL], **kw}  # fmt: skip


def household(hid: str = "H1", **kw: Any) -> dict[str, Any]:
    return {"type": "household", "household_id": hid, "uprn": "100023336956",
            "address": "1 Demo Street", **kw}  # fmt: skip


def membership(pid: str = "P1", hid: str = "H1") -> dict[str, Any]:
    return {"type": "membership", "person_id": pid, "household_id": hid,
            "from_date": "2024-01-01", "to_date": None}  # fmt: skip


def marker(mid: str = "M1", subject: str = "P1", kind: str = "da_high_risk") -> dict[str, Any]:
    return {"type": "marker", "marker_id": mid, "subject_type": "person", "subject_id": subject,
            "kind": kind, "set_at": days_ago(1).isoformat(), "expires_at": None,
            "set_by": "PC 1234"}  # fmt: skip


def contact(cid: str = "C1", **kw: Any) -> dict[str, Any]:
    return {"type": "contact", "contact_id": cid, "occurred_at": days_ago(5).isoformat(),
            "phone": LOCAL, "person_id": "P1", "household_id": "H1",
            "incident_type": "burglary", "victim": True, "domestic_abuse": False,
            "outcome": "crime_recorded", **kw}  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def counts(app: FastAPI) -> dict[str, int]:
    async with app.state.resources.sessions() as session:
        return {
            model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)))
            for model in (Person, Phone, Household, PersonHousehold, Contact, Marker)
        }


# ---- acceptance 5: the next ring carries a marker posted there ---------------------------


async def test_marker_posted_is_in_the_next_call_ringing(
    live_service: Live, make_staff: MakeStaff
) -> None:
    service = live_service()
    integration = await make_staff("RMS1", Role.integration)
    handler = await make_staff("H1", Role.handler)
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        first = await http.post(
            URL, json={"records": [person(), household(), membership()]},
            headers=bearer(integration),
        )  # fmt: skip
        assert first.status_code == 200, first.text
        async with open_socket(service, handler) as ws:
            caller = {"number": LOCAL, "presentation": "allowed"}
            await post(service, event("rec-1", "offered", caller=caller, called="999"))
            await post(service, event("rec-1", "ringing", caller=caller, handler_id="H1"))
            before = await until(ws, "call.ringing")
            assert "vulnerability_marker" not in kinds(before["data"]["alerts"])  # now cached

            posted = await http.post(URL, json={"records": [marker()]}, headers=bearer(integration))
            assert posted.status_code == 200, posted.text
            assert posted.json() == {"records": 1, "stored": {"marker": 1}}

            await post(service, event("rec-2", "offered", caller=caller, called="999"))
            await post(service, event("rec-2", "ringing", caller=caller, handler_id="H1"))
            after = await until(ws, "call.ringing")
    alert = next(a for a in after["data"]["alerts"] if a["kind"] == "vulnerability_marker")
    assert alert["evidence"] == ["M1"] and "domestic abuse high-risk" in alert["title"]


# ---- refusals: index, field, reason; nothing stored --------------------------------------


async def test_bad_records_are_refused_with_index_field_reason_and_nothing_stored(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("RMS1", Role.integration)
    secret_name = "Jo Secret-Name"
    records = [
        person(name=secret_name),  # 0: fine on its own
        household(uprn="not-a-uprn"),  # 1
        marker(kind="Bad Kind"),  # 2
        contact("C1", occurred_at="yesterday"),  # 3
        {"type": "pet", "pet_id": "X"},  # 4
        membership("P404", "H1"),  # 5: unknown person (neither here nor stored)
        person("P1"),  # 6: the same id twice
        household("H2", easting=430000),  # 7: easting without northing
        household("H3", latitude=40.0, longitude=-1.5),  # 8: not in Great Britain
        contact("C2", victim="perhaps"),  # 9
        "not an object",  # 10
        person("P2", nickname="x"),  # 11: not a field
    ]
    response = await client.post(URL, json={"records": records}, headers=bearer(token))
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    assert body["code"] == "records_rejected"
    found = {(e["index"], e["field"]) for e in body["details"]}
    assert found == {
        (1, "uprn"), (2, "kind"), (3, "occurred_at"), (4, "type"), (6, "person_id"),
        (7, "northing"), (8, "latitude"), (9, "victim"), (10, None), (11, "nickname"),
    }  # fmt: skip
    assert all(set(e) == {"index", "field", "reason"} and e["reason"] for e in body["details"])
    assert secret_name not in response.text and "not-a-uprn" not in response.text
    assert set((await counts(app)).values()) == {0}

    # Once the rest is right, an unknown reference is still refused (checked against the store).
    response = await client.post(
        URL, json={"records": [household(), membership("P404", "H1")]}, headers=bearer(token)
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"index": 1, "field": "person_id", "reason": "unknown person id"}
    ]
    assert set((await counts(app)).values()) == {0}


async def test_limits_and_roles(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("RMS1", Role.integration)
    many = [household(f"H{i}") for i in range(1001)]
    response = await client.post(URL, json={"records": many}, headers=bearer(token))
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_many_records"
    response = await client.post(URL, json={"records": many[:1000]}, headers=bearer(token))
    assert response.status_code == 200 and response.json()["stored"] == {"household": 1000}
    assert (await client.post(URL, json={"records": []}, headers=bearer(token))).status_code == 422
    handler = await make_staff("H1", Role.handler)
    response = await client.post(URL, json={"records": [household()]}, headers=bearer(handler))
    assert response.status_code == 403
    assert (await client.post(URL, json={"records": [household()]})).status_code == 401


async def test_idempotent_by_id_updates_move_and_audit(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("RMS1", Role.integration)
    batch = [person(), household(), membership(), contact(), marker()]
    for _ in range(2):
        response = await client.post(URL, json={"records": batch}, headers=bearer(token))
        assert response.status_code == 200, response.text
    assert await counts(app) == {
        "person": 1, "phone": 1, "household": 1, "person_household": 1, "contact": 1, "marker": 1,
    }  # fmt: skip
    # A new phone list replaces the old one; the marker moves to the household; it expires.
    moved = {**marker(), "subject_type": "household", "subject_id": "H1",
             "expires_at": days_ago(-30).isoformat()}  # fmt: skip
    response = await client.post(
        URL, json={"records": [person(phones=["07700 900999"]), moved]}, headers=bearer(token)
    )
    assert response.status_code == 200
    async with app.state.resources.sessions() as session:
        phones = list(await session.scalars(select(Phone.e164)))
        stored = await session.get(Marker, "M1")
        audits = list(await session.scalars(select(AuditLog).where(AuditLog.actor == "staff:RMS1")))
    assert phones == ["+447700900999"]
    assert stored is not None and (stored.subject_type, stored.subject_id) == ("household", "H1")
    assert [(a.action, a.subject_type, a.records["records"]) for a in audits] == [
        ("alteration", "history", 5), ("alteration", "history", 5), ("alteration", "history", 2),
    ]  # fmt: skip
    assert audits[0].records["rows"]["contact"] == 1


async def test_coordinates_from_either_grid_and_contacts_located(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("RMS1", Role.integration)
    records = [
        person(), household("H1", easting=430512, northing=433807), membership(),
        household("H2", latitude=51.5007, longitude=-0.1246), contact("C1"),
        contact("C2", household_id="H2", person_id=None, phone=None),
    ]  # fmt: skip
    response = await client.post(URL, json={"records": records}, headers=bearer(token))
    assert response.status_code == 200, response.text
    async with app.state.resources.sessions() as session:
        h1, h2 = await session.get(Household, "H1"), await session.get(Household, "H2")
        c1, c2 = await session.get(Contact, "C1"), await session.get(Contact, "C2")
    assert h1 is not None and (h1.easting, h1.northing) == (430512, 433807)
    assert h1.grid_cell == geo.cell_of(430512, 433807)
    assert h2 is not None and h2.easting is not None and h2.northing is not None
    assert abs(h2.easting - 530270) < 10 and abs(h2.northing - 179641) < 10  # Big Ben
    assert c1 is not None and (c1.easting, c1.grid_cell) == (430512, h1.grid_cell)
    assert c2 is not None and c2.grid_cell == h2.grid_cell
    # Moving the household moves its contacts.
    response = await client.post(
        URL, json={"records": [household("H1", easting=100000, northing=200000)]},
        headers=bearer(token),
    )  # fmt: skip
    assert response.status_code == 200
    async with app.state.resources.sessions() as session:
        c1 = await session.get(Contact, "C1")
    assert c1 is not None and c1.grid_cell == geo.cell_of(100000, 200000)


async def test_marker_reaches_the_next_ring_in_process(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    """The same through the in-process app: a household marker (another member's number)."""
    token = await make_staff("RMS1", Role.integration)
    base = [person(), person("P2", phones=["0113 496 0202"]), household(), membership(),
            membership("P2", "H1")]  # fmt: skip
    assert (await client.post(URL, json={"records": base}, headers=bearer(token))).is_success
    _, _, alerts = await ring(app, client, "rec-a", LOCAL)
    assert "household_risk" not in kinds(alerts)
    response = await client.post(
        URL, json={"records": [marker("M2", subject="P2")]}, headers=bearer(token)
    )
    assert response.status_code == 200
    _, _, alerts = await ring(app, client, "rec-b", LOCAL)
    assert "household_risk" in kinds(alerts)
