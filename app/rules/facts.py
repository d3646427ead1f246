"""The facts the rule engine reads: what the history lookup knows of a caller.

History (`app.history`) builds these from the store or the summary cache; the engine
(`app.rules.engine`) turns them into planned alerts without any I/O. Contacts are listed
(within the lookup horizon), not pre-counted, so a rule pack can choose its own windows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ContactRef(BaseModel):
    """One prior contact, as evidence: enough to count and to show, nothing more."""

    model_config = ConfigDict(frozen=True)

    id: str
    occurred_at: datetime
    incident_type: str | None = None
    victim: bool = False
    domestic_abuse: bool = False
    person_id: str | None = None
    household_id: str | None = None
    outcome: str | None = None
    call_id: int | None = None  # the service's call that produced it, if any


class MarkerRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    kind: str  # da_high_risk, missing_person, cse_risk, mental_health, adult_at_risk, ...
    subject_type: Literal["person", "household"]
    subject_id: str
    set_at: datetime
    expires_at: datetime | None = None
    set_by: str | None = None

    def active_at(self, when: datetime) -> bool:
        return self.set_at <= when and (self.expires_at is None or self.expires_at > when)


class PersonFacts(BaseModel):
    id: str
    name: str | None = None
    date_of_birth: str | None = None
    # caller: linked to the calling number; household_member: lives with a caller.
    relationship: Literal["caller", "household_member"]
    # Optional, when the history knows it: how a household member relates to the caller
    # ("partner", "child", "parent", ...). Alerts name it; otherwise "household member".
    relation: str | None = None
    household_ids: list[str] = Field(default_factory=list)
    contacts: list[ContactRef] = Field(default_factory=list)
    markers: list[MarkerRef] = Field(default_factory=list)


class HouseholdFacts(BaseModel):
    id: str
    uprn: str | None = None
    address: str | None = None
    # British National Grid metres, when the force gave them (near repeat).
    easting: float | None = None
    northing: float | None = None
    member_ids: list[str] = Field(default_factory=list)
    contacts: list[ContactRef] = Field(default_factory=list)
    markers: list[MarkerRef] = Field(default_factory=list)


class CallFacts(BaseModel):
    """What the handler has said the call itself is, so far: nothing at ring time; the
    incident type once set; qualifiers (domestic abuse, hate crime, ...) once added."""

    model_config = ConfigDict(frozen=True)

    incident_type: str | None = None
    qualifiers: list[str] = Field(default_factory=list)


class NearbyIncident(BaseModel):
    """A recent contact at another household near one of the caller's (near repeat): read
    at every lookup, never cached with the caller's summary (a neighbour's write does not
    touch the caller's cache key)."""

    model_config = ConfigDict(frozen=True)

    id: str  # the contact's id
    occurred_at: datetime
    incident_type: str
    distance_m: float  # from the caller's household
    near_household_id: str  # the caller's household it is near


class CallerFacts(BaseModel):
    """Everything known about one call's caller at `now`."""

    now: datetime
    presentation: Literal["allowed", "withheld", "unavailable"]
    number: str | None = None  # E.164, None when withheld/unavailable
    # Contacts from this number (whoever made them).
    number_contacts: list[ContactRef] = Field(default_factory=list)
    persons: list[PersonFacts] = Field(default_factory=list)
    households: list[HouseholdFacts] = Field(default_factory=list)
    # Contacts older than this many days were not looked up (the summary's horizon).
    horizon_days: int = 400
    # The current call, as far as it is known (rules with a `this_call` condition read it).
    call: CallFacts = Field(default_factory=CallFacts)
    # Near repeat candidates (within the widest radius and window the packs ask for).
    nearby: list[NearbyIncident] = Field(default_factory=list)


class PlannedAlert(BaseModel):
    """What the engine decides; history stores it (with an alert_id) and realtime pushes it."""

    kind: str  # repeat_victim, repeat_caller, household_risk, vulnerability_marker, ...
    severity: Literal["critical", "high", "medium", "low", "info"]
    title: str
    reasons: list[str]
    evidence: list[str] = Field(default_factory=list)  # contact and marker ids
    rule: str  # "<rule_id>@<pack version>"
    # Optional additions (issue 6): marker kinds (or other labels) that matched, so prompt
    # packs can key on them ("da_high_risk" adds the DA questions), and the grade the rule
    # suggests; a lower grade chosen by the handler needs a reason.
    tags: list[str] = Field(default_factory=list)
    suggested_grade: (
        Literal["emergency", "priority", "scheduled", "resolution_without_deployment"] | None
    ) = None
    # Issue 13: the category of what matched (officer_safety, safeguarding, orders, needs,
    # history; None for a withheld number), shown under its own heading, officer safety
    # first; and the evidence in plain words (grouped contacts, markers), never an id.
    category: str | None = None
    evidence_lines: list[str] = Field(default_factory=list)
