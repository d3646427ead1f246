"""The transactional outbox (issue 18): every message a transaction publishes is a row of
`outbox_message`, written in that same transaction, so that nothing announced lives only in a
process's memory between the commit and the broker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, JsonDoc, UTCDateTime, utcnow


class OutboxMessage(Base):
    """One logical message: its frames (one body per channel: a handler's view and the
    supervisors' differ) go out together, in one broker call, or not at all."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        # The relay's question, "what is not sent yet, oldest first?", reads only unsent rows.
        Index(
            "ix_outbox_message_unsent",
            "id",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
        Index("ix_outbox_message_sent_at", "sent_at"),
    )

    # Commit order per call: a call's rows are written under its row lock (the seq counter),
    # so a later message of the call always has a larger id.
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # No foreign key: the purge of calls never waits on the outbox, and a row outlives nothing
    # it needs (its frames are complete).
    call_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The call's own message number (`call.frame_seq`), in every frame's `data.seq`.
    seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    type: Mapped[str] = mapped_column(String(32))
    channels: Mapped[list[str]] = mapped_column(JsonDoc)
    # The frames' bodies, one JSON document per line, in the order of `channels` (a body is
    # compact JSON: it holds no raw newline).
    bodies: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
