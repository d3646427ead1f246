"""Search and link mid-call (issue 13 point 3) and where the call's contact is filed (point 4,
acceptance 3), over HTTP on both backends: who may, when, what is audited, what is refused."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.auth.models import Role
from app.history import alerts as alert_store
from app.history.models import Alert, CallSubject, Contact
from app.history.search import parse_query
from app.history.steps import caller_facts_for
from app.thrive.models import Assessment
from tests.conftest import MakeStaff
from tests.history.identify_support import JO_DOB, call_at, seed
from tests.history.support import kinds
from tests.telephony.support import event, post_signed
from tests.thrive.support import auth, full_assessment

SEARCH = "/api/v1/history/search"


def subjects_url(call_id: int) -> str:
    return f"/api/v1/calls/{call_id}/subjects"


async def _search(client: httpx.AsyncClient, token: str, **params: Any) -> httpx.Response:
    return await client.get(SEARCH, params=params, headers=auth(token))


async def _audit(app: FastAPI, **where: Any) -> list[AuditLog]:
    async with app.state.resources.sessions() as session:
        query = select(AuditLog).order_by(AuditLog.id)
        for key, value in where.items():
            query = query.where(getattr(AuditLog, key) == value)
        return list(await session.scalars(query))


# ---- reading what the handler typed (pure) ----------------------------------------------


@pytest.mark.parametrize(
    ("typed", "kind", "text", "dob"),
    [
        ("Jo Demo 1985-03-02", "name", "Jo Demo", JO_DOB),
        ("jo  demo 02/03/1985", "name", "jo demo", JO_DOB),
        ("Jo Demo", "name", "Jo Demo", None),
        ("07700 900501", "phone", "+447700900501", None),
        ("+44 7700 900501", "phone", "+447700900501", None),
        ("100012345678", "uprn", "100012345678", None),
        ("te12st", "postcode", "TE1 2ST", None),
        ("12 Acacia Avenue", "address", "12 Acacia Avenue", None),
    ],
)
def test_the_search_box_is_read_by_what_was_typed(
    typed: str, kind: str, text: str, dob: Any
) -> None:
    query = parse_query(typed, None, "GB")
    assert (query.kind, query.text, query.dob) == (kind, text, dob)


@pytest.mark.parametrize("typed", ["", "  ", "Jo 1985-02-30", "x", "0123", "12-34", "+44 12"])
def test_what_cannot_be_searched_is_refused(typed: str) -> None:
    from app.history.search import BadSearch

    with pytest.raises(BadSearch):
        parse_query(typed, None, "GB")


# ---- search over HTTP -------------------------------------------------------------------


async def test_search_by_name_and_date_of_birth_ranks_the_right_person_first(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await seed(app)
    token = await make_staff("H1", Role.handler)
    call_id = await call_at(client, "H1")

    both = await _search(client, token, call_id=call_id, q="Jo Demo")
    assert both.status_code == 200, both.text
    assert both.json()["kind"] == "name"
    assert {p["id"] for p in both.json()["persons"]} >= {"P-JO", "P-JO2"}

    by_dob = (await _search(client, token, call_id=call_id, q="Jo Demo 1985-03-02")).json()
    assert by_dob["persons"][0]["id"] == "P-JO"
    assert "P-JO2" not in {p["id"] for p in by_dob["persons"]}  # a different recorded date
    jo = by_dob["persons"][0]
    assert jo["date_of_birth"] == "1985-03-02" and jo["age"] >= 40
    assert [h["id"] for h in jo["households"]] == ["H-12"]
    separate = await _search(client, token, call_id=call_id, q="jo demo", dob="1985-03-02")
    assert separate.json()["persons"][0]["id"] == "P-JO"

    partial = (await _search(client, token, call_id=call_id, q="Demo")).json()
    assert {"P-JO", "P-SAM", "P-JO2"} <= {p["id"] for p in partial["persons"]}


async def test_search_by_number_postcode_address_and_uprn(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await seed(app)
    token = await make_staff("H1", Role.handler)
    call_id = await call_at(client, "H1")

    phone = (await _search(client, token, call_id=call_id, q="07700 900502")).json()
    assert phone["kind"] == "phone" and [p["id"] for p in phone["persons"]] == ["P-SAM"]

    uprn = (await _search(client, token, call_id=call_id, q="100012345679")).json()
    assert uprn["kind"] == "uprn" and [h["id"] for h in uprn["households"]] == ["H-14"]
    assert [m["id"] for m in uprn["households"][0]["members"]] == ["P-PAT"]

    postcode = (await _search(client, token, call_id=call_id, q="TE1 2ST")).json()
    assert postcode["kind"] == "postcode"
    assert {h["id"] for h in postcode["households"]} == {"H-12", "H-14"}

    address = (await _search(client, token, call_id=call_id, q="14 Acacia Avenue")).json()
    assert address["kind"] == "address"
    assert address["households"][0]["id"] == "H-14"

    nothing = (await _search(client, token, call_id=call_id, q="Nobody Atall")).json()
    assert nothing["persons"] == [] and nothing["households"] == []


async def test_every_search_is_audited_and_never_logged(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_staff: MakeStaff,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await seed(app)
    token = await make_staff("H1", Role.handler)
    call_id = await call_at(client, "H1")
    caplog.set_level(logging.DEBUG)
    response = await _search(client, token, call_id=call_id, q="Jo Demo 1985-03-02")
    assert response.status_code == 200
    [record] = await _audit(app, subject_type="history_search")
    assert (record.actor, record.call_id, record.action) == (
        "staff:H1",
        str(call_id),
        "consultation",
    )
    assert record.records["query"] == "Jo Demo 1985-03-02"
    assert record.records["kind"] == "name"
    assert "P-JO" in record.records["persons"]
    # The application's own log (the libraries' debug output is not the service's log).
    logged = "\n".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.name.startswith("app")
    )
    assert "history searched" in logged
    assert "Jo Demo" not in logged and "1985-03-02" not in logged


async def test_who_may_search_and_when(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await seed(app)
    h1 = await make_staff("H1", Role.handler)
    h2 = await make_staff("H2", Role.handler)
    sup = await make_staff("S1", Role.supervisor)
    qa = await make_staff("Q1", Role.qa)
    call_id = await call_at(client, "H1")

    assert (await _search(client, h2, call_id=call_id, q="Jo Demo")).status_code == 403
    assert (await _search(client, qa, call_id=call_id, q="Jo Demo")).status_code == 403
    assert (await _search(client, sup, call_id=call_id, q="Jo Demo")).status_code == 200
    assert (await _search(client, h1, call_id=999999, q="Jo Demo")).status_code == 404
    bad = await _search(client, h1, call_id=call_id, q="Jo 1985-02-30")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_search"
    assert (await _search(client, h1, call_id=call_id, q="Jo", dob="1985-13-01")).status_code == 422
    assert (await client.get(SEARCH, params={"call_id": call_id, "q": "Jo"})).status_code == 401

    # Wrap-up (ended, no assessment yet): still allowed; once assessed: closed.
    ended = await call_at(client, "H1", end=True)
    assert (await _search(client, h1, call_id=ended, q="Jo Demo")).status_code == 200
    submitted = await client.post(
        f"/api/v1/calls/{ended}/assessment", json=full_assessment(), headers=auth(h1)
    )
    assert submitted.status_code in (200, 201), submitted.text
    closed = await _search(client, h1, call_id=ended, q="Jo Demo")
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "call_closed"


# ---- link over HTTP ---------------------------------------------------------------------


async def test_linking_the_victim_raises_their_alerts_once(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await seed(app)
    token = await make_staff("H1", Role.handler)
    call_id = await call_at(client, "H1")
    body = {"person_id": "P-JO", "role": "victim"}

    first = await client.post(subjects_url(call_id), json=body, headers=auth(token))
    assert first.status_code == 201, first.text
    raised = first.json()["alerts"]
    assert {"repeat_victim", "household_risk"} <= set(kinds(raised))
    assert "withheld_number" not in kinds(raised)  # the call has it already, from the ring

    again = await client.post(subjects_url(call_id), json=body, headers=auth(token))
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["alerts"] == [] and again.json()["link_id"] == first.json()["link_id"]
    async with app.state.resources.sessions() as session:
        links = await session.scalar(
            select(func.count()).select_from(CallSubject).where(CallSubject.call_id == call_id)
        )
        stored = await alert_store.for_call(session, call_id)
    assert links == 1
    assert sorted(a.kind for a in stored) == sorted(["withheld_number", *kinds(raised)])

    # The household in another role adds no alert the call already carries.
    home = await client.post(
        subjects_url(call_id), json={"household_id": "H-12", "role": "subject"}, headers=auth(token)
    )
    assert home.status_code == 201
    assert "household_risk" not in kinds(home.json()["alerts"])

    [link_audit] = await _audit(app, action="combination", subject_id="P-JO")
    assert link_audit.call_id == str(call_id) and link_audit.actor == "staff:H1"
    assert link_audit.records["role"] == "victim"
    consulted = await _audit(app, action="consultation", subject_id="P-JO")
    assert any(r.justification == "linked as victim" for r in consulted)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"person_id": "P-NOBODY", "role": "victim"}, 404, "unknown_person"),
        ({"household_id": "H-NOWHERE", "role": "victim"}, 404, "unknown_household"),
        ({"person_id": "P-JO", "role": "bystander"}, 422, None),
        ({"person_id": "P-JO", "household_id": "H-12", "role": "victim"}, 422, None),
        ({"role": "victim"}, 422, None),
        ({"person_id": "", "role": "victim"}, 422, None),
    ],
)
async def test_bad_links_are_refused_with_a_reason(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_staff: MakeStaff,
    body: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    await seed(app)
    token = await make_staff("H1", Role.handler)
    call_id = await call_at(client, "H1")
    response = await client.post(subjects_url(call_id), json=body, headers=auth(token))
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]
    if code:
        assert response.json()["error"]["code"] == code
    async with app.state.resources.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CallSubject)) == 0


async def test_only_the_current_handler_or_a_supervisor_links_and_only_while_open(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await seed(app)
    h1 = await make_staff("H1", Role.handler)
    h2 = await make_staff("H2", Role.handler)
    sup = await make_staff("S1", Role.supervisor)
    call_id = await call_at(client, "H1")
    body = {"person_id": "P-JO", "role": "victim"}
    assert (
        await client.post(subjects_url(call_id), json=body, headers=auth(h2))
    ).status_code == 403
    assert (await client.post(subjects_url(999999), json=body, headers=auth(h1))).status_code == 404
    by_sup = await client.post(subjects_url(call_id), json=body, headers=auth(sup))
    assert by_sup.status_code == 201 and by_sup.json()["linked_by"] == "S1"

    ended = await call_at(client, "H1", end=True)
    submitted = await client.post(
        f"/api/v1/calls/{ended}/assessment", json=full_assessment(), headers=auth(h1)
    )
    assert submitted.status_code in (200, 201), submitted.text
    closed = await client.post(subjects_url(ended), json=body, headers=auth(h1))
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "call_closed"


# ---- attribution (point 4, acceptance 3) ------------------------------------------------


def _da_report(**overrides: Any) -> dict[str, Any]:
    body = full_assessment(
        incident_type="domestic_abuse",
        grade="priority",
        advice_given=["da.keep_messages", "da.signal_word"],
        repeat_victim_check="yes",
        victim=False,  # the caller is not the victim: the neighbour is
    )
    body.update(overrides)
    return body


async def test_a_neighbour_reporting_da_next_door_three_times_is_not_the_victim(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    """Acceptance 3: Pat calls three times about DA at number 12; the contacts go to the
    victim (Jo) and her household, Pat is recorded as the caller, and Pat's own next call
    gets no DA escalation."""
    await seed(app)
    token = await make_staff("H1", Role.handler)
    pat_number = "+447700900514"
    call_ids = []
    for n in range(3):
        call_id = await call_at(client, "H1", number=pat_number, external=f"nd-{n}")
        link = await client.post(
            subjects_url(call_id), json={"person_id": "P-JO", "role": "victim"}, headers=auth(token)
        )
        assert link.status_code in (200, 201), link.text
        if n == 2:  # the last one links in wrap-up, after the call has ended
            ended = await post_signed(client, event(f"nd-{n}", "ended", cause="normal"))
            assert ended.status_code == 202
        submitted = await client.post(
            f"/api/v1/calls/{call_id}/assessment", json=_da_report(), headers=auth(token)
        )
        assert submitted.status_code in (200, 201), submitted.text
        assessed = submitted.json()
        assert assessed["victim_person_id"] == "P-JO"
        assert assessed["location_household_id"] == "H-12"
        call_ids.append(call_id)

    async with app.state.resources.sessions() as session:
        contacts = list(await session.scalars(select(Contact).where(Contact.call_id.in_(call_ids))))
    assert len(contacts) == 3
    for contact in contacts:
        assert (contact.person_id, contact.household_id) == ("P-JO", "H-12")
        assert (contact.caller_person_id, contact.caller_role) == ("P-PAT", "third_party")
        assert contact.victim and contact.domestic_abuse
        assert contact.number == pat_number  # still a call from Pat's number

    async with app.state.resources.sessions() as session:
        facts = await caller_facts_for(session, app.state.resources, pat_number, "allowed")
        planned = alert_store.plan(app.state.resources, facts)
    assert "da_escalation" not in {a.kind for a in planned}
    assert "repeat_victim" not in {a.kind for a in planned}
    assert not any(c.domestic_abuse or c.victim for c in facts.number_contacts)
    pat = next(p for p in facts.persons if p.id == "P-PAT")
    assert pat.contacts == []
    [h14] = [h for h in facts.households if h.id == "H-14"]
    assert h14.contacts == []

    # Pat's next call, rung for real: no DA escalation on the screen.
    _, _, alerts = await _ring_stored(app, client, pat_number)
    assert "da_escalation" not in kinds(alerts)

    # Jo's household carries them: the two earlier DA contacts plus these three.
    async with app.state.resources.sessions() as session:
        jo_facts = await caller_facts_for(session, app.state.resources, "+447700900501", "allowed")
    [h12] = [h for h in jo_facts.households if h.id == "H-12"]
    assert sum(1 for c in h12.contacts if c.domestic_abuse) == 5
    assert "da_escalation" in {a.kind for a in alert_store.plan(app.state.resources, jo_facts)}


async def _ring_stored(
    app: FastAPI, client: httpx.AsyncClient, number: str
) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    from tests.history.support import ring

    return await ring(app, client, "nd-next", number)


async def test_with_nobody_linked_the_contact_stays_the_callers(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await seed(app)
    token = await make_staff("H1", Role.handler)
    call_id = await call_at(client, "H1", number="+447700900501", end=True)
    submitted = await client.post(
        f"/api/v1/calls/{call_id}/assessment",
        json=full_assessment(grade="priority"),
        headers=auth(token),
    )
    assert submitted.status_code in (200, 201), submitted.text
    assert submitted.json()["victim_person_id"] == "P-JO"
    async with app.state.resources.sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.call_id == call_id))
        assessment = await session.scalar(select(Assessment).where(Assessment.call_id == call_id))
    assert contact is not None and assessment is not None
    assert (contact.person_id, contact.household_id) == ("P-JO", "H-12")
    assert (contact.caller_person_id, contact.caller_role) == ("P-JO", "victim")
    assert assessment.location_household_id == "H-12"


async def test_the_alerts_a_link_raises_are_stored_on_the_call(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await seed(app)
    token = await make_staff("H1", Role.handler)
    call_id = await call_at(client, "H1")
    # The victim is a person: repeat victim counts a person's own victim contacts (issue 13).
    linked = await client.post(
        subjects_url(call_id), json={"person_id": "P-JO", "role": "victim"}, headers=auth(token)
    )
    assert linked.status_code == 201, linked.text
    async with app.state.resources.sessions() as session:
        stored = {
            a.kind for a in await session.scalars(select(Alert).where(Alert.call_id == call_id))
        }
    assert {"household_risk", "repeat_victim"} <= stored
