"""Issue 16 point 4 / acceptance 4: every read of personal data is in the audit log against
the staff member who saw it: a row per staff member per person (and household) shown, for
the calls list, the board, the THRIVE+ view, and each socket delivery of caller context."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection

from app.audit.models import AuditLog
from app.auth.models import Role
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.history.stored_context import stored_context
from app.realtime.push_audit import JUSTIFICATION, PushAudit
from tests.conftest import MakeStaff
from tests.history.identify_support import call_at, seed, seed_store
from tests.realtime.support import event, open_socket, post, until
from tests.support.servers import ServiceProcess, eventually
from tests.thrive.support import auth

JO = "+447700900501"  # Jo Demo's number: she, her partner and their home are shown


async def _shown(settings: Settings, justification: str) -> dict[str, set[tuple[str, str]]]:
    """(subject type, id) seen, by actor, for one kind of read."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.scalars(
                select(AuditLog).where(AuditLog.justification == justification)
            )
            seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
            for row in rows:
                seen[row.actor].add((row.subject_type, str(row.subject_id)))
            return seen
    finally:
        await engine.dispose()


async def _expected(settings: Settings, call_id: int) -> set[tuple[str, str]]:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            stored = await stored_context(session, call_id)
    finally:
        await engine.dispose()
    assert stored is not None
    context, _ = stored
    return {("person", p["id"]) for p in context["persons"]} | {
        ("household", h["id"]) for h in context["households"]
    }


async def test_lists_board_and_thrive_view_are_audited_per_staff_member_per_person(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await seed(app)
    h1 = await make_staff("H1", Role.handler)
    s1 = await make_staff("S1", Role.supervisor)
    call_id = await call_at(client, "H1", number=JO)
    expected = await _expected(settings, call_id)
    assert ("person", "P-JO") in expected and ("household", "H-12") in expected

    for token in (h1, s1):
        listed = await client.get("/api/v1/calls", headers=auth(token))
        assert listed.status_code == 200 and listed.json()["items"]
        thrive = await client.get(f"/api/v1/calls/{call_id}/thrive", headers=auth(token))
        assert thrive.status_code == 200, thrive.text
    board = await client.get("/web/api/board", headers=auth(s1))
    assert board.status_code == 200

    for justification, actors in (
        ("calls list", ("staff:H1", "staff:S1")),
        ("THRIVE+ view", ("staff:H1", "staff:S1")),
        ("board", ("staff:S1",)),
    ):
        seen = await _shown(settings, justification)
        assert set(seen) == set(actors), justification
        for actor in actors:
            assert seen[actor] == expected, (justification, actor)

    # A call whose caller is nobody known is still recorded, as the call.
    withheld = await call_at(client, "H1")
    await client.get(f"/api/v1/calls/{withheld}/thrive", headers=auth(h1))
    assert ("call", str(withheld)) in (await _shown(settings, "THRIVE+ view"))["staff:H1"]


async def _ring_jo(service: ServiceProcess, handler: str) -> int:
    external = f"push-{uuid.uuid4().hex[:10]}"
    await post(
        service,
        event(external, "offered", caller={"number": JO, "presentation": "allowed"}, called="999"),
    )
    response = await post(service, event(external, "ringing", handler_id=handler))
    return int(response.json()["call_id"])


async def test_each_push_of_caller_context_is_audited_for_the_staff_member_who_got_it(
    settings: Settings, make_staff: MakeStaff, live_service: type[ServiceProcess]
) -> None:
    await seed_store(settings)
    h1 = await make_staff("H1", Role.handler)
    s1 = await make_staff("S1", Role.supervisor)
    s2 = await make_staff("S2", Role.supervisor)
    service = live_service()  # type: ignore[call-arg]
    sockets: dict[str, ClientConnection] = {}
    async with (
        open_socket(service, h1) as sockets["staff:H1"],
        open_socket(service, s1) as sockets["staff:S1"],
        open_socket(service, s2) as sockets["staff:S2"],
    ):
        call_id = await _ring_jo(service, "H1")
        ringing = await until(sockets["staff:H1"], "call.ringing", call_id)
        assert ringing["data"]["context"]["persons"]
        for actor in ("staff:S1", "staff:S2"):
            offered = await until(sockets[actor], "call.offered", call_id)
            assert offered["data"]["alerts"]
        expected = await _expected(settings, call_id)

        async def everyone_recorded() -> bool:
            seen = await _shown(settings, JUSTIFICATION)
            return all(expected <= seen.get(actor, set()) for actor in sockets)

        await eventually(everyone_recorded, what="a delivery audit row per staff member")
    seen = await _shown(settings, JUSTIFICATION)
    # The service's own lookup is recorded as the call's; the deliveries as the people's.
    assert set(seen) == set(sockets)
    for actor in sockets:
        assert seen[actor] == expected, actor


def _frame(call_id: int, person: str) -> str:
    person_shown = {"id": person, "contacts": [], "markers": []}
    context = {"persons": [person_shown], "households": [], "number_contacts": []}
    return json.dumps({"type": "call.ringing", "call_id": call_id, "data": {"context": context}})


async def test_deliveries_close_together_are_audited_in_one_transaction(
    settings: Settings,
) -> None:
    # Each delivery's rows used to be a transaction of their own (five round trips to the
    # store); those queued within the gathering window now share one.
    engine = create_engine(settings)
    audit = PushAudit(create_sessionmaker(engine), gather_seconds=1.0)
    try:
        audit.delivered("staff:A", _frame(1, "P1"))
        task = audit._task
        assert task is not None

        async def in_its_window() -> bool:  # the writer took the wake-up and waits its window
            return not audit._wake.is_set()

        await eventually(in_its_window, what="the writer waiting out its window")
        assert not task.done() and audit.pending and audit.transactions == 0
        audit.delivered("staff:B", _frame(2, "P2"))

        async def both_written() -> bool:
            seen = await _shown(settings, JUSTIFICATION)
            return seen.get("staff:A") == {("person", "P1")} and seen.get("staff:B") == {
                ("person", "P2")
            }

        await eventually(both_written, what="both deliveries audited")
        assert audit.transactions == 1
    finally:
        await audit.close()
        await engine.dispose()
