"""Tables of the THRIVE+ domain.

`call_thrive`: the call-time state of one call (incident type, narrative, prompts answered,
advice given). `call_cue`: the hidden-vulnerability cues already pushed for a call; its primary
key is what makes a cue go out once even when several workers see the same narrative.
`assessment`: every submitted version of the THRIVE+ record, never updated in place.
`assessment_draft`: the form as typed, per call and handler, until it is submitted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.auth import models as _auth_models  # noqa: F401  (the `staff` table the FKs name)
from app.calls import models as _calls_models  # noqa: F401  (the `call` table the FKs name)
from app.db import Base, BigId, JsonDoc, UTCDateTime, utcnow


class CallThrive(Base):
    __tablename__ = "call_thrive"

    call_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("call.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    incident_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    incident_type_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The handler's running narrative: personal data (part of the incident log), kept so that
    # a chunk appended later is read together with what came before. Never logged.
    narrative: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Ids of the prompts answered and advice items given during the call, in marking order.
    prompts_answered: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    advice_given: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallCue(Base):
    __tablename__ = "call_cue"

    call_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("call.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    cue_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    strand: Mapped[str] = mapped_column(String(64))
    # The narrative words that matched (the handler's own words, so personal data too).
    matched: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Assessment(Base):
    __tablename__ = "assessment"
    __table_args__ = (
        UniqueConstraint("call_id", "version"),
        Index("ix_assessment_submitted_at", "submitted_at"),
        CheckConstraint(
            "grade IN ('emergency', 'priority', 'scheduled', 'resolution_without_deployment')",
            name="grade",
        ),
        CheckConstraint(
            "repeat_victim_check IS NULL OR repeat_victim_check IN ('yes', 'no', 'not_applicable')",
            name="repeat_victim_check",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(BigId, ForeignKey("call.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    submitted_by: Mapped[str] = mapped_column(String(32))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    incident_type: Mapped[str] = mapped_column(String(64))
    grade: Mapped[str] = mapped_column(String(32))
    # The grade the call's alerts suggested when this version was submitted, and the
    # handler's reason for grading below it (required then).
    suggested_grade: Mapped[str | None] = mapped_column(String(32), nullable=True)
    grade_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # {"threat": {"text": ..., "risk": "high"}, ...}: one entry per THRIVE+ element.
    elements: Mapped[dict[str, dict[str, object]]] = mapped_column(JsonDoc)
    # Advice ids given, by kind, as the pack described them at submission:
    # {"preservation": [...], "prevention": [...]} (a later pack edit cannot re-file them).
    advice_given: Mapped[dict[str, list[str]]] = mapped_column(JsonDoc)
    prompts_answered: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    repeat_victim_check: Mapped[str | None] = mapped_column(String(16), nullable=True)
    victim: Mapped[bool] = mapped_column(Boolean)
    domestic_abuse: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where the call's contact was filed (issue 13): the linked victim and the incident's
    # location (a household), None when nobody was linked and the caller is not known.
    victim_person_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    location_household_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Kinds of the alerts the call carried at submission (for QA: was the check due?).
    alert_kinds: Mapped[list[str]] = mapped_column(JsonDoc, default=list)


class AssessmentDraft(Base):
    """The assessment form as a handler is typing it, one per call and handler: saved as they
    go so that a reload, another call or a lost connection never loses or misfiles it.

    `revision` counts the saves; a save names the revision it was based on, so two tabs
    cannot silently overwrite each other. `deferred`: the handler chose to leave the
    assessment for later (the call then leaves their wrap-up list)."""

    __tablename__ = "assessment_draft"

    call_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("call.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    staff_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True
    )
    revision: Mapped[int] = mapped_column(Integer)
    # grade, grade_reason, elements {element: {risk, text}}, repeat_victim_check, victim
    # (personal data: the handler's own words about the call; never logged).
    form: Mapped[dict[str, object]] = mapped_column(JsonDoc)
    deferred: Mapped[bool] = mapped_column(Boolean, default=False)
    deferred_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
