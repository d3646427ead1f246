"""`Idempotency-Key` on the call-time writes: the dependency the routers take.

`await idem.run(status, lambda: service(...))` runs the write once per key: the first request
stores its answer with the key (same transaction), a retry with the same key and request gets
that answer again with `Idempotent-Replayed: true` and stores nothing; the same key with
another request is 422 `idempotency_key_reused`. Without the header the write simply runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import CurrentStaff, SessionDep
from app.auth.service import Principal
from app.idempotency import service as idempotency


@dataclass
class Idempotency:
    session: AsyncSession
    principal: Principal
    request: Request
    key: str | None

    async def run(
        self, status: int, action: Callable[[], Awaitable[BaseModel]]
    ) -> BaseModel | JSONResponse:
        if self.key is None:
            return await action()
        method, path = self.request.method, self.request.url.path
        claim_id, stored = await idempotency.claim(
            self.session,
            staff_id=self.principal.id,
            key=self.key,
            method=method,
            path=path,
            digest=idempotency.request_hash(method, path, await self.request.body()),
        )
        if stored is not None:
            return JSONResponse(
                stored.response,
                status_code=stored.status_code,
                headers={idempotency.REPLAYED_HEADER: "true"},
            )
        assert claim_id is not None
        result = await action()
        body = jsonable_encoder(result.model_dump(mode="json"))
        await idempotency.complete(self.session, claim_id, status, body)
        return JSONResponse(body, status_code=status)


async def get_idempotency(
    request: Request,
    principal: CurrentStaff,
    session: SessionDep,
    raw: Annotated[
        str | None,
        Header(
            alias=idempotency.HEADER,
            description="a new key per write (e.g. a UUID): a retry with the same key is "
            "answered from the stored outcome and stores nothing again",
        ),
    ] = None,
) -> Idempotency:
    # Checked here rather than by the schema: a bad key gets our own code and reason.
    key = idempotency.check_key(raw) if raw is not None else None
    return Idempotency(session=session, principal=principal, request=request, key=key)


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
