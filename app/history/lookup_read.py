"""A lookup's first statement: the summary cache's counters, the numbers' links and the
numbers' own recent contacts, in one round trip (issue 19).

Most callers are on no person of the history (a first call, a number nobody gave): their
summary is their number's contacts and nothing else, and this statement has read them all.
Such a number needs neither the cache (a round trip to Redis that could only save the read
already done) nor a second statement. A number on a person goes on as before: cache, else
the store (`store.build_many`), which reads its contacts with its people's and households'
(its own are then read twice: one index range, cheaper than a round trip more for the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Integer,
    String,
    bindparam,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import UTCDateTime, union_branch
from app.db_direct import Direct, rows_on
from app.history import store, store_records
from app.history.models import Contact, HistoryVersion
from app.history.store_links import Links, fixed_rows, links_of, number_links_selects

_VERSION, _ON_NUMBER, _MEMBER, _CONTACT, _ALONG = 0, 1, 2, 3, 4
_TEXT, _INT, _FLAG, _TIME = String(), BigInteger(), Boolean(), UTCDateTime()
# The shared row: (name, type); a branch leaves NULL what it has not.
_SHAPE = (
    ("key", _TEXT), ("household_id", _TEXT), ("person_id", _TEXT), ("n", _INT),
    ("relationship", _TEXT), ("occurred_at", _TIME), ("number", _TEXT),
    ("incident_type", _TEXT), ("victim", _FLAG), ("domestic_abuse", _FLAG), ("outcome", _TEXT),
)  # fmt: skip


def _row(tag: int, query: Any, **columns: Any) -> Any:
    return union_branch(tag, query, _SHAPE, **columns)


def _statement(along: str | None = None) -> Any:
    on_number, member = number_links_selects()
    versions = select(HistoryVersion).where(
        HistoryVersion.scope.in_(bindparam("scopes", expanding=True))
    )
    # The numbers' own contacts, newest first, stopped at `limit` (a busy number must not
    # make a lookup read its whole history): an ordered, limited subquery, served by the
    # (number, occurred_at) index.
    since = bindparam("since", type_=Contact.occurred_at.type)
    recent = (
        select(*store_records.CONTACT_COLUMNS)
        .where(Contact.number.in_(bindparam("e164s", expanding=True)), Contact.occurred_at >= since)
        .order_by(Contact.occurred_at.desc(), Contact.id)
        .limit(bindparam("limit", type_=Integer))
        .subquery("recent")
    )
    c = recent.c
    return union_all(
        _row(_VERSION, versions, key=HistoryVersion.scope, n=HistoryVersion.version),
        # (number, None, person, 0, None) and (None, household, person, link id, relationship)
        _row(_ON_NUMBER, on_number, key=on_number.selected_columns[0],
                person_id=on_number.selected_columns[2]),
        _row(_MEMBER, member, household_id=member.selected_columns[1],
                person_id=member.selected_columns[2], n=member.selected_columns[3],
                relationship=member.selected_columns[4]),
        _row(_CONTACT, select(recent), key=c.id, household_id=c.household_id,
                person_id=c.person_id, n=c.call_id, relationship=c.caller_role,
                occurred_at=c.occurred_at, number=c.number, incident_type=c.incident_type,
                victim=c.victim, domestic_abuse=c.domestic_abuse, outcome=c.outcome),
        *([_row(_ALONG, select(literal_column("1")),
                n=literal_column(along, type_=_INT))] if along else []),
    )  # fmt: skip


_STATEMENT = _statement()  # built once (see store_records' queries)
_ALONG_STATEMENTS: dict[str, Any] = {}  # `along` -> its statement, built once as well


@dataclass
class FirstRead:
    current: dict[str, int]  # the counters of the scopes asked for (0: never written)
    links: dict[str, Links]
    # Each number on no person -> its summary, complete (None: the contacts read stopped at
    # its cap, so none is known complete; every number then goes the usual way).
    unlinked: dict[str, store.Summary]
    along: int | None = None  # the value of `first_read_on`'s `along`


async def first_read(
    session: AsyncSession, scopes: list[str], numbers: list[str], today: date, since: datetime
) -> FirstRead:
    params = _params(scopes, numbers, today, since)
    return _parsed(await fixed_rows(session, _STATEMENT, params), scopes, numbers, since)


async def first_read_on(
    direct: Direct, dialect: Dialect, scopes: list[str], numbers: list[str], today: date,
    since: datetime, along: str | None = None,
) -> FirstRead:  # fmt: skip
    """`first_read` on a connection held outside any session (the express path's read of a
    new call's caller: app.history.steps). `along`: an SQL expression of an integer to
    select with it (a new call's id from its sequence: a round trip fewer than on its own)."""
    statement = _STATEMENT
    if along is not None:
        statement = _ALONG_STATEMENTS.get(along)
        if statement is None:
            statement = _ALONG_STATEMENTS[along] = _statement(along)
    params = _params(scopes, numbers, today, since)
    found = await rows_on(direct, dialect, statement, params)
    return _parsed(found, scopes, numbers, since)


def _params(scopes: list[str], numbers: list[str], today: date, since: datetime) -> dict[str, Any]:
    limit = store_records.MAX_CONTACTS * len(numbers)
    return {"scopes": scopes, "e164s": numbers, "today": today, "since": since, "limit": limit}


def _parsed(rows: list[Any], scopes: list[str], numbers: list[str], since: datetime) -> FirstRead:
    limit = store_records.MAX_CONTACTS * len(numbers)
    found: dict[str, int] = {}
    along = None
    link_rows: list[tuple[Any, ...]] = []
    contacts: list[tuple[Any, ...]] = []
    for tag, key, household_id, person_id, n, relationship, *rest in rows:
        if tag == _VERSION:
            found[key] = int(n)
        elif tag == _CONTACT:
            occurred_at, number, incident, victim, da, outcome = rest
            # In store_records.CONTACT_COLUMNS' order.
            contacts.append((key, occurred_at, number, person_id, household_id, incident,
                             victim, da, outcome, n, relationship))  # fmt: skip
        elif tag == _ALONG:
            along = int(n)
        else:
            link_rows.append((key, household_id, person_id, n, relationship))
    links = links_of(numbers, link_rows)
    unlinked: dict[str, store.Summary] = {}
    if len(contacts) < limit:  # every contact of the numbers since `since` is here
        # Newest first, as the contacts query gives them (a union keeps no order).
        contacts.sort(key=lambda r: r[0])
        contacts.sort(key=lambda r: r[1], reverse=True)
        by_number: dict[str, list[tuple[Any, ...]]] = {n: [] for n in numbers}
        for row in contacts:
            by_number[row[2]].append(row)
        for number in numbers:
            if not links[number].person_ids:
                unlinked[number] = store.unlinked_summary(number, since, by_number[number])
    return FirstRead({scope: found.get(scope, 0) for scope in scopes}, links, unlinked, along)
