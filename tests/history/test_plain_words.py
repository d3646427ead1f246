"""Issue 13 points 5 and 6 through the CSV import and the real signed webhook, on both
backends: memberships carry a relationship, alerts name people in plain words ("Jo Test
(partner, 41)") and never an internal id, officer safety comes first with its category."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.db import utcnow
from app.history.importer import ImportRejected, import_dir
from app.history.store import relation_to_caller
from app.history.store_links import Links
from app.rules.wording import age_on
from tests.history.support import ring
from tests.history.test_import import CONTACTS, PEOPLE, write

NUMBER = "+441134960301"
MEMBERS = ["person_id", "household_id", "from_date", "to_date", "relationship"]
MARKERS = ["marker_id", "subject_type", "subject_id", "kind", "set_at", "expires_at"]
# Every id the files below give: none may appear in what a handler reads.
IDS = re.compile(r"PWX\w*|HWX\w*|CWX\w*|MWX\w*")


def household_files(folder: Path) -> None:
    write(
        folder / "people.csv",
        PEOPLE,
        [
            ["PWX1", "Sam Test", "1985-06-01", "0113 496 0301"],
            ["PWX2", "Jo Test", "1985-06-01", ""],
            ["PWX3", "Kit Test", "2010-02-01", ""],
        ],
    )
    write(folder / "households.csv", ["household_id", "uprn", "address"],
          [["HWX1", "", "3 Words Way"]])  # fmt: skip
    write(
        folder / "memberships.csv",
        MEMBERS,
        [
            ["PWX1", "HWX1", "2020-01-01", "", ""],  # the reference person: no relationship
            ["PWX2", "HWX1", "2020-01-01", "", "Partner"],
            ["PWX3", "HWX1", "2020-01-01", "", "child"],
        ],
    )
    write(
        folder / "contacts.csv",
        CONTACTS,
        [
            [f"CWX{n}", f"{utcnow().date().isoformat()}T00:00:00Z", "01134960301", "PWX1",
             "HWX1", incident, "false", "false", "advice_given"]
            for n, incident in enumerate(["asb", "asb", "asb", "burglary"])
        ],
    )  # fmt: skip
    write(
        folder / "markers.csv",
        MARKERS,
        [
            ["MWX1", "person", "PWX2", "da_high_risk", "2026-01-01T00:00:00Z", ""],
            ["MWX2", "household", "HWX1", "weapons", "2026-01-01T00:00:00Z", ""],
            ["MWX3", "person", "PWX3", "child_protection_plan", "2026-01-01T00:00:00Z", ""],
        ],
    )


async def test_relationship_is_imported_and_alerts_say_it_in_plain_words(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    household_files(tmp_path)
    async with app.state.resources.sessions() as session, session.begin():
        await import_dir(session, tmp_path)
    _, context, alerts = await ring(app, client, "words-1", NUMBER)

    relations = {p["id"]: p["relation"] for p in context["persons"]}
    assert relations == {"PWX1": None, "PWX2": "partner", "PWX3": "child"}
    jo_age = age_on("1985-06-01", utcnow())
    kit_age = age_on("2010-02-01", utcnow())

    by_kind = {a["kind"]: a for a in alerts}
    assert alerts[0]["kind"] == "officer_safety"  # first, whatever else is raised
    assert by_kind["officer_safety"]["category"] == "officer_safety"
    assert by_kind["officer_safety"]["reasons"] == [
        "the household at 3 Words Way has an active weapons marker"
    ]
    risk = by_kind["household_risk"]
    assert risk["category"] == "safeguarding"
    assert (
        f"Jo Test (partner, {jo_age}) has an active domestic abuse high-risk marker"
        in (risk["reasons"])
    )
    assert (
        f"Kit Test (child, {kit_age}) has an active child protection plan marker"
        in (risk["reasons"])
    )
    # The weapons marker is officer safety, never household risk or vulnerability.
    assert "weapons" not in " ".join(risk["reasons"])
    caller_alerts = by_kind["repeat_caller"]
    assert caller_alerts["category"] == "history"
    assert caller_alerts["evidence_lines"][0] == (
        "This number: 4 contacts in 30 days: 3 anti-social behaviour, 1 burglary"
    )
    # Ids stay in the machine field; none reaches the words.
    # (with the household's safeguarding markers that make this repeat caller a concern)
    assert {"CWX0", "CWX1", "CWX2", "CWX3"} <= set(caller_alerts["evidence"])
    for alert in alerts:
        words = [alert["title"], *alert["reasons"], *alert["evidence_lines"]]
        assert not [w for w in words if IDS.search(w)], alert


async def test_an_unknown_relationship_is_refused_with_row_column_and_reason(
    app: FastAPI, tmp_path: Path
) -> None:
    household_files(tmp_path)
    write(
        tmp_path / "memberships.csv",
        MEMBERS,
        [["PWX1", "HWX1", "", "", ""], ["PWX2", "HWX1", "", "", "flatmate"]],
    )
    with pytest.raises(ImportRejected) as caught:
        async with app.state.resources.sessions() as session, session.begin():
            await import_dir(session, tmp_path)
    assert caught.value.details["errors"] == [
        "memberships.csv:3: relationship: not one of partner, ex_partner, child, parent, "
        "sibling, carer, lodger, other"
    ]


@pytest.mark.parametrize(
    ("caller", "member", "expected"),
    [
        (None, "partner", "partner"),  # the caller is the reference person
        ("child", None, "parent"),  # the member is: the inverse
        ("partner", None, "partner"),
        ("lodger", None, None),  # no inverse: not guessed
        ("child", "child", "sibling"),
        ("child", "partner", None),
        (None, None, None),
    ],
)
def test_relationship_to_the_caller(
    caller: str | None, member: str | None, expected: str | None
) -> None:
    recorded = {k: v for k, v in {("H", "C"): caller, ("H", "M"): member}.items() if v}
    links = Links(["C"], {"H": ["C", "M"]}, recorded)
    assert relation_to_caller(links, "M") == expected


def test_age_from_date_of_birth() -> None:
    now = utcnow().replace(year=2026, month=11, day=30)
    assert age_on("1985-06-01", now) == 41
    assert age_on("1985-11-30", now) == 41  # the birthday itself
    assert age_on("1985-12-01", now) == 40
    assert age_on(None, now) is None
    assert age_on("not a date", now) is None
    assert age_on(date(2030, 1, 1).isoformat(), now) is None
