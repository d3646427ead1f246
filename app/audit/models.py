"""The consultation log (DPA 2018 s.62): who saw or changed which record, when, and why.

Rows are hash-chained (`app.audit.chain`): each carries its place in the chain (`seq`), the
hash of the row before it and its own hash over its content and that hash. The single row of
`audit_chain_head` holds the last link, so deleting the newest rows shows too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, JsonDoc, UTCDateTime, utcnow

# The `prev_hash` of the first row ever written (and of a chain started afresh).
GENESIS = "0" * 64


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_subject", "subject_type", "subject_id"),
        Index("ix_audit_log_call_id", "call_id"),
        Index("ix_audit_log_actor", "actor"),
        Index("uq_audit_log_seq", "seq", unique=True),
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
    # The chain: position (1, 2, ...), the previous row's hash, this row's hash (hex SHA-256).
    seq: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The chain's last link (one row, id 1), updated in the transaction that appends rows:
    updating it first is also what makes concurrent writers take turns. `base_seq` and
    `base_hash` are the last link of rows removed from the start of the chain by retention
    (0 and GENESIS while nothing has been)."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64), default=GENESIS)
    base_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    base_hash: Mapped[str] = mapped_column(String(64), default=GENESIS)
