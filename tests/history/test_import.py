"""Import of a force's CSV exports: acceptance 8 (all or nothing, bad rows reported with file
and line), re-import updates, bad headers and references, on both backends."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.history.importer import ImportRejected, import_dir
from app.history.models import Contact, Marker, Person, PersonHousehold, Phone
from tests.conftest import service_env

PEOPLE = ["person_id", "name", "date_of_birth", "phones"]
CONTACTS = [
    "contact_id", "occurred_at", "phone", "person_id", "household_id", "incident_type",
    "victim", "domestic_abuse", "outcome",
]  # fmt: skip


def write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(header)
        out.writerows(rows)


def history_files(folder: Path, contacts: int = 20) -> None:
    write(
        folder / "people.csv",
        [*PEOPLE, "extra_column"],
        [
            ["P1", "Ann Test", "1980-02-03", "0113 496 0001; +44 113 496 0002", "x"],
            ["P2", "Bob Test", "03/04/1975", "(0113) 4960003", "y"],
        ],
    )
    write(
        folder / "households.csv",
        ["household_id", "uprn", "address"],
        [["H1", "123456789012", "1 Test Road"]],
    )
    write(
        folder / "memberships.csv",
        ["person_id", "household_id", "from_date", "to_date"],
        [["P1", "H1", "2020-01-01", ""], ["P2", "H1", "2020-01-01", "2021-01-01"]],
    )
    write(
        folder / "contacts.csv",
        CONTACTS,
        [
            [f"C{n}", f"2026-0{n % 9 + 1}-01T10:00:00", "01134960001", "P1", "H1", "assault",
             "true" if n % 2 else "false", "false", "advice_given"]
            for n in range(contacts)
        ],
    )  # fmt: skip
    write(
        folder / "markers.csv",
        ["marker_id", "subject_type", "subject_id", "kind", "set_at", "expires_at", "set_by"],
        [["M1", "person", "P1", "da_high_risk", "2026-01-01T00:00:00Z", "", "PC 123"]],
    )


async def count(settings: Settings, model: type) -> int:
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session:
        value = await session.scalar(select(func.count()).select_from(model))
    await engine.dispose()
    return int(value or 0)


async def run_import(settings: Settings, folder: Path) -> dict[str, int]:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return (await import_dir(session, folder)).rows
    finally:
        await engine.dispose()


async def test_import_loads_every_file_and_reimport_updates(
    settings: Settings, tmp_path: Path
) -> None:
    history_files(tmp_path)
    rows = await run_import(settings, tmp_path)
    assert rows == {
        "person": 2,
        "phone": 3,
        "household": 1,
        "person_household": 2,
        "contact": 20,
        "marker": 1,
    }
    assert await count(settings, Contact) == 20
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session:
        phones = set(await session.execute(select(Phone.person_id, Phone.e164)))
        assert phones == {
            ("P1", "+441134960001"), ("P1", "+441134960002"), ("P2", "+441134960003")
        }  # fmt: skip
        marker = await session.get(Marker, "M1")
        assert marker is not None and marker.set_by == "PC 123"
    await engine.dispose()

    # Same ids again, one name and one phone changed: updated, not duplicated.
    write(tmp_path / "people.csv", PEOPLE, [["P1", "Ann Changed", "1980-02-03", "01134960009"]])
    await run_import(settings, tmp_path)
    assert await count(settings, Contact) == 20
    assert await count(settings, Person) == 2
    assert await count(settings, PersonHousehold) == 2
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session:
        person = await session.get(Person, "P1")
        assert person is not None and person.name == "Ann Changed"
        numbers = set(await session.scalars(select(Phone.e164).where(Phone.person_id == "P1")))
        assert numbers == {"+441134960009"}
    await engine.dispose()


async def test_ten_thousand_rows_with_three_bad_imports_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    history_files(tmp_path, contacts=10_000)
    rows = list(csv.reader((tmp_path / "contacts.csv").open()))
    rows[101][1] = "yesterday"  # line 102: occurred_at
    rows[5001][2] = "not a phone"  # line 5002
    rows[9999][6] = "maybe"  # line 10000: victim
    write(tmp_path / "contacts.csv", rows[0], rows[1:])
    with pytest.raises(ImportRejected) as caught:
        await run_import(settings, tmp_path)
    errors = caught.value.details["errors"]
    assert errors == [
        "contacts.csv:102: occurred_at: not an ISO 8601 date-time",
        "contacts.csv:5002: phone: not a UK phone number",
        "contacts.csv:10000: victim: not true or false",
    ]
    assert "not a phone" not in str(caught.value.details)  # values are never echoed
    for model in (Person, Phone, PersonHousehold, Contact, Marker):
        assert await count(settings, model) == 0


MEMBERS = ["person_id", "household_id", "from_date", "to_date"]
MARKERS = ["marker_id", "subject_type", "subject_id", "kind", "set_at", "expires_at"]
HOMES = ["household_id", "uprn", "address"]
BAD_FILES = [
    ("people.csv", ["person_id", "name"], [["P1", "x"]],
     "people.csv:1: missing columns: date_of_birth, phones"),
    ("people.csv", PEOPLE, [["P1", "a", "", ""], ["P1", "b", "", ""]],
     "people.csv:3: person_id: duplicates line 2"),
    ("people.csv", PEOPLE, [["P 1", "a", "", ""]], "people.csv:2: person_id: not a valid id"),
    ("people.csv", PEOPLE, [["P1", "a", "1990-13-45", ""]],
     "people.csv:2: date_of_birth: not a date"),
    ("people.csv", PEOPLE, [["P1", "a"]], "people.csv:2: expected 4 fields, found 2"),
    ("people.csv", [], [], "people.csv:1: empty file"),
    ("memberships.csv", MEMBERS, [["PX", "HX", "", ""]],
     "memberships.csv:2: person_id: unknown person id"),
    ("markers.csv", MARKERS, [["M1", "car", "P1", "x", "2026-01-01", ""]],
     "markers.csv:2: subject_type: not person or household"),
    ("households.csv", HOMES, [["H1", "12AB", "x"]], "households.csv:2: uprn: not a UPRN"),
]  # fmt: skip


@pytest.mark.parametrize(("file", "header", "rows", "expected"), BAD_FILES)
async def test_bad_files_are_reported_with_file_and_line(
    settings: Settings,
    tmp_path: Path,
    file: str,
    header: list[str],
    rows: list[list[str]],
    expected: str,
) -> None:
    if header:
        write(tmp_path / file, header, rows)
    else:
        (tmp_path / file).write_text("")
    with pytest.raises(ImportRejected) as caught:
        await run_import(settings, tmp_path)
    assert caught.value.details["errors"][0].startswith(expected), caught.value.details


async def test_not_utf8_and_empty_folder_are_rejected(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ImportRejected, match="no history files"):
        await run_import(settings, tmp_path)
    (tmp_path / "households.csv").write_bytes(b"household_id,uprn,address\nH1,1,\xff\xfe bad\n")
    with pytest.raises(ImportRejected) as caught:
        await run_import(settings, tmp_path)
    assert caught.value.details["errors"] == ["households.csv:2: not UTF-8"]


def test_cli_import_reports_and_exits_nonzero(settings: Settings, tmp_path: Path) -> None:
    history_files(tmp_path, contacts=3)
    ok = subprocess.run(
        [sys.executable, "-m", "app.cli", "import", str(tmp_path)],
        env=service_env(settings), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "contact 3" in ok.stdout
    write(tmp_path / "contacts.csv", CONTACTS, [["C1", "bad", "", "", "", "", "", "", ""]])
    bad = subprocess.run(
        [sys.executable, "-m", "app.cli", "import", str(tmp_path)],
        env=service_env(settings), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "contacts.csv:2: occurred_at: not an ISO 8601 date-time" in bad.stderr
