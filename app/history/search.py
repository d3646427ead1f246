"""The mid-call history search (issue 13): what a handler types -> persons and households,
ranked. A withheld caller gives a name and date of birth, a number, a postcode or address, or
a UPRN; the handler picks the right record and links it to the call (`subjects`).

PostgreSQL ranks names and addresses by trigram similarity (pg_trgm; the GIN indexes serve
both the `%` match and ILIKE); SQLite has no trigrams, so there every word must appear
(LIKE) and the ranking is a plain string similarity in Python. Either way the query is
personal data: it is never logged here (the audit record of the search holds it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from difflib import SequenceMatcher
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialect_of
from app.errors import Unprocessable
from app.history.models import Household, Person, PersonHousehold, Phone
from app.history.store_links import all_rows, current_on
from app.telephony.numbers import normalise

Kind = Literal["name", "phone", "uprn", "postcode", "address"]

# Dates of birth as handlers type them: 1985-03-02, 02/03/1985, 02-03-1985, 02.03.1985.
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_UK_DATE = re.compile(r"\b(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})\b")
_POSTCODE = re.compile(r"^([A-Z]{1,2}\d[A-Z\d]?)\s*(\d[A-Z]{2})$", re.IGNORECASE)
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-]+$")
_WORD = re.compile(r"[^\W\d_][\w'\-]*", re.UNICODE)
# A name or address word shorter than this matches too much to be worth a query.
MIN_TEXT = 2


class BadSearch(Unprocessable):
    code = "bad_search"


@dataclass(frozen=True)
class SearchQuery:
    """What the handler typed, read: its kind, the text to match, the date of birth."""

    kind: Kind
    text: str
    dob: date | None = None


@dataclass
class SearchResult:
    persons: list[dict[str, Any]] = field(default_factory=list)
    households: list[dict[str, Any]] = field(default_factory=list)


def _date(year: str, month: str, day: str) -> date:
    try:
        return date(int(year), int(month), int(day))
    except ValueError as exc:
        raise BadSearch("the date of birth is not a date", details={"field": "q"}) from exc


def parse_query(q: str, dob: date | None, region: str) -> SearchQuery:
    """Read the search box: a date in it is the date of birth (or `dob`, not both unless they
    agree); digits that make a phone number are one, other digits a UPRN; a UK postcode is a
    postcode; anything else with a digit is an address; words alone are a name (or address)."""
    text = " ".join(q.split())
    found: date | None = None
    for pattern, order in ((_ISO_DATE, (1, 2, 3)), (_UK_DATE, (3, 2, 1))):
        match = pattern.search(text)
        if match:
            found = _date(*(match.group(i) for i in order))
            text = " ".join((text[: match.start()] + text[match.end() :]).split())
            break
    if found is not None and dob is not None and found != dob:
        raise BadSearch("two different dates of birth were given", details={"field": "dob"})
    dob = dob or found
    if not text:
        raise BadSearch("type a name, number, postcode, address or UPRN", details={"field": "q"})
    postcode = _POSTCODE.match(text)
    if postcode:
        return SearchQuery("postcode", f"{postcode.group(1)} {postcode.group(2)}".upper(), dob)
    if _PHONE_LIKE.match(text):
        digits = re.sub(r"\D", "", text)
        # A UPRN is a number (no leading zero); a leading + or 0 is a phone number.
        if text.startswith(("+", "0")):
            number = normalise(text, "allowed", region) if len(digits) > 6 else None
            if number is None or number.e164 is None:
                raise BadSearch("that is not a phone number", details={"field": "q"})
            return SearchQuery("phone", number.e164, dob)
        if 1 <= len(digits) <= 12 and digits == text:
            return SearchQuery("uprn", digits, dob)
        raise BadSearch("that is neither a phone number nor a UPRN", details={"field": "q"})
    if len(text) < MIN_TEXT or not _WORD.search(text):
        raise BadSearch("type at least two letters", details={"field": "q"})
    kind: Kind = "address" if any(ch.isdigit() for ch in text) else "name"
    return SearchQuery(kind, text, dob)


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _text_match(column: Any, text: str, postgres: bool) -> ColumnElement[bool]:
    """Rows whose `column` resembles `text`: trigram similarity or the whole text as a
    substring on PostgreSQL; every word as a substring on SQLite."""
    if postgres:
        return or_(column.op("%")(text), column.ilike(_like(text), escape="\\"))
    words = [w for w in text.split() if w]
    return and_(*(column.ilike(_like(w), escape="\\") for w in words))


def _score(value: str | None, text: str) -> float:
    """0..1, how close a name or address is to what was typed (the same on both databases:
    the order shown must not depend on the backend)."""
    if not value:
        return 0.0
    a, b = value.lower(), text.lower()
    whole = SequenceMatcher(None, a, b).ratio()
    contained = 1.0 if b in a else 0.0
    return round(max(whole, 0.8 * contained + 0.2 * whole), 4)


async def search(
    session: AsyncSession, query: SearchQuery, *, today: date, limit: int
) -> SearchResult:
    """Persons and households matching `query`, best first, each person with their current
    households and each household with its current members (so the handler can tell two
    Jo Demos apart)."""
    postgres = dialect_of(session) == "postgresql"
    person_scores: dict[str, float] = {}
    household_scores: dict[str, float] = {}
    if query.kind == "phone":
        rows = await all_rows(
            session,
            select(Phone.person_id).where(Phone.e164 == query.text, current_on(Phone, today)),
        )
        person_scores = {r[0]: 1.0 for r in rows}
    elif query.kind == "uprn":
        rows = await all_rows(
            session, select(Household.id).where(Household.uprn == query.text).limit(limit)
        )
        household_scores = {r[0]: 1.0 for r in rows}
    else:
        if query.kind == "name":
            candidates = limit * 5  # re-ranked below; the date of birth may drop some
            name_query = select(Person.id, Person.name, Person.date_of_birth).where(
                _text_match(Person.name, query.text, postgres)
            )
            if postgres:
                name_query = name_query.order_by(
                    func.similarity(Person.name, query.text).desc(), Person.id
                )
            for pid, name, born in await all_rows(session, name_query.limit(candidates)):
                if query.dob is not None and born is not None and born != query.dob:
                    continue  # a recorded, different date of birth: not this person
                bonus = 1.0 if query.dob is not None and born == query.dob else 0.0
                person_scores[pid] = _score(name, query.text) + bonus
        text = query.text
        address_query = select(Household.id, Household.address).where(
            _text_match(Household.address, text, postgres)
            if query.kind != "postcode"
            else or_(
                Household.address.ilike(_like(text), escape="\\"),
                Household.address.ilike(_like(text.replace(" ", "")), escape="\\"),
            )
        )
        if postgres:
            address_query = address_query.order_by(
                func.similarity(Household.address, text).desc(), Household.id
            )
        for hid, address in await all_rows(session, address_query.limit(limit * 5)):
            household_scores[hid] = 1.0 if query.kind == "postcode" else _score(address, text)
    persons = sorted(person_scores, key=lambda p: (-person_scores[p], p))[:limit]
    households = sorted(household_scores, key=lambda h: (-household_scores[h], h))[:limit]
    return await _describe(session, persons, households, person_scores, household_scores, today)


async def _describe(
    session: AsyncSession,
    person_ids: list[str],
    household_ids: list[str],
    person_scores: dict[str, float],
    household_scores: dict[str, float],
    today: date,
) -> SearchResult:
    """The rows as the screen lists them: names, dates of birth, addresses, who lives where."""
    homes_of: dict[str, list[str]] = {p: [] for p in person_ids}
    members_of: dict[str, list[str]] = {h: [] for h in household_ids}
    if person_ids or household_ids:
        for pid, hid in await all_rows(
            session,
            select(PersonHousehold.person_id, PersonHousehold.household_id)
            .where(
                or_(
                    PersonHousehold.person_id.in_(person_ids),
                    PersonHousehold.household_id.in_(household_ids),
                ),
                current_on(PersonHousehold, today),
            )
            .order_by(PersonHousehold.id),
        ):
            if pid in homes_of:
                homes_of[pid].append(hid)
            if hid in members_of:
                members_of[hid].append(pid)
    all_persons = sorted({*person_ids, *(p for ps in members_of.values() for p in ps)})
    all_homes = sorted({*household_ids, *(h for hs in homes_of.values() for h in hs)})
    people = {
        r.id: r
        for r in await all_rows(
            session,
            select(Person.id, Person.name, Person.date_of_birth).where(Person.id.in_(all_persons)),
        )
    }
    homes = {
        r.id: r
        for r in await all_rows(
            session,
            select(Household.id, Household.uprn, Household.address).where(
                Household.id.in_(all_homes)
            ),
        )
    }

    def person(pid: str) -> dict[str, Any]:
        row = people.get(pid)
        born = row.date_of_birth if row is not None else None
        return {
            "id": pid,
            "name": row.name if row is not None else None,
            "date_of_birth": born.isoformat() if born else None,
            "age": _age(born, today),
        }

    def household(hid: str) -> dict[str, Any]:
        row = homes.get(hid)
        return {
            "id": hid,
            "address": row.address if row is not None else None,
            "uprn": row.uprn if row is not None else None,
        }

    return SearchResult(
        persons=[
            {
                **person(p),
                "score": round(person_scores[p], 4),
                "households": [household(h) for h in homes_of[p]],
            }
            for p in person_ids
            if p in people
        ],
        households=[
            {
                **household(h),
                "score": round(household_scores[h], 4),
                "members": [person(p) for p in members_of[h]],
            }
            for h in household_ids
            if h in homes
        ],
    )


def _age(born: date | None, today: date) -> int | None:
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
