"""Mid-call history lookups by the call's handler (or a supervisor), and a call's stored
caller context. Every lookup that shows a record is in the consultation log."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import CurrentStaff, ResourcesDep, SessionDep, holding
from app.auth import policy
from app.auth.policy import Capability
from app.auth.service import Principal
from app.calls.models import Call
from app.errors import Forbidden, NotFound, Unprocessable
from app.history import consultation, records
from app.history.stored_context import stored_context
from app.metrics.catalogue import SEARCHES
from app.thrive import identify

router = APIRouter(prefix="/history", tags=["history"])
# The force's records system (an integration token), keeping the history current.
RecordsSystem = Annotated[Principal, holding(Capability.update_records)]


class HouseholdLookup(BaseModel):
    call_id: int
    households: list[dict[str, object]]


class CallContextRead(BaseModel):
    call_id: int
    context: dict[str, object]
    alerts: list[dict[str, object]]


async def _call_for(session: AsyncSession, call_id: int, staff: Principal) -> Call:
    call = await session.get(Call, call_id)
    if call is None:
        raise NotFound("no such call", details={"call_id": call_id})
    if policy.allows_on(staff, Capability.search_history, call):
        return call
    raise Forbidden("only the call's handler or a supervisor may look up history for it")


@router.get("/households", response_model=HouseholdLookup)
async def lookup_households(
    staff: CurrentStaff,
    session: SessionDep,
    resources: ResourcesDep,
    call_id: int,
    household_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    uprn: Annotated[str | None, Query(pattern=r"^\d{1,12}$")] = None,
    address: Annotated[str | None, Query(min_length=3, max_length=200)] = None,
) -> HouseholdLookup:
    """Households matching an id, a UPRN or part of an address, typed during a call."""
    given = [v for v in (household_id, uprn, address) if v is not None]
    if len(given) != 1:
        raise Unprocessable("give exactly one of household_id, uprn or address")
    await identify.count_search(resources, staff)
    call = await identify.open_call_for(session, resources, call_id, staff)
    households = await consultation.lookup_households_for_handler(
        session,
        resources,
        call_id=call_id,
        actor=staff.actor,
        justification=f"{identify.purpose(call)} lookup",
        household_id=household_id,
        uprn=uprn,
        address=address,
    )
    SEARCHES.inc("household")
    return HouseholdLookup(call_id=call_id, households=households)


class SearchResults(BaseModel):
    call_id: int
    kind: str  # how the query was read: name, phone, uprn, postcode, address
    persons: list[dict[str, Any]]
    households: list[dict[str, Any]]


@router.get("/search", response_model=SearchResults)
async def search_history(
    staff: CurrentStaff,
    session: SessionDep,
    resources: ResourcesDep,
    call_id: int,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    dob: date | None = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> SearchResults:
    """Persons and households matching a name (with a date of birth in `q` or as `dob`), a
    phone number, a postcode or address, or a UPRN, ranked: the call's current handler or a
    supervisor, while the call is live or in wrap-up. Every search is audited."""
    found = await identify.search(
        session, resources, call_id=call_id, q=q, dob=dob, limit=limit, principal=staff
    )
    return SearchResults(**found)


@router.get("/calls/{call_id}", response_model=CallContextRead)
async def call_context(staff: CurrentStaff, session: SessionDep, call_id: int) -> CallContextRead:
    """The caller context and alerts built for a call when it was offered."""
    await _call_for(session, call_id, staff)
    stored = await stored_context(session, call_id)
    if stored is None:
        raise NotFound("no caller context for this call yet", details={"call_id": call_id})
    context, alerts = stored
    consultation.log_consultation(session, context, actor=staff.actor, call_id=call_id)
    return CallContextRead(call_id=call_id, context=context, alerts=alerts)


class RecordsIn(BaseModel):
    """Up to 1,000 records, each `{"type": "person|household|membership|contact|marker",
    ...}` with the fields of the CSV import's row of that kind (README: Records API)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "records": [
                        {"type": "person", "person_id": "P1", "name": "Jo Demo",
                         "date_of_birth": "1985-02-01", "phones": ["07700 900123"]},
                        {"type": "household", "household_id": "H1", "uprn": "100023336956",
                         "address": "1 Demo Street", "easting": 430512, "northing": 433807},
                        {"type": "membership", "person_id": "P1", "household_id": "H1",
                         "from_date": "2024-01-01", "to_date": None},
                        {"type": "contact", "contact_id": "C1",
                         "occurred_at": "2026-11-29T21:04:00Z", "phone": "07700 900123",
                         "person_id": "P1", "household_id": "H1", "incident_type": "burglary",
                         "victim": True, "domestic_abuse": False, "outcome": "crime_recorded"},
                        {"type": "marker", "marker_id": "M1", "subject_type": "person",
                         "subject_id": "P1", "kind": "da_high_risk",
                         "set_at": "2026-11-30T09:00:00Z", "expires_at": None,
                         "set_by": "PC 1234"},
                    ]
                }
            ]
        },
    )  # fmt: skip

    records: list[Any] = Field(
        description="person, household, membership, contact or marker records (at most 1,000)"
    )


class RecordsStored(BaseModel):
    records: int
    stored: dict[str, int]  # rows written by table


@router.post(
    "/records",
    response_model=RecordsStored,
    responses={
        413: {"description": "more than 1,000 records (`too_many_records`)"},
        422: {
            "description": "`records_rejected`: nothing stored; `details` = "
            '[{"index", "field", "reason"}] for each bad record'
        },
    },
)
async def post_records(
    client: RecordsSystem, session: SessionDep, body: RecordsIn
) -> RecordsStored:
    """Upsert persons, households, memberships, contacts and markers from the force's records
    system: all or nothing, idempotent by id; the summaries they change are invalidated, so the
    next call from an affected number sees them."""
    stored = await records.upsert_records(session, body.records, actor=client.actor)
    return RecordsStored(records=len(body.records), stored=stored)
