"""History tables. Ids of persons, households, contacts and markers are the force's own
(strings), so re-importing the same export updates rows instead of duplicating them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.calls import models as _calls  # noqa: F401  (the `call` table our foreign keys name)
from app.db import Base, BigId, JsonDoc, UTCDateTime, utcnow


class Person(Base):
    __tablename__ = "person"
    # The mid-call name search (issue 13): a trigram index on PostgreSQL (pg_trgm, created by
    # the migration); SQLite has no trigram index, so there it is a plain one.
    __table_args__ = (
        Index(
            "ix_person_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    date_of_birth: Mapped[date | None] = mapped_column(Date, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Phone(Base):
    """A number used by a person over a period: many persons may share one number."""

    __tablename__ = "phone"
    __table_args__ = (
        UniqueConstraint("person_id", "e164"),
        Index("ix_phone_e164", "e164"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    e164: Mapped[str] = mapped_column(String(20))
    person_id: Mapped[str] = mapped_column(String(64), ForeignKey("person.id", ondelete="CASCADE"))
    from_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    to_date: Mapped[date | None] = mapped_column(Date, nullable=True)


class Household(Base):
    __tablename__ = "household"
    __table_args__ = (
        Index("ix_household_uprn", "uprn"),
        Index(
            "ix_household_address_trgm",
            "address",
            postgresql_using="gin",
            postgresql_ops={"address": "gin_trgm_ops"},
        ),
        Index("ix_household_grid_cell", "grid_cell"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    uprn: Mapped[str | None] = mapped_column(String(12), nullable=True)
    address: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # British National Grid metres (near repeat); grid_cell: app.history.geo.cell_of.
    easting: Mapped[float | None] = mapped_column(Float, nullable=True)
    northing: Mapped[float | None] = mapped_column(Float, nullable=True)
    grid_cell: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PersonHousehold(Base):
    """Who lives where, and when (to_date None: still lives there)."""

    __tablename__ = "person_household"
    __table_args__ = (
        UniqueConstraint("person_id", "household_id"),
        Index("ix_person_household_household_id", "household_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(64), ForeignKey("person.id", ondelete="CASCADE"))
    household_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("household.id", ondelete="CASCADE")
    )
    from_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    to_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    # How the person relates to the household's reference person (the member recorded with
    # none): partner, ex_partner, child, parent, sibling, carer, lodger, other (RELATIONSHIPS).
    relationship: Mapped[str | None] = mapped_column(String(20), nullable=True)


class Contact(Base):
    """One prior contact with the force. Person and household ids are references without
    foreign keys: a force's export may name people it does not send, and a write-back contact
    knows only its number until the handler's assessment arrives."""

    __tablename__ = "contact"
    __table_args__ = (
        Index("ix_contact_number_occurred_at", "number", "occurred_at"),
        Index("ix_contact_person_id_occurred_at", "person_id", "occurred_at"),
        Index("ix_contact_household_id_occurred_at", "household_id", "occurred_at"),
        Index("ix_contact_grid_cell_occurred_at", "grid_cell", "occurred_at"),
        UniqueConstraint("call_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    number: Mapped[str | None] = mapped_column(String(20), nullable=True)
    person_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    household_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    incident_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    victim: Mapped[bool] = mapped_column(Boolean, default=False)
    domestic_abuse: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Who called, when the contact is filed under someone else (issue 13): the caller's person
    # (if known) and `caller_role` "victim" (they are the victim) or "third_party" (they called
    # about the victim: the number's own history does not count it as theirs).
    caller_person_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    caller_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The service's call that produced it (write-back), None for imported history.
    call_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("call.id", ondelete="SET NULL"), nullable=True
    )
    # Where it happened, copied from its household's coordinates when it is written (or when
    # they change): the near-repeat lookup reads contacts by grid cell and time alone.
    easting: Mapped[float | None] = mapped_column(Float, nullable=True)
    northing: Mapped[float | None] = mapped_column(Float, nullable=True)
    grid_cell: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Marker(Base):
    __tablename__ = "marker"
    __table_args__ = (
        Index("ix_marker_subject", "subject_type", "subject_id"),
        CheckConstraint("subject_type IN ('person', 'household')", name="subject_type"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    set_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Alert(Base):
    """An alert raised for a call; acknowledgement is the handler's repeat-victim check."""

    __tablename__ = "alert"
    # raised_at: per-rule precision counts the alerts of the last 30 days (issue 15).
    __table_args__ = (
        Index("ix_alert_call_id", "call_id"),
        Index("ix_alert_raised_at", "raised_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(BigId, ForeignKey("call.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    reasons: Mapped[list[Any]] = mapped_column(JsonDoc, default=list)
    evidence: Mapped[list[Any]] = mapped_column(JsonDoc, default=list)
    rule: Mapped[str] = mapped_column(String(120))
    # Labels the rule matched (marker kinds...) and the grade it suggests, for prompt packs.
    tags: Mapped[list[Any]] = mapped_column(JsonDoc, default=list)
    suggested_grade: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # Issue 13: officer_safety, safeguarding, orders, needs, history (None: a withheld
    # number), and the evidence in plain words for the screen (`evidence` keeps the ids).
    category: Mapped[str | None] = mapped_column(String(20), nullable=True)
    evidence_lines: Mapped[list[Any]] = mapped_column(JsonDoc, default=list)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(32), nullable=True)


class AlertAcknowledgement(Base):
    """One person's acknowledgement of an alert (issue 15): the handler's repeat-victim check
    and a supervisor's "seen" are kept apart, so one never hides the other. `Alert.acknowledged_*`
    keeps the first of them (what older clients read)."""

    __tablename__ = "alert_acknowledgement"
    __table_args__ = (UniqueConstraint("alert_id", "staff_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(BigId, ForeignKey("alert.id", ondelete="CASCADE"))
    staff_id: Mapped[str] = mapped_column(String(32))
    # The role they held when they acknowledged: handler, supervisor or admin.
    role: Mapped[str] = mapped_column(String(16))
    acknowledged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


FEEDBACK_VERDICTS = ("helpful", "not_relevant", "wrong_person")


class AlertFeedback(Base):
    """A handler's verdict on an alert (issue 15): one per person and alert, the latest kept.
    Per-rule precision is counted from these."""

    __tablename__ = "alert_feedback"
    __table_args__ = (
        UniqueConstraint("alert_id", "staff_id"),
        CheckConstraint(
            "verdict IN ('helpful', 'not_relevant', 'wrong_person')", name="verdict_known"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(BigId, ForeignKey("alert.id", ondelete="CASCADE"))
    staff_id: Mapped[str] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(16))
    # Free text (may name people): shown to supervisors, never logged, never in the CSV.
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    given_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


SUBJECT_ROLES = ("victim", "caller", "suspect", "witness", "subject")


class CallSubject(Base):
    """A person or household the handler linked to a call mid-call (issue 13): its role on
    the call decides where the call's contact is filed (the victim, the location)."""

    __tablename__ = "call_subject"
    __table_args__ = (
        UniqueConstraint("call_id", "subject_type", "subject_id", "role"),
        CheckConstraint(f"role IN ({', '.join(repr(r) for r in SUBJECT_ROLES)})", name="role"),
        CheckConstraint("subject_type IN ('person', 'household')", name="subject_type"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(BigId, ForeignKey("call.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    subject_type: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(64))
    linked_by: Mapped[str] = mapped_column(String(32))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallContext(Base):
    """The caller/household context built for a call (what the handler's screen shows)."""

    __tablename__ = "call_context"

    call_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("call.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    context: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    looked_up_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HistoryVersion(Base):
    """Generation counters stored with the data, in the writer's transaction: the summary
    cache keys carry them, so no cache (in-process or Redis, in any worker) can serve a summary
    older than the committed data. Scope "*" is bumped by imports (everything changes)."""

    __tablename__ = "history_version"

    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
