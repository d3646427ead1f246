"""Near repeat through the store and the signed webhook (issue 13 point 9, acceptance 7), on
both backends: households with coordinates (records API, CSV import), a burglary or vehicle
crime next door raises `near_repeat` on the next call from a household nearby; the radius and
window edges (400 m, 28 days) are the shipped defaults."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.auth.models import Role
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.history import geo, near
from app.history.importer import ImportRejected, import_dir
from app.history.models import Contact, Household
from app.rules.ruleset import NearNeed
from tests.conftest import MakeStaff
from tests.history.support import kinds, ring

URL = "/api/v1/history/records"
LOCAL = "0113 496 0301"
E, N = 430_240.0, 433_740.0  # a cell corner is near: radius searches cross cells
NEED = NearNeed(400, 28, frozenset({"burglary", "vehicle_crime"}))


def records(*neighbours: tuple[str, float, float, str]) -> list[dict[str, Any]]:
    """The caller (P1 at H1, at E, N) and one household per neighbour (id, metres east,
    days ago, incident type) with that contact."""
    out: list[dict[str, Any]] = [
        {"type": "person", "person_id": "P1", "name": "Jo Demo", "phones": [LOCAL]},
        {"type": "household", "household_id": "H1", "address": "1 Demo St", "easting": E,
         "northing": N},
        {"type": "membership", "person_id": "P1", "household_id": "H1"},
    ]  # fmt: skip
    for hid, metres, days, incident in neighbours:
        when = datetime.now(UTC) - timedelta(days=days)
        out += [
            {"type": "household", "household_id": hid, "address": f"{hid} Demo St",
             "easting": E + metres, "northing": N},
            {"type": "contact", "contact_id": f"C-{hid}", "occurred_at": when.isoformat(),
             "household_id": hid, "incident_type": incident, "victim": True},
        ]  # fmt: skip
    return out


async def post_records(client: httpx.AsyncClient, token: str, body: list[dict[str, Any]]) -> None:
    response = await client.post(
        URL, json={"records": body}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text


async def test_burglary_next_door_raises_near_repeat_on_the_next_call(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("RMS1", Role.integration)
    await post_records(client, token, records(("H2", 399.9, 27.9, "burglary")))
    # The caller's own household's burglary is their own history, not a near repeat.
    own = datetime.now(UTC) - timedelta(days=1)
    await post_records(client, token, [
        {"type": "contact", "contact_id": "C-own", "occurred_at": own.isoformat(),
         "household_id": "H1", "incident_type": "burglary", "victim": True},
    ])  # fmt: skip
    _, _, alerts = await ring(app, client, "nr-1", LOCAL)
    alert = next(a for a in alerts if a["kind"] == "near_repeat")
    assert alert["evidence"] == ["C-H2"]
    assert alert["reasons"] == ["a burglary 400 m away, 27 days ago"]

    # A neighbour's new vehicle crime is on the next ring although the caller's summary is
    # cached (near repeat is read at every lookup).
    now = datetime.now(UTC)
    await post_records(client, token, [
        {"type": "household", "household_id": "H3", "easting": E, "northing": N - 50},
        {"type": "contact", "contact_id": "C-H3", "occurred_at": now.isoformat(),
         "household_id": "H3", "incident_type": "vehicle_crime"},
    ])  # fmt: skip
    _, _, alerts = await ring(app, client, "nr-2", LOCAL)
    alert = next(a for a in alerts if a["kind"] == "near_repeat")
    assert alert["evidence"] == ["C-H3", "C-H2"]


@pytest.mark.parametrize(
    ("metres", "days", "incident", "raised"),
    [
        (400.0, 3, "burglary", True),  # on the radius
        (400.5, 3, "burglary", False),  # just beyond it
        (-399.0, 3, "vehicle_crime", True),  # the other way, another cell
        (100.0, 27.99, "burglary", True),  # inside the window
        (100.0, 28.01, "burglary", False),  # just outside it
        (100.0, 1, "assault", False),  # not a near-repeat incident type
    ],
)
async def test_radius_and_window_edges(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff,
    metres: float, days: float, incident: str, raised: bool,
) -> None:  # fmt: skip
    token = await make_staff("RMS1", Role.integration)
    await post_records(client, token, records(("H2", metres, days, incident)))
    _, _, alerts = await ring(app, client, "nr-edge", LOCAL)
    assert ("near_repeat" in kinds(alerts)) is raised


async def test_lookup_reads_the_cells_around_then_the_exact_distance(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("RMS1", Role.integration)
    # Diagonal: 300 m east and 300 m north is 424 m away, in a neighbouring cell.
    await post_records(client, token, records(("H2", 250, 2, "burglary")) + [
        {"type": "household", "household_id": "H4", "easting": E + 300, "northing": N + 300},
        {"type": "contact", "contact_id": "C-H4",
         "occurred_at": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
         "household_id": "H4", "incident_type": "burglary"},
    ])  # fmt: skip
    async with app.state.resources.sessions() as session:
        h4 = await session.get(Contact, "C-H4")
        assert h4 is not None and h4.grid_cell in geo.cells_around(E, N, 400)
        found = await near.nearby(session, {"H1": (E, N)}, NEED, datetime.now(UTC))
    assert [(f.id, f.distance_m, f.near_household_id) for f in found] == [("C-H2", 250, "H1")]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(header)
        out.writerows(rows)


async def test_csv_import_reads_coordinates_and_locates_contacts(
    settings: Settings, tmp_path: Path
) -> None:
    header = ["household_id", "uprn", "address", "easting", "northing", "latitude", "longitude"]
    _write(tmp_path / "households.csv", header, [
        ["H1", "1", "1 Demo St", "430240", "433740", "", ""],
        ["H2", "2", "2 Demo St", "", "", "51.5007", "-0.1246"],
        ["H3", "3", "3 Demo St", "", "", "", ""],
    ])  # fmt: skip
    _write(
        tmp_path / "contacts.csv",
        ["contact_id", "occurred_at", "phone", "person_id", "household_id", "incident_type",
         "victim", "domestic_abuse", "outcome"],
        [["C1", "2026-11-20T10:00:00Z", "", "", "H1", "burglary", "true", "false", ""],
         ["C3", "2026-11-20T10:00:00Z", "", "", "H3", "burglary", "true", "false", ""]],
    )  # fmt: skip
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await import_dir(session, tmp_path)
        async with create_sessionmaker(engine)() as session:
            h1, h2 = await session.get(Household, "H1"), await session.get(Household, "H2")
            c1, c3 = await session.get(Contact, "C1"), await session.get(Contact, "C3")
        assert h1 is not None and h1.grid_cell == geo.cell_of(430240, 433740)
        assert h2 is not None and h2.easting is not None and abs(h2.easting - 530270) < 10
        assert c1 is not None and (c1.easting, c1.northing) == (430240, 433740)
        assert c3 is not None and c3.grid_cell is None
        # Bad coordinates: file, line and column, nothing imported.
        _write(tmp_path / "households.csv", header, [
            ["H9", "9", "9 Demo St", "430240", "", "", ""],
            ["H8", "8", "8 Demo St", "", "", "0", "0"],
        ])  # fmt: skip
        (tmp_path / "contacts.csv").unlink()
        with pytest.raises(ImportRejected) as refused:
            async with create_sessionmaker(engine)() as session, session.begin():
                await import_dir(session, tmp_path)
        assert refused.value.details == {
            "errors": [
                "households.csv:2: northing: easting and northing go together",
                "households.csv:3: latitude: latitude outside Great Britain (49 to 62)",
            ]
        }
    finally:
        await engine.dispose()
