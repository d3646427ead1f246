"""Claiming an `Idempotency-Key` and recording the outcome it stands for.

The key is claimed (a row inserted) before the write runs and completed with the response in
the same transaction, so:
- a retry after the write committed finds the row and gets the stored answer;
- a retry after the write failed (rolled back, or never arrived) finds nothing and runs it;
- two requests with one key at the same moment serialise on the unique (staff, key) index:
  the second waits for the first to commit, then finds its row.
A refused write (4xx) rolls back with its claim, so nothing is remembered for it: running it
again is harmless (it changed nothing) and answers for the state as it is then.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Upsert, upsert_for, utcnow
from app.errors import Conflict, Unprocessable
from app.idempotency.models import IdempotentRequest

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"  # the telephony webhook's replay header, same meaning
# A UUID fits; so does any opaque token of 8-128 URL-safe characters.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


class InvalidIdempotencyKey(Unprocessable):
    code = "invalid_idempotency_key"


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency_key_reused"


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"


def check_key(value: str) -> str:
    if not KEY_PATTERN.fullmatch(value):
        raise InvalidIdempotencyKey(
            f"{HEADER} must be 8-128 characters of letters, digits and . _ : -"
            " (a UUID, for example)",
            {"header": HEADER},
        )
    return value


def request_hash(method: str, path: str, raw_body: bytes) -> str:
    """The request a key stands for, independent of JSON spacing and key order."""
    try:
        canonical = json.dumps(json.loads(raw_body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = raw_body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _insert(session: AsyncSession) -> Upsert:
    return upsert_for(session, IdempotentRequest)


async def claim(
    session: AsyncSession, *, staff_id: str, key: str, method: str, path: str, digest: str
) -> tuple[int | None, IdempotentRequest | None]:
    """(id of the new claim, None), or (None, the stored outcome) when the key was used."""
    claimed = await session.scalar(
        _insert(session)
        .values(
            staff_id=staff_id,
            key=key,
            method=method,
            path=path,
            request_hash=digest,
            status_code=0,
            response=None,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[IdempotentRequest.staff_id, IdempotentRequest.key])
        .returning(IdempotentRequest.id)
    )
    if claimed is not None:
        return int(claimed), None
    stored = await session.scalar(
        select(IdempotentRequest)
        .where(IdempotentRequest.staff_id == staff_id, IdempotentRequest.key == key)
        .execution_options(populate_existing=True)
    )
    if stored is None:  # pruned between the two statements: treat as in progress, retry
        raise IdempotencyInProgress("that request is still being processed; send it again")
    if stored.request_hash != digest:
        raise IdempotencyKeyReused(
            f"this {HEADER} was already used for a different request; use a new key",
            {"header": HEADER, "first_used_for": f"{stored.method} {stored.path}"},
        )
    if stored.status_code == 0:
        raise IdempotencyInProgress("that request is still being processed; send it again")
    return None, stored


async def complete(session: AsyncSession, claim_id: int, status: int, body: object) -> None:
    """Record the answer of the claimed request (committed with the write itself)."""
    await session.execute(
        update(IdempotentRequest)
        .where(IdempotentRequest.id == claim_id)
        .values(status_code=status, response=body)
    )


async def prune(session: AsyncSession, older_than: datetime) -> int:
    """Forget the outcomes stored before `older_than` (their clients stopped retrying)."""
    result = await session.execute(
        delete(IdempotentRequest).where(IdempotentRequest.created_at < older_than)
    )
    return int(getattr(result, "rowcount", 0) or 0)
