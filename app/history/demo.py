"""A realistic synthetic history for the demo: tens of thousands of contacts, repeat victims,
shared numbers, households with markers. Every number is in Ofcom's ranges reserved for drama
(e.g. 0113 496 0xxx), so no real subscriber can be rung or named.

`DEMO_NUMBERS` are scenario numbers the simulator can ring, each with what it should show.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import is_postgres, utcnow
from app.history import versions
from app.history.import_sinks import Batch, Collector, PostgresSink, SqliteSink
from app.history.models import Contact


@dataclass(frozen=True)
class DemoNumber:
    e164: str
    scenario: str
    expect: str  # what the handler's screen should show


DEMO_NUMBERS: tuple[DemoNumber, ...] = (
    DemoNumber("+441134960001", "repeat_victim", "3 victim contacts in the last year"),
    DemoNumber(
        "+441134960002", "household_risk", "Jo Demo (partner, 41) has a DA high-risk marker"
    ),
    DemoNumber("+441134960003", "repeat_caller", "4 calls from the number in 30 days"),
    DemoNumber("+441134960004", "da_escalation", "3 domestic abuse incidents in 12 months"),
    DemoNumber("+441134960005", "shared_number", "two persons share this number"),
    DemoNumber("+441134960006", "vulnerability_marker", "caller has an active mental_health"),
    DemoNumber("+441134960007", "expired_marker", "household marker expired: no household alert"),
    DemoNumber(
        "+441134960008", "officer_safety", "weapons at the address, shown first; a bail condition"
    ),
    DemoNumber("+441134960999", "unknown", "no history"),
)
# Fictional ranges for the bulk population (1,000 numbers each).
BULK_PREFIXES = (
    "+44114496",
    "+44116496",
    "+44117496",
    "+44118496",
    "+44121496",
    "+44131496",
    "+44141496",
    "+44151496",
    "+44161496",
    "+44191498",
)
INCIDENTS = (
    "domestic_abuse",
    "assault",
    "burglary",
    "theft",
    "criminal_damage",
    "asb",
    "concern_for_welfare",
    "missing_person",
    "harassment",
    "fraud",
    "vehicle_crime",
    "hate_crime",
)
MARKER_KINDS = (
    "da_high_risk",
    "missing_person",
    "cse_risk",
    "mental_health",
    "adult_at_risk",
    "firearms",
    "violent_to_staff",
)
# Kinds added with the marker categories (issue 13), drawn for a share of the bulk markers so
# the demo shows every heading without changing the draws of the kinds above.
MORE_MARKER_KINDS = (
    "weapons",
    "premises_warning",
    "child_protection_plan",
    "looked_after_child",
    "bail_conditions",
    "non_molestation_order",
    "interpreter",
    "learning_disability",
    "previous_missing",
    "marac",
)
# How members after the first relate to them (memberships.csv `relationship`): the first
# member is the household's reference person, recorded with none.
RELATIONS = ("partner", "child", "child", "parent", "sibling", "lodger", "other")
OUTCOMES = ("advice_given", "officer_attended", "crime_recorded", "referred", "no_further_action")


async def has_history(session: AsyncSession) -> bool:
    return (await session.scalar(select(Contact.id).limit(1))) is not None


async def seed(
    session: AsyncSession, *, households: int = 6000, contacts: int = 40_000, rng_seed: int = 4
) -> dict[str, int]:
    """Write the demo history in the session's transaction; returns rows per table."""
    rng = random.Random(rng_seed)
    now = utcnow()
    postgres = is_postgres(session)
    sink = PostgresSink(session) if postgres else SqliteSink(session)
    await sink.start()
    ready: list[Batch] = []
    out = Collector(ready.append)

    def ago(days: float) -> datetime:
        return now - timedelta(days=days)

    _scenarios(out, now, ago)

    numbers = [f"{p}{i:04d}" for p in BULK_PREFIXES for i in range(1000)]
    rng.shuffle(numbers)
    person_ids: list[str] = []
    person_number: dict[str, str] = {}
    person_home: dict[str, str] = {}
    households_of: list[tuple[str, list[str]]] = []
    for h in range(households):
        hid = f"DH{h:06d}"
        streets = ("High Street", "Mill Lane", "Church Road", "Station Road", "Park Avenue")
        address = f"{rng.randint(1, 200)} {rng.choice(streets)}, Demotown DT{h % 9 + 1}"
        out.add("household", (hid, f"{900000000000 + h}", address, None, None, None, now))
        members = []
        for m in range(rng.choice((1, 1, 2, 2, 2, 3, 3, 4, 5))):
            pid = f"DP{h:06d}{m}"
            birth = date(1940, 1, 1) + timedelta(days=rng.randint(0, 80 * 365))
            out.add("person", (pid, f"Demo Person {h}-{m}", birth, now))
            if numbers and rng.random() < 0.8:
                number = numbers.pop()
                person_number[pid] = number
                out.add("phone", (number, pid, None, None))
            start = date(2000, 1, 1) + timedelta(days=rng.randint(0, 9000))
            relation = None if m == 0 else "partner" if m == 1 else rng.choice(RELATIONS)
            out.add("person_household", (pid, hid, start, None, relation))
            person_home[pid] = hid
            person_ids.append(pid)
            members.append(pid)
        households_of.append((hid, members))

    # Contacts: most people never call; a few call often (repeat victims and callers).
    weights = [rng.paretovariate(1.3) for _ in person_ids]
    chosen = rng.choices(person_ids, weights=weights, k=contacts)
    for n, pid in enumerate(chosen):
        incident = rng.choice(INCIDENTS)
        da = incident == "domestic_abuse"
        out.add(
            "contact",
            (
                f"DC{n:07d}",
                ago(rng.uniform(0, 3 * 365)),
                person_number.get(pid),
                pid,
                person_home[pid],
                incident,
                da or rng.random() < 0.4,
                da,
                rng.choice(OUTCOMES),
                now,
            ),
        )
    for n, (hid, members) in enumerate(rng.sample(households_of, k=households // 8)):
        subject_type, subject = (
            ("household", hid) if rng.random() < 0.3 else ("person", rng.choice(members))
        )
        set_at = ago(rng.uniform(10, 1000))
        expires = set_at + timedelta(days=rng.choice((180, 365, 730))) if n % 3 else None
        out.add(
            "marker",
            (
                f"DM{n:06d}",
                subject_type,
                subject,
                rng.choice(MARKER_KINDS) if n % 4 else MORE_MARKER_KINDS[n // 4 % 10],
                "demo",
                set_at,
                expires,
            ),
        )
    out.flush()
    for batch in [*ready, out.deferred]:
        await sink.write(batch)
    await versions.bump(session, [versions.EVERYTHING])
    return dict(out.counts)


def _scenarios(out: Collector, now: datetime, ago: Any) -> None:
    """The scenario numbers of DEMO_NUMBERS, each with exactly the history it promises."""
    homes = [
        ("DSH1", "100000000001", "1 Repeat Row, Demotown DT1"),
        ("DSH2", "100000000002", "2 Marker Mews, Demotown DT1"),
        ("DSH4", "100000000004", "4 Escalation End, Demotown DT1"),
        ("DSH7", "100000000007", "7 Expired Close, Demotown DT1"),
        ("DSH8", "100000000008", "8 Warning Walk, Demotown DT1"),
    ]
    for hid, uprn, address in homes:
        out.add("household", (hid, uprn, address, None, None, None, now))
    # (id, name, number, household, relationship to the household's reference person)
    people: list[tuple[str, str, str | None, str | None, str | None]] = [
        ("DSP1", "Alex Demo", "+441134960001", "DSH1", None),
        ("DSP2", "Sam Demo", "+441134960002", "DSH2", None),
        ("DSP2B", "Jo Demo", None, "DSH2", "partner"),
        ("DSP3", "Chris Demo", "+441134960003", None, None),
        ("DSP4", "Morgan Demo", "+441134960004", "DSH4", None),
        ("DSP5A", "Robin Demo", "+441134960005", None, None),
        ("DSP5B", "Jamie Demo", "+441134960005", None, None),
        ("DSP6", "Taylor Demo", "+441134960006", None, None),
        ("DSP7", "Casey Demo", "+441134960007", "DSH7", None),
        ("DSP8", "Drew Demo", "+441134960008", "DSH8", None),
        ("DSP8B", "Kit Demo", None, "DSH8", "child"),
    ]
    for pid, name, number, home_id, relation in people:
        born = date(2009, 3, 1) if pid == "DSP8B" else date(1985, 6, 1)
        out.add("person", (pid, name, born, now))
        if number:
            out.add("phone", (number, pid, None, None))
        if home_id:
            out.add("person_household", (pid, home_id, date(2020, 1, 1), None, relation))
    contacts: list[tuple[str, str, str | None, float, str, bool, bool]] = [
        ("DSC1", "DSP1", "DSH1", 20, "assault", True, False),
        ("DSC2", "DSP1", "DSH1", 120, "burglary", True, False),
        ("DSC3", "DSP1", "DSH1", 300, "harassment", True, False),
        ("DSC4", "DSP3", None, 2, "asb", False, False),
        ("DSC5", "DSP3", None, 9, "asb", False, False),
        ("DSC6", "DSP3", None, 15, "concern_for_welfare", False, False),
        ("DSC7", "DSP3", None, 27, "asb", False, False),
        ("DSC8", "DSP4", "DSH4", 30, "domestic_abuse", True, True),
        ("DSC9", "DSP4", "DSH4", 150, "domestic_abuse", False, True),
        ("DSC10", "DSP4", "DSH4", 330, "domestic_abuse", False, True),
    ]
    numbers = {p[0]: p[2] for p in people}
    for cid, pid, home, days, incident, victim, da in contacts:
        out.add(
            "contact",
            (cid, ago(days), numbers[pid], pid, home, incident, victim, da, "advice_given", now),
        )
    markers = [
        ("DSM1", "person", "DSP2B", "da_high_risk", ago(40), None),
        ("DSM2", "person", "DSP6", "mental_health", ago(100), None),
        ("DSM3", "household", "DSH7", "firearms", ago(800), ago(70)),
        ("DSM4", "household", "DSH8", "weapons", ago(200), None),
        ("DSM5", "person", "DSP8B", "bail_conditions", ago(10), now + timedelta(days=60)),
    ]
    for mid, subject_type, subject, kind, set_at, expires in markers:
        out.add("marker", (mid, subject_type, subject, kind, "demo", set_at, expires))
