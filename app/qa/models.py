"""Tables of the QA domain.

`qa_sample` / `qa_sample_call`: a drawn sample (criteria, seed, who drew it) and its calls.
`qa_review` / `qa_answer`: one reviewer's grading of one call and its answer per standard.
`ordinal` numbers a call's reviews: the first (1) counts in the monthly table, later ones are
calibration; the unique (call_id, ordinal) makes two racing "first" reviews impossible. Each
review keeps what the report groups by as it was when the review was made (the call's handler,
queue and UK-local month), and each answer whether it met the standard and whether the standard
applied, as the form said at submission (a later edit of the form cannot re-count it).
`qa_month_tally`: the monthly table's running sums (first reviews' answers per UK-local month
and standard), added to in the review's own transaction, so the report does not re-read a
year of answers (720,000 at 5,000 handlers: bench/qa).
`training_record`: a staff member's completion of a training module (the training register).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.auth import models as _auth_models  # noqa: F401  (the `staff` table the FK names)
from app.calls import models as _calls_models  # noqa: F401  (the `call` table the FKs name)
from app.db import Base, BigId, JsonDoc, UTCDateTime, utcnow


class QaSample(Base):
    __tablename__ = "qa_sample"
    __table_args__ = (Index("ix_qa_sample_month", "month"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    month: Mapped[str] = mapped_column(String(7))  # "2026-11", UK local
    per_handler: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)
    # The filters it was drawn with (queue, min_talk_seconds, flagged_only, flagged_first).
    criteria: Mapped[dict[str, object]] = mapped_column(JsonDoc, default=dict)
    drawn_by: Mapped[str] = mapped_column(String(32))
    drawn_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Handlers with fewer eligible calls than per_handler: [{handler_id, eligible, drawn}].
    shortfalls: Mapped[list[dict[str, str | int]]] = mapped_column(JsonDoc, default=list)


class QaSampleCall(Base):
    __tablename__ = "qa_sample_call"
    __table_args__ = (Index("ix_qa_sample_call_call_id", "call_id"),)

    sample_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("qa_sample.id", ondelete="CASCADE"), primary_key=True
    )
    call_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("call.id", ondelete="CASCADE"), primary_key=True
    )
    handler_id: Mapped[str] = mapped_column(String(32))


class QaReview(Base):
    __tablename__ = "qa_review"
    __table_args__ = (
        UniqueConstraint("call_id", "ordinal"),
        UniqueConstraint("call_id", "reviewer_id", name="reviewer"),
        Index("ix_qa_review_call_month", "call_month", "ordinal"),
        Index("ix_qa_review_handler_id", "handler_id"),
        Index("ix_qa_review_sample_id", "sample_id"),
        # Calibration reviews only (a call's second review on): the report finds the calls
        # graded more than once without reading every review of the months.
        Index(
            "ix_qa_review_calibration",
            "call_month",
            "call_id",
            postgresql_where=text("ordinal > 1"),
            sqlite_where=text("ordinal > 1"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(BigId, ForeignKey("call.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)  # 1: counts; 2+: calibration
    reviewer_id: Mapped[str] = mapped_column(String(32))
    reviewer_role: Mapped[str] = mapped_column(String(16))
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # None: a targeted review (not drawn in a sample).
    sample_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("qa_sample.id", ondelete="SET NULL"), nullable=True
    )
    form: Mapped[str] = mapped_column(String(130))  # "<pack>@<version>" graded against
    handler_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    queue: Mapped[str | None] = mapped_column(String(64), nullable=True)
    call_month: Mapped[str] = mapped_column(String(7))  # UK-local month the call was offered
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class QaAnswer(Base):
    __tablename__ = "qa_answer"

    review_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("qa_review.id", ondelete="CASCADE"), primary_key=True
    )
    standard: Mapped[str] = mapped_column(String(80), primary_key=True)
    answer: Mapped[str] = mapped_column(String(80))
    met: Mapped[bool] = mapped_column(Boolean)
    applicable: Mapped[bool] = mapped_column(Boolean)
    # The reviewer's feedback to the handler on this standard (may quote the call: personal
    # data, returned to the handler and QA, never logged).
    feedback: Mapped[str | None] = mapped_column(Text, nullable=True)


class QaMonthTally(Base):
    """Per UK-local month and standard: how many first reviews answered it, met it, and for
    how many it applied. Only `app.qa.tally.add` writes it, in the transaction that stores a
    call's first review; reviews are never edited or deleted on their own (a call's deletion
    would take its reviews with it: re-derive the tally then, as revision 0009 does)."""

    __tablename__ = "qa_month_tally"

    call_month: Mapped[str] = mapped_column(String(7), primary_key=True)
    standard: Mapped[str] = mapped_column(String(80), primary_key=True)
    answered: Mapped[int] = mapped_column(Integer)
    met: Mapped[int] = mapped_column(Integer)
    applicable: Mapped[int] = mapped_column(Integer)


class TrainingRecord(Base):
    __tablename__ = "training_record"
    __table_args__ = (
        UniqueConstraint("staff_id", "module", "completed_on"),
        Index("ix_training_record_module", "module"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    staff_id: Mapped[str] = mapped_column(String(32), ForeignKey("staff.id", ondelete="CASCADE"))
    module: Mapped[str] = mapped_column(String(80))
    completed_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
