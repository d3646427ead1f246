"""The caller/household context for the handler's screen: JSON-able, ids and dates rather
than narratives, recent contacts listed, counts over 30/90/365 days."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from app.rules.facts import CallerFacts, ContactRef, MarkerRef

WINDOWS = (30, 90, 365)
# Contacts listed per subject on screen; the counts cover everything within the horizon.
LISTED_CONTACTS = 10


def counts(contacts: list[ContactRef], now: datetime) -> dict[str, Any]:
    """Contacts, victim contacts and DA incidents in each window, and the last contact."""
    result: dict[str, Any] = {}
    for days in WINDOWS:
        start = now - timedelta(days=days)
        recent = [c for c in contacts if start <= c.occurred_at <= now]
        result[f"contacts_{days}d"] = len(recent)
        result[f"victim_{days}d"] = sum(1 for c in recent if c.victim)
        result[f"domestic_abuse_{days}d"] = sum(1 for c in recent if c.domestic_abuse)
    past = [c.occurred_at for c in contacts if c.occurred_at <= now]
    result["last_contact_at"] = max(past).isoformat() if past else None
    return result


def _contact(ref: ContactRef) -> dict[str, Any]:
    return {
        "id": ref.id,
        "occurred_at": ref.occurred_at.isoformat(),
        "incident_type": ref.incident_type,
        "victim": ref.victim,
        "domestic_abuse": ref.domestic_abuse,
        "outcome": ref.outcome,
        "person_id": ref.person_id,
        "household_id": ref.household_id,
    }


def _marker(ref: MarkerRef, now: datetime) -> dict[str, Any]:
    return {
        "id": ref.id,
        "kind": ref.kind,
        "active": ref.active_at(now),
        "set_at": ref.set_at.isoformat(),
        "expires_at": ref.expires_at.isoformat() if ref.expires_at else None,
        "set_by": ref.set_by,
    }


def build_context(facts: CallerFacts) -> dict[str, Any]:
    """What the handler sees about the caller: persons, households and their members with
    markers, prior contacts with dates and types, and summary counts."""
    now = facts.now
    persons = [
        {
            "id": p.id,
            "name": p.name,
            "date_of_birth": p.date_of_birth,
            "relationship": p.relationship,
            "relation": p.relation,
            "household_ids": p.household_ids,
            "markers": [_marker(m, now) for m in p.markers],
            "contacts": [_contact(c) for c in p.contacts[:LISTED_CONTACTS]],
            "summary": counts(p.contacts, now),
        }
        for p in facts.persons
    ]
    households = [
        {
            "id": h.id,
            "uprn": h.uprn,
            "address": h.address,
            "member_ids": h.member_ids,
            "markers": [_marker(m, now) for m in h.markers],
            "contacts": [_contact(c) for c in h.contacts[:LISTED_CONTACTS]],
            "summary": counts(h.contacts, now),
        }
        for h in facts.households
    ]
    return {
        "number": facts.number,
        "presentation": facts.presentation,
        "looked_up": facts.presentation == "allowed" and facts.number is not None,
        "looked_up_at": now.isoformat(),
        "horizon_days": facts.horizon_days,
        "known": bool(facts.persons or facts.number_contacts),
        "number_summary": counts(facts.number_contacts, now),
        "number_contacts": [_contact(c) for c in facts.number_contacts[:LISTED_CONTACTS]],
        "persons": persons,
        "households": households,
    }


def shown_records(context: dict[str, Any]) -> dict[str, list[str]]:
    """The ids of the records a context shows, for the consultation log (never content)."""
    contacts: dict[str, None] = {}
    markers: dict[str, None] = {}
    for item in (*context["persons"], *context["households"]):
        contacts.update(dict.fromkeys(c["id"] for c in item["contacts"]))
        markers.update(dict.fromkeys(m["id"] for m in item["markers"]))
    contacts.update(dict.fromkeys(c["id"] for c in context.get("number_contacts", [])))
    return {
        "persons": [p["id"] for p in context["persons"]],
        "households": [h["id"] for h in context["households"]],
        "contacts": list(contacts),
        "markers": list(markers),
    }
