from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, JsonDoc, UTCDateTime, utcnow


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_subject", "subject_type", "subject_id"),
        Index("ix_audit_log_call_id", "call_id"),
        Index("ix_audit_log_actor", "actor"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # "staff:H1042" for a person, "call:123" when the service looked up for a ringing call.
    actor: Mapped[str] = mapped_column(String(64))
    # collection | alteration | consultation | disclosure | combination | erasure (s.62)
    action: Mapped[str] = mapped_column(String(32))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    justification: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Ids of the records shown or changed; never their content.
    records: Mapped[dict[str, object]] = mapped_column(JsonDoc, default=dict)
