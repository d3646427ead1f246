"""Lookups: shared numbers (acceptance 3), freshness of the summary cache whatever writes
(acceptance 9), Redis stopping and coming back (acceptance 6), the mid-call REST lookup."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.audit.models import AuditLog
from app.auth.models import Role
from app.cache import MemoryCache, RedisCache
from app.calls.models import Call
from app.config import Settings
from app.db import utcnow
from app.history import (
    alerts,
    lookup,
    lookup_read,
    store,
    store_links,
    store_records,
    versions,
    writes,
)
from app.history.importer import import_dir
from app.history.models import Household, Person
from app.rules.facts import CallerFacts
from tests.conftest import MakeStaff
from tests.history.support import add_contact, add_marker, add_people, days_ago, ring
from tests.history.test_import import CONTACTS, write
from tests.support.servers import eventually, throwaway_redis

SHARED = "+441134960201"
SECOND = "+441134960202"


async def facts(app: FastAPI, number: str, cache: object | None = None) -> CallerFacts:
    resources = app.state.resources
    async with resources.sessions() as session:
        return await lookup.lookup_caller(
            session, cache or resources.cache, number, "allowed",
            now=utcnow(), horizon_days=400, ttl_seconds=600,
        )  # fmt: skip


async def test_shared_number_and_person_with_two_numbers(app: FastAPI) -> None:
    await add_people(app, {"A": [SHARED], "B": [SHARED, SECOND]}, {"H1": ["A"], "H2": ["B"]})
    await add_contact(app, "C1", number=SECOND, person_id="B", victim=True)
    shared = await facts(app, SHARED)
    assert sorted(p.id for p in shared.persons) == ["A", "B"]
    assert {p.relationship for p in shared.persons} == {"caller"}
    assert sorted(h.id for h in shared.households) == ["H1", "H2"]
    # B's contact from the other number is B's history, not this number's.
    assert shared.number_contacts == []
    assert [c.id for p in shared.persons if p.id == "B" for c in p.contacts] == ["C1"]
    second = await facts(app, SECOND)
    assert [p.id for p in second.persons] == ["B"]
    assert [c.id for c in second.number_contacts] == ["C1"]


async def test_no_cache_serves_a_summary_older_than_the_data(app: FastAPI, tmp_path: Path) -> None:
    await add_people(app, {"A": [SHARED], "M": []}, {"H1": ["A", "M"]})
    other_worker = MemoryCache()  # another process's in-process cache, never told of writes
    for cache in (None, other_worker):
        assert (await facts(app, SHARED, cache)).number_contacts == []
        assert (await facts(app, SHARED, cache)).number_contacts == []  # now a cache hit
    # A write-back style contact, a marker on another household member, and an import.
    await add_contact(app, "C1", number=SHARED, person_id="A")
    await add_marker(app, "M1", subject_type="person", subject_id="M", kind="cse_risk")
    row = ["C2", "2026-11-01T10:00:00Z", "", "", "H1", "burglary", "true", "false", ""]
    write(tmp_path / "contacts.csv", CONTACTS, [row])
    async with app.state.resources.sessions() as session, session.begin():
        await import_dir(session, tmp_path)
    for cache in (None, other_worker):
        seen = await facts(app, SHARED, cache)
        assert [c.id for c in seen.number_contacts] == ["C1"]
        assert [m.id for p in seen.persons for m in p.markers] == ["M1"]
        assert [c.id for c in seen.households[0].contacts] == ["C2"]


async def test_redis_stopping_falls_back_to_the_store_and_refills(
    settings: Settings, app: FastAPI
) -> None:
    await add_people(app, {"A": [SHARED]})
    await add_contact(app, "C1", number=SHARED, person_id="A", victim=True)
    with throwaway_redis() as server:
        cache = RedisCache(server.url, prefix="fchist:")
        try:
            assert [c.id for c in (await facts(app, SHARED, cache)).number_contacts] == ["C1"]
            keys = await _cached_keys(cache)  # written off the lookup's path, soon after it
            server.stop()
            await add_contact(app, "C2", number=SHARED, person_id="A", victim=True)
            down = await facts(app, SHARED, cache)  # store fallback, no error
            assert sorted(c.id for c in down.number_contacts) == ["C1", "C2"]
            # ... and the alerts are right: two victim contacts make a repeat victim.
            assert "repeat_victim" in [a.kind for a in alerts.plan(app.state.resources, down)]
            server.start()
            back = await facts(app, SHARED, cache)
            assert sorted(c.id for c in back.number_contacts) == ["C1", "C2"]
            refilled = await _cached_keys(cache)
            assert refilled != keys  # a new version's key
            assert (await facts(app, SHARED, cache)).number_contacts == back.number_contacts
        finally:
            await cache.close()


async def _cached_keys(cache: RedisCache) -> list[bytes]:
    """The one summary key in the cache, once written (`set_soon`)."""
    found: list[bytes] = []

    async def written() -> bool:
        found[:] = await cache.client.keys("fchist:cache:hist:n:*")
        return bool(found)

    await eventually(written, what="the summary cached")
    assert len(found) == 1, found
    return found


async def test_cache_writes_go_together_soon_and_are_dropped_when_redis_is_away() -> None:
    with throwaway_redis() as server:
        cache = RedisCache(server.url, prefix="fcsoon:")
        try:
            cache.set_soon([("a", b"1")], ttl_seconds=60)
            cache.set_soon([("b", b"2"), ("c", b"3")], ttl_seconds=60)
            assert await cache.get_many(["a", "b", "c"]) == [None, None, None]  # not yet

            async def all_written() -> bool:
                return await cache.get_many(["a", "b", "c"]) == [b"1", b"2", b"3"]

            await eventually(all_written, what="the gathered writes")
            assert 0 < await cache.client.pttl("fcsoon:cache:a") <= 60_000
            # Redis away: the writes are dropped (a cache), the caller never sees an error.
            server.stop()
            cache.set_soon([("d", b"4")])
            writer = cache._writer
            assert writer is not None
            await writer
            assert cache._soon == []
            server.start()
            cache.set_soon([("e", b"5")])
            await cache.close()  # writes what is waiting before closing
            again = RedisCache(server.url, prefix="fcsoon:")
            try:
                assert await again.get_many(["d", "e"]) == [None, b"5"]
            finally:
                await again.close()
        finally:
            await cache.close()


async def test_mid_call_household_lookup_is_for_the_handler_and_audited(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await add_people(app, {"A": [SHARED], "M": []}, {"H1": ["A", "M"]})
    await add_marker(app, "M1", subject_type="person", subject_id="M", kind="mental_health")
    call_id, _, _ = await ring(app, client, "mid-1", None, presentation="withheld",
                               types=("offered", "ringing"))  # fmt: skip
    handler = {"Authorization": "Bearer " + await make_staff("H1001", Role.handler)}
    other = {"Authorization": "Bearer " + await make_staff("H2002", Role.handler)}
    url = "/api/v1/history/households"
    found = await client.get(
        url, params={"call_id": call_id, "address": "h1 test"}, headers=handler
    )
    assert found.status_code == 200, found.text
    [shown] = found.json()["households"]
    [household] = shown["households"]
    assert {p["id"] for p in shown["persons"]} == {"A", "M"}
    assert household["id"] == "H1" and household["member_ids"] == ["A", "M"]
    assert (
        await client.get(url, params={"call_id": call_id, "household_id": "H1"}, headers=other)
    ).status_code == 403
    for params in (
        {"call_id": call_id},
        {"call_id": call_id, "uprn": "12x"},
        {"call_id": call_id, "uprn": "1", "address": "abc"},
        {"call_id": "x", "uprn": "1"},
    ):
        bad = await client.get(url, params=params, headers=handler)
        assert bad.status_code == 422 and set(bad.json()["error"]) == {"code", "message", "details"}
    missing = await client.get(url, params={"call_id": 999999, "uprn": "1"}, headers=handler)
    assert missing.status_code == 404
    async with app.state.resources.sessions() as session:
        audits = list(
            await session.scalars(select(AuditLog).where(AuditLog.actor == "staff:H1001"))
        )
    shown = {(a.subject_type, a.subject_id, a.call_id) for a in audits}
    assert shown >= {("person", "A", str(call_id)), ("person", "M", str(call_id)),
                     ("household", "H1", str(call_id))}  # fmt: skip
    context = await client.get(f"/api/v1/history/calls/{call_id}", headers=handler)
    assert context.status_code == 200 and context.json()["alerts"][0]["kind"] == "withheld_number"


async def test_many_numbers_at_once_give_each_the_summary_it_gets_alone(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's callers are looked up together (one query per kind for all of them): each
    summary must hold exactly its own people, households, contacts and markers, and keep its
    own newest contacts when the one query had to stop short."""
    third, nobody = "+441134960203", "+441134960299"
    await add_people(
        app,
        {"A": [SHARED], "B": [SHARED, SECOND], "C": [third], "M": []},
        {"H1": ["A", "M"], "H2": ["B"], "H3": ["C", "M"]},
    )
    await add_marker(app, "MK1", subject_type="person", subject_id="M", kind="da_high_risk")
    for n in range(8):  # the third number is busy: more contacts than the cap below
        await add_contact(app, f"T{n}", number=third, person_id="C", victim=True)
    # Older than all of those: a query stopped short by them would miss these.
    await add_contact(app, "S1", number=SHARED, person_id="A", occurred_at=days_ago(20))
    await add_contact(app, "H", household_id="H2", occurred_at=days_ago(30))
    numbers = [SHARED, SECOND, third, nobody]
    now = utcnow()
    since = lookup.horizon_start(now, 400)

    async def each_alone_and_together() -> tuple[dict[str, Any], dict[str, Any]]:
        async with app.state.resources.sessions() as session:
            together = await store.build_many(session, numbers, today=now.date(), since=since)
            alone = {
                n: (await store.build_many(session, [n], today=now.date(), since=since))[n]
                for n in numbers
            }
        return together, alone

    together, alone = await each_alone_and_together()
    assert together == alone
    assert sorted(p.id for p in together[third].persons) == ["C", "M"]
    assert [h.id for h in together[SECOND].households] == ["H2"]
    assert together[nobody].persons == [] and together[nobody].number_contacts == []
    assert len(together[third].number_contacts) == 8
    # A cap of 2 contacts per summary: 2 x 4 rows cannot hold the third number's 8 plus the
    # others', so each summary is read on its own, and each keeps its own newest 2.
    monkeypatch.setattr(store_records, "MAX_CONTACTS", 2)
    together, alone = await each_alone_and_together()
    assert together == alone
    assert [c.id for c in together[third].number_contacts] == ["T7", "T6"]
    assert [c.id for c in together[SHARED].number_contacts] == ["S1"]


async def test_a_summary_built_after_an_uncommitted_write_is_never_cached(app: FastAPI) -> None:
    """A lookup in a transaction that has written history sees that write under the new
    counters. Were it cached and the transaction rolled back, the next committed write would
    reach the same counters and serve a contact that never was."""
    await add_people(app, {"A": [SHARED]})
    resources = app.state.resources
    async with resources.sessions() as session:
        async with session.begin():
            await writes.record_contact(session, contact_id="GHOST", number=SHARED,
                                        occurred_at=days_ago(1))  # fmt: skip
            seen = await lookup.lookup_caller(
                session, resources.cache, SHARED, "allowed",
                now=utcnow(), horizon_days=400, ttl_seconds=600,
            )  # fmt: skip
            assert [c.id for c in seen.number_contacts] == ["GHOST"]  # its own write
            await session.rollback()
    await add_contact(app, "REAL", number=SHARED, occurred_at=days_ago(1))
    assert [c.id for c in (await facts(app, SHARED)).number_contacts] == ["REAL"]


async def test_counters_links_and_own_contacts_in_one_read_are_what_each_read_gives(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lookup's first statement (issue 19): the counters and links as their own reads give
    them, and for a number on no person its whole summary, as the store builds it; none when
    the numbers' contacts reach the read's cap."""
    third, nobody, stranger = "+441134960203", "+441134960299", "+441134960277"
    await add_people(
        app,
        {"A": [SHARED], "B": [SHARED, SECOND], "C": [third], "M": []},
        {"H1": ["A", "M"], "H2": ["B"], "H3": ["C", "M"]},
    )
    await add_contact(app, "C1", number=SHARED, person_id="A", victim=True)  # bumps counters
    # A number on no person, with contacts of its own (one about someone else, one too old).
    await add_contact(app, "S1", number=stranger, occurred_at=days_ago(3), victim=True)
    yesterday = days_ago(1)
    await add_contact(app, "S2", number=stranger, occurred_at=yesterday, person_id="M",
                      caller_role="third_party", victim=True)  # fmt: skip
    await add_contact(app, "S3", number=stranger, occurred_at=yesterday)
    await add_contact(app, "OLD", number=stranger, occurred_at=days_ago(900))
    numbers = [SHARED, SECOND, third, nobody, stranger]
    scopes = [versions.EVERYTHING, *(versions.number_scope(n) for n in numbers), "n:never"]
    now = utcnow()
    today, since = now.date(), lookup.horizon_start(now, 400)

    async def reads() -> tuple[lookup_read.FirstRead, dict[str, int], dict[str, Any], Any]:
        async with app.state.resources.sessions() as session, session.begin():
            read = await lookup_read.first_read(session, scopes, numbers, today, since)
            alone = await versions.read(session, scopes)
            links_alone = await store_links.number_links_many(session, numbers, today)
            built = await store.build_many(session, numbers, today=today, since=since)
        return read, alone, links_alone, built

    read, alone, links_alone, built = await reads()
    assert read.current == alone and read.current[versions.number_scope(SHARED)] > 0
    assert read.current["n:never"] == 0
    assert set(read.links) == set(numbers)
    for number in numbers:
        got, expected = read.links[number], links_alone[number]
        assert (got.caller_ids, got.members, got.relationships) == (
            expected.caller_ids, expected.members, expected.relationships
        ), number  # fmt: skip
    links = read.links
    assert links[SHARED].caller_ids == ["A", "B"] and set(links[SHARED].members) == {"H1", "H2"}
    assert links[nobody].caller_ids == [] and links[nobody].members == {}
    assert set(read.unlinked) == {nobody, stranger}  # those on a person go the usual way
    assert read.unlinked == {n: built[n] for n in (nobody, stranger)}
    shown = read.unlinked[stranger].number_contacts
    assert [c.id for c in shown] == ["S2", "S3", "S1"]  # newest first, then by id
    assert not shown[0].victim  # a third party's call: not the number's own victimhood
    # The read stopped at its cap (none here): no summary is known complete.
    monkeypatch.setattr(store_records, "MAX_CONTACTS", 0)
    read, *_ = await reads()
    assert read.unlinked == {} and read.current == alone


async def test_people_households_and_markers_in_one_read_are_what_each_read_gives(
    app: FastAPI,
) -> None:
    """The summary's people, households and markers come from one statement (issue 19): every
    field and the markers' order (newest first) as the kinds' own queries give them."""
    await add_people(app, {"A": [SHARED], "M": []}, {"H1": ["A", "M"], "H2": ["A"]})
    async with app.state.resources.sessions() as session, session.begin():
        person = await session.get(Person, "A")
        home = await session.get(Household, "H1")
        assert person is not None and home is not None
        person.date_of_birth = date(1980, 2, 29)
        home.easting, home.northing = 429157.5, 433904.25
    await add_marker(app, "MK1", subject_type="person", subject_id="M", kind="da_high_risk",
                     set_by="officer-7")  # fmt: skip
    await add_marker(app, "MK2", subject_type="person", subject_id="M", kind="vulnerable_adult",
                     set_at=days_ago(2), expires_at=days_ago(1))  # fmt: skip
    await add_marker(app, "MK3", subject_type="household", subject_id="H2", kind="firearms")
    # Contacts of the number, a person and a household, every column set somewhere (read
    # with the rest since issue 19's ninth pass).
    async with app.state.resources.sessions() as session, session.begin():
        call = Call(source="canonical", external_id="lookup-1", state="ended")
        session.add(call)
    await add_contact(app, "CN", number=SHARED, incident_type="burglary", victim=True,
                      outcome="recorded", call_id=call.id, occurred_at=days_ago(3))  # fmt: skip
    await add_contact(app, "CP", person_id="M", domestic_abuse=True, caller_person_id="A",
                      caller_role="neighbour", occurred_at=days_ago(2))  # fmt: skip
    await add_contact(app, "CH", household_id="H1", occurred_at=days_ago(2))
    now = utcnow()
    since = lookup.horizon_start(now, 400)
    async with app.state.resources.sessions() as session, session.begin():
        summary = (await store.build_many(session, [SHARED], today=now.date(), since=since))[SHARED]
        by_person, by_household = await store_records.markers_for(session, ["A", "M"], ["H1", "H2"])
        own = await store_records.contacts_for(
            session, number=SHARED, person_ids=["A", "M"], household_ids=["H1", "H2"], since=since
        )
    persons = {p.id: p for p in summary.persons}
    assert persons["A"].name == "Test A" and persons["M"].name == "Test M"
    assert persons["A"].date_of_birth == "1980-02-29" and persons["M"].date_of_birth is None
    assert [m.id for m in persons["M"].markers] == ["MK2", "MK1"]  # newest first
    assert persons["M"].markers == by_person["M"]
    assert persons["M"].markers[1].set_by == "officer-7"
    expired = persons["M"].markers[0].expires_at
    assert expired is not None and expired.utcoffset() == timedelta(0)
    homes = {h.id: h for h in summary.households}
    assert (homes["H1"].uprn, homes["H1"].address) == ("102", "H1 Test Street")
    assert (homes["H1"].easting, homes["H1"].northing) == (429157.5, 433904.25)
    assert homes["H2"].easting is None and homes["H2"].markers == by_household["H2"]
    assert [m.kind for m in homes["H2"].markers] == ["firearms"] and homes["H1"].markers == []
    # The contacts as their own query gives them, field for field.
    number_contacts, person_contacts, household_contacts = own
    assert [c.id for c in summary.number_contacts] == ["CN"]
    assert summary.number_contacts == number_contacts
    assert persons["M"].contacts == person_contacts["M"] and persons["M"].contacts[0].id == "CP"
    assert homes["H1"].contacts == household_contacts["H1"] and homes["H1"].contacts[0].id == "CH"
