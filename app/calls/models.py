"""Tables of the calls domain: `call` (one row per call, its lifecycle state) and
`call_event` (every accepted event, raw and canonical, and its processing status)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, JsonDoc, UTCDateTime, utcnow


class Call(Base):
    __tablename__ = "call"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_call_offered_at", "offered_at"),
        Index("ix_call_handler_id", "handler_id"),
        Index("ix_call_state", "state"),
    )

    # The service's own call id: `call_id` in WebSocket frames and REST paths.
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))  # canonical | twilio | cti | sip
    external_id: Mapped[str] = mapped_column(String(128))  # the provider's call id
    state: Mapped[str] = mapped_column(String(16))
    caller_e164: Mapped[str | None] = mapped_column(String(32), nullable=True)
    presentation: Mapped[str] = mapped_column(String(16), default="unavailable")
    called: Mapped[str | None] = mapped_column(String(64), nullable=True)
    queue: Mapped[str | None] = mapped_column(String(64), nullable=True)
    handler_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    handlers: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ringing_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_cause: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Set by the history domain when alerts are raised for the call.
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The merge keys of the lifecycle state (app.calls.lifecycle.CallState.marks): which event
    # each field came from, so that a late or duplicate event merges the same in any order.
    marks: Mapped[dict[str, object]] = mapped_column(JsonDoc, default=dict)
    # The qualifiers the handler set on the call (app.thrive.qualifiers), each with its
    # strands, e.g. [{"id": "hate_crime", "strands": ["race"]}] (app.calls.qualifiers); NULL
    # until first set.
    qualifiers: Mapped[list[dict[str, object]] | None] = mapped_column(JsonDoc, nullable=True)
    # The number of the call's last message on the live channels (issue 18): each message
    # takes the next one in the transaction that writes it (app.realtime.outbox), so frames
    # carry an order of their own that screens check.
    frame_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallEventRow(Base):
    __tablename__ = "call_event"
    __table_args__ = (
        UniqueConstraint("source", "event_id"),
        Index("ix_call_event_call_id", "call_id"),
        # The sweeper's question: what is accepted and not processed?
        Index("ix_call_event_pending", "processed_at", "claimed_until"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(128))
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seq: Mapped[int | None] = mapped_column(BigId, nullable=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)  # exactly as received
    canonical: Mapped[dict[str, object]] = mapped_column(JsonDoc)  # CallEvent, JSON mode
    # The call's state before and after this event was merged (ingest time).
    state_before: Mapped[str | None] = mapped_column(String(16), nullable=True)
    state_after: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A processor owns the event until then; after a failure, the next retry is not before.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
