"""`idempotent_request`: the outcome of each write a staff member sent with an
`Idempotency-Key`, so that a retry of the same request gets the same answer and stores nothing
again. Rows are written in the write's own transaction: a key is known exactly when its write
committed. `created_at` lets old rows be pruned (a page retries for minutes, not days).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.auth import models as _auth_models  # noqa: F401  (the `staff` table the FK names)
from app.db import Base, BigId, JsonDoc, UTCDateTime, utcnow


class IdempotentRequest(Base):
    __tablename__ = "idempotent_request"
    __table_args__ = (
        UniqueConstraint("staff_id", "key"),
        Index("ix_idempotent_request_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    staff_id: Mapped[str] = mapped_column(String(32), ForeignKey("staff.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    # SHA-256 of the method, path and canonical JSON body: the same key with another request
    # is refused rather than answered with an unrelated outcome.
    request_hash: Mapped[str] = mapped_column(String(64))
    # 0 while the write is in progress (never visible to others: set in the same transaction).
    status_code: Mapped[int] = mapped_column(Integer, default=0)
    # The response body as sent (personal data, like the record it answers for; never logged).
    response: Mapped[object] = mapped_column(JsonDoc, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
